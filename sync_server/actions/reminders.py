"""What staff see and do about reminders: what was sent for an appointment, the
dead-letter list and its retry, the delivery rate, and the clinic's policy."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, Channel
from shared_models.schemas.reminders import (
    ChannelStats,
    DeadLetter,
    DeadLetters,
    DeliveryStats,
    ReminderAttemptPublic,
    ReminderPublic,
    RemindersPublic,
)
from shared_models.tables import appointment, patient, reminder, reminder_attempt
from sync_server.actions import audit
from sync_server.actions.appointments import access_appointment
from sync_server.core.errors import Conflict, InvalidInput, NotFound
from sync_server.lib.context import ClinicContext
from sync_server.reminders.planning import MIN_LEAD

MAX_DEAD_LETTERS = 500
MAX_STATS_WINDOW = timedelta(days=366)


async def appointment_reminders(ctx: ClinicContext, appointment_id: uuid.UUID
                                ) -> RemindersPublic:
    """Every message about one appointment, oldest first, with each try."""
    await access_appointment(ctx, appointment_id, lock=False)
    rows = (await ctx.conn.execute(
        select(reminder).where(reminder.c.appointment_id == appointment_id)
        .order_by(reminder.c.created_at, reminder.c.due_at, reminder.c.id))).all()
    tries: dict[uuid.UUID, list[ReminderAttemptPublic]] = defaultdict(list)
    for t in await ctx.conn.execute(
            select(reminder_attempt).where(reminder_attempt.c.reminder_id.in_([r.id for r in rows]))
            .order_by(reminder_attempt.c.attempted_at, reminder_attempt.c.id)):
        tries[t.reminder_id].append(ReminderAttemptPublic(
            channel=Channel(t.channel), attempted_at=t.attempted_at, outcome=t.outcome,
            error=t.error))
    return RemindersPublic(data=[
        ReminderPublic(
            id=r.id, appointment_id=r.appointment_id, kind=r.kind,
            offset_minutes=r.offset_minutes, appointment_starts_at=r.appointment_starts_at,
            due_at=r.due_at, next_attempt_at=r.next_attempt_at if r.status == "pending" else None,
            status=r.status, attempts=r.attempts,
            channel=Channel(r.channel) if r.channel else None, sent_at=r.sent_at,
            last_error=r.last_error, tries=tries[r.id])
        for r in rows])


async def dead_letters(ctx: ClinicContext, *, limit: int, now: datetime | None = None
                       ) -> DeadLetters:
    """Messages that failed for good about appointments still ahead, newest failure
    first (a failure about a past appointment can no longer be acted on; one about a
    changed appointment was cancelled with the change)."""
    now = now or datetime.now(UTC)
    rows = await ctx.conn.execute(
        select(reminder.c.id, reminder.c.appointment_id, reminder.c.patient_id, reminder.c.kind,
               reminder.c.offset_minutes, reminder.c.channel,
               reminder.c.appointment_starts_at, reminder.c.attempts, reminder.c.last_error,
               reminder.c.updated_at, patient.c.given_name, patient.c.family_name)
        .join(patient, patient.c.id == reminder.c.patient_id)
        .where(reminder.c.status == "dead", reminder.c.appointment_starts_at > now)
        .order_by(reminder.c.updated_at.desc(), reminder.c.id)
        .limit(min(limit, MAX_DEAD_LETTERS)))
    return DeadLetters(data=[
        DeadLetter(id=r.id, appointment_id=r.appointment_id, patient_id=r.patient_id,
                   patient_name=f"{r.given_name} {r.family_name}", kind=r.kind,
                   offset_minutes=r.offset_minutes,
                   channel=Channel(r.channel) if r.channel else None,
                   appointment_starts_at=r.appointment_starts_at, attempts=r.attempts,
                   last_error=r.last_error, failed_at=r.updated_at)
        for r in rows])


async def do_retry(ctx: ClinicContext, reminder_id: uuid.UUID, *,
                   now: datetime | None = None) -> ReminderPublic:
    """Put a dead-lettered message back in the queue, due now, with fresh attempts and
    every channel allowed again (the patient's address may have been corrected)."""
    now = now or datetime.now(UTC)
    row = (await ctx.conn.execute(
        select(reminder).where(reminder.c.id == reminder_id).with_for_update())).first()
    if row is None:
        raise NotFound(f"No reminder with id {reminder_id} in this clinic.",
                       code="reminder_not_found")
    if row.status != "dead":
        raise Conflict(f"This message is {row.status}; only a failed message can be retried.",
                       code="reminder_not_dead", details={"status": row.status})
    if row.appointment_id is None:
        raise Conflict("This is a notice about a prescription or lab results, not about an "
                       "appointment; the pharmacy or the lab can tell the patient directly.",
                       code="reminder_not_retryable")
    if row.kind != "cancelled":
        current = (await ctx.conn.execute(
            select(appointment.c.status, appointment.c.starts_at)
            .where(appointment.c.id == row.appointment_id))).one()
        active = {s.value for s in ACTIVE_APPOINTMENT_STATUSES}
        if current.status not in active or current.starts_at != row.appointment_starts_at:
            raise Conflict("The appointment has changed since this message failed; there is "
                           "nothing to resend.", code="reminder_outdated")
        if row.kind == "reminder" and now > row.appointment_starts_at - MIN_LEAD:
            raise Conflict("The appointment is too close (or past) for a reminder.",
                           code="reminder_too_late")
    await ctx.conn.execute(update(reminder).where(reminder.c.id == reminder_id).values(
        status="pending", attempts=0, next_attempt_at=now, refused_channels=[],
        lease_until=None, leased_by=None, updated_at=func.now()))
    await audit.record(ctx, action="reminder.retry", entity="appointment",
                       entity_id=row.appointment_id, detail={"reminder_id": str(reminder_id)})
    return next(r for r in (await appointment_reminders(ctx, row.appointment_id)).data
                if r.id == reminder_id)


async def delivery_stats(ctx: ClinicContext, *, start: datetime, end: datetime
                         ) -> DeliveryStats:
    if end <= start:
        raise InvalidInput("end must be after start.", code="invalid_window",
                           details={"field": "end"})
    if end - start > MAX_STATS_WINDOW:
        raise InvalidInput("Ask for at most a year at a time.", code="window_too_long",
                           details={"field": "end"})
    rows = await ctx.conn.execute(
        select(reminder.c.status, reminder.c.channel, func.count().label("n"))
        .where(reminder.c.due_at >= start, reminder.c.due_at < end)
        .group_by(reminder.c.status, reminder.c.channel))
    totals: dict[str, int] = defaultdict(int)
    per_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        totals[r.status] += r.n
        if r.channel and r.status in ("sent", "dead"):
            per_channel[r.channel][r.status] += r.n
    decided = totals["sent"] + totals["dead"]
    return DeliveryStats(
        start=start, end=end, sent=totals["sent"], dead=totals["dead"],
        pending=totals["pending"], cancelled=totals["cancelled"], skipped=totals["skipped"],
        delivery_rate=round(totals["sent"] / decided, 4) if decided else None,
        by_channel=[ChannelStats(channel=Channel(ch), sent=c["sent"], dead=c["dead"])
                    for ch, c in sorted(per_channel.items())])
