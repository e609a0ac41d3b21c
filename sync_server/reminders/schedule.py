"""What booking changes do to the reminder queue, in the transaction that makes them.

A booking queues its reminders; a reschedule cancels the queued ones, queues new ones for
the new time and a notice of the change; a cancellation cancels them and queues a notice;
check-in, no-show and the rest only cancel what is still queued. Because this runs inside
the booking transaction, the queue never disagrees with the calendar, and a dispatcher
sending a reminder holds that reminder's row lock, so a reschedule that commits after a
send started waits for it, and one that committed first is seen by the send (it checks
the row again under the lock and finds it cancelled).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, func, insert, select, update

from shared_models.ids import uuid7
from shared_models.tables import clinic, patient, reminder, reminder_policy
from sync_server.lib.context import ClinicContext
from sync_server.reminders.planning import plan_reminders
from sync_server.reminders.policy import policy_of, quiet_hours


async def _setting(ctx: ClinicContext, appointment: Row[Any]) -> tuple[Any, ZoneInfo]:
    return await patient_setting(ctx, appointment.patient_id)


async def patient_setting(ctx: ClinicContext, patient_id: Any) -> tuple[Any, ZoneInfo]:
    """The clinic's policy and the patient's zone, in one query."""
    row = (await ctx.conn.execute(
        select(func.coalesce(patient.c.timezone, clinic.c.timezone).label("zone"),
               reminder_policy.c.offsets_minutes, reminder_policy.c.quiet_start,
               reminder_policy.c.quiet_end, reminder_policy.c.templates)
        .select_from(patient.join(clinic, clinic.c.id == patient.c.clinic_id)
                     .outerjoin(reminder_policy,
                                reminder_policy.c.clinic_id == patient.c.clinic_id))
        .where(patient.c.id == patient_id))).one()
    return policy_of(row), ZoneInfo(row.zone)


def _row(ctx: ClinicContext, appointment: Row[Any], *, kind: str, due: datetime,
         offset: int | None = None, sequence: int = 0) -> dict[str, Any]:
    return {"clinic_id": ctx.clinic_id, "id": uuid7(), "appointment_id": appointment.id,
            "patient_id": appointment.patient_id, "kind": kind, "offset_minutes": offset,
            "appointment_starts_at": appointment.starts_at, "due_at": due,
            "next_attempt_at": due, "calendar_sequence": sequence, "refused_channels": []}


async def _queue(ctx: ClinicContext, appointment: Row[Any], *, now: datetime, sequence: int,
                 notice: str | None = None) -> None:
    policy, zone = await _setting(ctx, appointment)
    quiet = quiet_hours(policy)
    rows = [_row(ctx, appointment, kind="reminder", due=due, offset=offset, sequence=sequence)
            for offset, due in plan_reminders(appointment.starts_at, policy.offsets_minutes,
                                              quiet=quiet, zone=zone, now=now)]
    if notice is not None:
        rows.append(_row(ctx, appointment, kind=notice, due=quiet.next_allowed(now, zone),
                         sequence=sequence))
    if rows:
        await ctx.conn.execute(insert(reminder), rows)


async def _cancel_queued(ctx: ClinicContext, appointment_id: Any, reason: str) -> None:
    """Cancel what is queued, and the failures about the old state: retrying them would
    tell the patient something no longer true."""
    await ctx.conn.execute(
        update(reminder)
        .where(reminder.c.appointment_id == appointment_id,
               reminder.c.status.in_(("pending", "dead")))
        .values(status="cancelled", last_error=reason, lease_until=None,
                updated_at=func.now()))


async def _next_sequence(ctx: ClinicContext, appointment_id: Any) -> int:
    current = (await ctx.conn.execute(
        select(func.max(reminder.c.calendar_sequence))
        .where(reminder.c.appointment_id == appointment_id))).scalar()
    return 0 if current is None else current + 1


async def on_booked(ctx: ClinicContext, appointment: Row[Any], *, now: datetime) -> None:
    await _queue(ctx, appointment, now=now, sequence=0)


async def on_rescheduled(ctx: ClinicContext, appointment: Row[Any], *, now: datetime) -> None:
    """`appointment` as it is after the move."""
    await _cancel_queued(ctx, appointment.id, "rescheduled")
    await _queue(ctx, appointment, now=now, notice="rescheduled",
                 sequence=await _next_sequence(ctx, appointment.id))


async def on_cancelled(ctx: ClinicContext, appointment: Row[Any], *, now: datetime) -> None:
    await _cancel_queued(ctx, appointment.id, "appointment cancelled")
    if appointment.starts_at > now:
        sequence = await _next_sequence(ctx, appointment.id)
        policy, zone = await _setting(ctx, appointment)
        await ctx.conn.execute(insert(reminder).values(
            _row(ctx, appointment, kind="cancelled", sequence=sequence,
                 due=quiet_hours(policy).next_allowed(now, zone))))


async def on_closed(ctx: ClinicContext, appointment: Row[Any], status: str) -> None:
    """Checked in, started, completed or a no-show: nothing left to remind."""
    await _cancel_queued(ctx, appointment.id, f"appointment {status.replace('_', ' ')}")
