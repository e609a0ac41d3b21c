"""Booking on this computer: the appointment shows at once as pending, and becomes booked
(or rejected, with the server's alternatives in "needs attention") after the next sync."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.enums import AppointmentStatus
from shared_models.ids import uuid7
from shared_models.tables import appointment


def book_offline(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                 patient_id: uuid.UUID, provider_id: uuid.UUID, start: datetime,
                 minutes: int, reason: str | None = None) -> uuid.UUID:
    appointment_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(appointment).values(
            clinic_id=clinic_id, id=appointment_id, patient_id=patient_id,
            provider_id=provider_id, starts_at=start, ends_at=start + timedelta(minutes=minutes),
            status=AppointmentStatus.PENDING.value, reason=reason, source="device"))
        conn.execute(insert(outbox).values(
            mutation_id=uuid7(), entity="appointment", op="book", record_id=appointment_id,
            base_version=None, base={}, hlc=clock.now().pack(), created_at=datetime.now(UTC),
            changes={"patient_id": str(patient_id), "provider_id": str(provider_id),
                     "start": start.isoformat(), "reason": reason}))
    return appointment_id
