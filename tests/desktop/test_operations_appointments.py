"""Appointments changed on this computer and the day the calendar shows, over a real
encrypted store: each command updates the local row and queues exactly one outbox
mutation; each refused command (unknown appointment, forbidden transition or role, bad
reason, taken or unoffered time) says why and writes nothing; free slots follow the
clinic's wall clock across daylight-saving changes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select

from desktop.operations.appointments import (
    AppointmentError,
    AppointmentNotFound,
    InvalidAppointment,
    SlotUnavailable,
    TransitionNotAllowed,
    book_slot_offline,
    cancel_offline,
    check_in_offline,
    no_show_offline,
    reschedule_offline,
)
from desktop.operations.schedule import (
    day_view,
    day_window,
    provider_free_slots,
    providers,
    week_view,
)
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.enums import AppointmentStatus
from shared_models.ids import uuid7
from shared_models.scheduling import local_instant
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    patient,
    provider,
)

ZONE = ZoneInfo("America/Santiago")
RECEPTIONIST = "receptionist"


def at(day: date, hhmm: str, zone: ZoneInfo = ZONE) -> datetime:
    """The instant of a wall-clock time in the clinic's zone."""
    return local_instant(day, time.fromisoformat(hhmm), zone)


def labels(slots: Any, zone: ZoneInfo = ZONE) -> list[str]:
    return [s.start.astimezone(zone).strftime("%H:%M") for s in slots]


def future_day(days: int = 14) -> date:
    """A day far enough ahead that all its slots are bookable whenever the tests run."""
    return datetime.now(UTC).astimezone(ZONE).date() + timedelta(days=days)


def dst_days(zone: ZoneInfo = ZONE) -> list[date]:
    """The next days (within about a year) whose length is not 24 hours."""
    start = future_day(1)
    days = (start + timedelta(days=n) for n in range(400))
    return [d for d in days if (w := day_window(d, zone)).end - w.start != timedelta(hours=24)]


@dataclass
class Seed:
    """Writes rows as a pull from the server would."""

    engine: Engine
    clinic_id: uuid.UUID

    def _insert(self, table: Any, **values: Any) -> uuid.UUID:
        row_id = values.pop("id", None) or uuid7()
        with self.engine.begin() as conn:
            conn.execute(insert(table).values(clinic_id=self.clinic_id, id=row_id,
                                              server_version=1, **values))
        return row_id

    def provider(self, name: str, specialty: str | None = None,
                 color: str | None = None) -> uuid.UUID:
        return self._insert(provider, display_name=name, specialty=specialty, color=color)

    def rule(self, provider_id: uuid.UUID, day: date, start: str, end: str, minutes: int, *,
             buffer: int = 0, pause: tuple[str, str] | None = None) -> uuid.UUID:
        return self._insert(
            availability_rule, provider_id=provider_id, weekday=day.weekday(),
            start_time=time.fromisoformat(start), end_time=time.fromisoformat(end),
            slot_minutes=minutes, buffer_minutes=buffer,
            break_start=time.fromisoformat(pause[0]) if pause else None,
            break_end=time.fromisoformat(pause[1]) if pause else None)

    def time_off(self, provider_id: uuid.UUID | None, start: datetime,
                 end: datetime) -> uuid.UUID:
        return self._insert(availability_exception, provider_id=provider_id, kind="time_off",
                            starts_at=start, ends_at=end)

    def extra_hours(self, provider_id: uuid.UUID, start: datetime, end: datetime,
                    minutes: int) -> uuid.UUID:
        return self._insert(availability_exception, provider_id=provider_id,
                            kind="extra_hours", slot_minutes=minutes, starts_at=start,
                            ends_at=end)

    def patient(self, given: str, family: str, phone: str | None = None) -> uuid.UUID:
        return self._insert(patient, mrn=f"P-{uuid7().hex[-6:]}", given_name=given,
                            family_name=family, phone=phone, preferred_channels=[])

    def appointment(self, provider_id: uuid.UUID, patient_id: uuid.UUID, start: datetime,
                    minutes: int, status: str = "booked", reason: str | None = None,
                    server_version: int = 1) -> uuid.UUID:
        row_id = uuid7()
        with self.engine.begin() as conn:
            conn.execute(insert(appointment).values(
                clinic_id=self.clinic_id, id=row_id, patient_id=patient_id,
                provider_id=provider_id, starts_at=start,
                ends_at=start + timedelta(minutes=minutes), status=status, reason=reason,
                server_version=server_version))
        return row_id


