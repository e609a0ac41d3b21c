"""Booking races over real HTTP: many front desks at once against uvicorn on the real
database. Exactly one wins each slot, every loser gets 409 with the next free slots,
nothing is lost, and the database never holds two overlapping active appointments."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from shared_models.enums import Role
from tests.conftest import LiveServer
from tests.factories import ClinicData, Factory, expect_error

TIMEOUT = httpx.Timeout(60.0)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=TIMEOUT,
                                 limits=limits) as c:
        yield c


async def warm_up(http: httpx.AsyncClient, connections: int) -> None:
    """Open `connections` keep-alive connections first, so that the racing requests leave
    together instead of one TCP handshake after another."""
    answers = await asyncio.gather(*(http.get("/healthz") for _ in range(connections)))
    assert all(a.status_code == 200 for a in answers)


def staffed_clinic(factory: Factory, *, patients: int) -> tuple[ClinicData, uuid.UUID,
                                                                 dict[str, str]]:
    clinic = factory.clinic(patients=patients, providers=1)
    provider_id = clinic.provider_ids[0]
    factory.weekly_hours(clinic, provider_id)
    return clinic, provider_id, factory.headers(clinic.users[Role.RECEPTIONIST])


async def free_slots(http: httpx.AsyncClient, provider_id: uuid.UUID,
                     headers: dict[str, str], *, since: datetime | None = None,
                     days: int = 3) -> list[dict[str, str]]:
    """Free slots for `days` days from `since`, by default a day ahead (well past the
    60-minute notice)."""
    since = since or datetime.now(UTC) + timedelta(days=1)
    response = await http.get(f"/api/v1/providers/{provider_id}/slots", headers=headers,
                              params={"start": since.isoformat(),
                                      "end": (since + timedelta(days=days)).isoformat()})
    assert response.status_code == 200, response.text
    assert response.json()["timezone"] == "America/Santiago"
    slots: list[dict[str, str]] = response.json()["data"]
    return slots


def check_lost_race(response: httpx.Response, taken: datetime) -> list[datetime]:
    """A loser's answer: 409 slot_taken with three alternatives, none of them the slot
    just taken; returns the alternatives' starts."""
    error = expect_error(response, 409, "slot_taken")
    alternatives = [parse(a["start"]) for a in error["details"]["alternatives"]]
    assert len(alternatives) == 3, error
    assert taken not in alternatives
    assert all(a > taken for a in alternatives)
    return alternatives


