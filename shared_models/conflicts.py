"""The conflict rules of sync (DESIGN section 5), as pure functions both sides call, so a
device can predict and show what the server will decide.

- Plain records merge field by field. A field changed only on one side takes that side's
  value; a field changed on both sides goes to the later hybrid-clock stamp, and the
  losing value is reported so it can be kept for review. Nothing typed is dropped.
- A note draft edited on two devices keeps both texts: the later becomes the note, the
  other a conflict copy attached to it. A signed note never changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    APPLIED = "applied"  # nothing changed on the server since the edit began
    MERGED = "merged"  # other fields changed meanwhile; no field was changed by both
    CONFLICT = "conflict"  # at least one field was changed by both; later stamp won


class Side(StrEnum):
    DEVICE = "device"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class FieldConflict:
    field: str
    kept: Any
    lost: Any
    winner: Side


@dataclass(frozen=True, slots=True)
class Merge:
    outcome: Outcome
    apply: dict[str, Any]  # what to write on the server
    conflicts: list[FieldConflict] = field(default_factory=list)


def merge_fields(
    *,
    current: Mapping[str, Any],
    current_stamps: Mapping[str, str],
    changed_since_base: bool,
    base: Mapping[str, Any],
    changes: Mapping[str, Any],
    stamp: str,
) -> Merge:
    """Merge a device's `changes` (made from `base` values at `stamp`) into `current`.

    `current_stamps` holds the stamp of the last write of each server field (packed
    hybrid-clock strings compare as text); `changed_since_base` says whether the record
    moved on since the version the device started from.
    """
    if not changed_since_base:
        return Merge(Outcome.APPLIED, dict(changes))
    apply: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for name, value in changes.items():
        server_value = current.get(name)
        if server_value == value:
            continue  # both sides agree: nothing to write, nothing lost
        if name in base and server_value == base[name]:
            apply[name] = value  # only the device changed it
            continue
        # Changed on both sides (or the device could not say what it started from, in
        # which case the server's value is treated as changed too, so it is not lost).
        server_stamp = current_stamps.get(name, "")
        if stamp > server_stamp:
            apply[name] = value
            conflicts.append(FieldConflict(name, kept=value, lost=server_value,
                                           winner=Side.DEVICE))
        else:
            conflicts.append(FieldConflict(name, kept=server_value, lost=value,
                                           winner=Side.SERVER))
    return Merge(Outcome.CONFLICT if conflicts else Outcome.MERGED, apply, conflicts)


@dataclass(frozen=True, slots=True)
class DraftMerge:
    text: str  # what the note now says
    conflict_copy: str | None  # the other text, attached to the note for review
    winner: Side


class SignedNoteError(Exception):
    """A signed note is immutable: changes go in an addendum."""


def merge_note_draft(
    *, current_text: str, current_stamp: str, signed: bool, changed_since_base: bool,
    incoming_text: str, incoming_stamp: str,
) -> DraftMerge:
    if signed:
        raise SignedNoteError("This note is signed and cannot change; add an addendum.")
    if not changed_since_base or current_text == incoming_text:
        return DraftMerge(incoming_text, None, Side.DEVICE)
    if incoming_stamp > current_stamp:
        return DraftMerge(incoming_text, current_text, Side.DEVICE)
    return DraftMerge(current_text, incoming_text, Side.SERVER)
