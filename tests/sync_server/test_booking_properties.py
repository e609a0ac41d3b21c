"""Property: whatever mix of book, cancel and reschedule commands several front desks send
at once, the booking service never leaves two active appointments of one provider
overlapping, never loses or invents an appointment, and never answers 5xx.

The slots include partly overlapping ones (30-minute weekly slots beside 45-minute extra
hours), so the guarantee is about time ranges, not just equal slot starts.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared_models.enums import Role
from tests.factories import ClinicData, Factory, expect_error

SANTIAGO = ZoneInfo("America/Santiago")
PATIENTS = 6


@dataclass(frozen=True)
class SlotChoice:
    provider: int  # index into the clinic's providers
    start: time
    minutes: int


# Provider 0: weekly 30-minute slots and 45-minute extra hours from 10:10 that straddle
# them; provider 1: weekly slots at the same wall-clock times as provider 0.
SLOTS = (
    SlotChoice(0, time(10, 0), 30),
    SlotChoice(0, time(10, 30), 30),
    SlotChoice(0, time(11, 0), 30),
    SlotChoice(0, time(10, 10), 45),
    SlotChoice(0, time(10, 55), 45),
    SlotChoice(1, time(10, 0), 30),
    SlotChoice(1, time(10, 30), 30),
)

book = st.tuples(st.just("book"), st.integers(0, PATIENTS - 1),
                 st.integers(0, len(SLOTS) - 1))
cancel = st.tuples(st.just("cancel"), st.integers(0, 30))
move = st.tuples(st.just("move"), st.integers(0, 30), st.integers(0, len(SLOTS) - 1))
batches = st.lists(st.lists(st.one_of(book, cancel, move), min_size=1, max_size=6),
                   min_size=1, max_size=4)

Span = tuple[uuid.UUID, datetime, datetime]  # provider, start, end (UTC)


@dataclass
class Ledger:
    """What the test itself did and was told, to compare with what is stored."""

    booked: list[uuid.UUID] = field(default_factory=list)
    asked: dict[uuid.UUID, set[Span]] = field(default_factory=dict)
    answers: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)
    cancelled: set[uuid.UUID] = field(default_factory=set)


def span_of(choice: SlotChoice, clinic: ClinicData, day: date) -> Span:
    start = datetime.combine(day, choice.start, tzinfo=SANTIAGO).astimezone(UTC)
    return clinic.provider_ids[choice.provider], start, start + timedelta(minutes=choice.minutes)


def answered_span(body: dict[str, Any]) -> Span:
    return (uuid.UUID(body["provider_id"]), datetime.fromisoformat(body["starts_at"]),
            datetime.fromisoformat(body["ends_at"]))


async def offered_spans(client: httpx.AsyncClient, clinic: ClinicData, day: date,
                        desk: dict[str, str]) -> set[Span]:
    start = datetime.combine(day, time(9), tzinfo=SANTIAGO)
    offered: set[Span] = set()
    for provider_id in clinic.provider_ids:
        response = await client.get(
            f"/api/v1/providers/{provider_id}/slots", headers=desk,
            params={"start": start.isoformat(), "end": (start + timedelta(hours=4)).isoformat()})
        assert response.status_code == 200, response.text
        offered |= {(provider_id, datetime.fromisoformat(s["start"]).astimezone(UTC),
                     datetime.fromisoformat(s["end"]).astimezone(UTC))
                    for s in response.json()["data"]}
    return offered


def check_answer(command: tuple[Any, ...], target: uuid.UUID | None, span: Span | None,
                 response: httpx.Response, ledger: Ledger) -> None:
    assert response.status_code < 500, response.text
    kind = command[0]
    if kind == "book":
        if response.status_code == 201:
            body = response.json()
            appointment_id = uuid.UUID(body["id"])
            assert answered_span(body) == span
            assert body["status"] == "booked"
            ledger.booked.append(appointment_id)
            ledger.asked[appointment_id] = {span}  # type: ignore[arg-type]
            ledger.answers[appointment_id] = [body]
        else:
            expect_error(response, 409, "slot_taken")
        return
    assert target is not None
    if response.status_code == 200:
        body = response.json()
        ledger.answers[target].append(body)
        if kind == "cancel":
            assert body["status"] == "cancelled"
            ledger.cancelled.add(target)
        else:
            assert answered_span(body) == span
            assert body["status"] == "booked"
        return
    code = "invalid_transition" if kind == "cancel" else response.json()["error"]["code"]
    assert code in ("slot_taken", "invalid_transition"), response.text
    expect_error(response, 409, code)


def check_stored(factory: Factory, clinic: ClinicData, ledger: Ledger) -> None:
    assert factory.overlapping_appointments(clinic) == []
    stored = factory.appointments(clinic)
    # Nothing lost, nothing invented.
    assert set(stored) == set(ledger.booked)
    for appointment_id, row in stored.items():
        expected = "cancelled" if appointment_id in ledger.cancelled else "booked"
        assert row.status == expected, appointment_id
        assert row.deleted_at is None
        span = (row.provider_id, row.starts_at, row.ends_at)
        assert span in ledger.asked[appointment_id], appointment_id
        # The last change the server confirmed is the one that stuck.
        last = max(ledger.answers[appointment_id], key=lambda b: b["server_version"])
        assert (answered_span(last), last["status"]) == (span, row.status), appointment_id


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plan=batches)
async def test_concurrent_book_cancel_reschedule_never_overlap_lose_or_fail(
    client: httpx.AsyncClient, factory: Factory, plan: list[list[tuple[Any, ...]]]
) -> None:
    clinic = factory.clinic(patients=PATIENTS, providers=2)
    for provider_id in clinic.provider_ids:
        factory.weekly_hours(clinic, provider_id)
    day = (datetime.now(SANTIAGO) + timedelta(days=2)).date()
    extra_start = datetime.combine(day, time(10, 10), tzinfo=SANTIAGO)
    factory.extra_hours(clinic, clinic.provider_ids[0], starts_at=extra_start,
                        ends_at=extra_start + timedelta(minutes=90), slot_minutes=45)
    desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    spans = [span_of(choice, clinic, day) for choice in SLOTS]
    assert set(spans) <= await offered_spans(client, clinic, day, desk)

    ledger = Ledger()
    for batch in plan:
        calls = []
        for command in batch:
            if command[0] == "book":
                _, patient, slot = command
                provider_id, start, _ = spans[slot]
                calls.append((command, None, spans[slot], client.post(
                    "/api/v1/appointments", headers=desk, json={
                        "patient_id": str(clinic.patient_ids[patient]),
                        "provider_id": str(provider_id),
                        "start": start.astimezone(SANTIAGO).isoformat()})))
            elif ledger.booked:
                target = ledger.booked[command[1] % len(ledger.booked)]
                if command[0] == "cancel":
                    calls.append((command, target, None, client.post(
                        f"/api/v1/appointments/{target}/cancel", headers=desk,
                        json={"reason": "property test"})))
                else:
                    provider_id, start, _ = spans[command[2]]
                    ledger.asked[target].add(spans[command[2]])
                    calls.append((command, target, spans[command[2]], client.post(
                        f"/api/v1/appointments/{target}/reschedule", headers=desk,
                        json={"start": start.astimezone(SANTIAGO).isoformat(),
                              "provider_id": str(provider_id)})))
        responses = await asyncio.gather(*(call for *_, call in calls))
        for (command, target, span, _), response in zip(calls, responses, strict=True):
            check_answer(command, target, span, response, ledger)
        check_stored(factory, clinic, ledger)
