"""Hybrid-clock stamps for writes, so field-level merges compare like with like.

Edits made through the REST API are stamped by this process's clock; edits pushed by a
device carry the device's own stamp, which this clock observes so it never falls behind.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from shared_models.clock import Hlc, HybridClock

SERVER_CLOCK = HybridClock("server")


@dataclass(frozen=True, slots=True)
class WriteStamp:
    hlc: str
    device_id: uuid.UUID | None = None


def server_stamp() -> WriteStamp:
    return WriteStamp(SERVER_CLOCK.now().pack())


def stamp_fields(previous: dict[str, str] | None, fields: list[str], stamp: WriteStamp
                 ) -> dict[str, object]:
    """The columns that record who wrote `fields` and when."""
    return {
        "updated_hlc": stamp.hlc,
        "updated_by_device": stamp.device_id,
        "field_stamps": {**(previous or {}), **dict.fromkeys(fields, stamp.hlc)},
    }


def stamp_time(hlc: str) -> datetime:
    """When a device did something: the wall time inside its clock stamp, which the
    server's clock checks is not ahead of its own before any mutation is applied."""
    return datetime.fromtimestamp(Hlc.parse(hlc).wall_ms / 1000, UTC)
