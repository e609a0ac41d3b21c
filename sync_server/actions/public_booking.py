"""Patient self-booking: the booking page's (and the public JSON API's) way into the one
booking service (`do_book`, `do_reschedule`, `do_transition`).

A booking is filed under an existing patient when the phone or e-mail typed and the date
of birth match one (a differing name flags that record for the front desk to check);
otherwise under a new patient flagged for review. Nothing a patient sees tells these
apart: the same answer, and no answer sooner than `booking_min_response_seconds`.

Abuse protection, in the order applied: the honeypot field; submissions per client
address and per phone number inside a window (counted in `booking_throttle` in a
transaction of their own, so refused and failed attempts count too and every server
process shares the counts); the cap on upcoming web bookings per phone, checked under a
per-phone lock so two submissions at once cannot both slip under it.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, Channel
from shared_models.schemas.appointments import AppointmentCreate, AppointmentReschedule
from shared_models.schemas.patients import PatientCreate
from shared_models.schemas.public_booking import PublicBooking, PublicBookingCreate
from shared_models.search import fold
from shared_models.tables import appointment, booking_throttle, clinic, patient, web_booking
from sync_server.actions import audit
from sync_server.actions.appointments import do_book, do_reschedule, do_transition
from sync_server.actions.patients import do_create_patient
from sync_server.core.config import Settings
from sync_server.core.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from sync_server.core.signed import ADDRESS_PURPOSE, PHONE_PURPOSE, keyed_hash
from sync_server.lib.context import ClinicContext
from sync_server.lib.patients import check_phone
from sync_server.lib.public_booking import (
    access_bookable_provider,
    access_managed,
    check_changeable,
    clinic_info,
    public_context,
    public_view,
    scope_to_slug,
)
from sync_server.lib.stamps import server_stamp, stamp_fields

WEB_SOURCE = "web"
CANCELLED_ONLINE = "Cancelled by the patient online"
# Advisory-lock class of "one phone's web bookings" (two-int keys: a space apart from the
# single-bigint keys the appointment overlap trigger takes).
PHONE_LOCK_CLASS = 0x7765_6200
UPCOMING = [s.value for s in ACTIVE_APPOINTMENT_STATUSES]


@dataclass(frozen=True, slots=True)
class Throttle:
    key: str
    limit: int
    what: str


# --- counting submissions ----------------------------------------------------------------


async def _hit(conn: AsyncConnection, throttle: Throttle, *, window: timedelta,
               now: datetime) -> int:
    """Count one submission under `throttle.key`; the seconds until its window ends when
    it is over the limit, else 0."""
    expired = booking_throttle.c.window_started_at <= now - window
    base = pg_insert(booking_throttle).values(key=throttle.key, hits=1, window_started_at=now)
    stmt = base.on_conflict_do_update(
        index_elements=[booking_throttle.c.key],
        set_={"hits": case((expired, 1), else_=booking_throttle.c.hits + 1),
              "window_started_at": case((expired, now),
                                        else_=booking_throttle.c.window_started_at)},
    ).returning(booking_throttle.c.hits, booking_throttle.c.window_started_at)
    row = (await conn.execute(stmt)).one()
    if int(row.hits) <= throttle.limit:
        return 0
    ends: datetime = row.window_started_at + window
    return max(1, math.ceil((ends - now).total_seconds()))


def _refusal(what: str, wait: int) -> TooManyRequests:
    minutes = max(1, math.ceil(wait / 60))
    subject = ("from this device or network" if what == "address"
               else "with this phone number")
    exc = TooManyRequests(
        f"Too many bookings were tried {subject} in a short time. Try again in {minutes} "
        "minute(s), or call the clinic.", retry_after_seconds=wait)
    exc.code = "booking_rate_limited"
    exc.details["limit"] = what
    return exc


@dataclass(frozen=True, slots=True)
class _Admitted:
    clinic_id: uuid.UUID
    phone: str
    phone_key: str


async def _admit(engine: AsyncEngine, settings: Settings, *, clinic_slug: str,
                 data: PublicBookingCreate, client_addr: str | None, honeypot: str,
                 now: datetime) -> _Admitted:
    """Count this submission and check what needs no booking transaction: the honeypot,
    the address's and the phone's limits, the phone number itself. Committed before any
    refusal is raised, so refused attempts count too."""
    window = timedelta(minutes=settings.booking_window_minutes)
    refusal: Exception | None = None
    phone, phone_key = "", ""
    async with engine.begin() as conn:
        clinic_id = await scope_to_slug(conn, clinic_slug)
        await conn.execute(delete(booking_throttle)
                           .where(booking_throttle.c.window_started_at <= now - window))
        address = keyed_hash(settings, ADDRESS_PURPOSE, client_addr or "unknown")
        wait = await _hit(conn, Throttle(f"addr:{clinic_id}:{address}",
                                         settings.booking_limit_per_address, "address"),
                          window=window, now=now)
        if honeypot.strip():
            refusal = InvalidInput(
                "This booking looks automated and was not sent. If you are a person, leave "
                "the field marked 'leave empty' blank and send it again, or call the clinic.",
                code="looks_automated", details={"field": "website"})
        elif wait:
            refusal = _refusal("address", wait)
        else:
            country = (await conn.execute(
                select(clinic.c.country).where(clinic.c.id == clinic_id))).scalar_one()
            try:
                phone = check_phone(data.phone, region=country)
            except InvalidInput as exc:
                refusal = exc
            else:
                phone_key = keyed_hash(settings, PHONE_PURPOSE, phone)
                wait = await _hit(conn, Throttle(f"phone:{clinic_id}:{phone_key}",
                                                 settings.booking_limit_per_phone, "phone"),
                                  window=window, now=now)
                if wait:
                    refusal = _refusal("phone", wait)
    if refusal is not None:
        raise refusal
    return _Admitted(clinic_id, phone, phone_key)


# --- matching a patient ------------------------------------------------------------------


def _first_word(name: str) -> str:
    return fold(name).split(" ")[0] if fold(name) else ""


def _same_person_named(row: Any, data: PublicBookingCreate) -> bool:
    return (_first_word(row.given_name) == _first_word(data.given_name)
            and _first_word(row.family_name) == _first_word(data.family_name))


async def _match_patient(ctx: ClinicContext, data: PublicBookingCreate, *, phone: str,
                         email: str | None) -> Any:
    """The registered patient with this date of birth and this phone or e-mail: among
    several, the one named alike, then one matched by phone, then the oldest record."""
    same_contact = patient.c.phone == phone
    if email:
        same_contact = or_(same_contact, func.lower(patient.c.email) == email)
    rows = (await ctx.conn.execute(
        select(patient.c.id, patient.c.given_name, patient.c.family_name, patient.c.phone,
               patient.c.needs_review, patient.c.field_stamps)
        .where(patient.c.deleted_at.is_(None), patient.c.date_of_birth == data.date_of_birth,
               same_contact)
        .order_by(patient.c.created_at, patient.c.id).limit(20))).all()
    if not rows:
        return None
    return min(rows, key=lambda r: (not _same_person_named(r, data), r.phone != phone))


async def _file_under_patient(ctx: ClinicContext, data: PublicBookingCreate, *, phone: str
                              ) -> tuple[uuid.UUID, bool, bool]:
    """(patient id, registered now, flagged for review) for this booking."""
    email = str(data.email).lower() if data.email else None
    found = await _match_patient(ctx, data, phone=phone, email=email)
    if found is None:
        channels = [Channel.SMS, *([Channel.EMAIL] if email else [])] if data.reminders else []
        created = await do_create_patient(ctx, PatientCreate(
            given_name=data.given_name, family_name=data.family_name,
            date_of_birth=data.date_of_birth, phone=phone, email=email,
            preferred_language=data.language, preferred_channels=channels,
        ), needs_review=True)
        return created.id, True, True
    if _same_person_named(found, data) or found.needs_review:
        return found.id, False, False
    # Same contact and birth date under another name: perhaps a nickname, perhaps a twin
    # sharing a parent's phone. The desk checks the record before the visit.
    await ctx.conn.execute(
        update(patient).where(patient.c.id == found.id).values(
            needs_review=True, **stamp_fields(found.field_stamps, ["needs_review"],
                                              server_stamp())))
    return found.id, False, True


# --- booking -------------------------------------------------------------------------------


async def _check_pending_cap(ctx: ClinicContext, settings: Settings, phone_key: str, *,
                             now: datetime) -> None:
    upcoming = (await ctx.conn.execute(
        select(func.count()).select_from(web_booking.join(
            appointment, (appointment.c.clinic_id == web_booking.c.clinic_id)
            & (appointment.c.id == web_booking.c.appointment_id)))
        .where(web_booking.c.phone_key == phone_key, appointment.c.status.in_(UPCOMING),
               appointment.c.deleted_at.is_(None), appointment.c.ends_at > now))).scalar_one()
    cap = settings.booking_pending_per_phone
    if upcoming >= cap:
        raise Conflict(
            f"This phone number already has {cap} upcoming appointments booked online, the "
            "most the clinic allows. Cancel one with the link you received, or call the "
            "clinic.", code="too_many_upcoming_bookings", details={"field": "phone"})


async def _already_booked(ctx: ClinicContext, request_id: uuid.UUID | None, phone_key: str
                          ) -> Row[Any] | None:
    """The appointment this same form already booked (sent twice), if any."""
    if request_id is None:
        return None
    row = (await ctx.conn.execute(
        select(web_booking.c.phone_key, appointment)
        .join(appointment, (appointment.c.clinic_id == web_booking.c.clinic_id)
              & (appointment.c.id == web_booking.c.appointment_id))
        .where(web_booking.c.request_id == request_id))).first()
    if row is not None and row.phone_key != phone_key:
        raise Conflict("This form was already used for another booking. Reload the page "
                       "and fill it in again.", code="form_already_used")
    return row


async def _book(ctx: ClinicContext, settings: Settings, data: PublicBookingCreate,
                admitted: _Admitted, *, now: datetime) -> PublicBooking:
    await ctx.conn.execute(text("SELECT pg_advisory_xact_lock(:c, hashtext(:k))"),
                           {"c": PHONE_LOCK_CLASS, "k": admitted.phone_key})
    info = await clinic_info(ctx)
    if (again := await _already_booked(ctx, data.request_id, admitted.phone_key)) is not None:
        return await public_view(ctx, settings, again, info, now=now)
    await _check_pending_cap(ctx, settings, admitted.phone_key, now=now)
    try:
        await access_bookable_provider(ctx, data.provider_id)
    except NotFound as exc:
        raise InvalidInput("This provider does not take appointments online at this clinic. "
                           "Choose one from the clinic's page.", code="provider_not_found",
                           details={"field": "provider_id"}) from exc
    patient_id, registered, flagged = await _file_under_patient(ctx, data, phone=admitted.phone)
    booked = await do_book(ctx, AppointmentCreate(
        patient_id=patient_id, provider_id=data.provider_id, start=data.start,
        reason=data.reason), now=now, source=WEB_SOURCE)
    await ctx.conn.execute(insert(web_booking).values(
        clinic_id=ctx.clinic_id, appointment_id=booked.id, phone_key=admitted.phone_key,
        request_id=data.request_id, reminders=data.reminders, language=data.language))
    await audit.record(ctx, action="appointment.web_book", entity="appointment",
                       entity_id=booked.id,
                       detail={"patient_id": str(patient_id), "new_patient": registered,
                               "needs_review": flagged})
    row = (await ctx.conn.execute(select(appointment).where(appointment.c.id == booked.id))).one()
    return await public_view(ctx, settings, row, info, now=now)


async def do_public_book(
    engine: AsyncEngine, settings: Settings, *, clinic_slug: str, data: PublicBookingCreate,
    client_addr: str | None, honeypot: str = "", now: datetime | None = None,
) -> PublicBooking:
    """Book a free slot for the patient described in `data`, or raise why not: 404 for an
    unknown clinic, 422 naming the field, 409 `slot_taken` with the next free slots in
    `details["alternatives"]`, 409 for the cap, 429 with Retry-After for the limits.

    Whatever the outcome, it answers no sooner than `booking_min_response_seconds` after
    it started."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    try:
        admitted = await _admit(engine, settings, clinic_slug=clinic_slug, data=data,
                                client_addr=client_addr, honeypot=honeypot, now=now)
        async with public_context(engine, clinic_slug, client_addr=client_addr) as ctx:
            return await _book(ctx, settings, data, admitted, now=now)
    finally:
        remaining = settings.booking_min_response_seconds - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)


