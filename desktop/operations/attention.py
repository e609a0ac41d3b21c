"""What the server sent back for a person to decide: a booking it rejected (with other
free times), a value of theirs that lost a merge. Each is settled here, offline too: a
rebooking is a new offline booking, restoring a value is a new local edit (later than
the one that won, so it wins when it reaches the server)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, delete, select

from desktop.operations.appointments import book_offline
from desktop.operations.patients import edit_patient
from desktop.store.local import attention
from shared_models.clock import HybridClock
from shared_models.tables import appointment


class AttentionError(LookupError):
    """The item is gone or does not offer what was asked; the message says so."""


def needs_attention(engine: Engine) -> list[Row[Any]]:
    with engine.connect() as conn:
        return list(conn.execute(select(attention).order_by(attention.c.created_at)))


def _item(conn: Any, mutation_id: uuid.UUID) -> Row[Any]:
    row: Row[Any] | None = conn.execute(
        select(attention).where(attention.c.mutation_id == mutation_id)).first()
    if row is None:
        raise AttentionError("This item was already dealt with.")
    return row


def dismiss(engine: Engine, mutation_id: uuid.UUID) -> None:
    with engine.begin() as conn:
        _item(conn, mutation_id)
        conn.execute(delete(attention).where(attention.c.mutation_id == mutation_id))


def rebook(engine: Engine, clock: HybridClock, mutation_id: uuid.UUID, start: datetime
           ) -> uuid.UUID:
    """Book the rejected appointment's patient with the same provider at one of the
    alternatives the server offered."""
    with engine.connect() as conn:
        item = _item(conn, mutation_id)
        rejected = conn.execute(select(appointment).where(
            appointment.c.id == item.record_id)).first()
    offered = {datetime.fromisoformat(a["start"]) for a in item.detail.get("alternatives", [])}
    if rejected is None or start not in offered:
        raise AttentionError("That time is not one the server offered; pick one of the list.")
    minutes = int((rejected.ends_at - rejected.starts_at).total_seconds() // 60)
    new_id = book_offline(engine, clock, clinic_id=rejected.clinic_id,
                          patient_id=rejected.patient_id, provider_id=rejected.provider_id,
                          start=start, minutes=minutes, reason=rejected.reason)
    dismiss(engine, mutation_id)
    return new_id


def restore_mine(engine: Engine, clock: HybridClock, mutation_id: uuid.UUID, field: str
                 ) -> None:
    """Put back the value typed here that lost a merge."""
    with engine.connect() as conn:
        item = _item(conn, mutation_id)
    lost = {c["field"]: c for c in item.detail.get("conflicts", [])
            if c.get("winner") == "server"}
    if item.entity != "patient" or field not in lost:
        raise AttentionError("There is no value of yours to restore for this field.")
    edit_patient(engine, clock, item.record_id, {field: lost[field]["lost"]})
    dismiss(engine, mutation_id)
