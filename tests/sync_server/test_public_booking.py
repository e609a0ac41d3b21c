"""Patient self-booking through the public API (and the page's form where only it has the
field): booking, patient matching, non-disclosure, bad input, the limits and the manage
token."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import select, update

from shared_models.enums import AppointmentStatus, Role
from shared_models.scheduling import TransitionRefused, check_transition
from shared_models.tables import appointment, clinic, patient, web_booking
from sync_server.actions.clinics import scope
from sync_server.core.config import Settings
from sync_server.core.signed import issue_manage_token
from tests.conftest import make_client
from tests.factories import ClinicData, Factory, expect_error

DOB = "1985-03-02"


def _phone() -> str:
    return f"+5698{random.randrange(10**7):07d}"  # a valid Chilean mobile


def _clinic(factory: Factory, *, providers: int = 1) -> ClinicData:
    data = factory.clinic(patients=0, providers=providers)
    for provider_id in data.provider_ids:
        factory.weekly_hours(data, provider_id)
    return data


async def _free(client: httpx.AsyncClient, data: ClinicData, *, provider: int = 0,
                days: int = 3) -> list[str]:
    now = datetime.now(UTC)
    response = await client.get(
        f"/api/v1/public/{data.slug}/providers/{data.provider_ids[provider]}/slots",
        params={"start": (now + timedelta(hours=3)).isoformat(),
                "end": (now + timedelta(days=days)).isoformat()})
    assert response.status_code == 200, response.text
    return [s["start"] for s in response.json()["data"]]


def _body(data: ClinicData, start: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider_id": str(data.provider_ids[0]), "start": start, "given_name": "Rosa",
        "family_name": "Pérez Soto", "phone": _phone(), "date_of_birth": DOB,
        "reason": "Control", "reminders": True, "language": "es",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def _book(client: httpx.AsyncClient, data: ClinicData, body: dict[str, Any]
                ) -> httpx.Response:
    return await client.post(f"/api/v1/public/{data.slug}/bookings", json=body)


def _registered(factory: Factory, data: ClinicData, *, given: str, family: str, phone: str,
                email: str | None = None, dob: str = DOB) -> uuid.UUID:
    patient_id = factory.patient(data, given_name=given, family_name=family, phone=phone,
                                 email=email)
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        conn.execute(update(patient).where(patient.c.id == patient_id)
                     .values(date_of_birth=date.fromisoformat(dob)))
    return patient_id


def _counts(factory: Factory, data: ClinicData) -> tuple[int, int, int]:
    return (factory.count(patient, data), factory.count(appointment, data),
            factory.count(web_booking, data))


@contextmanager
def _tuned(settings: Settings, **values: Any) -> Iterator[None]:
    """Change some settings of the running app for one test."""
    before = {name: getattr(settings, name) for name in values}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        yield
    finally:
        for name, value in before.items():
            setattr(settings, name, value)


def _manage(token: str) -> dict[str, str]:
    return {"X-Manage-Token": token}


# --- booking and matching -----------------------------------------------------------------


async def test_patient_books_a_free_slot_and_gets_a_manage_token_but_no_patient_data(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    start = (await _free(client, data))[0]
    response = await _book(client, data, _body(data, start))
    assert response.status_code == 201, response.text
    booked = response.json()
    assert booked["start"] == start
    assert booked["status"] == "booked"
    assert booked["timezone"] == "America/Santiago"
    assert booked["can_change"] is True
    assert booked["manage_token"]
    assert response.headers["cache-control"] == "no-store"
    # Nothing about the record it was filed under: no patient id, name or phone.
    assert not {"patient_id", "given_name", "phone", "email", "mrn"} & set(booked)
    assert "Rosa" not in response.text

    stored = factory.row(appointment, data, uuid.UUID(booked["appointment_id"]))
    assert (stored["source"], stored["status"], stored["reason"]) == ("web", "booked", "Control")
    person = factory.row(patient, data, stored["patient_id"])
    assert person["needs_review"] is True
    assert (person["given_name"], person["phone"]) == ("Rosa", person["phone"])
    assert person["date_of_birth"] == date(1985, 3, 2)
    assert person["preferred_channels"] == ["sms"]
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        marked = conn.execute(select(web_booking)
                              .where(web_booking.c.clinic_id == data.id)).one()
    assert marked.appointment_id == stored["id"]
    assert marked.reminders is True
    assert person["phone"] not in marked.phone_key
    events = factory.audit_events(data, action="appointment.web_book")
    assert len(events) == 1
    assert events[0].detail == {"patient_id": str(person["id"]), "new_patient": True,
                                "needs_review": True}


async def test_existing_patient_is_found_by_phone_and_date_of_birth(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    known = _registered(factory, data, given="Rosa", family="Pérez", phone=phone)
    national = f"9 {phone[4:8]} {phone[8:]}"  # typed without the country code
    response = await _book(client, data, _body(data, (await _free(client, data))[0],
                                               phone=national, family_name="PEREZ Soto"))
    assert response.status_code == 201, response.text
    stored = factory.row(appointment, data, uuid.UUID(response.json()["appointment_id"]))
    assert stored["patient_id"] == known
    assert factory.count(patient, data) == 1
    assert factory.row(patient, data, known)["needs_review"] is False


async def test_existing_patient_is_found_by_email_and_date_of_birth(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    known = _registered(factory, data, given="Rosa", family="Pérez", phone=_phone(),
                        email="rosa.perez@example.com")
    response = await _book(client, data, _body(data, (await _free(client, data))[0],
                                               email="Rosa.Perez@Example.com"))
    assert response.status_code == 201, response.text
    stored = factory.row(appointment, data, uuid.UUID(response.json()["appointment_id"]))
    assert stored["patient_id"] == known
    assert factory.count(patient, data) == 1


async def test_same_contact_without_the_same_birth_date_makes_a_new_patient_for_review(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    known = _registered(factory, data, given="Rosa", family="Pérez", phone=phone)
    response = await _book(client, data, _body(data, (await _free(client, data))[0],
                                               phone=phone, date_of_birth="1990-01-01"))
    assert response.status_code == 201, response.text
    stored = factory.row(appointment, data, uuid.UUID(response.json()["appointment_id"]))
    assert stored["patient_id"] != known
    assert factory.row(patient, data, stored["patient_id"])["needs_review"] is True


async def test_same_contact_and_birth_date_under_another_name_is_flagged_for_the_desk(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    known = _registered(factory, data, given="Rosa", family="Pérez", phone=phone)
    response = await _book(client, data, _body(data, (await _free(client, data))[0],
                                               phone=phone, given_name="Lucía"))
    assert response.status_code == 201, response.text
    stored = factory.row(appointment, data, uuid.UUID(response.json()["appointment_id"]))
    assert stored["patient_id"] == known
    flagged = factory.row(patient, data, known)
    assert flagged["needs_review"] is True
    assert flagged["given_name"] == "Rosa"  # nothing typed on the web overwrites the record
    assert "needs_review" in flagged["field_stamps"]


def _shape(response: httpx.Response) -> tuple[int, list[str], dict[str, Any]]:
    body = response.json()
    volatile = {"appointment_id", "start", "end", "manage_token", "manage_expires_at",
                "change_until"}
    return (response.status_code, sorted(response.headers.keys()),
            {k: v for k, v in body.items() if k not in volatile})


async def test_answers_do_not_tell_a_registered_patient_from_a_new_one(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    _registered(factory, data, given="Rosa", family="Pérez", phone=phone)
    free = await _free(client, data)
    floor = 0.25
    with _tuned(settings, booking_min_response_seconds=floor):
        timings, answers = [], []
        for start, number in ((free[0], phone), (free[1], _phone())):
            began = time.monotonic()
            answers.append(await _book(client, data, _body(data, start, phone=number)))
            timings.append(time.monotonic() - began)
        # Refusals too: the same taken slot, for the registered patient and a new one.
        for number in (phone, _phone()):
            began = time.monotonic()
            answers.append(await _book(client, data, _body(data, free[0], phone=number)))
            timings.append(time.monotonic() - began)
    assert [a.status_code for a in answers] == [201, 201, 409, 409]
    assert _shape(answers[0]) == _shape(answers[1])
    assert answers[2].text == answers[3].text
    assert all(floor <= t < floor + 0.2 for t in timings), timings


# --- bad input ----------------------------------------------------------------------------


def _far(data: ClinicData, days: int, hour: int) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/Santiago")
    day = datetime.now(zone).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, tzinfo=zone).isoformat()


BAD_FIELDS: list[tuple[str, dict[str, Any], int, str, str]] = [
    # (label, changes, status, code, a word the message must hold)
    ("empty name", {"given_name": ""}, 422, "invalid_input", "given_name"),
    ("blank name", {"given_name": "   "}, 422, "invalid_input", "given_name"),
    ("long name", {"given_name": "A" * 101}, 422, "invalid_input", "given_name"),
    ("NUL in name", {"given_name": "Ro\x00sa"}, 422, "invalid_input", "NUL"),
    ("no last name", {"family_name": None}, 422, "invalid_input", "family_name"),
    ("long last name", {"family_name": "B" * 101}, 422, "invalid_input", "family_name"),
    ("not a phone", {"phone": "12"}, 422, "invalid_phone", "phone number"),
    ("letters as phone", {"phone": "call me"}, 422, "invalid_phone", "phone number"),
    ("long phone", {"phone": "9" * 33}, 422, "invalid_input", "phone"),
    ("NUL in phone", {"phone": "+5691234\x005678"}, 422, "invalid_input", "NUL"),
    ("bad e-mail", {"email": "rosa@"}, 422, "invalid_input", "email"),
    ("long e-mail", {"email": "r" * 300 + "@example.com"}, 422, "invalid_input", "email"),
    ("impossible birth date", {"date_of_birth": "1985-02-30"}, 422, "invalid_input",
     "date_of_birth"),
    ("future birth date", {"date_of_birth": "2999-01-01"}, 422, "invalid_input", "future"),
    ("ancient birth date", {"date_of_birth": "1850-01-01"}, 422, "invalid_input", "1900"),
    ("birth date as a number", {"date_of_birth": 0}, 422, "invalid_input", "YYYY-MM-DD"),
    ("long reason", {"reason": "x" * 501}, 422, "invalid_input", "reason"),
    ("NUL in reason", {"reason": "dolor\x00"}, 422, "invalid_input", "NUL"),
    ("unknown field", {"mrn": "P-1"}, 422, "invalid_input", "mrn"),
    ("bad language", {"language": "fr"}, 422, "invalid_input", "language"),
    ("time without zone", {"start": "2031-01-01T09:00:00"}, 422, "invalid_input", "start"),
    ("unknown provider", {"provider_id": str(uuid.uuid4())}, 422, "provider_not_found",
     "provider"),
]


@pytest.mark.parametrize(("label", "changes", "status", "code", "word"), BAD_FIELDS,
                         ids=[c[0] for c in BAD_FIELDS])
async def test_every_bad_field_is_refused_clearly_and_creates_nothing(
    client: httpx.AsyncClient, factory: Factory, label: str, changes: dict[str, Any],
    status: int, code: str, word: str,
) -> None:
    data = _clinic(factory)
    body = _body(data, (await _free(client, data))[0])
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    before = _counts(factory, data)
    error = expect_error(await _book(client, data, body), status, code)
    assert word.lower() in error["message"].lower(), error
    assert _counts(factory, data) == before


@pytest.mark.parametrize(("label", "when", "code"), [
    ("in the past", lambda d: _far(d, -1, 10), "slot_in_past"),
    ("inside the minimum notice", lambda d: (datetime.now(UTC) + timedelta(minutes=5))
     .replace(second=0, microsecond=0).isoformat(), "slot_inside_notice"),
    ("beyond the horizon", lambda d: _far(d, 90, 10), "slot_beyond_horizon"),
    ("outside the hours", lambda d: _far(d, 2, 3), "slot_not_offered"),
    ("between two slots", lambda d: _far(d, 2, 10).replace(":00:00", ":10:00"),
     "slot_not_offered"),
])
async def test_a_time_that_is_not_a_free_slot_is_refused_on_the_start_field(
    client: httpx.AsyncClient, factory: Factory, label: str, when: Any, code: str,
) -> None:
    data = _clinic(factory)
    before = _counts(factory, data)
    error = expect_error(await _book(client, data, _body(data, when(data))), 422, code)
    assert error["details"]["field"] == "start"
    assert _counts(factory, data) == before


async def test_unknown_clinic_and_another_clinics_provider_are_refused(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data, other = _clinic(factory), _clinic(factory)
    start = (await _free(client, data))[0]
    error = expect_error(await client.post("/api/v1/public/no-such-clinic/bookings",
                                           json=_body(data, start)), 404, "clinic_not_found")
    assert "no-such-clinic" in error["message"]
    before = _counts(factory, data)
    crossed = await _book(client, data, _body(data, start,
                                              provider_id=str(other.provider_ids[0])))
    assert expect_error(crossed, 422, "provider_not_found")["details"]["field"] == "provider_id"
    assert _counts(factory, data) == before


# --- races and repeats --------------------------------------------------------------------


async def test_a_taken_slot_answers_409_with_fresh_free_slots_and_creates_nothing(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    start = (await _free(client, data))[0]
    assert (await _book(client, data, _body(data, start))).status_code == 201
    before = _counts(factory, data)
    error = expect_error(await _book(client, data, _body(data, start, given_name="Otra")),
                         409, "slot_taken")
    alternatives = [a["start"] for a in error["details"]["alternatives"]]
    assert alternatives
    assert start not in alternatives
    assert set(alternatives) <= set(await _free(client, data))
    assert _counts(factory, data) == before


async def test_many_patients_racing_for_one_slot_get_one_booking(
    app: FastAPI, factory: Factory,
) -> None:
    data = _clinic(factory)
    async with make_client(app, client_addr="203.0.113.50") as client:
        start = (await _free(client, data))[0]
        answers = await asyncio.gather(*(
            _book(client, data, _body(data, start)) for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7
    assert factory.overlapping_appointments(data) == []


async def test_the_same_form_sent_twice_books_once(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    body = _body(data, (await _free(client, data))[0], request_id=str(uuid.uuid4()))
    first, second = await asyncio.gather(_book(client, data, body), _book(client, data, body))
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json()["appointment_id"] == second.json()["appointment_id"]
    assert factory.count(appointment, data) == 1
    stolen = dict(body, phone=_phone())  # the same form id with another phone
    expect_error(await _book(client, data, stolen), 409, "form_already_used")


# --- limits ---------------------------------------------------------------------------------


async def test_too_many_bookings_from_one_address_answer_429_with_retry_after(
    app: FastAPI, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    with _tuned(settings, booking_limit_per_address=3):
        async with make_client(app, client_addr="203.0.113.60") as client:
            free = await _free(client, data)
            answers = [await _book(client, data, _body(data, s)) for s in free[:4]]
        async with make_client(app, client_addr="203.0.113.61") as elsewhere:
            other = await _book(elsewhere, data, _body(data, free[5]))
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    error = expect_error(answers[3], 429, "booking_rate_limited")
    assert error["details"]["limit"] == "address"
    assert 0 < int(answers[3].headers["retry-after"]) <= 3600
    assert "Try again in" in error["message"]
    assert other.status_code == 201  # another address is not held back
    assert factory.count(appointment, data) == 4


async def test_refused_attempts_count_against_the_address_too(
    app: FastAPI, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    with _tuned(settings, booking_limit_per_address=2):
        async with make_client(app, client_addr="203.0.113.62") as client:
            free = await _free(client, data)
            bad = [await _book(client, data, _body(data, _far(data, 2, 3))) for _ in range(2)]
            good = await _book(client, data, _body(data, free[0]))
    assert [b.status_code for b in bad] == [422, 422]
    expect_error(good, 429, "booking_rate_limited")


async def test_too_many_bookings_for_one_phone_answer_429_whatever_the_address(
    app: FastAPI, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    with _tuned(settings, booking_limit_per_phone=2, booking_pending_per_phone=10):
        answers = []
        for i in range(3):
            async with make_client(app, client_addr=f"203.0.113.{70 + i}") as client:
                start = (await _free(client, data))[i]
                answers.append(await _book(client, data, _body(data, start, phone=phone)))
    assert [a.status_code for a in answers[:2]] == [201, 201]
    error = expect_error(answers[2], 429, "booking_rate_limited")
    assert error["details"]["limit"] == "phone"
    assert "phone number" in error["message"]
    assert "retry-after" in answers[2].headers


async def test_a_phone_may_hold_only_a_few_upcoming_web_bookings(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    phone = _phone()
    free = await _free(client, data)
    booked = [await _book(client, data, _body(data, s, phone=phone)) for s in free[:3]]
    assert [b.status_code for b in booked] == [201, 201, 201]
    before = _counts(factory, data)
    error = expect_error(await _book(client, data, _body(data, free[3], phone=phone)),
                         409, "too_many_upcoming_bookings")
    assert "3 upcoming appointments" in error["message"]
    assert error["details"]["field"] == "phone"
    assert _counts(factory, data) == before
    # Cancelling one with its link frees a place.
    first = booked[0].json()
    cancelled = await client.post(
        f"/api/v1/public/{data.slug}/bookings/{first['appointment_id']}/cancel",
        headers=_manage(first["manage_token"]))
    assert cancelled.status_code == 200, cancelled.text
    assert (await _book(client, data, _body(data, free[3], phone=phone))).status_code == 201


async def _form_session(client: httpx.AsyncClient, data: ClinicData, start: str
                        ) -> tuple[str, str]:
    """Open the booking form as a browser would: (its form token, its post address)."""
    day = start[:10]
    page = await client.get(f"/book/{data.slug}/{data.provider_ids[0]}/{day}/details",
                            params={"start": start})
    assert page.status_code == 200, page.text
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    return csrf, f"/book/{data.slug}/{data.provider_ids[0]}/{day}/details"


def _form(start: str, csrf: str, **changes: str) -> dict[str, str]:
    fields = {"csrf": csrf, "start": start, "request_id": str(uuid.uuid4()),
              "given_name": "Rosa", "family_name": "Pérez", "phone": _phone(),
              "email": "", "dob_day": "2", "dob_month": "3", "dob_year": "1985",
              "reason": "", "website": ""}
    fields.update(changes)
    return fields


async def test_a_filled_honeypot_is_refused_with_a_clear_message(
    app: FastAPI, factory: Factory,
) -> None:
    data = _clinic(factory)
    async with make_client(app, client_addr="203.0.113.80") as client:
        start = (await _free(client, data))[0]
        csrf, action = await _form_session(client, data, start)
        before = _counts(factory, data)
        refused = await client.post(action, data=_form(start, csrf, website="http://spam"),
                                    headers={"Accept-Language": "en"})
    assert refused.status_code == 422
    assert "looks automated" in refused.text
    assert 'value="Rosa"' in refused.text  # what was typed is kept
    assert _counts(factory, data) == before


async def test_the_form_without_its_cookie_or_token_is_refused_and_kept(
    app: FastAPI, factory: Factory,
) -> None:
    data = _clinic(factory)
    async with make_client(app, client_addr="203.0.113.81") as client:
        start = (await _free(client, data))[0]
        csrf, action = await _form_session(client, data, start)
        forged = await client.post(action, data=_form(start, "1700000000.AAAA"),
                                   headers={"Accept-Language": "en"})
        client.cookies.clear()
        cookieless = await client.post(action, data=_form(start, csrf),
                                       headers={"Accept-Language": "en"})
    for response in (forged, cookieless):
        assert response.status_code == 400
        assert "send it again" in response.text
        assert 'value="Rosa"' in response.text
    assert factory.count(appointment, data) == 0


# --- the manage token -----------------------------------------------------------------------


async def _booked(client: httpx.AsyncClient, data: ClinicData, *, nth: int = 0
                  ) -> dict[str, Any]:
    response = await _book(client, data, _body(data, (await _free(client, data))[nth]))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_manage_token_shows_and_cancels_the_appointment_within_the_cutoff(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    shown = await client.get(path, headers=_manage(booked["manage_token"]))
    assert shown.status_code == 200, shown.text
    assert shown.json()["start"] == booked["start"]
    cancelled = await client.post(f"{path}/cancel", headers=_manage(booked["manage_token"]))
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["can_change"]) == ("cancelled", False)
    stored = factory.row(appointment, data, uuid.UUID(booked["appointment_id"]))
    assert stored["status"] == "cancelled"
    assert stored["cancel_reason"] == "Cancelled by the patient online"
    assert booked["start"] in await _free(client, data)  # the time is free again
    events = factory.audit_events(data, action="appointment.cancel")
    assert [e.entity_id for e in events] == [stored["id"]]
    assert events[0].actor_user_id is None


async def test_a_cancelled_appointments_link_still_shows_it_but_changes_nothing(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    token = _manage(booked["manage_token"])
    assert (await client.post(f"{path}/cancel", headers=token)).status_code == 200
    again = expect_error(await client.post(f"{path}/cancel", headers=token), 409,
                         "appointment_not_changeable")
    assert "cancelled" in again["message"]
    moved = await client.post(f"{path}/reschedule", headers=token,
                              json={"start": (await _free(client, data))[3]})
    expect_error(moved, 409, "appointment_not_changeable")
    shown = await client.get(path, headers=token)
    assert shown.json()["status"] == "cancelled"


async def test_manage_token_reschedules_to_another_free_slot_of_the_same_provider(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory, providers=2)
    booked = await _booked(client, data)
    target = (await _free(client, data))[4]
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    moved = await client.post(f"{path}/reschedule", headers=_manage(booked["manage_token"]),
                              json={"start": target})
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == target
    assert moved.json()["provider_id"] == str(data.provider_ids[0])
    free = await _free(client, data)
    assert booked["start"] in free
    assert target not in free
    # Both the new link and the old one open it.
    for token in (moved.json()["manage_token"], booked["manage_token"]):
        assert (await client.get(path, headers=_manage(token))).json()["start"] == target
    # A provider of its own choosing is not the patient's to send.
    other = await client.post(f"{path}/reschedule", headers=_manage(booked["manage_token"]),
                              json={"start": target, "provider_id": str(data.provider_ids[1])})
    expect_error(other, 422, "invalid_input")


async def test_rescheduling_onto_a_taken_slot_answers_409_with_alternatives(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    mine, theirs = await _booked(client, data, nth=0), await _booked(client, data, nth=1)
    moved = await client.post(
        f"/api/v1/public/{data.slug}/bookings/{mine['appointment_id']}/reschedule",
        headers=_manage(mine["manage_token"]), json={"start": theirs["start"]})
    error = expect_error(moved, 409, "slot_taken")
    assert error["details"]["alternatives"]
    assert factory.row(appointment, data, uuid.UUID(mine["appointment_id"]))["starts_at"] == \
        datetime.fromisoformat(mine["start"])


async def test_changes_are_refused_once_the_cutoff_has_passed(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    start = datetime.fromisoformat(booked["start"])
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    token = _manage(booked["manage_token"])
    # Move the clock to just inside the cut-off (120 minutes before).
    with time_machine.travel(start - timedelta(minutes=119), tick=True):
        shown = await client.get(path, headers=token)
        cancel = await client.post(f"{path}/cancel", headers=token)
        move = await client.post(f"{path}/reschedule", headers=token,
                                 json={"start": (start + timedelta(days=1)).isoformat()})
    assert shown.json()["can_change"] is False
    error = expect_error(cancel, 409, "past_change_cutoff")
    assert "2 hours" in error["message"]
    assert "Call the clinic" in error["message"]
    expect_error(move, 409, "past_change_cutoff")
    assert factory.row(appointment, data, uuid.UUID(booked["appointment_id"]))["status"] == \
        "booked"


async def test_an_expired_link_is_refused_with_410(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    with time_machine.travel(datetime.fromisoformat(booked["end"]) + timedelta(days=1, seconds=1),
                             tick=True):
        late = await client.get(path, headers=_manage(booked["manage_token"]))
    assert "expired" in expect_error(late, 410, "manage_link_expired")["message"]
    made_expired = issue_manage_token(
        settings, clinic_id=data.id, appointment_id=uuid.UUID(booked["appointment_id"]),
        expires_at=datetime.now(UTC) - timedelta(seconds=5))
    expect_error(await client.post(f"{path}/cancel", headers=_manage(made_expired)), 410,
                 "manage_link_expired")
    assert factory.row(appointment, data, uuid.UUID(booked["appointment_id"]))["status"] == \
        "booked"


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


async def test_tampered_missing_or_foreign_tokens_are_refused_with_403(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
) -> None:
    data, other = _clinic(factory), _clinic(factory)
    booked, second = await _booked(client, data, nth=0), await _booked(client, data, nth=1)
    token = booked["manage_token"]
    path = f"/api/v1/public/{data.slug}/bookings/{booked['appointment_id']}"
    dot = token.index(".")
    tampered = {
        "signature changed": _flip(token, len(token) - 2),
        "body changed": _flip(token, 10),
        "signature cut": token[:-4],
        "no signature": token[:dot],
        "garbage": "not-a-token",
        "signed with another key": issue_manage_token(
            Settings(env="test", secret_key="x" * 40),  # type: ignore[arg-type]
            clinic_id=data.id, appointment_id=uuid.UUID(booked["appointment_id"]),
            expires_at=datetime.now(UTC) + timedelta(days=1)),
    }
    for label, bad in tampered.items():
        for method, suffix in (("GET", ""), ("POST", "/cancel")):
            response = await client.request(method, f"{path}{suffix}", headers=_manage(bad))
            error = expect_error(response, 403, "invalid_manage_link")
            assert "not valid" in error["message"], label
    expect_error(await client.get(path), 403, "manage_token_missing")
    # A genuine link opens its own appointment only, and only on its own clinic's page.
    expect_error(await client.post(
        f"/api/v1/public/{data.slug}/bookings/{second['appointment_id']}/cancel",
        headers=_manage(token)), 403, "invalid_manage_link")
    expect_error(await client.get(
        f"/api/v1/public/{other.slug}/bookings/{booked['appointment_id']}",
        headers=_manage(token)), 403, "invalid_manage_link")
    stored = factory.appointments(data)
    assert {row.status for row in stored.values()} == {"booked"}


async def test_the_manage_link_page_refuses_tampered_and_expired_links_clearly(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    page = f"/book/{data.slug}/manage"
    shown = await client.get(page, params={"token": booked["manage_token"]},
                             headers={"Accept-Language": "en"})
    assert shown.status_code == 200
    assert "Your appointment" in shown.text
    tampered = await client.get(page, params={"token": _flip(booked["manage_token"], 5)},
                                headers={"Accept-Language": "es"})
    assert tampered.status_code == 403
    assert "Enlace no válido" in tampered.text
    expired = issue_manage_token(settings, clinic_id=data.id,
                                 appointment_id=uuid.UUID(booked["appointment_id"]),
                                 expires_at=datetime.now(UTC) - timedelta(minutes=1))
    gone = await client.get(page, params={"token": expired}, headers={"Accept-Language": "en"})
    assert gone.status_code == 410
    assert "This link has expired" in gone.text


# --- the state machine's patient rule -----------------------------------------------------


def test_a_patient_may_cancel_or_reschedule_only_what_is_still_ahead() -> None:
    for command in ("cancel", "reschedule"):
        for status in (AppointmentStatus.BOOKED, AppointmentStatus.PENDING):
            assert check_transition(command, current=status, role=None).command == command
        for status in (AppointmentStatus.CHECKED_IN, AppointmentStatus.CANCELLED,
                       AppointmentStatus.COMPLETED):
            with pytest.raises(TransitionRefused) as refused:
                check_transition(command, current=status, role=None)
            assert refused.value.reason == "state"
    for command in ("check_in", "start", "complete", "no_show"):
        with pytest.raises(TransitionRefused, match="A patient cannot"):
            check_transition(command, current=AppointmentStatus.BOOKED, role=None)


async def test_web_bookings_show_at_the_desk_as_booked_from_the_web(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    booked = await _booked(client, data)
    start = datetime.fromisoformat(booked["start"])
    listed = await client.get("/api/v1/appointments", headers=factory.headers(
        data.users[Role.RECEPTIONIST]), params={
            "start": (start - timedelta(hours=1)).isoformat(),
            "end": (start + timedelta(hours=1)).isoformat()})
    assert listed.status_code == 200, listed.text
    assert [(a["id"], a["source"]) for a in listed.json()["data"]] == [
        (booked["appointment_id"], "web")]
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        policy = conn.execute(select(clinic.c.cancel_cutoff_minutes)
                              .where(clinic.c.id == data.id)).scalar_one()
    assert datetime.fromisoformat(booked["change_until"]) == start - timedelta(minutes=policy)


FORM_ERRORS: list[tuple[str, dict[str, str], str, str]] = [
    # (label, fields changed, the field whose message shows, words of that message)
    ("no first name", {"given_name": ""}, "given_name", "Enter your first name"),
    ("long first name", {"given_name": "A" * 101}, "given_name", "100 characters or fewer"),
    ("NUL in first name", {"given_name": "Ro\x00sa"}, "given_name", "not allowed"),
    ("no last name", {"family_name": " "}, "family_name", "Enter your last name"),
    ("long last name", {"family_name": "B" * 101}, "family_name", "100 characters or fewer"),
    ("no phone", {"phone": ""}, "phone", "Enter your mobile phone number"),
    ("not a phone", {"phone": "123"}, "phone", "with its area code"),
    ("long phone", {"phone": "9" * 33}, "phone", "32 characters or fewer"),
    ("bad e-mail", {"email": "rosa@"}, "email", "name@example.com"),
    ("long e-mail", {"email": "r" * 250 + "@example.com"}, "email", "254 characters"),
    ("no birth date", {"dob_day": "", "dob_month": "", "dob_year": ""}, "dob",
     "Enter your date of birth"),
    ("impossible birth date", {"dob_day": "31", "dob_month": "2"}, "dob", "a real date"),
    ("two-digit year", {"dob_year": "85"}, "dob", "four digits"),
    ("future birth date", {"dob_year": "2999"}, "dob", "in the past"),
    ("ancient birth date", {"dob_year": "1850"}, "dob", "after 1900"),
    ("long reason", {"reason": "x" * 501}, "reason", "500 characters or fewer"),
    ("no time", {"start": "nonsense"}, "start", "Choose a time"),
    ("time outside the hours", {"start": "SLOT_AT_3AM"}, "start",
     "can no longer be booked online"),
]


@pytest.mark.parametrize(("label", "changes", "field", "words"), FORM_ERRORS,
                         ids=[c[0] for c in FORM_ERRORS])
async def test_each_bad_form_field_is_shown_beside_it_and_nothing_is_created(
    app: FastAPI, factory: Factory, label: str, changes: dict[str, str], field: str,
    words: str,
) -> None:
    data = _clinic(factory)
    async with make_client(app, client_addr="203.0.113.90") as client:
        start = (await _free(client, data))[0]
        csrf, action = await _form_session(client, data, start)
        fields = _form(start, csrf)
        fields.update(changes)
        if fields["start"] == "SLOT_AT_3AM":
            fields["start"] = start.replace(start[11:16], "03:00")
        before = _counts(factory, data)
        page = await client.post(action, data=fields, headers={"Accept-Language": "en"})
    assert page.status_code == 422, label
    beside = page.text.split(f'id="{field}-error"')[1].split("</p>")[0]
    assert words in beside, beside
    assert f'href="#{ {"dob": "dob_day", "start": "start-group"}.get(field, field) }"' in page.text
    assert _counts(factory, data) == before
    if field != "given_name":
        assert 'value="Rosa"' in page.text  # the rest of what was typed is kept


async def test_the_form_pages_of_an_unknown_clinic_or_provider_are_not_found(
    client: httpx.AsyncClient, factory: Factory,
) -> None:
    data = _clinic(factory)
    day = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    for path in (f"/book/no-such-clinic/{data.provider_ids[0]}/{day}/details",
                 f"/book/{data.slug}/{uuid.uuid4()}/{day}/details"):
        shown = await client.get(path, params={"start": f"{day}T10:00:00-03:00"})
        assert shown.status_code == 404, path
        posted = await client.post(path, data={"given_name": "Rosa"})
        assert posted.status_code == 404, path
    assert _counts(factory, data) == (0, 0, 0)
