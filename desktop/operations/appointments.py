"""Booking and changing appointments on this computer, online or not.

A booking shows at once as pending, and becomes booked (or rejected, with the server's
alternatives in "needs attention") after the next sync. Reschedule, cancel, check-in and
no-show change the local row at once and queue the command for the server, which checks
it again at push time. Each command is first checked here against the shared state
machine (shared_models.scheduling) for the signed-in role, so the desk refuses at once
what the server would refuse later, and a refused command writes nothing.

    AppointmentError            the message is fit for a dialog
    ├── AppointmentNotFound     not (or no longer) in the local copy
    ├── TransitionNotAllowed    the state machine or the role forbids the command
    ├── SlotUnavailable         past, not one of the provider's times, or taken
    └── InvalidAppointment      a reason or length the server would refuse
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, insert, select, update

from desktop.operations.schedule import (
    FRONT_DESK_POLICY,
    ProviderInfo,
    load_hours,
    select_providers,
)
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.enums import AppointmentStatus, Role
from shared_models.ids import uuid7
from shared_models.scheduling import (
    BOOKING_ROLES,
    Interval,
    Transition,
    TransitionRefused,
    check_transition,
)
from shared_models.schemas.appointments import AppointmentCancel
from shared_models.tables import appointment, patient

MAX_REASON_CHARS = 500
MIN_MINUTES, MAX_MINUTES = 5, 480

# How each status reads inside a sentence; the screens translate these words.
STATUS_WORDS = {
    AppointmentStatus.PENDING: "pending",
    AppointmentStatus.BOOKED: "booked",
    AppointmentStatus.CHECKED_IN: "checked in",
    AppointmentStatus.IN_PROGRESS: "in progress",
    AppointmentStatus.COMPLETED: "completed",
    AppointmentStatus.CANCELLED: "cancelled",
    AppointmentStatus.NO_SHOW: "a no-show",
    AppointmentStatus.REJECTED: "rejected",
}
# Whole sentences per command (rather than assembled words) so each translates well.
_WRONG_STATE = {
    "reschedule": "This appointment is {status}; only a pending or booked appointment can be "
                  "rescheduled.",
    "cancel": "This appointment is {status}; only a pending, booked or checked-in appointment "
              "can be cancelled.",
    "check_in": "This appointment is {status}; only a booked appointment can be checked in.",
    "no_show": "This appointment is {status}; only a booked appointment can be marked as a "
               "no-show.",
}
_STILL_PENDING = {
    "check_in": "This booking is still waiting for the server to confirm it; the patient can "
                "be checked in once it is booked (after the next sync).",
    "no_show": "This booking is still waiting for the server to confirm it; it can be marked "
               "as a no-show once it is booked (after the next sync).",
}
_WRONG_ROLE = {
    "book": "Your role ({role}) is not allowed to book appointments.",
    "reschedule": "Your role ({role}) is not allowed to reschedule appointments.",
    "cancel": "Your role ({role}) is not allowed to cancel appointments.",
    "check_in": "Your role ({role}) is not allowed to check patients in.",
    "no_show": "Your role ({role}) is not allowed to mark no-shows.",
}


class AppointmentError(Exception):
    """A command the desk refuses. `template` and `values` let a screen translate the
    message; `str()` is the English text."""

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(template.format(**values))
        self.template = template
        self.values = values


class AppointmentNotFound(AppointmentError):
    pass


class TransitionNotAllowed(AppointmentError):
    pass


class SlotUnavailable(AppointmentError):
    pass


class InvalidAppointment(AppointmentError):
    pass


def _role(role: Role | str) -> Role | None:
    try:
        return Role(role)
    except ValueError:
        return None


def check_command(command: str, *, status: AppointmentStatus | str,
                  role: Role | str) -> Transition:
    """The transition `command` makes from `status` for `role`, or TransitionNotAllowed
    with a sentence for the receptionist. Pure: screens call it before asking a worker."""
    current = AppointmentStatus(status)
    try:
        return check_transition(command, current=current, role=_role(role))
    except TransitionRefused as exc:
        if exc.reason == "role":
            template = _WRONG_ROLE.get(command, "Your role ({role}) is not allowed to do this.")
            raise TransitionNotAllowed(template, role=str(role)) from exc
        if current is AppointmentStatus.PENDING and command in _STILL_PENDING:
            raise TransitionNotAllowed(_STILL_PENDING[command]) from exc
        template = _WRONG_STATE.get(command, str(exc).replace("{", "(").replace("}", ")"))
        raise TransitionNotAllowed(template, status=STATUS_WORDS[current]) from exc


def when_text(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _queue(conn: Connection, clock: HybridClock, *, op: str, current: Row[Any],
           changes: dict[str, Any], base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity="appointment", op=op, record_id=current.id,
        base_version=current.server_version, base=base, changes=changes,
        hlc=clock.now().pack(), created_at=datetime.now(UTC)))


def _current(conn: Connection, appointment_id: uuid.UUID) -> Row[Any]:
    row = conn.execute(select(appointment).where(appointment.c.id == appointment_id,
                                                 appointment.c.deleted_at.is_(None))).first()
    if row is None:
        raise AppointmentNotFound(
            "This appointment is not on this computer any more; it may have been removed "
            "on another one. Sync and look again.")
    return row


def _check_reason(reason: str | None) -> str | None:
    if reason is None or not reason.strip():
        return None
    reason = reason.strip()
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidAppointment("The reason is too long (at most {n} characters).",
                                 n=MAX_REASON_CHARS)
    if "\x00" in reason:
        raise InvalidAppointment("The reason contains a character that cannot be stored.")
    return reason


def check_cancel_reason(reason: str | None) -> str:
    """The reason cleaned as the server will read it; a cancellation always has one."""
    try:
        return AppointmentCancel.model_validate({"reason": reason or ""}).reason
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        if kind == "string_too_short":
            raise InvalidAppointment("Say why the appointment is cancelled.") from exc
        if kind == "string_too_long":
            raise InvalidAppointment("The reason is too long (at most {n} characters).",
                                     n=MAX_REASON_CHARS) from exc
        raise InvalidAppointment(
            "The reason contains a character that cannot be stored.") from exc


def _provider(conn: Connection, provider_id: uuid.UUID) -> ProviderInfo:
    found = select_providers(conn, [provider_id])
    if not found:
        raise SlotUnavailable("This provider is not on this computer any more. Sync and look "
                              "again.")
    return found[0]


def _check_slot(conn: Connection, person: ProviderInfo, *, start: datetime, minutes: int,
                zone: ZoneInfo, now: datetime, ignore: uuid.UUID | None = None) -> None:
    """The server's slot rules, on the local copy: a future start that is one of the
    provider's appointment times, and nothing holding that time."""
    if start.tzinfo is None:
        raise InvalidAppointment("The start time has no time zone.")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise InvalidAppointment("An appointment lasts from {low} to {high} minutes.",
                                 low=MIN_MINUTES, high=MAX_MINUTES)
    when = when_text(start, zone)
    if start <= now:
        raise SlotUnavailable("{when} is in the past. Choose a future time.", when=when)
    if start > now + timedelta(days=FRONT_DESK_POLICY.horizon_days):
        raise SlotUnavailable("{when} is more than {days} days ahead.", when=when,
                              days=FRONT_DESK_POLICY.horizon_days)
    span = Interval(start, start + timedelta(minutes=minutes))
    around = Interval(start - timedelta(days=1), span.end + timedelta(days=1))
    hours = load_hours(conn, [person], around, ignore_appointment=ignore)
    if not any(slot.start == start for slot in hours.offered(person.id, zone, around)):
        raise SlotUnavailable("{when} is not one of {provider}'s appointment times. Pick one "
                              "of the free slots.", when=when, provider=person.name)
    if any(span.overlaps(busy) for busy in hours.busy(person.id)):
        raise SlotUnavailable("{when} is taken: {provider} has another appointment or time "
                              "off then. Pick one of the free slots.", when=when,
                              provider=person.name)


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


