"""Reads for the patient booking page: the clinic behind a slug, the days and times a
provider is free, and the appointment a manage link points at (`access_managed`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared_models.enums import AppointmentStatus
from shared_models.scheduling import (
    TRANSITIONS,
    BookingPolicy,
    Interval,
    Slot,
    local_instant,
)
from shared_models.schemas.public_booking import PublicBooking
from shared_models.tables import appointment, clinic, provider
from sync_server.core.config import Settings
from sync_server.core.errors import Conflict, Gone, NotFound
from sync_server.core.signed import (
    InvalidManageLink,
    issue_manage_token,
    read_manage_token,
)
from sync_server.lib.context import ClinicContext
from sync_server.lib.scheduling import ClinicSchedule, access_provider, free_slots_by_provider

# A manage link keeps working for a day after the appointment ends, so the patient can
# still look up what was booked on the day itself.
MANAGE_LINK_GRACE = timedelta(days=1)
# How many days of a provider's calendar the day list looks at per page.
DAYS_PAGE = 14
# States a patient may still change online (the state machine's rule, for display).
CHANGEABLE = TRANSITIONS["cancel"].patient_sources


@asynccontextmanager
async def public_context(engine: AsyncEngine, clinic_slug: str, *, client_addr: str | None
                         ) -> AsyncIterator[ClinicContext]:
    """One transaction scoped to the clinic named by `clinic_slug`, with no signed-in user.

    The slug is resolved by `clinic_by_slug` (the app role cannot read the clinic table
    before a clinic is set); an unknown slug is a 404 that names nothing else.
    """
    async with engine.connect() as conn, conn.begin():
        clinic_id = await scope_to_slug(conn, clinic_slug)
        yield ClinicContext(conn=conn, clinic_id=clinic_id, user_id=None, role=None,
                            device_id=None, client_addr=client_addr)


# Finding the clinic and scoping the transaction to it in one round trip; an unknown slug
# scopes it to no clinic ('' fails closed).
_SCOPE_TO_SLUG = text(
    "SELECT set_config('app.clinic_id', "
    "COALESCE((SELECT id::text FROM clinic_by_slug(:s)), ''), true)")


async def scope_to_slug(conn: AsyncConnection, clinic_slug: str) -> uuid.UUID:
    """Scope the transaction to the clinic at `clinic_slug` and return its id, or 404."""
    # PostgreSQL text cannot carry NUL; no slug holds one, so it names no clinic.
    found = "" if "\x00" in clinic_slug else (
        await conn.execute(_SCOPE_TO_SLUG, {"s": clinic_slug})).scalar_one()
    if not found:
        raise NotFound(f"There is no clinic at '{clinic_slug[:64]}'. Check the link.",
                       code="clinic_not_found")
    return uuid.UUID(found)


@dataclass(frozen=True, slots=True)
class ClinicInfo:
    name: str
    slug: str
    country: str
    schedule: ClinicSchedule


async def clinic_info(ctx: ClinicContext) -> ClinicInfo:
    """The clinic's name, slug, country and booking schedule, in one query."""
    row = (await ctx.conn.execute(
        select(clinic.c.name, clinic.c.slug, clinic.c.country, clinic.c.timezone,
               clinic.c.booking_horizon_days, clinic.c.min_notice_minutes,
               clinic.c.cancel_cutoff_minutes).where(clinic.c.id == ctx.clinic_id))).one()
    return ClinicInfo(row.name, row.slug, row.country, ClinicSchedule(
        zone=ZoneInfo(row.timezone),
        policy=BookingPolicy(horizon_days=row.booking_horizon_days,
                             min_notice_minutes=row.min_notice_minutes,
                             cancel_cutoff_minutes=row.cancel_cutoff_minutes)))


async def access_bookable_provider(ctx: ClinicContext, provider_id: uuid.UUID) -> Row[Any]:
    """A provider of this clinic who takes appointments, or 404 (also another clinic's)."""
    row = await access_provider(ctx, provider_id)
    if not row.is_active:
        raise NotFound("This provider no longer takes appointments online.",
                       code="provider_not_found")
    return row


def local_day_window(day: date, schedule: ClinicSchedule) -> Interval:
    """The instants of one calendar day in the clinic's zone (23 or 25 hours on DST days)."""
    return Interval(local_instant(day, time(0), schedule.zone),
                    local_instant(day + timedelta(days=1), time(0), schedule.zone))


def last_bookable_day(schedule: ClinicSchedule, now: datetime) -> date:
    return (now + timedelta(days=schedule.policy.horizon_days)).astimezone(schedule.zone).date()