# --- managing through the link -----------------------------------------------------------


async def managed_booking(ctx: ClinicContext, settings: Settings, token: str, *,
                          appointment_id: uuid.UUID | None = None,
                          now: datetime | None = None) -> PublicBooking:
    now = now or datetime.now(UTC)
    row = await access_managed(ctx, settings, token, now=now, appointment_id=appointment_id)
    return await public_view(ctx, settings, row, await clinic_info(ctx), now=now)


async def do_public_cancel(ctx: ClinicContext, settings: Settings, token: str, *,
                           appointment_id: uuid.UUID | None = None,
                           now: datetime | None = None) -> PublicBooking:
    """Cancel the link's appointment, if it is still ahead and before the cut-off."""
    now = now or datetime.now(UTC)
    row = await access_managed(ctx, settings, token, now=now, appointment_id=appointment_id)
    info = await clinic_info(ctx)
    check_changeable(row, info.schedule, now=now)
    await do_transition(ctx, row.id, "cancel", cancel_reason=CANCELLED_ONLINE, now=now)
    row = (await ctx.conn.execute(select(appointment).where(appointment.c.id == row.id))).one()
    return await public_view(ctx, settings, row, info, now=now)


async def do_public_reschedule(ctx: ClinicContext, settings: Settings, token: str,
                               start: datetime, *, appointment_id: uuid.UUID | None = None,
                               now: datetime | None = None) -> PublicBooking:
    """Move the link's appointment to another free slot of the same provider, if it is
    still ahead and before the cut-off; 409 `slot_taken` with alternatives if that slot
    went first. The answer carries a new link (the old one keeps working)."""
    now = now or datetime.now(UTC)
    row = await access_managed(ctx, settings, token, now=now, appointment_id=appointment_id)
    info = await clinic_info(ctx)
    check_changeable(row, info.schedule, now=now)
    moved = await do_reschedule(ctx, row.id, AppointmentReschedule(start=start), now=now)
    row = (await ctx.conn.execute(select(appointment).where(appointment.c.id == moved.id))).one()
    return await public_view(ctx, settings, row, info, now=now)

