"""The reminder queue filled straight in the database: patients reached on chosen channels,
no quiet hours, and thousands of due reminders without booking thousands of slots.

Shared by the in-process dispatcher tests, the multi-process tests and
benchmarks/reminders.py. Every function but `cancel_pending` takes a connection already
scoped to the clinic (`sync_server.actions.clinics.scope`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as wall

from sqlalchemy import Connection, Engine, insert, update

from shared_models.ids import uuid7
from shared_models.tables import appointment, patient, reminder, reminder_policy

SLOT = timedelta(minutes=15)


def cancel_pending(engine: Engine) -> None:
    """Empty the queue (as the owner, which sees every clinic's rows): the queue is shared
    by all clinics and a dispatcher claims from all of them, so a test that counts what
    is sent starts from nothing due."""
    with engine.begin() as conn:
        conn.execute(update(reminder).where(reminder.c.status == "pending").values(
            status="cancelled", last_error="cleared between tests"))


def no_quiet_hours(conn: Connection, clinic_id: uuid.UUID) -> None:
    """A policy whose quiet hours are empty, so a run at night still sends."""
    conn.execute(insert(reminder_policy).values(
        clinic_id=clinic_id, offsets_minutes=[1440], quiet_start=wall(0, 0),
        quiet_end=wall(0, 0), templates={}))


def add_patient(conn: Connection, clinic_id: uuid.UUID, *, channels: Sequence[str],
                email: str | None = None, phone: str | None = None,
                language: str = "es") -> uuid.UUID:
    """A patient who takes reminders on `channels`, in that order of preference."""
    patient_id = uuid7()
    conn.execute(insert(patient).values(
        clinic_id=clinic_id, id=patient_id, mrn=f"Q-{uuid.uuid4().hex[:10]}",
        given_name="Ana", family_name="Rojas", email=email, phone=phone,
        preferred_language=language, preferred_channels=list(channels)))
    return patient_id


def queue_due(conn: Connection, *, clinic_id: uuid.UUID, provider_ids: Sequence[uuid.UUID],
              patient_id: uuid.UUID, count: int, start: datetime, kind: str = "reminder"
              ) -> list[uuid.UUID]:
    """`count` reminders due a minute ago, one appointment each: appointment i starts
    i quarter-hours after `start` with provider i mod len(provider_ids). The ids of the
    reminders, in that order."""
    due = datetime.now(UTC) - timedelta(minutes=1)
    appointments, reminders = [], []
    for i in range(count):
        appointment_id, reminder_id = uuid7(), uuid7()
        starts = start + SLOT * i
        appointments.append({
            "clinic_id": clinic_id, "id": appointment_id, "patient_id": patient_id,
            "provider_id": provider_ids[i % len(provider_ids)], "starts_at": starts,
            "ends_at": starts + SLOT, "status": "booked"})
        reminders.append({
            "clinic_id": clinic_id, "id": reminder_id, "appointment_id": appointment_id,
            "patient_id": patient_id, "kind": kind,
            "offset_minutes": 1440 if kind == "reminder" else None,
            "appointment_starts_at": starts, "due_at": due, "next_attempt_at": due,
            "refused_channels": []})
    conn.execute(insert(appointment), appointments)
    conn.execute(insert(reminder), reminders)
    return [r["id"] for r in reminders]  # type: ignore[misc]
