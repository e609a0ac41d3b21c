"""What the front desk sees about reminders: every message about an appointment with each
try (after a real dispatch with a failure and a retry), who may see it, and the clinic's
delivery rate over a window, per channel."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as wall
from typing import Any

import httpx
import time_machine

from shared_models.enums import Role
from sync_server.reminders.dispatcher import Dispatcher
from tests.factories import Factory, expect_error
from tests.fakes.text_provider import TextProvider
from tests.sync_server.reminders.conftest import Clinic, slot

STATS = "/api/v1/reminders/stats"


async def no_quiet_hours(clinic: Clinic) -> None:
    """Plan and send at any hour the test runs."""
    response = await clinic.client.put(
        "/api/v1/reminders/policy", headers=clinic.headers(Role.ADMIN),
        json={"offsets_minutes": [1440, 120], "quiet_start": "00:00", "quiet_end": "00:00"})
    assert response.status_code == 200, response.text


async def messages(clinic: Clinic, appointment_id: str, role: Role = Role.RECEPTIONIST
                   ) -> httpx.Response:
    return await clinic.client.get(f"/api/v1/appointments/{appointment_id}/reminders",
                                   headers=clinic.headers(role))


def at(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# --- one appointment's messages -------------------------------------------------------


async def test_every_message_is_listed_with_each_try_after_a_failure_and_a_retry(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    await no_quiet_hours(clinic)
    provider.fail_first = 1
    # In UTC: offsets are elapsed time, even across a change of the clocks.
    start = slot(3, wall(12, 0)).astimezone(UTC)
    booked = await clinic.book(clinic.patient(channels=("sms",)), start)
    clinic.make_due(booked["id"])
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        assert dispatcher.run_once().outcomes == {"retry": 2}
        waiting = (await messages(clinic, booked["id"])).json()["data"]
        clock.shift(timedelta(minutes=5))
        assert dispatcher.run_once().outcomes == {"sent": 2}
        sent_around = datetime.now(UTC)
    error = "sms: provider answered 500 (code 20500)"
    assert [(m["status"], m["attempts"], m["last_error"], len(m["tries"])) for m in waiting] \
        == [("pending", 1, error, 1), ("pending", 1, error, 1)]
    assert all(at(m["next_attempt_at"]) is not None for m in waiting)

    response = await messages(clinic, booked["id"])
    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    assert [(m["kind"], m["offset_minutes"], at(m["due_at"])) for m in listed] == [
        ("reminder", 1440, start - timedelta(days=1)),
        ("reminder", 120, start - timedelta(hours=2))]
    for m in listed:
        assert m["appointment_id"] == booked["id"]
        assert at(m["appointment_starts_at"]) == start
        assert (m["status"], m["channel"], m["attempts"], m["last_error"]) == (
            "sent", "sms", 2, None)
        assert m["next_attempt_at"] is None  # nothing more will be tried
        sent_at = at(m["sent_at"])
        assert sent_at is not None
        assert abs(sent_at - sent_around) < timedelta(seconds=30)
        assert [(t["channel"], t["outcome"], t["error"]) for t in m["tries"]] == [
            ("sms", "temporary_failure", error), ("sms", "delivered", None)]
        first, second = (at(t["attempted_at"]) for t in m["tries"])
        assert first is not None
        assert second is not None
        assert second - first >= timedelta(minutes=5)
        assert second == sent_at
    assert {m["id"] for m in listed} == {str(r.id) for r in clinic.reminders(booked["id"])}

    # A reschedule adds the notice and the reminders for the new time, still to send.
    new_start = slot(4, wall(9, 0)).astimezone(UTC)
    moved = await clinic.command(booked["id"], "reschedule", {"start": new_start.isoformat()})
    assert moved.status_code == 200, moved.text
    after = (await messages(clinic, booked["id"])).json()["data"]
    assert [(m["kind"], m["status"], at(m["appointment_starts_at"])) for m in after] == [
        ("reminder", "sent", start), ("reminder", "sent", start),
        ("rescheduled", "pending", new_start), ("reminder", "pending", new_start),
        ("reminder", "pending", new_start)]
    assert all(m["tries"] == [] and m["next_attempt_at"] for m in after[2:])


async def test_a_doctor_may_read_an_appointments_messages_but_not_lab_or_pharmacy(
    clinic: Clinic,
) -> None:
    booked = await clinic.book(clinic.patient(), slot(3, wall(10, 0)))
    desk = await messages(clinic, booked["id"])
    assert desk.status_code == 200, desk.text
    assert len(desk.json()["data"]) == 2
    for role in (Role.DOCTOR, Role.ADMIN):
        allowed = await messages(clinic, booked["id"], role)
        assert allowed.status_code == 200, (role, allowed.text)
        assert allowed.json() == desk.json()
    for role in (Role.LAB_TECH, Role.PHARMACIST):
        expect_error(await messages(clinic, booked["id"], role), 403, "permission_denied")
    unauthenticated = await clinic.client.get(f"/api/v1/appointments/{booked['id']}/reminders")
    expect_error(unauthenticated, 401, "not_authenticated")


async def test_an_unknown_or_another_clinics_appointment_is_404(
    factory: Factory, clinic: Clinic, client: httpx.AsyncClient,
) -> None:
    expect_error(await messages(clinic, str(uuid.uuid4())), 404, "appointment_not_found")
    other = Clinic(factory, factory.clinic(patients=0, providers=1), client)
    factory.weekly_hours(other.data, other.provider_id)
    theirs = await other.book(other.patient(), slot(3, wall(10, 0)))
    assert len((await messages(other, theirs["id"])).json()["data"]) == 2
    error = expect_error(await messages(clinic, theirs["id"]), 404, "appointment_not_found")
    assert theirs["id"] in error["message"]
    malformed = await messages(clinic, "not-an-id")
    assert malformed.status_code == 422


# --- delivery rate --------------------------------------------------------------------


async def stats(clinic: Clinic, start: datetime | str | None, end: datetime | str | None,
                role: Role = Role.RECEPTIONIST) -> httpx.Response:
    params = {k: v.isoformat() if isinstance(v, datetime) else v
              for k, v in (("start", start), ("end", end)) if v is not None}
    return await clinic.client.get(STATS, params=params, headers=clinic.headers(role))


def counts(body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in ("sent", "dead", "pending", "cancelled", "skipped",
                                 "delivery_rate", "by_channel")}


async def test_stats_count_each_outcome_and_the_delivery_rate_per_channel(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    await no_quiet_hours(clinic)
    provider.invalid.add("+56911112222")

    async def book(hour: int, **patient: Any) -> str:
        booked = await clinic.book(clinic.patient(**patient), slot(3, wall(hour, 0)))
        return str(booked["id"])

    by_sms = await book(10, channels=("sms",))
    by_mail = await book(11, channels=("email",))
    refused = await book(12, channels=("whatsapp",), phone="+56911112222")
    no_channel = await book(13, channels=())
    later = await book(14, channels=("email",))
    cancelled = await book(15, channels=("email",))
    for appointment_id in (by_sms, by_mail, refused, no_channel):
        clinic.make_due(appointment_id)
    assert dispatcher.run_once().outcomes == {"sent": 4, "dead": 2, "skipped": 2}
    assert (await clinic.command(cancelled, "cancel", {"reason": "Patient called"})
            ).status_code == 200
    assert {r.status for r in clinic.reminders(later)} == {"pending"}

    now = datetime.now(UTC)
    everything = await stats(clinic, now - timedelta(hours=1), now + timedelta(days=10))
    assert everything.status_code == 200, everything.text
    assert counts(everything.json()) == {
        # The cancellation notice is due now and still waiting.
        "sent": 4, "dead": 2, "pending": 3, "cancelled": 2, "skipped": 2,
        "delivery_rate": round(4 / 6, 4),
        "by_channel": [{"channel": "email", "sent": 2, "dead": 0},
                       {"channel": "sms", "sent": 2, "dead": 0},
                       {"channel": "whatsapp", "sent": 0, "dead": 2}]}
    assert at(everything.json()["start"]) == now - timedelta(hours=1)

    # Only the two-hours-before reminders are due on the day of the appointments.
    day = slot(3, wall(0, 0))
    on_the_day = await stats(clinic, day, day + timedelta(days=1), Role.ADMIN)
    assert counts(on_the_day.json()) == {
        "sent": 2, "dead": 1, "pending": 1, "cancelled": 1, "skipped": 1,
        "delivery_rate": round(2 / 3, 4),
        "by_channel": [{"channel": "email", "sent": 1, "dead": 0},
                       {"channel": "sms", "sent": 1, "dead": 0},
                       {"channel": "whatsapp", "sent": 0, "dead": 1}]}

    # [start, end): a window ending at the first due time leaves it out.
    first_due = slot(3, wall(10, 0)).astimezone(UTC) - timedelta(days=1)
    before = await stats(clinic, first_due - timedelta(days=1), first_due)
    assert counts(before.json()) == {"sent": 0, "dead": 0, "pending": 0, "cancelled": 0,
                                     "skipped": 0, "delivery_rate": None, "by_channel": []}
    from_first = await stats(clinic, first_due, first_due + timedelta(minutes=1))
    assert counts(from_first.json())["sent"] == 1


async def test_stats_are_for_the_front_office(clinic: Clinic) -> None:
    now = datetime.now(UTC)
    for role in (Role.DOCTOR, Role.LAB_TECH, Role.PHARMACIST):
        expect_error(await stats(clinic, now, now + timedelta(days=1), role), 403,
                     "permission_denied")


async def test_stats_refuse_a_bad_window_saying_why(clinic: Clinic) -> None:
    now = datetime.now(UTC)
    for end in (now, now - timedelta(days=1)):
        error = expect_error(await stats(clinic, now, end), 422, "invalid_window")
        assert error["details"] == {"field": "end"}
        assert "end must be after start" in error["message"]
    assert (await stats(clinic, now, now + timedelta(days=366))).status_code == 200
    error = expect_error(await stats(clinic, now, now + timedelta(days=367)), 422,
                         "window_too_long")
    assert "at most a year" in error["message"]
    for start, end, missing in ((None, now, ["start"]), (now, None, ["end"]),
                                (None, None, ["start", "end"])):
        error = expect_error(await stats(clinic, start, end), 422, "invalid_input")
        assert [f["field"] for f in error["details"]["fields"]] == missing
    naive = expect_error(await stats(clinic, "2025-01-01T00:00:00", now), 422, "invalid_input")
    assert [f["field"] for f in naive["details"]["fields"]] == ["start"]
    garbage = expect_error(await stats(clinic, "yesterday", now), 422, "invalid_input")
    assert [f["field"] for f in garbage["details"]["fields"]] == ["start"]