def check_booking(engine: Engine, *, role: Role | str, patient_id: uuid.UUID | None,
                  provider_id: uuid.UUID, start: datetime, minutes: int, zone: ZoneInfo,
                  reason: str | None = None, now: datetime | None = None) -> str | None:
    """Everything `book_slot_offline` checks, without writing: the booking screen asks
    before it registers a patient typed in with the booking. Returns the clean reason."""
    if _role(role) not in BOOKING_ROLES:
        raise TransitionNotAllowed(_WRONG_ROLE["book"], role=str(role))
    clean = _check_reason(reason)
    with engine.connect() as conn:
        if patient_id is not None and conn.execute(select(patient.c.id).where(
                patient.c.id == patient_id, patient.c.deleted_at.is_(None))).first() is None:
            raise InvalidAppointment("This patient is not on this computer any more. Search "
                                     "again.")
        _check_slot(conn, _provider(conn, provider_id), start=start, minutes=minutes,
                    zone=zone, now=now or datetime.now(UTC))
    return clean


def book_slot_offline(engine: Engine, clock: HybridClock, *, role: Role | str,
                      clinic_id: uuid.UUID, patient_id: uuid.UUID, provider_id: uuid.UUID,
                      start: datetime, minutes: int, zone: ZoneInfo, reason: str | None = None,
                      now: datetime | None = None) -> uuid.UUID:
    """Book a free slot from the desk: checked as the server will (role, reason, the slot
    still free here), then written as a pending booking."""
    clean = check_booking(engine, role=role, patient_id=patient_id, provider_id=provider_id,
                          start=start, minutes=minutes, zone=zone, reason=reason, now=now)
    return book_offline(engine, clock, clinic_id=clinic_id, patient_id=patient_id,
                        provider_id=provider_id, start=start, minutes=minutes, reason=clean)


