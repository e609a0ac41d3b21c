"""Free slots over the API: shown in the clinic's time zone with its offset, minus bookings,
time off and closures, plus extra hours; every active provider at once; and bad windows,
bad datetimes and unknown providers refused with a message that names the problem.

The server reads the real clock, so every time here is chosen relative to it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import update

from shared_models.enums import Role
from shared_models.tables import provider
from sync_server.actions.clinics import scope
from tests.factories import ClinicData, Factory, expect_error

SANTIAGO = ZoneInfo("America/Santiago")


def slots_path(provider_id: uuid.UUID) -> str:
    return f"/api/v1/providers/{provider_id}/slots"


def days_ahead(days: int, zone: ZoneInfo = SANTIAGO) -> date:
    return (datetime.now(UTC).astimezone(zone) + timedelta(days=days)).date()


def local(day: date, wall: time, zone: ZoneInfo = SANTIAGO) -> datetime:
    return datetime.combine(day, wall, tzinfo=zone)


def whole_day(day: date, zone: ZoneInfo = SANTIAGO) -> dict[str, str]:
    return {"start": local(day, time(0), zone).isoformat(),
            "end": local(day + timedelta(days=1), time(0), zone).isoformat()}


async def get_slots(client: httpx.AsyncClient, headers: dict[str, str],
                    provider_id: uuid.UUID, params: dict[str, str]) -> dict[str, Any]:
    response = await client.get(slots_path(provider_id), headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def starts(client: httpx.AsyncClient, headers: dict[str, str], provider_id: uuid.UUID,
                 day: date) -> list[str]:
    body = await get_slots(client, headers, provider_id, whole_day(day))
    return [s["start"] for s in body["data"]]


def morning(day: date, *walls: str, offset: str = "-03:00") -> list[str]:
    return [f"{day.isoformat()}T{w}:00{offset}" for w in walls]


def clinic_with_hours(factory: Factory, *, timezone: str = "America/Santiago",
                      providers: int = 1) -> tuple[ClinicData, dict[str, str]]:
    """A clinic whose providers see patients 09:00-11:00 every day, in 30-minute slots."""
    clinic = factory.clinic(patients=2, providers=providers, timezone=timezone)
    for provider_id in clinic.provider_ids:
        factory.weekly_hours(clinic, provider_id, start=time(9), end=time(11))
    return clinic, factory.headers(clinic.users[Role.RECEPTIONIST])


async def add_exception(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                        **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/availability-exceptions",
                                 headers=factory.headers(clinic.users[Role.ADMIN]), json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


# --- time zone and offsets -----------------------------------------------------------------


def next_day_with_offset(hours: int, zone: ZoneInfo = SANTIAGO) -> date:
    """The first day at least two days ahead whose noon is at UTC`hours` in `zone`."""
    day = days_ahead(2, zone)
    while local(day, time(12), zone).utcoffset() != timedelta(hours=hours):
        day += timedelta(days=1)
    return day


async def test_santiago_slots_carry_the_offset_in_force_on_their_date_and_the_zone_key(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory)
    # Summer (-03:00) and winter (-04:00) are both within a year: let bookings reach that far.
    widened = await client.patch("/api/v1/clinic/booking-policy",
                                 headers=factory.headers(clinic.users[Role.ADMIN]),
                                 json={"booking_horizon_days": 365})
    assert widened.status_code == 200, widened.text
    provider_id = clinic.provider_ids[0]
    for hours, offset in ((-3, "-03:00"), (-4, "-04:00")):
        day = next_day_with_offset(hours)
        body = await get_slots(client, desk, provider_id, whole_day(day))
        assert body["timezone"] == "America/Santiago"
        assert body["provider_id"] == str(provider_id)
        assert body["data"] == [
            {"start": s, "end": e} for s, e in zip(
                morning(day, "09:00", "09:30", "10:00", "10:30", offset=offset),
                morning(day, "09:30", "10:00", "10:30", "11:00", offset=offset), strict=True)
        ]


async def test_mexico_city_slots_are_shown_at_utc_minus_six(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    mexico = ZoneInfo("America/Mexico_City")
    clinic, desk = clinic_with_hours(factory, timezone="America/Mexico_City")
    day = days_ahead(3, mexico)
    body = await get_slots(client, desk, clinic.provider_ids[0], whole_day(day, mexico))
    assert body["timezone"] == "America/Mexico_City"
    assert [s["start"] for s in body["data"]] == morning(
        day, "09:00", "09:30", "10:00", "10:30", offset="-06:00")


async def test_a_window_given_in_utc_is_answered_in_the_clinics_zone(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory)
    day = days_ahead(3)
    params = {k: datetime.fromisoformat(v).astimezone(UTC).isoformat().replace("+00:00", "Z")
              for k, v in whole_day(day).items()}
    body = await get_slots(client, desk, clinic.provider_ids[0], params)
    assert [s["start"] for s in body["data"]] == morning(day, "09:00", "09:30", "10:00",
                                                         "10:30")


# --- what removes and adds slots -----------------------------------------------------------


async def test_a_booked_slot_disappears_and_comes_back_when_cancelled(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory)
    provider_id, day = clinic.provider_ids[0], days_ahead(2)
    booked = await client.post("/api/v1/appointments", headers=desk, json={
        "patient_id": str(clinic.patient_ids[0]), "provider_id": str(provider_id),
        "start": local(day, time(9, 30)).isoformat()})
    assert booked.status_code == 201, booked.text
    assert await starts(client, desk, provider_id, day) == morning(day, "09:00", "10:00",
                                                                   "10:30")
    cancelled = await client.post(f"/api/v1/appointments/{booked.json()['id']}/cancel",
                                  headers=desk, json={"reason": "Patient asked"})
    assert cancelled.status_code == 200, cancelled.text
    assert await starts(client, desk, provider_id, day) == morning(day, "09:00", "09:30",
                                                                   "10:00", "10:30")


async def test_provider_time_off_removes_overlapping_slots_of_that_provider_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory, providers=2)
    away, other = clinic.provider_ids
    day = days_ahead(4)
    await add_exception(client, factory, clinic, kind="time_off", provider_id=str(away),
                        starts_at=local(day, time(9, 15)).isoformat(),
                        ends_at=local(day, time(10)).isoformat(), reason="Dentist")
    assert await starts(client, desk, away, day) == morning(day, "10:00", "10:30")
    assert await starts(client, desk, other, day) == morning(day, "09:00", "09:30", "10:00",
                                                             "10:30")
    # The day after is untouched.
    next_day = day + timedelta(days=1)
    assert len(await starts(client, desk, away, next_day)) == 4


async def test_a_clinic_closure_removes_slots_of_every_provider(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory, providers=2)
    day = days_ahead(5)
    closure = await add_exception(client, factory, clinic, kind="time_off",
                                  starts_at=local(day, time(0)).isoformat(),
                                  ends_at=local(day, time(10)).isoformat(),
                                  reason="Fumigation")
    assert closure["provider_id"] is None
    response = await client.get("/api/v1/slots", headers=desk, params=whole_day(day))
    assert response.status_code == 200, response.text
    for entry in response.json()["providers"]:
        assert [s["start"] for s in entry["data"]] == morning(day, "10:00", "10:30")


async def test_extra_hours_add_slots_of_their_own_length(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=1)
    desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    provider_id, day = clinic.provider_ids[0], days_ahead(6)
    assert await starts(client, desk, provider_id, day) == []
    await add_exception(client, factory, clinic, kind="extra_hours",
                        provider_id=str(provider_id), slot_minutes=20,
                        starts_at=local(day, time(18)).isoformat(),
                        ends_at=local(day, time(19)).isoformat())
    body = await get_slots(client, desk, provider_id, whole_day(day))
    assert body["data"] == [
        {"start": s, "end": e} for s, e in zip(
            morning(day, "18:00", "18:20", "18:40"), morning(day, "18:20", "18:40", "19:00"),
            strict=True)
    ]


async def test_slots_inside_the_minimum_notice_are_not_offered(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=1)
    provider_id = clinic.provider_ids[0]
    desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    now = datetime.now(UTC)
    # Half-hour slots without a gap from before now until four hours ahead.
    opens = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    await add_exception(client, factory, clinic, kind="extra_hours",
                        provider_id=str(provider_id), slot_minutes=30,
                        starts_at=opens.isoformat(),
                        ends_at=(opens + timedelta(hours=5)).isoformat())
    body = await get_slots(client, desk, provider_id, {
        "start": opens.isoformat(), "end": (opens + timedelta(hours=5)).isoformat()})
    first = datetime.fromisoformat(body["data"][0]["start"])
    # The default policy asks for an hour's notice.
    assert now + timedelta(minutes=60) <= first < now + timedelta(minutes=90)


# --- every provider at once ----------------------------------------------------------------


async def test_clinic_slots_list_every_active_provider_by_name_with_their_own_slots(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=3)
    first, second, inactive = clinic.provider_ids
    factory.weekly_hours(clinic, first, start=time(9), end=time(10))
    factory.weekly_hours(clinic, inactive, start=time(9), end=time(10))
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(provider).where(provider.c.id == inactive).values(is_active=False))
    day = days_ahead(2)
    response = await client.get("/api/v1/slots", params=whole_day(day),
                                headers=factory.headers(clinic.users[Role.DOCTOR]))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["timezone"] == "America/Santiago"
    assert body["providers"] == [
        {"provider_id": str(first), "data": [
            {"start": s, "end": e} for s, e in zip(morning(day, "09:00", "09:30"),
                                                   morning(day, "09:30", "10:00"), strict=True)
        ]},
        {"provider_id": str(second), "data": []},
    ]


async def test_clinic_slots_do_not_show_another_clinics_providers(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, desk = clinic_with_hours(factory)
    clinic_with_hours(factory, providers=2)
    response = await client.get("/api/v1/slots", headers=desk, params=whole_day(days_ahead(2)))
    assert [p["provider_id"] for p in response.json()["providers"]] == [
        str(clinic.provider_ids[0])]


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture
async def desk_clinic(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    return clinic_with_hours(factory)


def both_paths(clinic: ClinicData) -> list[str]:
    return [slots_path(clinic.provider_ids[0]), "/api/v1/slots"]


@pytest.mark.parametrize("hours", [0, -1])
async def test_end_not_after_start_is_refused_as_an_invalid_window(
    client: httpx.AsyncClient, desk_clinic: tuple[ClinicData, dict[str, str]], hours: int
) -> None:
    clinic, desk = desk_clinic
    start = datetime.now(UTC) + timedelta(days=1)
    for path in both_paths(clinic):
        response = await client.get(path, headers=desk, params={
            "start": start.isoformat(), "end": (start + timedelta(hours=hours)).isoformat()})
        error = expect_error(response, 422, "invalid_window")
        assert error["message"] == "end must be after start."
        assert error["details"] == {"field": "end"}


async def test_a_window_over_62_days_is_refused_and_62_days_is_accepted(
    client: httpx.AsyncClient, desk_clinic: tuple[ClinicData, dict[str, str]]
) -> None:
    clinic, desk = desk_clinic
    start = datetime.now(UTC)
    for path in both_paths(clinic):
        too_long = await client.get(path, headers=desk, params={
            "start": start.isoformat(),
            "end": (start + timedelta(days=62, seconds=1)).isoformat()})
        error = expect_error(too_long, 422, "window_too_long")
        assert "62 days" in error["message"]
        longest = await client.get(path, headers=desk, params={
            "start": start.isoformat(), "end": (start + timedelta(days=62)).isoformat()})
        assert longest.status_code == 200, longest.text


@pytest.mark.parametrize(("parameter", "value"), [
    ("start", "next tuesday"),
    ("start", "2026-13-01T09:00:00-03:00"),
    ("end", "2030-01-02T09:00:00"),  # no offset: which 09:00?
    ("start", "2030-01-01"),
])
async def test_a_malformed_or_naive_datetime_is_refused_naming_the_parameter(
    client: httpx.AsyncClient, desk_clinic: tuple[ClinicData, dict[str, str]],
    parameter: str, value: str,
) -> None:
    clinic, desk = desk_clinic
    params = {"start": "2030-01-01T00:00:00-03:00", "end": "2030-01-02T00:00:00-03:00"}
    params[parameter] = value
    for path in both_paths(clinic):
        error = expect_error(await client.get(path, headers=desk, params=params), 422,
                             "invalid_input")
        assert [f["field"] for f in error["details"]["fields"]] == [parameter]
        assert parameter in error["message"]


async def test_a_missing_window_is_refused_naming_both_parameters(
    client: httpx.AsyncClient, desk_clinic: tuple[ClinicData, dict[str, str]]
) -> None:
    clinic, desk = desk_clinic
    error = expect_error(await client.get(slots_path(clinic.provider_ids[0]), headers=desk),
                         422, "invalid_input")
    assert sorted(f["field"] for f in error["details"]["fields"]) == ["end", "start"]


async def test_slots_of_an_unknown_or_another_clinics_provider_are_not_found(
    client: httpx.AsyncClient, factory: Factory,
    desk_clinic: tuple[ClinicData, dict[str, str]],
) -> None:
    _, desk = desk_clinic
    other, _ = clinic_with_hours(factory)
    for provider_id in (uuid.uuid4(), other.provider_ids[0]):
        response = await client.get(slots_path(provider_id), headers=desk,
                                    params=whole_day(days_ahead(2)))
        error = expect_error(response, 404, "provider_not_found")
        assert str(provider_id) in error["message"]


async def test_slots_need_a_signed_in_caller(
    client: httpx.AsyncClient, desk_clinic: tuple[ClinicData, dict[str, str]]
) -> None:
    clinic, _ = desk_clinic
    for path in both_paths(clinic):
        expect_error(await client.get(path, params=whole_day(days_ahead(2))), 401,
                     "not_authenticated")
