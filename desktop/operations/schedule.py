"""What the front desk's calendar shows, read from the local copy: each provider's
appointments of a day and the free slots their hours leave.

Free slots come from the same pure functions the server uses (shared_models.scheduling),
fed from the local copies of the availability rules, exceptions and appointments, so
what the desk offers offline is what the server accepts when the booking is pushed. A
booking made here and still pending holds its slot like a confirmed one. The clinic's
booking policy (minimum notice, horizon) lives on the server; the desk works with
`FRONT_DESK_POLICY` and the server re-checks its own policy at push time.

Every function here queries the store, so the screens call them on the database worker.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, Row, and_, or_, select

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, AppointmentStatus
from shared_models.scheduling import (
    BookingPolicy,
    ExtraHours,
    Interval,
    Slot,
    WeeklyRule,
    candidate_slots,
    free_slots,
    local_instant,
)
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    patient,
    provider,
)

# The receptionist books for walk-ins and phone calls: no minimum notice, a year ahead.
FRONT_DESK_POLICY = BookingPolicy(horizon_days=365, min_notice_minutes=0)
# Appointments that start this long before a window are not looked for: it keeps the
# appointment query a range scan of the (clinic_id, provider_id, starts_at) index.
LONGEST_APPOINTMENT = timedelta(hours=12)
ACTIVE = frozenset(s.value for s in ACTIVE_APPOINTMENT_STATUSES)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: uuid.UUID
    clinic_id: uuid.UUID
    name: str
    specialty: str | None
    color: str | None


@dataclass(frozen=True, slots=True)
class Booking:
    """One appointment as the calendar shows it."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    provider_id: uuid.UUID
    start: datetime
    end: datetime
    status: AppointmentStatus
    reason: str | None
    cancel_reason: str | None
    # When the patient confirmed by replying to a reminder (the server sets it).
    confirmed_at: datetime | None = None

    @property
    def holds_slot(self) -> bool:
        return self.status in ACTIVE_APPOINTMENT_STATUSES

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class Column:
    """One provider on one day: a column of the calendar."""

    provider: ProviderInfo
    day: date
    appointments: tuple[Booking, ...]
    free: tuple[Slot, ...]


@dataclass(frozen=True, slots=True)
class DayView:
    """Every provider (a column each) on one day."""

    day: date
    zone: ZoneInfo
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class WeekView:
    """One provider on the seven days (Monday to Sunday) of a week."""

    provider: ProviderInfo
    days: tuple[date, ...]
    zone: ZoneInfo
    columns: tuple[Column, ...]


@dataclass(slots=True)
class Hours:
    """What decides some providers' slots around one window."""

    rules: dict[uuid.UUID, list[WeeklyRule]] = field(default_factory=lambda: defaultdict(list))
    extra: dict[uuid.UUID, list[ExtraHours]] = field(default_factory=lambda: defaultdict(list))
    # Time off and appointments holding their slot, per provider; clinic closures under None.
    blocked: dict[uuid.UUID | None, list[Interval]] = field(
        default_factory=lambda: defaultdict(list))
    bookings: dict[uuid.UUID, list[Booking]] = field(default_factory=lambda: defaultdict(list))

    def offered(self, provider_id: uuid.UUID, zone: ZoneInfo, window: Interval) -> list[Slot]:
        return candidate_slots(rules=self.rules[provider_id], extra=self.extra[provider_id],
                               zone=zone, window=window)

    def busy(self, provider_id: uuid.UUID) -> list[Interval]:
        return [*self.blocked[provider_id], *self.blocked[None]]

    def free(self, provider_id: uuid.UUID, zone: ZoneInfo, window: Interval, *,
             now: datetime) -> list[Slot]:
        return free_slots(rules=self.rules[provider_id], extra=self.extra[provider_id],
                          blocked=self.busy(provider_id), zone=zone, window=window, now=now,
                          policy=FRONT_DESK_POLICY)


def day_window(day: date, zone: ZoneInfo) -> Interval:
    """The real instants of a local day: 23 or 25 hours long on a daylight-saving day."""
    return Interval(local_instant(day, time(0), zone),
                    local_instant(day + timedelta(days=1), time(0), zone))


def week_days(day: date) -> tuple[date, ...]:
    monday = day - timedelta(days=day.weekday())
    return tuple(monday + timedelta(days=n) for n in range(7))


def _provider_info(row: Row[Any]) -> ProviderInfo:
    return ProviderInfo(id=row.id, clinic_id=row.clinic_id, name=row.display_name,
                        specialty=row.specialty, color=row.color)


def providers(engine: Engine) -> list[ProviderInfo]:
    """The clinic's active providers, by name: the calendar's columns."""
    with engine.connect() as conn:
        return select_providers(conn, None)


def select_providers(conn: Connection, ids: Sequence[uuid.UUID] | None
                     ) -> list[ProviderInfo]:
    """The providers `ids` still in the local copy (None: every active one), by name."""
    stmt = select(provider).where(provider.c.deleted_at.is_(None))
    if ids is None:
        # IS NOT false: a row written with the column's text default ('true') counts too.
        stmt = stmt.where(provider.c.is_active.is_not(False))
    else:
        stmt = stmt.where(provider.c.id.in_(list(ids)))
    rows = conn.execute(stmt.order_by(provider.c.display_name, provider.c.id))
    return [_provider_info(row) for row in rows]