@dataclass
class Scenario:
    """One working day of two providers.

    Rojas (09:00-12:00, 30 min, break 10:30-11:00): booked 09:00 (Iñés Núñez), rejected
    offline booking 09:30, cancelled 10:00, pending 11:00 (Pedro Soto).
    Soto (14:00-16:00, 20 min + 10 min buffer): time off 15:00-15:30, extra hours
    17:00-18:00 in 30-minute slots, booked 14:00 (Iñés Núñez), and a visit at 14:30
    already marked completed (which, as on the server, no longer holds its time).
    """

    day: date
    rojas: uuid.UUID
    soto: uuid.UUID
    ines: uuid.UUID
    pedro: uuid.UUID
    booked: uuid.UUID
    rejected: uuid.UUID
    cancelled: uuid.UUID
    pending: uuid.UUID
    completed: uuid.UUID
    soto_booked: uuid.UUID


def seed_day(seed: Seed, day: date) -> Scenario:
    rojas = seed.provider("Dra. Ana Rojas", "Medicina general", "#6A1B9A")
    soto = seed.provider("Dr. Luis Soto", "Pediatría", "#00838F")
    seed.rule(rojas, day, "09:00", "12:00", 30, pause=("10:30", "11:00"))
    seed.rule(soto, day, "14:00", "16:00", 20, buffer=10)
    seed.time_off(soto, at(day, "15:00"), at(day, "15:30"))
    seed.extra_hours(soto, at(day, "17:00"), at(day, "18:00"), 30)
    ines = seed.patient("Iñés", "Núñez", "+56961234567")
    pedro = seed.patient("Pedro", "Soto")
    return Scenario(
        day=day, rojas=rojas, soto=soto, ines=ines, pedro=pedro,
        booked=seed.appointment(rojas, ines, at(day, "09:00"), 30, reason="Control"),
        rejected=seed.appointment(rojas, pedro, at(day, "09:30"), 30, "rejected",
                                  server_version=0),
        cancelled=seed.appointment(rojas, pedro, at(day, "10:00"), 30, "cancelled"),
        pending=seed.appointment(rojas, pedro, at(day, "11:00"), 30, "pending",
                                 server_version=0),
        completed=seed.appointment(soto, pedro, at(day, "14:30"), 20, "completed"),
        soto_booked=seed.appointment(soto, ines, at(day, "14:00"), 20),
    )


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def seed(engine: Engine) -> Seed:
    return Seed(engine, uuid7())


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("frontdesk")


@pytest.fixture
def day_one(seed: Seed) -> Scenario:
    return seed_day(seed, future_day())