async def test_100_concurrent_bookings_of_one_slot_have_one_winner_and_99_slot_taken(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, provider_id, desk = staffed_clinic(factory, patients=100)
    since = datetime.now(UTC) + timedelta(days=1)
    free = await free_slots(http, provider_id, desk, since=since)
    slot = free[4]
    taken = parse(slot["start"])

    async def book(patient_id: uuid.UUID) -> httpx.Response:
        return await http.post("/api/v1/appointments", headers=desk, json={
            "patient_id": str(patient_id), "provider_id": str(provider_id),
            "start": slot["start"]})

    await warm_up(http, len(clinic.patient_ids))
    responses = await asyncio.gather(*(book(p) for p in clinic.patient_ids))

    assert sorted(r.status_code for r in responses) == [201] + [409] * 99
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert parse(winner["starts_at"]) == taken
    offered = {check_lost_race(r, taken)[0] for r in responses if r.status_code == 409}
    # Every loser was told after the winner committed, so all see the same next slot.
    assert offered == {parse(free[5]["start"])}

    stored = factory.appointments(clinic)
    assert list(stored) == [uuid.UUID(winner["id"])]
    assert stored[uuid.UUID(winner["id"])].status == "booked"
    assert factory.overlapping_appointments(clinic) == []
    after = await free_slots(http, provider_id, desk, since=since)
    assert after == [s for s in free if s != slot]


async def test_50_concurrent_reschedules_into_one_slot_have_one_winner_and_keep_losers_times(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, provider_id, desk = staffed_clinic(factory, patients=50)
    free = await free_slots(http, provider_id, desk, days=4)
    target, rest = free[0], free[1:51]
    assert len(rest) == 50
    original = {
        factory.appointment(clinic, provider_id, patient_id,
                            starts_at=parse(s["start"])): parse(s["start"])
        for patient_id, s in zip(clinic.patient_ids, rest, strict=True)
    }
    target_start = parse(target["start"])

    async def move(appointment_id: uuid.UUID) -> tuple[uuid.UUID, httpx.Response]:
        return appointment_id, await http.post(
            f"/api/v1/appointments/{appointment_id}/reschedule", headers=desk,
            json={"start": target["start"]})

    await warm_up(http, len(original))
    outcomes = await asyncio.gather(*(move(a) for a in original))

    assert sorted(r.status_code for _, r in outcomes) == [200] + [409] * 49
    winner = next(a for a, r in outcomes if r.status_code == 200)
    for _, response in outcomes:
        if response.status_code == 409:
            check_lost_race(response, target_start)
    stored = factory.appointments(clinic)
    assert set(stored) == set(original)
    for appointment_id, row in stored.items():
        expected = target_start if appointment_id == winner else original[appointment_id]
        assert (row.starts_at, row.status) == (expected, "booked"), appointment_id
        assert row.ends_at - row.starts_at == timedelta(minutes=30)
    assert factory.overlapping_appointments(clinic) == []


async def test_bookings_and_reschedules_racing_for_one_slot_have_exactly_one_winner(
    http: httpx.AsyncClient, factory: Factory
) -> None:
    bookers, movers = 20, 20
    clinic, provider_id, desk = staffed_clinic(factory, patients=bookers + movers)
    free = await free_slots(http, provider_id, desk)
    target = free[0]
    target_start = parse(target["start"])
    moving_patients, booking_patients = (clinic.patient_ids[:movers],
                                         clinic.patient_ids[movers:])
    original = {
        factory.appointment(clinic, provider_id, patient_id,
                            starts_at=parse(s["start"])): parse(s["start"])
        for patient_id, s in zip(moving_patients, free[1:movers + 1], strict=True)
    }

    async def book(patient_id: uuid.UUID) -> tuple[str, httpx.Response]:
        return "book", await http.post("/api/v1/appointments", headers=desk, json={
            "patient_id": str(patient_id), "provider_id": str(provider_id),
            "start": target["start"]})

    async def move(appointment_id: uuid.UUID) -> tuple[str, httpx.Response]:
        return "move", await http.post(
            f"/api/v1/appointments/{appointment_id}/reschedule", headers=desk,
            json={"start": target["start"]})

    # Interleaved so that neither kind gets a head start.
    attempts = [c for pair in zip((book(p) for p in booking_patients),
                                  (move(a) for a in original), strict=True) for c in pair]
    await warm_up(http, len(attempts))
    outcomes = await asyncio.gather(*attempts)

    won = [(kind, r) for kind, r in outcomes if r.status_code in (200, 201)]
    assert len(won) == 1, [(k, r.status_code) for k, r in outcomes]
    kind, response = won[0]
    assert response.status_code == (201 if kind == "book" else 200)
    assert parse(response.json()["starts_at"]) == target_start
    for _, lost in outcomes:
        if lost.status_code not in (200, 201):
            check_lost_race(lost, target_start)

    stored = factory.appointments(clinic)
    winner_id = uuid.UUID(response.json()["id"])
    assert set(stored) == set(original) | {winner_id}
    for appointment_id, row in stored.items():
        assert row.status == "booked"
        if appointment_id == winner_id:
            assert row.starts_at == target_start
        else:
            assert row.starts_at == original[appointment_id], appointment_id
    assert factory.overlapping_appointments(clinic) == []