def reschedule_offline(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, *,
                       role: Role | str, zone: ZoneInfo, start: datetime, minutes: int,
                       provider_id: uuid.UUID | None = None,
                       now: datetime | None = None) -> None:
    """Move an appointment to a free slot (of another provider when `provider_id` is
    given). The row shows the new time at once and keeps its status until the server
    answers."""
    with engine.begin() as conn:
        current = _current(conn, appointment_id)
        check_command("reschedule", status=current.status, role=role)
        target = provider_id or current.provider_id
        if target == current.provider_id and start == current.starts_at \
                and start + timedelta(minutes=minutes) == current.ends_at:
            raise InvalidAppointment("The appointment is already at {when}.",
                                     when=when_text(start, zone))
        _check_slot(conn, _provider(conn, target), start=start, minutes=minutes, zone=zone,
                    now=now or datetime.now(UTC), ignore=appointment_id)
        conn.execute(update(appointment).where(appointment.c.id == appointment_id).values(
            provider_id=target, starts_at=start, ends_at=start + timedelta(minutes=minutes)))
        changes: dict[str, Any] = {"start": start.isoformat()}
        base: dict[str, Any] = {"start": current.starts_at.isoformat()}
        if target != current.provider_id:
            changes["provider_id"] = str(target)
            base["provider_id"] = str(current.provider_id)
        _queue(conn, clock, op="reschedule", current=current, changes=changes, base=base)


def _transition(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, command: str,
                *, role: Role | str, now: datetime | None = None,
                cancel_reason: str | None = None) -> None:
    with engine.begin() as conn:
        current = _current(conn, appointment_id)
        transition = check_command(command, status=current.status, role=role)
        if command == "no_show" and (now or datetime.now(UTC)) < current.starts_at:
            raise TransitionNotAllowed("A patient can be marked as a no-show only once the "
                                       "appointment time has come.")
        values: dict[str, Any] = {"status": transition.target.value}
        changes: dict[str, Any] = {}
        if cancel_reason is not None:
            values["cancel_reason"] = changes["reason"] = cancel_reason
        conn.execute(update(appointment).where(appointment.c.id == appointment_id)
                     .values(**values))
        _queue(conn, clock, op=command, current=current, changes=changes,
               base={"status": current.status})


def cancel_offline(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, *,
                   role: Role | str, reason: str) -> None:
    """Cancel, with the reason the clinic keeps (required, at most 500 characters)."""
    clean = check_cancel_reason(reason)
    _transition(engine, clock, appointment_id, "cancel", role=role, cancel_reason=clean)


def check_in_offline(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, *,
                     role: Role | str) -> None:
    """The patient has arrived."""
    _transition(engine, clock, appointment_id, "check_in", role=role)


def no_show_offline(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, *,
                    role: Role | str, now: datetime | None = None) -> None:
    """The patient did not come; allowed once the appointment's time has come, as on the
    server."""
    _transition(engine, clock, appointment_id, "no_show", role=role, now=now)