async def open_days(ctx: ClinicContext, schedule: ClinicSchedule, provider_id: uuid.UUID, *,
                    first: date, now: datetime, days: int = DAYS_PAGE
                    ) -> dict[date, list[Slot]]:
    """The provider's free slots from `first` on for `days` days (within the clinic's
    horizon), by calendar day in the clinic's zone; days with none are left out."""
    today = now.astimezone(schedule.zone).date()
    first = max(first, today)
    last = min(first + timedelta(days=days - 1), last_bookable_day(schedule, now))
    if last < first:
        return {}
    window = Interval(local_day_window(first, schedule).start,
                      local_day_window(last, schedule).end)
    slots = (await free_slots_by_provider(ctx, schedule, [provider_id], window,
                                          now=now))[provider_id]
    by_day: dict[date, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(schedule.zone).date(), []).append(slot)
    return by_day


async def day_slots(ctx: ClinicContext, schedule: ClinicSchedule, provider_id: uuid.UUID,
                    day: date, *, now: datetime) -> list[Slot]:
    return (await open_days(ctx, schedule, provider_id, first=day, now=now, days=1)).get(day, [])


# --- the appointment behind a manage link ------------------------------------------------


async def access_managed(ctx: ClinicContext, settings: Settings, token: str, *, now: datetime,
                         appointment_id: uuid.UUID | None = None) -> Row[Any]:
    """The appointment a genuine, unexpired manage link of this clinic points at.

    `appointment_id`, when the caller names one (the JSON API's path), must be the
    link's own: a link opens one appointment and no other.
    """
    claims = read_manage_token(settings, token, clinic_id=ctx.clinic_id, now=now)
    if appointment_id is not None and appointment_id != claims.appointment_id:
        raise InvalidManageLink("This link is for another appointment. Open the link you "
                                "received for this one.")
    row = (await ctx.conn.execute(
        select(appointment).where(appointment.c.id == claims.appointment_id,
                                  appointment.c.deleted_at.is_(None)))).first()
    if row is None:
        raise Gone("This appointment is no longer in the clinic's calendar. Contact the "
                   "clinic if you need to see someone.", code="appointment_gone")
    return row


def change_deadline(row: Any, schedule: ClinicSchedule) -> datetime:
    start: datetime = row.starts_at
    return start - timedelta(minutes=schedule.policy.cancel_cutoff_minutes)


def check_changeable(row: Row[Any], schedule: ClinicSchedule, *, now: datetime) -> None:
    """Refuse (409) an online change of an appointment that is no longer ahead of the
    patient or is inside the clinic's cut-off."""
    status = AppointmentStatus(row.status)
    if status not in CHANGEABLE:
        raise Conflict(
            f"This appointment is {status.value.replace('_', ' ')}, so it can no longer be "
            "changed online.", code="appointment_not_changeable",
            details={"status": status.value})
    if now >= change_deadline(row, schedule):
        hours, minutes = divmod(schedule.policy.cancel_cutoff_minutes, 60)
        ahead = f"{hours} h {minutes:02d} min" if minutes else f"{hours} hours"
        raise Conflict(
            f"Online changes close {ahead} before the appointment, and that time has passed. "
            "Call the clinic to cancel or change it.", code="past_change_cutoff",
            details={"change_until": change_deadline(row, schedule)
                     .astimezone(schedule.zone).isoformat()})


async def public_view(ctx: ClinicContext, settings: Settings, row: Row[Any],
                      info: ClinicInfo, *, now: datetime) -> PublicBooking:
    """What the patient sees of an appointment, with a fresh manage link for it."""
    schedule = info.schedule
    who = (await ctx.conn.execute(
        select(provider.c.display_name, provider.c.specialty)
        .where(provider.c.id == row.provider_id))).one()
    deadline = change_deadline(row, schedule)
    expires = row.ends_at + MANAGE_LINK_GRACE
    zone = schedule.zone
    return PublicBooking(
        appointment_id=row.id, clinic_name=info.name, provider_id=row.provider_id,
        provider_name=who.display_name, specialty=who.specialty,
        start=row.starts_at.astimezone(zone), end=row.ends_at.astimezone(zone),
        timezone=zone.key, status=AppointmentStatus(row.status),
        can_change=AppointmentStatus(row.status) in CHANGEABLE and now < deadline,
        change_until=deadline.astimezone(zone),
        manage_token=issue_manage_token(settings, clinic_id=ctx.clinic_id,
                                        appointment_id=row.id, expires_at=expires),
        manage_expires_at=expires.astimezone(zone),
    )
