"""Reports over a period: no-show rates per clinic and per provider."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from shared_models.enums import AppointmentStatus
from shared_models.schemas.appointments import NoShowRate, NoShowReport
from shared_models.tables import appointment
from sync_server.core.errors import InvalidInput
from sync_server.lib.context import ClinicContext

# Appointments whose time has come and that were kept or missed; cancellations and
# future bookings do not count either way.
DUE = (AppointmentStatus.NO_SHOW, AppointmentStatus.COMPLETED, AppointmentStatus.CHECKED_IN,
       AppointmentStatus.IN_PROGRESS)


def _rate(no_shows: int, due: int) -> float | None:
    return round(no_shows / due, 4) if due else None


async def no_show_report(ctx: ClinicContext, *, start: datetime, end: datetime) -> NoShowReport:
    if end <= start:
        raise InvalidInput("end must be after start.", code="invalid_window",
                           details={"field": "end"})
    missed = func.count(case((appointment.c.status == AppointmentStatus.NO_SHOW.value, 1)))
    rows = (
        await ctx.conn.execute(
            select(appointment.c.provider_id, func.count().label("due"), missed.label("missed"))
            .where(appointment.c.deleted_at.is_(None),
                   appointment.c.status.in_([s.value for s in DUE]),
                   appointment.c.starts_at >= start, appointment.c.starts_at < end)
            .group_by(appointment.c.provider_id)
            .order_by(appointment.c.provider_id)
        )
    ).all()
    providers = [
        NoShowRate(provider_id=r.provider_id, appointments=r.due, no_shows=r.missed,
                   rate=_rate(r.missed, r.due))
        for r in rows
    ]
    due = sum(p.appointments for p in providers)
    missed_total = sum(p.no_shows for p in providers)
    return NoShowReport(
        start=start, end=end,
        clinic=NoShowRate(provider_id=None, appointments=due, no_shows=missed_total,
                          rate=_rate(missed_total, due)),
        providers=providers,
    )