def snapshot(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every appointment row and every queued mutation, to show nothing was written."""
    with engine.connect() as conn:
        return ([tuple(r) for r in conn.execute(select(appointment).order_by(appointment.c.id))],
                [tuple(r) for r in conn.execute(select(outbox).order_by(outbox.c.seq))])


def row(engine: Engine, appointment_id: uuid.UUID) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(appointment).where(appointment.c.id == appointment_id)).one()


def queued(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


# --- the day view ----------------------------------------------------------------------


def test_day_view_lists_appointments_and_free_slots_per_provider(
    engine: Engine, day_one: Scenario
) -> None:
    view = day_view(engine, day=day_one.day, zone=ZONE)
    assert [c.provider.name for c in view.columns] == ["Dr. Luis Soto", "Dra. Ana Rojas"]
    soto, rojas = view.columns
    assert [(b.patient_name, b.status.value) for b in rojas.appointments] == [
        ("Iñés Núñez", "booked"), ("Pedro Soto", "rejected"), ("Pedro Soto", "cancelled"),
        ("Pedro Soto", "pending")]
    # Cancelled and rejected bookings give their time back; a pending one holds it.
    assert labels(rojas.free) == ["09:30", "10:00", "11:30"]
    assert [s.end - s.start for s in rojas.free] == [timedelta(minutes=30)] * 3
    # 20-minute slots every 30 minutes, minus the time off, plus the extra hours.
    assert labels(soto.free) == ["14:30", "15:30", "17:00", "17:30"]
    assert [b.status for b in soto.appointments] == [AppointmentStatus.BOOKED,
                                                      AppointmentStatus.COMPLETED]
    assert rojas.appointments[0].reason == "Control"


def test_day_view_of_chosen_providers_and_a_clinic_closure(
    engine: Engine, seed: Seed, day_one: Scenario
) -> None:
    seed.time_off(None, at(day_one.day, "09:00"), at(day_one.day, "11:00"))
    [rojas] = day_view(engine, day=day_one.day, zone=ZONE,
                       provider_ids=[day_one.rojas]).columns
    assert labels(rojas.free) == ["11:30"]


def test_free_slots_start_from_now(engine: Engine, day_one: Scenario) -> None:
    now = at(day_one.day, "09:45")
    [_, rojas] = day_view(engine, day=day_one.day, zone=ZONE, now=now).columns
    assert labels(rojas.free) == ["10:00", "11:30"]
    assert len(rojas.appointments) == 4  # past appointments still show


def test_week_view_is_one_provider_monday_to_sunday(engine: Engine, day_one: Scenario) -> None:
    week = week_view(engine, day=day_one.day, zone=ZONE, provider_id=day_one.rojas)
    assert week is not None
    assert week.provider.name == "Dra. Ana Rojas"
    assert [d.weekday() for d in week.days] == list(range(7))
    assert day_one.day in week.days
    free = {c.day: labels(c.free) for c in week.columns}
    assert free[day_one.day] == ["09:30", "10:00", "11:30"]
    assert all(not slots for d, slots in free.items() if d != day_one.day)
    assert week_view(engine, day=day_one.day, zone=ZONE, provider_id=uuid7()) is None


def test_providers_lists_active_ones_by_name(engine: Engine, seed: Seed,
                                             day_one: Scenario) -> None:
    with engine.begin() as conn:
        conn.execute(insert(provider).values(clinic_id=seed.clinic_id, id=uuid7(),
                                             display_name="Dr. Inactivo", is_active=False))
    assert [p.name for p in providers(engine)] == ["Dr. Luis Soto", "Dra. Ana Rojas"]


def test_slots_keep_their_wall_clock_times_across_daylight_saving_changes(
    engine: Engine, seed: Seed
) -> None:
    days = dst_days()
    assert days, "America/Santiago changes its clocks every year"
    doctor = seed.provider("Dra. Ana Rojas")
    for day in days:
        seed.rule(doctor, day, "09:00", "11:00", 30)
    for day in days:
        here = day_view(engine, day=day, zone=ZONE).columns[0].free
        offset = here[0].start.astimezone(ZONE).utcoffset()
        assert labels(here) == ["09:00", "09:30", "10:00", "10:30"]
        assert {s.start.astimezone(ZONE).utcoffset() for s in here} == {offset}
        # The same wall-clock slots a week away on the other side of the change lie one
        # real hour apart from these.
        moved = []
        for other in (day - timedelta(days=7), day + timedelta(days=7)):
            there = day_view(engine, day=other, zone=ZONE).columns[0].free
            assert labels(there) == labels(here)
            if there[0].start.astimezone(ZONE).utcoffset() != offset:
                moved.append(abs(there[0].start - here[0].start) - timedelta(days=7))
        assert moved in ([timedelta(hours=1)], [timedelta(hours=-1)])


def test_slots_skip_the_missing_hour_of_the_spring_forward_day(
    engine: Engine, seed: Seed
) -> None:
    short = [d for d in dst_days() if (w := day_window(d, ZONE)).end - w.start
             == timedelta(hours=23)]
    assert short
    day = short[0]
    doctor = seed.provider("Dra. Ana Rojas")
    seed.rule(doctor, day, "00:00", "02:00", 30)
    free = day_view(engine, day=day, zone=ZONE).columns[0].free
    # Midnight to one o'clock does not exist that night: one real hour of slots.
    assert labels(free) == ["01:00", "01:30"]
    assert free[1].start - free[0].start == timedelta(minutes=30)


def test_free_slots_of_an_appointment_being_moved_include_its_own_time(
    engine: Engine, day_one: Scenario
) -> None:
    plain = provider_free_slots(engine, provider_id=day_one.rojas, day=day_one.day, zone=ZONE)
    moving = provider_free_slots(engine, provider_id=day_one.rojas, day=day_one.day,
                                 zone=ZONE, ignore_appointment=day_one.booked)
    assert labels(plain) == ["09:30", "10:00", "11:30"]
    assert labels(moving) == ["09:00", "09:30", "10:00", "11:30"]


def test_the_day_query_walks_the_appointment_index(engine: Engine, day_one: Scenario) -> None:
    window = day_window(day_one.day, ZONE)
    with engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM appointment WHERE clinic_id IN (?) "
            "AND provider_id IN (?, ?) AND starts_at >= ? AND starts_at < ?",
            (day_one.rojas.hex, day_one.rojas.hex, day_one.soto.hex,
             window.start.isoformat(), window.end.isoformat())))
    assert "USING INDEX ix_appointment_provider_starts" in plan


# --- booking ---------------------------------------------------------------------------


def test_booking_a_free_slot_writes_a_pending_row_and_queues_book(
    engine: Engine, seed: Seed, clock: HybridClock, day_one: Scenario
) -> None:
    start = at(day_one.day, "11:30")
    new_id = book_slot_offline(engine, clock, role=RECEPTIONIST, clinic_id=seed.clinic_id,
                               patient_id=day_one.ines, provider_id=day_one.rojas,
                               start=start, minutes=30, zone=ZONE, reason="  Dolor  ")
    booked = row(engine, new_id)
    assert (booked.status, booked.starts_at, booked.reason) == ("pending", start, "Dolor")
    [mutation] = queued(engine)
    assert (mutation.op, mutation.record_id) == ("book", new_id)
    assert mutation.changes["start"] == start.isoformat()
    [_, rojas] = day_view(engine, day=day_one.day, zone=ZONE).columns
    assert labels(rojas.free) == ["09:30", "10:00"]


@pytest.mark.parametrize(("hhmm", "minutes", "error", "message"), [
    ("09:00", 30, SlotUnavailable, "is taken"),
    ("11:00", 30, SlotUnavailable, "is taken"),  # held by a pending booking
    ("09:15", 30, SlotUnavailable, "not one of Dra. Ana Rojas's appointment times"),
    ("10:30", 30, SlotUnavailable, "not one of"),  # the break
    ("11:30", 3, InvalidAppointment, "from 5 to 480 minutes"),
])
def test_booking_a_time_that_is_not_free_writes_nothing(
    engine: Engine, seed: Seed, clock: HybridClock, day_one: Scenario, hhmm: str,
    minutes: int, error: type[AppointmentError], message: str
) -> None:
    before = snapshot(engine)
    with pytest.raises(error, match=message):
        book_slot_offline(engine, clock, role=RECEPTIONIST, clinic_id=seed.clinic_id,
                          patient_id=day_one.ines, provider_id=day_one.rojas,
                          start=at(day_one.day, hhmm), minutes=minutes, zone=ZONE)
    assert snapshot(engine) == before


def test_booking_in_the_past_or_by_a_pharmacist_is_refused(
    engine: Engine, seed: Seed, clock: HybridClock, day_one: Scenario
) -> None:
    before = snapshot(engine)
    with pytest.raises(SlotUnavailable, match="is in the past"):
        book_slot_offline(engine, clock, role=RECEPTIONIST, clinic_id=seed.clinic_id,
                          patient_id=day_one.ines, provider_id=day_one.rojas,
                          start=at(day_one.day, "11:30"), minutes=30, zone=ZONE,
                          now=at(day_one.day, "12:00"))
    with pytest.raises(TransitionNotAllowed,
                       match=r"Your role \(pharmacist\) is not allowed to book"):
        book_slot_offline(engine, clock, role="pharmacist", clinic_id=seed.clinic_id,
                          patient_id=day_one.ines, provider_id=day_one.rojas,
                          start=at(day_one.day, "11:30"), minutes=30, zone=ZONE)
    assert snapshot(engine) == before


# --- commands --------------------------------------------------------------------------


def test_check_in_updates_the_row_and_queues_check_in(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    check_in_offline(engine, clock, day_one.booked, role=RECEPTIONIST)
    assert row(engine, day_one.booked).status == "checked_in"
    [mutation] = queued(engine)
    assert (mutation.entity, mutation.op, mutation.record_id, mutation.changes,
            mutation.base_version) == ("appointment", "check_in", day_one.booked, {}, 1)


def test_no_show_is_accepted_once_the_time_has_come(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed, match="only once the appointment time has come"):
        no_show_offline(engine, clock, day_one.booked, role=RECEPTIONIST,
                        now=at(day_one.day, "08:59"))
    assert snapshot(engine) == before
    no_show_offline(engine, clock, day_one.booked, role=RECEPTIONIST,
                    now=at(day_one.day, "09:20"))
    assert row(engine, day_one.booked).status == "no_show"
    assert [m.op for m in queued(engine)] == ["no_show"]


def test_cancel_keeps_the_reason_and_frees_the_slot(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    cancel_offline(engine, clock, day_one.pending, role=RECEPTIONIST,
                   reason="  El paciente viaja  ")
    cancelled = row(engine, day_one.pending)
    assert (cancelled.status, cancelled.cancel_reason) == ("cancelled", "El paciente viaja")
    [mutation] = queued(engine)
    assert (mutation.op, mutation.changes, mutation.base) == (
        "cancel", {"reason": "El paciente viaja"}, {"status": "pending"})
    [_, rojas] = day_view(engine, day=day_one.day, zone=ZONE).columns
    assert "11:00" in labels(rojas.free)


@pytest.mark.parametrize(("reason", "message"), [
    ("", "Say why the appointment is cancelled."),
    ("   ", "Say why the appointment is cancelled."),
    ("x" * 501, r"too long \(at most 500 characters\)"),
    ("no\x00", "cannot be stored"),
])
def test_cancel_without_a_fit_reason_writes_nothing(
    engine: Engine, clock: HybridClock, day_one: Scenario, reason: str, message: str
) -> None:
    before = snapshot(engine)
    with pytest.raises(InvalidAppointment, match=message):
        cancel_offline(engine, clock, day_one.booked, role=RECEPTIONIST, reason=reason)
    assert snapshot(engine) == before


def test_a_500_character_reason_is_accepted(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    cancel_offline(engine, clock, day_one.booked, role=RECEPTIONIST, reason="x" * 500)
    assert len(row(engine, day_one.booked).cancel_reason) == 500


def test_reschedule_moves_the_row_keeps_its_status_and_queues_the_new_start(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    start = at(day_one.day, "11:30")
    reschedule_offline(engine, clock, day_one.booked, role=RECEPTIONIST, zone=ZONE,
                       start=start, minutes=30)
    moved = row(engine, day_one.booked)
    assert (moved.starts_at, moved.ends_at, moved.status) == (
        start, start + timedelta(minutes=30), "booked")
    [mutation] = queued(engine)
    assert (mutation.op, mutation.changes, mutation.base_version) == (
        "reschedule", {"start": start.isoformat()}, 1)
    assert mutation.base == {"start": at(day_one.day, "09:00").isoformat()}
    [_, rojas] = day_view(engine, day=day_one.day, zone=ZONE).columns
    assert labels(rojas.free) == ["09:00", "09:30", "10:00"]


def test_reschedule_to_another_provider_sends_the_provider(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    start = at(day_one.day, "17:30")
    reschedule_offline(engine, clock, day_one.pending, role=RECEPTIONIST, zone=ZONE,
                       start=start, minutes=30, provider_id=day_one.soto)
    moved = row(engine, day_one.pending)
    assert (moved.provider_id, moved.starts_at, moved.status) == (day_one.soto, start,
                                                                  "pending")
    [mutation] = queued(engine)
    assert mutation.changes == {"start": start.isoformat(), "provider_id": str(day_one.soto)}


def test_reschedule_onto_its_own_overlapping_time_is_allowed(
    engine: Engine, seed: Seed, clock: HybridClock
) -> None:
    day = future_day(21)
    doctor = seed.provider("Dra. Ana Rojas")
    seed.rule(doctor, day, "09:00", "10:00", 15)
    who = seed.patient("Ana", "Pérez")
    long_visit = seed.appointment(doctor, who, at(day, "09:00"), 30)
    reschedule_offline(engine, clock, long_visit, role=RECEPTIONIST, zone=ZONE,
                       start=at(day, "09:15"), minutes=30)
    assert row(engine, long_visit).starts_at == at(day, "09:15")


@pytest.mark.parametrize(("hhmm", "message"), [
    ("11:00", "is taken: Dra. Ana Rojas has another appointment"),
    ("09:10", "not one of Dra. Ana Rojas's appointment times"),
    ("09:00", "already at"),
])
def test_reschedule_onto_a_time_that_is_not_free_writes_nothing(
    engine: Engine, clock: HybridClock, day_one: Scenario, hhmm: str, message: str
) -> None:
    before = snapshot(engine)
    with pytest.raises(AppointmentError, match=message):
        reschedule_offline(engine, clock, day_one.booked, role=RECEPTIONIST, zone=ZONE,
                           start=at(day_one.day, hhmm), minutes=30)
    assert snapshot(engine) == before


def test_reschedule_onto_time_off_or_into_the_past_writes_nothing(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    before = snapshot(engine)
    with pytest.raises(SlotUnavailable, match="time off"):
        reschedule_offline(engine, clock, day_one.pending, role=RECEPTIONIST, zone=ZONE,
                           start=at(day_one.day, "15:00"), minutes=20,
                           provider_id=day_one.soto)
    with pytest.raises(SlotUnavailable, match="in the past"):
        reschedule_offline(engine, clock, day_one.pending, role=RECEPTIONIST, zone=ZONE,
                           start=at(day_one.day, "11:30"), minutes=30,
                           now=at(day_one.day, "11:45"))
    assert snapshot(engine) == before


def _commands(engine: Engine, clock: HybridClock, day: date) -> dict[str, Any]:
    return {
        "check_in": lambda a, role: check_in_offline(engine, clock, a, role=role),
        "no_show": lambda a, role: no_show_offline(engine, clock, a, role=role,
                                                   now=at(day, "23:00")),
        "cancel": lambda a, role: cancel_offline(engine, clock, a, role=role,
                                                 reason="Viaje"),
        "reschedule": lambda a, role: reschedule_offline(engine, clock, a, role=role,
                                                         zone=ZONE, start=at(day, "11:30"),
                                                         minutes=30),
    }


@pytest.mark.parametrize("command", ["check_in", "no_show", "cancel", "reschedule"])
def test_an_unknown_appointment_is_refused(
    engine: Engine, clock: HybridClock, day_one: Scenario, command: str
) -> None:
    before = snapshot(engine)
    with pytest.raises(AppointmentNotFound, match="not on this computer any more"):
        _commands(engine, clock, day_one.day)[command](uuid7(), RECEPTIONIST)
    assert snapshot(engine) == before


@pytest.mark.parametrize(("command", "which", "message"), [
    ("check_in", "pending", "still waiting for the server to confirm it"),
    ("no_show", "pending", "still waiting for the server to confirm it"),
    ("check_in", "cancelled", "This appointment is cancelled; only a booked appointment "
                              "can be checked in."),
    ("cancel", "completed", "This appointment is completed; only a pending, booked or "
                            "checked-in appointment can be cancelled."),
    ("reschedule", "rejected", "This appointment is rejected; only a pending or booked "
                               "appointment can be rescheduled."),
    ("no_show", "completed", "only a booked appointment can be marked as a no-show"),
])
def test_a_transition_the_state_machine_forbids_is_refused(
    engine: Engine, clock: HybridClock, day_one: Scenario, command: str, which: str,
    message: str
) -> None:
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed) as refused:
        _commands(engine, clock, day_one.day)[command](getattr(day_one, which), RECEPTIONIST)
    assert message in str(refused.value)
    assert snapshot(engine) == before


def test_a_command_the_role_may_not_give_is_refused(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    before = snapshot(engine)
    with pytest.raises(TransitionNotAllowed,
                       match=r"^Your role \(doctor\) is not allowed to check patients in\.$"):
        check_in_offline(engine, clock, day_one.booked, role="doctor")
    with pytest.raises(TransitionNotAllowed, match=r"Your role \(lab_tech\)"):
        cancel_offline(engine, clock, day_one.booked, role="lab_tech", reason="Viaje")
    assert snapshot(engine) == before


def test_refusals_carry_a_template_for_translation(
    engine: Engine, clock: HybridClock, day_one: Scenario
) -> None:
    with pytest.raises(TransitionNotAllowed) as refused:
        check_in_offline(engine, clock, day_one.cancelled, role=RECEPTIONIST)
    assert refused.value.template.startswith("This appointment is {status};")
    assert refused.value.values == {"status": "cancelled"}
