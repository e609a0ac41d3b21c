"""Writing clinical notes on a doctor's computer, online or not.

Every save of a draft is written locally at once and queued with the text it started
from. Saves are not merged in the outbox: each is a small ordered step that the server
applies in turn, and because each carries its starting text, a computer's own saves
never look like a conflict while a real concurrent edit elsewhere always does.

A signed note never changes; what is added later goes in an addendum, a draft of its own
attached to the note (`addendum_to`) and signed like any note.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.notes import MAX_NOTE_CHARS
from shared_models.tables import clinical_note


class NoteError(Exception):
    """A change the note cannot take; the message says why, for a dialog."""


def _queue(conn: Any, clock: HybridClock, *, op: str, note_id: uuid.UUID,
           base_version: int | None, changes: dict[str, Any], base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity="clinical_note", op=op, record_id=note_id,
        base_version=base_version, changes=changes, base=base, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def _check(body: str) -> None:
    if len(body) > MAX_NOTE_CHARS:
        raise NoteError(f"A note holds at most {MAX_NOTE_CHARS:,} characters; this one has "
                        f"{len(body):,}. Split it, or move long results to an attachment.")
    if "\x00" in body:
        raise NoteError("The text contains a NUL character, which cannot be stored.")


def start_note(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
               patient_id: uuid.UUID, author_id: uuid.UUID,
               appointment_id: uuid.UUID | None = None, body: str = "") -> uuid.UUID:
    _check(body)
    note_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(clinical_note).values(
            clinic_id=clinic_id, id=note_id, patient_id=patient_id, author_id=author_id,
            appointment_id=appointment_id, status="draft", body=body,
            created_at=datetime.now(UTC)))
        _queue(conn, clock, op="upsert", note_id=note_id, base_version=None, base={},
               changes={"patient_id": str(patient_id), "body": body,
                        "appointment_id": str(appointment_id) if appointment_id else None})
    return note_id


def start_addendum(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                   note_id: uuid.UUID, author_id: uuid.UUID, body: str = "") -> uuid.UUID:
    """A draft addendum to the signed note `note_id`, for the same patient.

    An addendum to an addendum is attached to the note they both add to: the chart shows
    a note with its addenda in order, one level deep.
    """
    _check(body)
    with engine.begin() as conn:
        target = conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)
                              ).first()
        if target is None:
            raise NoteError("The note to add to is not on this computer; sync, then try "
                            "again.")
        if target.deleted_at is not None:
            raise NoteError("The note to add to was discarded; there is nothing to add to.")
        if target.status != "signed":
            raise NoteError("Only a signed note takes an addendum; this one is still a "
                            "draft, so edit it instead.")
        adds_to = target.addendum_to or target.id
        addendum_id = uuid7()
        conn.execute(insert(clinical_note).values(
            clinic_id=clinic_id, id=addendum_id, patient_id=target.patient_id,
            author_id=author_id, addendum_to=adds_to, status="draft", body=body,
            created_at=datetime.now(UTC)))
        _queue(conn, clock, op="upsert", note_id=addendum_id, base_version=None, base={},
               changes={"patient_id": str(target.patient_id), "body": body,
                        "appointment_id": None, "addendum_to": str(adds_to)})
    return addendum_id


def _draft(conn: Any, note_id: uuid.UUID) -> Any:
    note = conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)).first()
    if note is None:
        raise NoteError("This note is not on this computer; sync, then try again.")
    if note.status == "signed":
        raise NoteError("This note is signed and cannot change; add an addendum.")
    if note.deleted_at is not None:
        raise NoteError("This draft was discarded.")
    return note


def save_draft(engine: Engine, clock: HybridClock, note_id: uuid.UUID, body: str) -> bool:
    """Save the draft's text; False when it had not changed (nothing is queued)."""
    _check(body)
    with engine.begin() as conn:
        note = _draft(conn, note_id)
        if note.body == body:
            return False
        conn.execute(update(clinical_note).where(clinical_note.c.id == note_id)
                     .values(body=body))
        _queue(conn, clock, op="upsert", note_id=note_id, base_version=note.server_version,
               changes={"body": body}, base={"body": note.body})
    return True


def sign_note(engine: Engine, clock: HybridClock, note_id: uuid.UUID) -> None:
    """Sign the text as it stands on this screen; it cannot change afterwards."""
    with engine.begin() as conn:
        note = _draft(conn, note_id)
        if not note.body.strip():
            raise NoteError("An empty note cannot be signed.")
        conn.execute(update(clinical_note).where(clinical_note.c.id == note_id)
                     .values(status="signed", signed_at=datetime.now(UTC)))
        _queue(conn, clock, op="sign", note_id=note_id, base_version=note.server_version,
               changes={"body": note.body}, base={"body": note.body})
