"""The booking service: every way an appointment is made or changed goes through here
(the desk over REST, the sync push, the patient booking page).

The overlap guarantee itself lives in the database (migration 0003); this module checks
the request against the provider's hours and the clinic's policy, turns the database's
refusal of a lost race into 409 with the next free slots, and writes the audit trail.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.enums import AppointmentStatus
from shared_models.ids import uuid7
from shared_models.scheduling import (
    BOOKING_ROLES,
    Interval,
    Slot,
    TransitionRefused,
    check_transition,
)
from shared_models.schemas.appointments import (
    AppointmentCreate,
    AppointmentPublic,
    AppointmentReschedule,
    AppointmentsPublic,
)
from shared_models.tables import appointment, patient
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.patients import access_patient
from sync_server.lib.scheduling import (
    ClinicSchedule,
    check_provider_reference,
    check_window,
    clinic_schedule,
    load_hours,
    next_free_slots,
)
from sync_server.reminders import schedule as reminders

EXCLUSION_VIOLATION = "23P01"


def to_public(row: Row[Any]) -> AppointmentPublic:
    return AppointmentPublic.model_validate(row._mapping)


def _slot_json(slots: list[Slot], schedule: ClinicSchedule) -> list[dict[str, str]]:
    return [
        {"start": s.start.astimezone(schedule.zone).isoformat(),
         "end": s.end.astimezone(schedule.zone).isoformat()}
        for s in slots
    ]


async def access_appointment(ctx: ClinicContext, appointment_id: uuid.UUID, *,
                             lock: bool = True) -> Row[Any]:
    """The appointment (locked for the rest of the transaction unless `lock` is off),
    or 404."""
    stmt = select(appointment).where(appointment.c.id == appointment_id,
                                     appointment.c.deleted_at.is_(None))
    row = (await ctx.conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        raise NotFound(f"No appointment with id {appointment_id} in this clinic.",
                       code="appointment_not_found")
    return row


def _refuse(exc: TransitionRefused, current: str) -> Exception:
    if exc.reason == "role":
        return PermissionDenied(str(exc), code="role_not_allowed")
    return Conflict(str(exc), code="invalid_transition", details={"current_status": current})


async def _check_patient(ctx: ClinicContext, patient_id: uuid.UUID) -> None:
    found = (
        await ctx.conn.execute(
            select(patient.c.id).where(patient.c.id == patient_id, patient.c.deleted_at.is_(None))
        )
    ).first()
    if found is None:
        raise InvalidInput(f"No patient with id {patient_id} in this clinic.",
                           code="patient_not_found", details={"field": "patient_id"})


async def _check_provider(ctx: ClinicContext, provider_id: uuid.UUID) -> None:
    row = await check_provider_reference(ctx, provider_id)
    if not row.is_active:
        raise InvalidInput("This provider no longer takes appointments.",
                           code="provider_inactive", details={"field": "provider_id"})


async def _validated_slot(
    ctx: ClinicContext, schedule: ClinicSchedule, provider_id: uuid.UUID, start: datetime, *,
    now: datetime, ignore_appointment: uuid.UUID | None = None,
) -> Slot:
    """The free slot starting at `start`, or the 4xx that tells the caller why not."""
    start = start.astimezone(UTC)
    policy = schedule.policy
    local = start.astimezone(schedule.zone).strftime("%Y-%m-%d %H:%M %Z")
    if start <= now:
        raise InvalidInput(f"{local} is in the past. Choose a future time.",
                           code="slot_in_past", details={"field": "start"})
    if start < now + timedelta(minutes=policy.min_notice_minutes):
        raise InvalidInput(
            f"Appointments must be booked at least {policy.min_notice_minutes} minutes ahead; "
            f"{local} is too soon.",
            code="slot_inside_notice", details={"field": "start"})
    if start > now + timedelta(days=policy.horizon_days):
        raise InvalidInput(
            f"Appointments can be booked at most {policy.horizon_days} days ahead; {local} is "
            "too far.", code="slot_beyond_horizon", details={"field": "start"})
    around = Interval(start - timedelta(days=1), start + timedelta(days=1))
    hours = await load_hours(ctx, [provider_id], around, ignore_appointment=ignore_appointment)
    offered = next((s for s in hours.offered(provider_id, schedule.zone, around)
                    if s.start == start), None)
    if offered is None:
        alternatives = await next_free_slots(ctx, schedule, provider_id, after=start, now=now)
        raise InvalidInput(
            f"{local} is not one of this provider's appointment times. Pick one of the "
            "free slots.",
            code="slot_not_offered",
            details={"field": "start", "alternatives": _slot_json(alternatives, schedule)})
    if offered not in hours.free(provider_id, schedule, Interval(offered.start, offered.end),
                                 now=now):
        raise await _taken(ctx, schedule, provider_id, start, now=now)
    return offered


async def _taken(ctx: ClinicContext, schedule: ClinicSchedule, provider_id: uuid.UUID,
                 start: datetime, *, now: datetime) -> Conflict:
    alternatives = await next_free_slots(ctx, schedule, provider_id, after=start, now=now)
    local = start.astimezone(schedule.zone).strftime("%Y-%m-%d %H:%M %Z")
    return Conflict(
        f"The slot at {local} was just taken or is blocked. Choose one of the next free "
        "slots.",
        code="slot_taken",
        details={"alternatives": _slot_json(alternatives, schedule)},
    )


def _is_overlap(exc: IntegrityError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == EXCLUSION_VIOLATION


async def do_book(
    ctx: ClinicContext, data: AppointmentCreate, *, now: datetime | None = None,
    source: str = "desk", appointment_id: uuid.UUID | None = None,
) -> AppointmentPublic:
    """Book a free slot; a device pushing an offline booking brings the id it made. A
    patient on the booking page (no role) books for themself (actions/public_booking.py)."""
    if ctx.role is not None and ctx.role not in BOOKING_ROLES:
        raise PermissionDenied(f"Your role ({ctx.role}) cannot book appointments.",
                               code="role_not_allowed")
    now = now or datetime.now(UTC)
    await _check_patient(ctx, data.patient_id)
    await _check_provider(ctx, data.provider_id)
    schedule = await clinic_schedule(ctx)
    slot = await _validated_slot(ctx, schedule, data.provider_id, data.start, now=now)
    appointment_id = appointment_id or uuid7()
    try:
        async with ctx.conn.begin_nested():
            row = (
                await ctx.conn.execute(
                    insert(appointment).values(
                        clinic_id=ctx.clinic_id, id=appointment_id, patient_id=data.patient_id,
                        provider_id=data.provider_id, starts_at=slot.start, ends_at=slot.end,
                        status=AppointmentStatus.BOOKED.value, reason=data.reason,
                        source=source, created_by=ctx.user_id,
                    ).returning(appointment)
                )
            ).one()
    except IntegrityError as exc:
        if not _is_overlap(exc):
            raise
        raise await _taken(ctx, schedule, data.provider_id, slot.start, now=now) from exc
    await reminders.on_booked(ctx, row, now=now)
    await audit.record(ctx, action="appointment.book", entity="appointment",
                       entity_id=appointment_id, detail={"patient_id": str(data.patient_id)})
    return to_public(row)


async def do_reschedule(
    ctx: ClinicContext, appointment_id: uuid.UUID, data: AppointmentReschedule, *,
    now: datetime | None = None,
) -> AppointmentPublic:
    now = now or datetime.now(UTC)
    current = await access_appointment(ctx, appointment_id)
    try:
        check_transition("reschedule", current=AppointmentStatus(current.status), role=ctx.role)
    except TransitionRefused as exc:
        raise _refuse(exc, current.status) from exc
    provider_id = data.provider_id or current.provider_id
    if data.provider_id is not None:
        await _check_provider(ctx, provider_id)
    schedule = await clinic_schedule(ctx)
    slot = await _validated_slot(ctx, schedule, provider_id, data.start, now=now,
                                 ignore_appointment=appointment_id)
    try:
        async with ctx.conn.begin_nested():
            # One UPDATE: the old time is given up only if the new one is secured.
            row = (
                await ctx.conn.execute(
                    update(appointment).where(appointment.c.id == appointment_id).values(
                        provider_id=provider_id, starts_at=slot.start, ends_at=slot.end,
                        status=AppointmentStatus.BOOKED.value, confirmed_at=None,
                    ).returning(appointment)
                )
            ).one()
    except IntegrityError as exc:
        if not _is_overlap(exc):
            raise
        raise await _taken(ctx, schedule, provider_id, slot.start, now=now) from exc
    await reminders.on_rescheduled(ctx, row, now=now)
    await audit.record(ctx, action="appointment.reschedule", entity="appointment",
                       entity_id=appointment_id,
                       detail={"from": current.starts_at.isoformat(),
                               "to": slot.start.isoformat()})
    return to_public(row)


async def do_transition(
    ctx: ClinicContext, appointment_id: uuid.UUID, command: str, *,
    cancel_reason: str | None = None, now: datetime | None = None,
) -> AppointmentPublic:
    """cancel, check_in, start, complete or no_show."""
    now = now or datetime.now(UTC)
    current = await access_appointment(ctx, appointment_id)
    try:
        transition = check_transition(command, current=AppointmentStatus(current.status),
                                      role=ctx.role)
    except TransitionRefused as exc:
        raise _refuse(exc, current.status) from exc
    if command == "no_show" and now < current.starts_at:
        raise Conflict("A patient can be marked as a no-show only once the appointment time "
                       "has come.", code="too_early_for_no_show",
                       details={"current_status": current.status})
    values: dict[str, Any] = {"status": transition.target.value}
    if cancel_reason is not None:
        values["cancel_reason"] = cancel_reason
    row = (
        await ctx.conn.execute(
            update(appointment).where(appointment.c.id == appointment_id).values(**values)
            .returning(appointment)
        )
    ).one()
    if command == "cancel":
        await reminders.on_cancelled(ctx, row, now=now)
    else:
        await reminders.on_closed(ctx, row, transition.target.value)
    await audit.record(ctx, action=f"appointment.{command}", entity="appointment",
                       entity_id=appointment_id, detail={"from": current.status})
    return to_public(row)


async def list_appointments(
    ctx: ClinicContext, *, start: datetime, end: datetime, provider_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
) -> AppointmentsPublic:
    check_window(start, end)
    stmt = select(appointment).where(
        appointment.c.deleted_at.is_(None), appointment.c.starts_at < end,
        appointment.c.ends_at > start)
    if provider_id is not None:
        stmt = stmt.where(appointment.c.provider_id == provider_id)
    if patient_id is not None:
        stmt = stmt.where(appointment.c.patient_id == patient_id)
    rows = await ctx.conn.execute(stmt.order_by(appointment.c.starts_at, appointment.c.id))
    return AppointmentsPublic(data=[to_public(r) for r in rows])



async def patient_appointments(ctx: ClinicContext, patient_id: uuid.UUID) -> AppointmentsPublic:
    """A patient's appointments, newest first (the chart and the front desk's history)."""
    await access_patient(ctx, patient_id)
    rows = await ctx.conn.execute(
        select(appointment)
        .where(appointment.c.patient_id == patient_id, appointment.c.deleted_at.is_(None))
        .order_by(appointment.c.starts_at.desc(), appointment.c.id)
    )
    await audit.record(ctx, action="patient.appointments", entity="patient",
                       entity_id=patient_id)
    return AppointmentsPublic(data=[to_public(r) for r in rows])
