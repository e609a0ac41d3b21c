"""Appointments over the API: every command and the audit event it leaves, the state
machine (409 with the current status) and who may issue what (403 naming the roles), bad
input refused with a clear message and nothing written, the patient's history, the
calendar, and the no-show report.

The server reads the real clock, so bookable times are chosen relative to it; appointments
in the past are written straight to the table."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from shared_models.enums import AppointmentStatus, Role
from shared_models.tables import appointment, audit_event, provider
from sync_server.actions.clinics import scope
from tests.factories import ClinicData, Factory, expect_error

APPOINTMENTS = "/api/v1/appointments"
SANTIAGO = ZoneInfo("America/Santiago")
S = AppointmentStatus


def day_ahead(days: int) -> date:
    return (datetime.now(UTC).astimezone(SANTIAGO) + timedelta(days=days)).date()


def slot(days: int, wall: time) -> datetime:
    """A clinic wall-clock time `days` ahead (slots run 08:00-20:00 every half hour)."""
    return datetime.combine(day_ahead(days), wall, tzinfo=SANTIAGO)


@dataclass
class Desk:
    """A Santiago clinic whose providers work 08:00-20:00 every day in 30-minute slots."""

    factory: Factory
    clinic: ClinicData

    @property
    def provider_id(self) -> uuid.UUID:
        return self.clinic.provider_ids[0]

    @property
    def patient_id(self) -> uuid.UUID:
        return self.clinic.patient_ids[0]

    def headers(self, role: Role = Role.RECEPTIONIST) -> dict[str, str]:
        return self.factory.headers(self.clinic.users[role])

    def counts(self) -> tuple[int, int]:
        return (self.factory.count(appointment, self.clinic),
                self.factory.count(audit_event, self.clinic))

    def insert(self, starts_at: datetime, status: str = "booked", *, minutes: int = 30,
               provider_index: int = 0, patient_index: int = 0) -> uuid.UUID:
        """An appointment written straight to the table, e.g. in the past."""
        return self.factory.appointment(
            self.clinic, self.clinic.provider_ids[provider_index],
            self.clinic.patient_ids[patient_index], starts_at=starts_at, minutes=minutes,
            status=status)

    def stored(self, appointment_id: uuid.UUID | str) -> dict[str, Any]:
        return self.factory.row(appointment, self.clinic, uuid.UUID(str(appointment_id)))

    def audits(self, appointment_id: uuid.UUID | str) -> list[Any]:
        return [e for e in self.factory.audit_events(self.clinic)
                if e.entity == "appointment" and str(e.entity_id) == str(appointment_id)]


def open_desk(factory: Factory, *, providers: int = 1) -> Desk:
    clinic = factory.clinic(patients=3, providers=providers)
    for provider_id in clinic.provider_ids:
        factory.weekly_hours(clinic, provider_id)
    return Desk(factory, clinic)


def booking(desk: Desk, start: datetime | str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient_id": str(desk.patient_id), "provider_id": str(desk.provider_id),
        "start": start if isinstance(start, str) else start.isoformat(),
    }
    body.update(overrides)
    return body


async def book(client: httpx.AsyncClient, desk: Desk, start: datetime | str,
               role: Role = Role.RECEPTIONIST, **overrides: Any) -> dict[str, Any]:
    response = await client.post(APPOINTMENTS, headers=desk.headers(role),
                                 json=booking(desk, start, **overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def command_path(appointment_id: uuid.UUID | str, command: str) -> str:
    return f"{APPOINTMENTS}/{appointment_id}/{command.replace('_', '-')}"


async def issue(client: httpx.AsyncClient, desk: Desk, appointment_id: uuid.UUID | str,
                command: str, role: Role = Role.ADMIN, *, start: datetime | None = None
                ) -> httpx.Response:
    """Send `command` with the body it needs (a new time, a reason, or none)."""
    body: dict[str, Any] | None = None
    if command == "reschedule":
        body = {"start": (start or slot(3, time(15))).isoformat()}
    elif command == "cancel":
        body = {"reason": "Patient called to cancel"}
    return await client.post(command_path(appointment_id, command), headers=desk.headers(role),
                             json=body)


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value)


# --- every command: happy path and its audit event -----------------------------------------


async def test_booking_a_free_slot_stores_a_booked_appointment_and_audits_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    start = slot(2, time(10))
    created = await book(client, desk, start, reason="Control de presión")
    assert created["status"] == "booked"
    assert parsed(created["starts_at"]) == start
    assert parsed(created["ends_at"]) == start + timedelta(minutes=30)
    assert created["patient_id"] == str(desk.patient_id)
    assert created["provider_id"] == str(desk.provider_id)
    assert created["reason"] == "Control de presión"
    assert created["cancel_reason"] is None
    assert created["source"] == "desk"
    assert created["server_version"] > 0
    stored = desk.stored(created["id"])
    assert stored["starts_at"] == start
    assert stored["created_by"] == desk.clinic.users[Role.RECEPTIONIST].id
    [event] = desk.audits(created["id"])
    assert event.action == "appointment.book"
    assert event.actor_user_id == desk.clinic.users[Role.RECEPTIONIST].id
    assert event.detail == {"patient_id": str(desk.patient_id)}


@pytest.mark.parametrize("role", [Role.ADMIN, Role.DOCTOR])
async def test_admins_and_doctors_book_too(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    desk = open_desk(factory)
    created = await book(client, desk, slot(2, time(11)), role=role)
    [event] = desk.audits(created["id"])
    assert event.actor_user_id == desk.clinic.users[role].id


async def test_a_slot_written_with_another_offset_books_the_same_instant(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    start = slot(2, time(10))
    in_utc = start.astimezone(UTC).isoformat().replace("+00:00", "Z")
    created = await book(client, desk, in_utc)
    assert parsed(created["starts_at"]) == start
    taken = await client.post(APPOINTMENTS, headers=desk.headers(), json=booking(
        desk, start, patient_id=str(desk.clinic.patient_ids[1])))
    expect_error(taken, 409, "slot_taken")


async def test_rescheduling_moves_the_appointment_frees_the_old_time_and_audits_both(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    old, new = slot(2, time(10)), slot(3, time(16, 30))
    created = await book(client, desk, old)
    moved = await issue(client, desk, created["id"], "reschedule", Role.RECEPTIONIST,
                        start=new)
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["id"], body["status"]) == (created["id"], "booked")
    assert parsed(body["starts_at"]) == new
    assert parsed(body["ends_at"]) == new + timedelta(minutes=30)
    assert body["server_version"] > created["server_version"]
    events = desk.audits(created["id"])
    assert [e.action for e in events] == ["appointment.book", "appointment.reschedule"]
    assert events[1].actor_user_id == desk.clinic.users[Role.RECEPTIONIST].id
    assert events[1].detail == {"from": old.astimezone(UTC).isoformat(),
                                "to": new.astimezone(UTC).isoformat()}
    # The old time is free again for another patient.
    await book(client, desk, old, patient_id=str(desk.clinic.patient_ids[1]))


async def test_rescheduling_can_move_to_another_provider(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory, providers=2)
    start = slot(2, time(10))
    created = await book(client, desk, start)
    other = desk.clinic.provider_ids[1]
    moved = await client.post(command_path(created["id"], "reschedule"),
                              headers=desk.headers(Role.DOCTOR),
                              json={"start": start.isoformat(), "provider_id": str(other)})
    assert moved.status_code == 200, moved.text
    assert moved.json()["provider_id"] == str(other)
    assert parsed(moved.json()["starts_at"]) == start


async def test_rescheduling_to_its_own_current_time_is_allowed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # Its own current time does not count as taken.
    desk = open_desk(factory)
    start = slot(2, time(10))
    created = await book(client, desk, start)
    same = await issue(client, desk, created["id"], "reschedule", start=start)
    assert same.status_code == 200, same.text


async def test_cancelling_with_a_reason_keeps_it_frees_the_slot_and_audits_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    start = slot(2, time(10))
    created = await book(client, desk, start)
    cancelled = await client.post(command_path(created["id"], "cancel"),
                                  headers=desk.headers(Role.DOCTOR),
                                  json={"reason": "  Patient has the flu  "})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "Patient has the flu"
    assert desk.stored(created["id"])["cancel_reason"] == "Patient has the flu"
    event = desk.audits(created["id"])[-1]
    assert event.action == "appointment.cancel"
    assert event.actor_user_id == desk.clinic.users[Role.DOCTOR].id
    assert event.detail == {"from": "booked"}
    await book(client, desk, start, patient_id=str(desk.clinic.patient_ids[1]))


async def test_a_visit_is_checked_in_started_and_completed_each_step_audited_with_its_actor(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    created = await book(client, desk, slot(2, time(10)))
    steps = [("check_in", Role.RECEPTIONIST, "checked_in", "booked"),
             ("start", Role.DOCTOR, "in_progress", "checked_in"),
             ("complete", Role.DOCTOR, "completed", "in_progress")]
    for command, role, status, previous in steps:
        response = await issue(client, desk, created["id"], command, role)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        assert desk.stored(created["id"])["status"] == status
        event = desk.audits(created["id"])[-1]
        assert event.action == f"appointment.{command}"
        assert event.actor_user_id == desk.clinic.users[role].id
        assert event.detail == {"from": previous}


async def test_a_no_show_is_recorded_once_the_appointment_time_has_come(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    missed = desk.insert(datetime.now(UTC) - timedelta(minutes=20))
    response = await issue(client, desk, missed, "no_show", Role.RECEPTIONIST)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "no_show"
    [event] = desk.audits(missed)
    assert event.action == "appointment.no_show"
    assert event.actor_user_id == desk.clinic.users[Role.RECEPTIONIST].id


async def test_a_no_show_before_the_appointment_time_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    created = await book(client, desk, slot(2, time(10)))
    before = desk.stored(created["id"])
    error = expect_error(await issue(client, desk, created["id"], "no_show"), 409,
                         "too_early_for_no_show")
    assert error["details"] == {"current_status": "booked"}
    assert "once the appointment time has come" in error["message"]
    assert desk.stored(created["id"]) == before
    assert [e.action for e in desk.audits(created["id"])] == ["appointment.book"]


# --- the state machine ---------------------------------------------------------------------

ALLOWED_FROM = {
    "reschedule": {S.PENDING, S.BOOKED},
    "cancel": {S.PENDING, S.BOOKED, S.CHECKED_IN},
    "check_in": {S.BOOKED},
    "start": {S.CHECKED_IN},
    "complete": {S.IN_PROGRESS},
    "no_show": {S.BOOKED},
}
TARGET = {"reschedule": S.BOOKED, "cancel": S.CANCELLED, "check_in": S.CHECKED_IN,
          "start": S.IN_PROGRESS, "complete": S.COMPLETED, "no_show": S.NO_SHOW}


@pytest.mark.parametrize("status", list(S))
async def test_commands_not_allowed_from_a_state_answer_409_with_the_current_status(
    client: httpx.AsyncClient, factory: Factory, status: AppointmentStatus
) -> None:
    desk = open_desk(factory)
    # In the past, so that only the state can refuse a no-show.
    appointment_id = desk.insert(datetime.now(UTC) - timedelta(hours=1), status.value)
    before = desk.stored(appointment_id)
    refused = [c for c, sources in ALLOWED_FROM.items() if status not in sources]
    assert refused
    for command in refused:
        # The admin holds every role, so only the state can be the reason.
        error = expect_error(await issue(client, desk, appointment_id, command), 409,
                             "invalid_transition")
        assert error["details"] == {"current_status": status.value}, command
        assert error["message"].startswith(f"This appointment is {status.value};")
    assert desk.stored(appointment_id) == before
    assert desk.audits(appointment_id) == []


@pytest.mark.parametrize(("status", "command"), [
    (s, c) for c, sources in ALLOWED_FROM.items() for s in sorted(sources)
])
async def test_commands_allowed_from_a_state_move_it_to_the_target(
    client: httpx.AsyncClient, factory: Factory, status: AppointmentStatus, command: str
) -> None:
    desk = open_desk(factory)
    when = (datetime.now(UTC) - timedelta(minutes=5) if command == "no_show"
            else slot(2, time(9)))
    appointment_id = desk.insert(when, status.value)
    response = await issue(client, desk, appointment_id, command)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == TARGET[command].value
    assert [e.action for e in desk.audits(appointment_id)] == [f"appointment.{command}"]


async def test_commands_on_an_unknown_or_another_clinics_appointment_are_not_found(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk, other = open_desk(factory), open_desk(factory)
    theirs = other.insert(slot(2, time(10)))
    for appointment_id in (uuid.uuid4(), theirs):
        for command in ALLOWED_FROM:
            error = expect_error(await issue(client, desk, appointment_id, command), 404,
                                 "appointment_not_found")
            assert str(appointment_id) in error["message"]
    assert other.stored(theirs)["status"] == "booked"


# --- roles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "command", "needed"), [
    (Role.RECEPTIONIST, "start", "admin, doctor"),
    (Role.RECEPTIONIST, "complete", "admin, doctor"),
    (Role.DOCTOR, "check_in", "admin, receptionist"),
    (Role.DOCTOR, "no_show", "admin, receptionist"),
])
async def test_a_command_outside_the_callers_role_answers_403_naming_the_roles(
    client: httpx.AsyncClient, factory: Factory, role: Role, command: str, needed: str
) -> None:
    desk = open_desk(factory)
    # A state from which the command is allowed, so the role is the only obstacle.
    status = {"start": "checked_in", "complete": "in_progress"}.get(command, "booked")
    appointment_id = desk.insert(datetime.now(UTC) - timedelta(minutes=5), status)
    error = expect_error(await issue(client, desk, appointment_id, command, role), 403,
                         "role_not_allowed")
    assert error["message"].startswith(f"Your role ({role.value}) cannot")
    assert error["message"].endswith(f"it needs one of: {needed}.")
    assert desk.stored(appointment_id)["status"] == status
    assert desk.audits(appointment_id) == []


@pytest.mark.parametrize("role", [Role.LAB_TECH, Role.PHARMACIST])
async def test_lab_and_pharmacy_staff_cannot_book_or_change_appointments(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    desk = open_desk(factory)
    appointment_id = desk.insert(slot(2, time(9)))
    before = desk.counts()
    responses = [await client.post(APPOINTMENTS, headers=desk.headers(role),
                                   json=booking(desk, slot(2, time(10))))]
    responses += [await issue(client, desk, appointment_id, c, role) for c in ALLOWED_FROM]
    for response in responses:
        error = expect_error(response, 403, "permission_denied")
        assert error["details"] == {"required_roles": ["admin", "doctor", "receptionist"]}
        assert f"({role.value})" in error["message"]
    assert desk.counts() == before
    assert desk.stored(appointment_id)["status"] == "booked"


# --- bad input: a clear 4xx and nothing written --------------------------------------------


async def refused_booking(client: httpx.AsyncClient, desk: Desk, body: dict[str, Any],
                          status: int, code: str) -> dict[str, Any]:
    before = desk.counts()
    error = expect_error(await client.post(APPOINTMENTS, headers=desk.headers(), json=body),
                         status, code)
    assert desk.counts() == before
    return error


@pytest.mark.parametrize("wall", [time(7), time(10, 10), time(19, 45)])
async def test_a_time_outside_the_providers_slots_is_refused_with_the_next_free_slots(
    client: httpx.AsyncClient, factory: Factory, wall: time
) -> None:
    desk = open_desk(factory)
    requested = slot(2, wall)
    error = await refused_booking(client, desk, booking(desk, requested), 422,
                                  "slot_not_offered")
    assert "not one of this provider's appointment times" in error["message"]
    alternatives = error["details"]["alternatives"]
    assert len(alternatives) == 3
    grid = [slot(2, time(h, m)) for h in range(8, 20) for m in (0, 30)]
    grid += [slot(3, time(h, m)) for h in range(8, 20) for m in (0, 30)]
    expected = [s for s in grid if s > requested][:3]
    assert [parsed(a["start"]) for a in alternatives] == expected
    assert [a["start"] for a in alternatives] == [s.isoformat() for s in expected]
    assert error["details"]["field"] == "start"


async def test_a_time_in_the_past_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    error = await refused_booking(client, desk, booking(desk, slot(-1, time(10))), 422,
                                  "slot_in_past")
    assert "in the past" in error["message"]
    assert error["details"] == {"field": "start"}


async def test_a_time_inside_the_minimum_notice_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    soon = datetime.now(UTC) + timedelta(minutes=30)
    error = await refused_booking(client, desk, booking(desk, soon), 422,
                                  "slot_inside_notice")
    assert "at least 60 minutes ahead" in error["message"]


async def test_a_time_past_the_booking_horizon_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    shortened = await client.patch("/api/v1/clinic/booking-policy",
                                   headers=desk.headers(Role.ADMIN),
                                   json={"booking_horizon_days": 3})
    assert shortened.status_code == 200, shortened.text
    error = await refused_booking(client, desk, booking(desk, slot(5, time(10))), 422,
                                  "slot_beyond_horizon")
    assert "at most 3 days ahead" in error["message"]
    await book(client, desk, slot(2, time(10)))


async def test_a_time_blocked_by_a_closure_is_refused_as_taken_with_alternatives(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    closed = await client.post("/api/v1/availability-exceptions",
                               headers=desk.headers(Role.ADMIN),
                               json={"kind": "time_off",
                                     "starts_at": slot(2, time(8)).isoformat(),
                                     "ends_at": slot(2, time(12)).isoformat()})
    assert closed.status_code == 201, closed.text
    error = await refused_booking(client, desk, booking(desk, slot(2, time(10))), 409,
                                  "slot_taken")
    assert [parsed(a["start"]) for a in error["details"]["alternatives"]] == [
        slot(2, time(12)), slot(2, time(12, 30)), slot(2, time(13))]


async def test_an_unknown_or_another_clinics_provider_or_patient_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk, other = open_desk(factory), open_desk(factory)
    start = slot(2, time(10))
    for provider_id in (uuid.uuid4(), other.provider_id):
        error = await refused_booking(client, desk, booking(desk, start,
                                                            provider_id=str(provider_id)),
                                      422, "provider_not_found")
        assert error["details"] == {"field": "provider_id"}
    for patient_id in (uuid.uuid4(), other.patient_id):
        error = await refused_booking(client, desk, booking(desk, start,
                                                            patient_id=str(patient_id)),
                                      422, "patient_not_found")
        assert error["details"] == {"field": "patient_id"}
        assert str(patient_id) in error["message"]
    assert other.counts()[0] == 0


async def test_a_provider_who_no_longer_takes_appointments_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    with factory.engine.begin() as conn:
        scope(conn, desk.clinic.id)
        conn.execute(update(provider).where(provider.c.id == desk.provider_id)
                     .values(is_active=False))
    await refused_booking(client, desk, booking(desk, slot(2, time(10))), 422,
                          "provider_inactive")


@pytest.mark.parametrize(("change", "field"), [
    ({"start": "2030-01-07T10:00:00"}, "start"),  # no offset
    ({"start": "next monday at ten"}, "start"),
    ({"start": "2030-01-07T25:00:00-03:00"}, "start"),
    ({"start": None}, "start"),
    ({"patient_id": "not-a-uuid"}, "patient_id"),
    ({"status": "completed"}, "status"),  # not a field one may set
    ({"reason": "x" * 501}, "reason"),
])
async def test_malformed_bookings_are_refused_naming_the_field(
    client: httpx.AsyncClient, factory: Factory, change: dict[str, Any], field: str
) -> None:
    desk = open_desk(factory)
    body = {**booking(desk, slot(2, time(10))), **change}
    error = await refused_booking(client, desk, body, 422, "invalid_input")
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert field in error["message"]


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, None,
                                  {"reason": "ok", "refund": True}])
async def test_a_cancel_without_a_reason_or_with_extra_fields_is_refused(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, Any] | None
) -> None:
    desk = open_desk(factory)
    appointment_id = desk.insert(slot(2, time(10)))
    before = desk.stored(appointment_id)
    response = await client.post(command_path(appointment_id, "cancel"),
                                 headers=desk.headers(), json=body)
    error = expect_error(response, 422, "invalid_input")
    fields = [f["field"] for f in error["details"]["fields"]]
    assert fields == (["refund"] if body and "refund" in body else
                      ["request"] if body is None else ["reason"])
    assert desk.stored(appointment_id) == before
    assert desk.audits(appointment_id) == []


async def test_a_refused_reschedule_keeps_the_appointment_where_it_was(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    start = slot(2, time(10))
    created = await book(client, desk, start)
    taken = await book(client, desk, slot(2, time(11)),
                       patient_id=str(desk.clinic.patient_ids[1]))
    before, counts = desk.stored(created["id"]), desk.counts()
    attempts = [
        ({"start": slot(2, time(7)).isoformat()}, 422, "slot_not_offered"),
        ({"start": slot(-1, time(10)).isoformat()}, 422, "slot_in_past"),
        ({"start": taken["starts_at"]}, 409, "slot_taken"),
        ({"start": "2030-01-07T10:00:00"}, 422, "invalid_input"),
        ({"start": slot(3, time(10)).isoformat(), "provider_id": str(uuid.uuid4())}, 422,
         "provider_not_found"),
        ({"start": slot(3, time(10)).isoformat(), "status": "booked"}, 422, "invalid_input"),
    ]
    for body, status, code in attempts:
        response = await client.post(command_path(created["id"], "reschedule"),
                                     headers=desk.headers(), json=body)
        expect_error(response, status, code)
    assert desk.stored(created["id"]) == before
    assert desk.counts() == counts


# --- the patient's history and the calendar ------------------------------------------------


async def test_a_patients_history_lists_only_their_appointments_newest_first(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    now = datetime.now(UTC)
    past = desk.insert(now - timedelta(days=30), "completed")
    missed = desk.insert(now - timedelta(days=7), "no_show")
    cancelled = desk.insert(now + timedelta(days=3), "cancelled")
    upcoming = desk.insert(now + timedelta(days=10))
    desk.insert(now + timedelta(days=5), patient_index=1)
    response = await client.get(f"/api/v1/patients/{desk.patient_id}/appointments",
                                headers=desk.headers(Role.DOCTOR))
    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    assert [a["id"] for a in listed] == [str(i) for i in (upcoming, cancelled, missed, past)]
    assert [a["status"] for a in listed] == ["booked", "cancelled", "no_show", "completed"]
    [event] = factory.audit_events(desk.clinic, action="patient.appointments")
    assert event.entity_id == desk.patient_id
    assert event.actor_user_id == desk.clinic.users[Role.DOCTOR].id


async def test_the_history_of_an_unknown_or_another_clinics_patient_is_not_found(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk, other = open_desk(factory), open_desk(factory)
    other.insert(slot(2, time(10)))
    for patient_id in (uuid.uuid4(), other.patient_id):
        response = await client.get(f"/api/v1/patients/{patient_id}/appointments",
                                    headers=desk.headers())
        expect_error(response, 404, "patient_not_found")


async def test_the_calendar_lists_appointments_overlapping_the_window_in_time_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory, providers=2)
    other = open_desk(factory)
    other.insert(slot(2, time(10)))
    second = desk.insert(slot(2, time(11)), provider_index=1)
    first = desk.insert(slot(2, time(9, 45)), minutes=30)  # starts before the window
    desk.insert(slot(2, time(12)))  # starts when the window ends
    desk.insert(slot(1, time(10)))
    cancelled = desk.insert(slot(2, time(10, 30)), "cancelled", patient_index=1)
    window = {"start": slot(2, time(10)).isoformat(), "end": slot(2, time(12)).isoformat()}
    response = await client.get(APPOINTMENTS, headers=desk.headers(), params=window)
    assert response.status_code == 200, response.text
    assert [a["id"] for a in response.json()["data"]] == [
        str(first), str(cancelled), str(second)]
    only_second = await client.get(APPOINTMENTS, headers=desk.headers(), params={
        **window, "provider_id": str(desk.clinic.provider_ids[1])})
    assert [a["id"] for a in only_second.json()["data"]] == [str(second)]


async def test_the_calendar_refuses_a_window_that_ends_before_it_starts(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    response = await client.get(APPOINTMENTS, headers=desk.headers(), params={
        "start": slot(2, time(12)).isoformat(), "end": slot(2, time(10)).isoformat()})
    expect_error(response, 422, "invalid_window")


# --- the no-show report --------------------------------------------------------------------


async def no_show_report(client: httpx.AsyncClient, desk: Desk, start: datetime,
                         end: datetime, role: Role = Role.ADMIN) -> httpx.Response:
    return await client.get("/api/v1/reports/no-shows", headers=desk.headers(role),
                            params={"start": start.isoformat(), "end": end.isoformat()})


async def test_the_no_show_report_computes_clinic_and_provider_rates_over_due_appointments(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory, providers=3)
    first, second, _ = desk.clinic.provider_ids
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    hour = 0

    def add(status: str, provider_index: int, at: datetime | None = None) -> uuid.UUID:
        nonlocal hour
        hour += 1
        return desk.insert(at or start + timedelta(hours=hour), status,
                           provider_index=provider_index)

    for status in ("completed", "completed", "completed", "no_show", "no_show", "cancelled"):
        add(status, 0)
    for status in ("no_show", "checked_in", "in_progress", "booked", "pending", "rejected"):
        add(status, 1)
    add("cancelled", 2)  # the third provider has nothing due
    add("no_show", 0, start - timedelta(minutes=1))  # before the period
    add("no_show", 0, start + timedelta(days=10))  # starts exactly at its end
    desk.factory.tombstone(appointment, desk.clinic, add("no_show", 1))
    add("completed", 1, start)  # starts exactly at its start: counted

    response = await no_show_report(client, desk, start, start + timedelta(days=10))
    assert response.status_code == 200, response.text
    report = response.json()
    assert parsed(report["start"]) == start
    assert report["clinic"] == {"provider_id": None, "appointments": 9, "no_shows": 3,
                                "rate": 0.3333}
    assert report["providers"] == [
        {"provider_id": str(first), "appointments": 5, "no_shows": 2, "rate": 0.4},
        {"provider_id": str(second), "appointments": 4, "no_shows": 1, "rate": 0.25},
    ]


async def test_the_no_show_report_rounds_rates_to_four_places(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    start = datetime.now(UTC) - timedelta(days=3)
    for i, status in enumerate(("no_show", "completed", "completed")):
        desk.insert(start + timedelta(hours=i), status)
    report = (await no_show_report(client, desk, start, start + timedelta(days=1))).json()
    assert report["clinic"]["rate"] == 0.3333
    assert report["providers"][0]["rate"] == 0.3333


async def test_the_no_show_report_of_a_period_without_due_appointments_has_no_rate(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    desk.insert(slot(2, time(10)))
    now = datetime.now(UTC)
    response = await no_show_report(client, desk, now, now + timedelta(days=7),
                                    Role.RECEPTIONIST)
    assert response.status_code == 200, response.text
    assert response.json()["clinic"] == {"provider_id": None, "appointments": 0,
                                         "no_shows": 0, "rate": None}
    assert response.json()["providers"] == []


async def test_the_no_show_report_refuses_an_end_before_the_start(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    now = datetime.now(UTC)
    for end in (now - timedelta(days=1), now):
        error = expect_error(await no_show_report(client, desk, now, end), 422,
                             "invalid_window")
        assert error["details"] == {"field": "end"}


async def test_the_no_show_report_is_not_for_lab_staff(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    desk = open_desk(factory)
    now = datetime.now(UTC)
    expect_error(await no_show_report(client, desk, now - timedelta(days=1), now,
                                      Role.LAB_TECH), 403, "permission_denied")