def _name(row: Row[Any]) -> str:
    if row.given_name is None and row.family_name is None:
        return "?"  # a patient this computer has not pulled (yet)
    return f"{row.given_name or ''} {row.family_name or ''}".strip()


def load_hours(conn: Connection, people: Iterable[ProviderInfo], window: Interval, *,
               ignore_appointment: uuid.UUID | None = None) -> Hours:
    """Rules, exceptions and appointments of `people` around `window`: three queries
    whatever the number of providers. Every appointment is listed (cancelled and
    rejected ones too, for the screen); only those holding their slot block it."""
    people = list(people)
    ids = [p.id for p in people]
    hours = Hours()
    if not ids:
        return hours
    for row in conn.execute(select(availability_rule).where(
            availability_rule.c.provider_id.in_(ids),
            availability_rule.c.deleted_at.is_(None))):
        hours.rules[row.provider_id].append(WeeklyRule.from_row(row))
    for row in conn.execute(select(availability_exception).where(
            or_(availability_exception.c.provider_id.in_(ids),
                availability_exception.c.provider_id.is_(None)),
            availability_exception.c.deleted_at.is_(None),
            availability_exception.c.starts_at < window.end,
            availability_exception.c.ends_at > window.start)):
        span = Interval(row.starts_at, row.ends_at)
        if row.kind == "extra_hours":
            hours.extra[row.provider_id].append(ExtraHours(span, row.slot_minutes))
        else:
            hours.blocked[row.provider_id].append(span)
    # One range per clinic, so the store walks its (clinic_id, provider_id, starts_at) index.
    clinics = sorted({p.clinic_id for p in people})
    stmt = (
        select(appointment.c.id, appointment.c.patient_id, appointment.c.provider_id,
               appointment.c.starts_at, appointment.c.ends_at, appointment.c.status,
               appointment.c.reason, appointment.c.cancel_reason, appointment.c.confirmed_at,
               patient.c.given_name, patient.c.family_name)
        .select_from(appointment.outerjoin(patient, and_(
            patient.c.id == appointment.c.patient_id,
            patient.c.clinic_id == appointment.c.clinic_id)))
        .where(appointment.c.clinic_id.in_(clinics),
               appointment.c.provider_id.in_(ids),
               appointment.c.starts_at >= window.start - LONGEST_APPOINTMENT,
               appointment.c.starts_at < window.end,
               appointment.c.ends_at > window.start,
               appointment.c.deleted_at.is_(None))
        .order_by(appointment.c.starts_at, appointment.c.id)
    )
    for row in conn.execute(stmt):
        if row.id == ignore_appointment:
            continue
        booking = Booking(id=row.id, patient_id=row.patient_id, patient_name=_name(row),
                          provider_id=row.provider_id, start=row.starts_at, end=row.ends_at,
                          status=AppointmentStatus(row.status), reason=row.reason,
                          cancel_reason=row.cancel_reason, confirmed_at=row.confirmed_at)
        hours.bookings[row.provider_id].append(booking)
        if row.status in ACTIVE:
            hours.blocked[row.provider_id].append(Interval(row.starts_at, row.ends_at))
    return hours


def _column(hours: Hours, person: ProviderInfo, day: date, zone: ZoneInfo,
            now: datetime) -> Column:
    window = day_window(day, zone)
    return Column(
        provider=person, day=day,
        appointments=tuple(b for b in hours.bookings[person.id]
                           if b.start < window.end and b.end > window.start),
        free=tuple(hours.free(person.id, zone, window, now=now)),
    )


def day_view(engine: Engine, *, day: date, zone: ZoneInfo,
             provider_ids: Sequence[uuid.UUID] | None = None,
             now: datetime | None = None) -> DayView:
    """Each provider's appointments of the local `day` and the slots still free (from
    `now` on: the desk does not book in the past)."""
    now = now or datetime.now(UTC)
    window = day_window(day, zone)
    with engine.connect() as conn:
        people = select_providers(conn, provider_ids)
        hours = load_hours(conn, people, window)
    return DayView(day=day, zone=zone,
                   columns=tuple(_column(hours, p, day, zone, now) for p in people))


def week_view(engine: Engine, *, day: date, zone: ZoneInfo, provider_id: uuid.UUID,
              now: datetime | None = None) -> WeekView | None:
    """One provider over the Monday-to-Sunday week holding `day`; None if the provider
    is not (or no longer) in the local copy."""
    now = now or datetime.now(UTC)
    days = week_days(day)
    window = Interval(day_window(days[0], zone).start, day_window(days[-1], zone).end)
    with engine.connect() as conn:
        people = select_providers(conn, [provider_id])
        if not people:
            return None
        hours = load_hours(conn, people, window)
    person = people[0]
    return WeekView(provider=person, days=days, zone=zone,
                    columns=tuple(_column(hours, person, d, zone, now) for d in days))


def provider_free_slots(engine: Engine, *, provider_id: uuid.UUID, day: date, zone: ZoneInfo,
                        now: datetime | None = None,
                        ignore_appointment: uuid.UUID | None = None) -> list[Slot]:
    """A provider's free slots on a local day; `ignore_appointment` is the one being
    moved, whose own time counts as free."""
    now = now or datetime.now(UTC)
    window = day_window(day, zone)
    with engine.connect() as conn:
        people = select_providers(conn, [provider_id])
        hours = load_hours(conn, people, window, ignore_appointment=ignore_appointment)
    return hours.free(provider_id, zone, window, now=now) if people else []
