"""Reading a clinic's hours, exceptions and bookings to compute free slots."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, or_, select

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES
from shared_models.scheduling import (
    BookingPolicy,
    ExtraHours,
    Interval,
    Slot,
    WeeklyRule,
    candidate_slots,
    free_slots,
)
from shared_models.schemas.appointments import SlotPublic
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    clinic,
    provider,
)
from sync_server.core.errors import InvalidInput, NotFound
from sync_server.lib.context import ClinicContext

MAX_WINDOW = timedelta(days=62)
ALTERNATIVES = 3
# How far ahead to look for alternatives to a slot that was just taken.
ALTERNATIVES_LOOKAHEAD = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class ClinicSchedule:
    zone: ZoneInfo
    policy: BookingPolicy


async def clinic_schedule(ctx: ClinicContext) -> ClinicSchedule:
    row = (
        await ctx.conn.execute(
            select(clinic.c.timezone, clinic.c.booking_horizon_days, clinic.c.min_notice_minutes,
                   clinic.c.cancel_cutoff_minutes).where(clinic.c.id == ctx.clinic_id)
        )
    ).one()
    return ClinicSchedule(
        zone=ZoneInfo(row.timezone),
        policy=BookingPolicy(
            horizon_days=row.booking_horizon_days,
            min_notice_minutes=row.min_notice_minutes,
            cancel_cutoff_minutes=row.cancel_cutoff_minutes,
        ),
    )


async def access_provider(ctx: ClinicContext, provider_id: uuid.UUID) -> Row[Any]:
    row = (
        await ctx.conn.execute(
            select(provider).where(provider.c.id == provider_id, provider.c.deleted_at.is_(None))
        )
    ).first()
    if row is None:
        raise NotFound(f"No provider with id {provider_id} in this clinic.",
                       code="provider_not_found")
    return row


async def check_provider_reference(ctx: ClinicContext, provider_id: uuid.UUID) -> Row[Any]:
    """A provider named in a request body: 422 on that field if not in this clinic."""
    try:
        return await access_provider(ctx, provider_id)
    except NotFound as exc:
        raise InvalidInput(exc.message, code="provider_not_found",
                           details={"field": "provider_id"}) from exc


def check_window(start: datetime, end: datetime) -> Interval:
    if end <= start:
        raise InvalidInput("end must be after start.", code="invalid_window",
                           details={"field": "end"})
    if end - start > MAX_WINDOW:
        raise InvalidInput(f"Ask for at most {MAX_WINDOW.days} days of slots at a time.",
                           code="window_too_long", details={"field": "end"})
    return Interval(start, end)


@dataclass(frozen=True, slots=True)
class ProviderHours:
    """What decides the slots of some providers inside one window."""

    rules: dict[uuid.UUID, list[WeeklyRule]]
    extra: dict[uuid.UUID, list[ExtraHours]]
    # Time off and booked appointments per provider; clinic closures under None.
    blocked: dict[uuid.UUID | None, list[Interval]]

    def offered(self, provider_id: uuid.UUID, zone: ZoneInfo, window: Interval) -> list[Slot]:
        return candidate_slots(rules=self.rules[provider_id], extra=self.extra[provider_id],
                               zone=zone, window=window)

    def free(self, provider_id: uuid.UUID, schedule: ClinicSchedule, window: Interval, *,
             now: datetime) -> list[Slot]:
        return free_slots(
            rules=self.rules[provider_id], extra=self.extra[provider_id],
            blocked=[*self.blocked[provider_id], *self.blocked[None]],
            zone=schedule.zone, window=window, now=now, policy=schedule.policy,
        )


async def load_hours(
    ctx: ClinicContext, provider_ids: list[uuid.UUID], window: Interval, *,
    ignore_appointment: uuid.UUID | None = None,
) -> ProviderHours:
    """Rules, exceptions and active bookings of `provider_ids` around `window`: three
    queries whatever the number of providers."""
    rules: dict[uuid.UUID, list[WeeklyRule]] = defaultdict(list)
    for row in await ctx.conn.execute(
        select(availability_rule).where(
            availability_rule.c.provider_id.in_(provider_ids),
            availability_rule.c.deleted_at.is_(None),
        )
    ):
        rules[row.provider_id].append(WeeklyRule.from_row(row))

    extra: dict[uuid.UUID, list[ExtraHours]] = defaultdict(list)
    blocked: dict[uuid.UUID | None, list[Interval]] = defaultdict(list)
    for row in await ctx.conn.execute(
        select(availability_exception).where(
            or_(availability_exception.c.provider_id.in_(provider_ids),
                availability_exception.c.provider_id.is_(None)),
            availability_exception.c.deleted_at.is_(None),
            availability_exception.c.starts_at < window.end,
            availability_exception.c.ends_at > window.start,
        )
    ):
        span = Interval(row.starts_at, row.ends_at)
        if row.kind == "extra_hours":
            extra[row.provider_id].append(ExtraHours(span, row.slot_minutes))
        else:
            blocked[row.provider_id].append(span)

    busy = select(appointment.c.provider_id, appointment.c.starts_at, appointment.c.ends_at).where(
        appointment.c.provider_id.in_(provider_ids),
        appointment.c.status.in_([s.value for s in ACTIVE_APPOINTMENT_STATUSES]),
        appointment.c.deleted_at.is_(None),
        appointment.c.starts_at < window.end,
        appointment.c.ends_at > window.start,
    )
    if ignore_appointment is not None:
        busy = busy.where(appointment.c.id != ignore_appointment)
    for row in await ctx.conn.execute(busy):
        blocked[row.provider_id].append(Interval(row.starts_at, row.ends_at))
    return ProviderHours(rules, extra, blocked)


async def free_slots_by_provider(
    ctx: ClinicContext, schedule: ClinicSchedule, provider_ids: list[uuid.UUID],
    window: Interval, *, now: datetime,
) -> dict[uuid.UUID, list[Slot]]:
    hours = await load_hours(ctx, provider_ids, window)
    return {pid: hours.free(pid, schedule, window, now=now) for pid in provider_ids}


async def next_free_slots(
    ctx: ClinicContext, schedule: ClinicSchedule, provider_id: uuid.UUID, *, after: datetime,
    now: datetime, count: int = ALTERNATIVES,
) -> list[Slot]:
    """The next `count` free slots of a provider from `after` on (alternatives to offer).

    Looks one day ahead first and widens the window only while too few are found: a lost
    race usually has its alternatives the same day.
    """
    start = max(after, now)
    span = timedelta(days=1)
    while True:
        window = Interval(start, start + span)
        found = (await free_slots_by_provider(ctx, schedule, [provider_id], window,
                                              now=now))[provider_id]
        if len(found) >= count or span >= ALTERNATIVES_LOOKAHEAD:
            return found[:count]
        span = min(span * 2, ALTERNATIVES_LOOKAHEAD)


async def list_provider_ids(ctx: ClinicContext) -> list[uuid.UUID]:
    return list(
        (
            await ctx.conn.execute(
                select(provider.c.id)
                .where(provider.c.deleted_at.is_(None), provider.c.is_active)
                .order_by(provider.c.display_name, provider.c.id)
            )
        ).scalars()
    )


def slots_public(slots: list[Slot], schedule: ClinicSchedule) -> list[SlotPublic]:
    """Slots as sent over the wire: in the clinic's zone, with its UTC offset.

    Built without re-validation (a month of a clinic is tens of thousands of slots, all
    made by `free_slots` already)."""
    zone = schedule.zone
    return [SlotPublic.model_construct(start=s.start.astimezone(zone), end=s.end.astimezone(zone))
            for s in slots]
