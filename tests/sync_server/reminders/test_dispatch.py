"""The dispatcher against a real SMTP server and a local Twilio-style provider: what a
patient receives, retries with backoff, dead letters and their retry, falling back to the
next channel, quiet hours at send time, and reschedules and cancellations racing a send.
The clock is moved with time-machine."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from datetime import time as wall
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
import time_machine

from shared_models.enums import Role
from sync_server.core.config import Settings
from sync_server.core.signed import read_manage_token
from sync_server.reminders.dispatcher import Dispatcher
from tests.factories import expect_error
from tests.fakes.smtp import SmtpServer
from tests.fakes.text_provider import TextProvider
from tests.sync_server.reminders.conftest import PUBLIC_URL, SMS_SENDER, Clinic, slot

NO_QUIET = {"offsets_minutes": [1440, 120], "quiet_start": "00:00", "quiet_end": "00:00"}
DEFAULT_QUIET = {"offsets_minutes": [1440, 120], "quiet_start": "21:00", "quiet_end": "08:00"}


async def set_policy(clinic: Clinic, policy: dict[str, object]) -> None:
    response = await clinic.client.put("/api/v1/reminders/policy", json=policy,
                                       headers=clinic.headers(Role.ADMIN))
    assert response.status_code == 200, response.text


@pytest.fixture(autouse=True)
async def no_quiet_hours(clinic: Clinic) -> None:
    """Sends happen whatever the hour the suite runs at; the quiet-hours tests set them."""
    await set_policy(clinic, NO_QUIET)


def calendar_of(raw: bytes) -> icalendar.Calendar:
    from email import message_from_bytes
    from email.policy import default

    mail = message_from_bytes(raw, policy=default)
    parts = [p for p in mail.walk() if p.get_content_type() == "text/calendar"]
    assert len(parts) == 1
    return icalendar.Calendar.from_ical(parts[0].get_content())


def event_of(cal: icalendar.Calendar) -> icalendar.Event:
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    assert len(events) == 1
    return events[0]


async def test_a_booking_queues_a_reminder_a_day_and_two_hours_before(clinic: Clinic) -> None:
    start = slot(3, wall(10, 0))
    booked = await clinic.book(clinic.patient(), start)
    queued = clinic.reminders(booked["id"])
    instant = start.astimezone(UTC)  # a day before is 24 hours, even across a clock change
    assert [(r.kind, r.offset_minutes, r.status, r.due_at) for r in queued] == [
        ("reminder", 1440, "pending", instant - timedelta(days=1)),
        ("reminder", 120, "pending", instant - timedelta(hours=2)),
    ]
    assert {r.calendar_sequence for r in queued} == {0}


async def test_the_email_carries_text_html_the_ics_and_a_manage_link_that_works(
    clinic: Clinic, dispatcher: Dispatcher, smtp: SmtpServer, reminder_settings: Settings,
) -> None:
    start = slot(3, wall(10, 0))
    booked = await clinic.book(clinic.patient(email="ana@example.test"), start)
    clinic.make_due(booked["id"])
    result = dispatcher.run_once()
    assert result.outcomes == {"sent": 2}
    mails = smtp.mailbox.messages()
    assert len(mails) == 2
    assert {m.recipients for m in mails} == {("ana@example.test",)}
    mail = mails[0].message()
    assert "Recordatorio" in mail["Subject"]
    assert "10:00" in mail["Subject"]
    types = [p.get_content_type() for p in mail.walk()]
    assert types == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html",
                     "text/calendar"]
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "10:00" in text
    assert "America/Santiago" in text
    assert "<table" in html
    event = event_of(calendar_of(mails[0].raw))
    assert str(event["UID"]) == f"{booked['id']}@consulta"
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == start
    link = next(line for line in text.splitlines() if PUBLIC_URL in line).split(": ", 1)[1]
    assert link.startswith(f"{PUBLIC_URL}/book/{clinic.data.slug}/manage?token=")
    claims = read_manage_token(reminder_settings, link.split("token=", 1)[1],
                               clinic_id=clinic.data.id, now=datetime.now(UTC))
    assert str(claims.appointment_id) == booked["id"]
    sent = clinic.reminders(booked["id"])
    assert {(r.status, r.channel) for r in sent} == {("sent", "email")}
    assert all(m.message_id.startswith(f"<{r.id}-email@") for m, r in
               zip(sorted(mails, key=lambda m: m.message_id), sorted(sent, key=lambda r: r.id),
                   strict=True))


async def test_a_reschedule_reissues_the_ics_with_the_same_uid_and_a_higher_sequence(
    clinic: Clinic, dispatcher: Dispatcher, smtp: SmtpServer,
) -> None:
    booked = await clinic.book(clinic.patient(), slot(3, wall(10, 0)))
    clinic.make_due(booked["id"])
    dispatcher.run_once()
    new_start = slot(4, wall(15, 30))
    moved = await clinic.command(booked["id"], "reschedule", {"start": new_start.isoformat()})
    assert moved.status_code == 200, moved.text
    queue = clinic.reminders(booked["id"])
    # Oldest first, then by due time: the notice goes now, the reminders later.
    assert [(r.kind, r.status, r.calendar_sequence) for r in queue if r.status == "pending"] == [
        ("rescheduled", "pending", 1), ("reminder", "pending", 1), ("reminder", "pending", 1)]
    assert dispatcher.run_once().outcomes == {"sent": 1}  # the notice is due now
    notice = smtp.mailbox.messages()[-1]
    assert "cambió" in notice.message()["Subject"]
    first, second = (event_of(calendar_of(m.raw)) for m in smtp.mailbox.messages()[::2])
    assert second["UID"] == first["UID"]
    assert int(second["SEQUENCE"]) > int(first["SEQUENCE"])
    assert second.decoded("DTSTART") == new_start


async def test_a_cancellation_cancels_the_queue_and_sends_method_cancel(
    clinic: Clinic, dispatcher: Dispatcher, smtp: SmtpServer,
) -> None:
    booked = await clinic.book(clinic.patient(language="en"), slot(3, wall(11, 0)))
    cancelled = await clinic.command(booked["id"], "cancel", {"reason": "Patient called"})
    assert cancelled.status_code == 200, cancelled.text
    queue = clinic.reminders(booked["id"])
    assert sorted((r.kind, r.status) for r in queue) == [
        ("cancelled", "pending"), ("reminder", "cancelled"), ("reminder", "cancelled")]
    assert dispatcher.run_once().outcomes == {"sent": 1}
    (mail,) = smtp.mailbox.messages()
    assert mail.message()["Subject"].startswith("Your appointment at")
    cal = calendar_of(mail.raw)
    assert str(cal["METHOD"]) == "CANCEL"
    event = event_of(cal)
    assert str(event["STATUS"]) == "CANCELLED"
    assert int(event["SEQUENCE"]) == 1


async def test_check_in_cancels_what_is_still_queued(clinic: Clinic) -> None:
    booked = await clinic.book(clinic.patient(), slot(3, wall(9, 0)))
    checked = await clinic.command(booked["id"], "check-in")
    assert checked.status_code == 200, checked.text
    assert {(r.status, r.last_error) for r in clinic.reminders(booked["id"])} == {
        ("cancelled", "appointment checked in")}


async def test_the_provider_failing_twice_delivers_on_the_third_attempt_after_backoff(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    provider.fail_first = 2
    booked = await clinic.book(clinic.patient(channels=("sms",)), slot(3, wall(12, 0)))
    clinic.make_due(booked["id"])
    (first, _) = clinic.reminders(booked["id"])
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        waits = []
        for expected in ("retry", "retry", "sent"):
            result = dispatcher.run_once()
            assert result.outcomes.get(expected) == 2, result
            row = next(r for r in clinic.reminders(booked["id"]) if r.id == first.id)
            if expected == "retry":
                waits.append(row.next_attempt_at - datetime.now(UTC))
                assert dispatcher.run_once().claimed == 0  # not before the backoff
                clock.shift(timedelta(minutes=5))
    # Exponential backoff with jitter: about 30-60 s, then 60-120 s.
    assert timedelta(seconds=25) < waits[0] <= timedelta(seconds=61)
    assert timedelta(seconds=55) < waits[1] <= timedelta(seconds=121)
    assert row.status == "sent"
    assert row.attempts == 3
    assert row.channel == "sms"
    key = f"{first.id}-sms"
    assert provider.requests[key] == 3
    assert [d.key for d in provider.messages()].count(key) == 1
    delivered = provider.delivered[key]
    assert delivered.to == "+56987654321"
    assert delivered.sender == SMS_SENDER
    assert "Responda 1 para confirmar o 2 para cancelar" in delivered.body
    assert [a.outcome for a in clinic.attempts(first.id)] == [
        "temporary_failure", "temporary_failure", "delivered"]


async def test_always_failing_is_dead_lettered_after_three_attempts_listed_and_retried(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    provider.always_fail = True
    booked = await clinic.book(clinic.patient(channels=("whatsapp",)), slot(3, wall(13, 0)))
    clinic.make_due(booked["id"])
    with time_machine.travel(datetime.now(UTC), tick=True) as clock:
        outcomes = []
        for _ in range(3):
            outcomes.append(dispatcher.run_once().outcomes)
            clock.shift(timedelta(minutes=10))
        assert outcomes == [{"retry": 2}, {"retry": 2}, {"dead": 2}]
        assert dispatcher.run_once().claimed == 0
        listed = await clinic.client.get("/api/v1/reminders/dead-letters",
                                         headers=clinic.headers())
        assert listed.status_code == 200, listed.text
        dead = [d for d in listed.json()["data"] if d["appointment_id"] == booked["id"]]
        assert len(dead) == 2
        assert {(d["attempts"], d["last_error"]) for d in dead} == {
            (3, "whatsapp: provider answered 500 (code 20500)")}
        assert dead[0]["patient_name"] == "Ana Rojas"

        provider.always_fail = False
        for d in dead:
            retried = await clinic.client.post(f"/api/v1/reminders/{d['id']}/retry",
                                               headers=clinic.headers())
            assert retried.status_code == 200, retried.text
            assert retried.json()["status"] == "pending"
        assert dispatcher.run_once().outcomes == {"sent": 2}
    assert {(r.status, r.channel) for r in clinic.reminders(booked["id"])} == {
        ("sent", "whatsapp")}
    assert all(d.to.startswith("whatsapp:+") for d in provider.messages())
    again = await clinic.client.post(f"/api/v1/reminders/{dead[0]['id']}/retry",
                                     headers=clinic.headers())
    expect_error(again, 409, "reminder_not_dead")
    listed = await clinic.client.get("/api/v1/reminders/dead-letters", headers=clinic.headers())
    assert booked["id"] not in {d["appointment_id"] for d in listed.json()["data"]}


async def test_an_invalid_number_falls_back_to_the_next_channel_at_once(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider, smtp: SmtpServer,
) -> None:
    provider.invalid.add("+56987654321")
    booked = await clinic.book(clinic.patient(channels=("sms", "email")), slot(3, wall(14, 0)))
    clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"sent": 2}
    assert smtp.mailbox.count() == 2
    assert provider.messages() == []
    for row in clinic.reminders(booked["id"]):
        assert (row.status, row.channel, row.refused_channels, row.attempts) == (
            "sent", "email", ["sms"], 1)
        assert [(a.channel, a.outcome) for a in clinic.attempts(row.id)] == [
            ("sms", "permanent_failure"), ("email", "delivered")]


async def test_every_channel_refusing_is_a_dead_letter_without_retries(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider, smtp: SmtpServer,
) -> None:
    provider.invalid.add("+56987654321")
    smtp.mailbox.refused.add("ana@example.test")
    booked = await clinic.book(clinic.patient(channels=("sms", "email")), slot(3, wall(14, 0)))
    clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"dead": 2}
    assert {(r.status, r.attempts, r.last_error) for r in clinic.reminders(booked["id"])} == {
        ("dead", 1, "every channel refused the patient's address")}


async def test_a_patient_without_channels_is_skipped_and_says_why(
    clinic: Clinic, dispatcher: Dispatcher, smtp: SmtpServer,
) -> None:
    booked = await clinic.book(clinic.patient(channels=()), slot(3, wall(14, 0)))
    clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"skipped": 2}
    assert {(r.status, r.last_error) for r in clinic.reminders(booked["id"])} == {
        ("skipped", "the patient chose no reminder channel")}
    assert smtp.mailbox.count() == 0


async def test_quiet_hours_are_kept_in_the_patients_zone_when_planning(clinic: Clinic) -> None:
    # A patient in Madrid of a Santiago clinic: 10:00 in Santiago is 14:00 or 15:00 in
    # Madrid, and 2 hours before is fine, but an 18:00 appointment's day-before reminder
    # lands at 22:00-23:00 in Madrid, inside 21:00-08:00: it moves to 20:59 Madrid time.
    await set_policy(clinic, DEFAULT_QUIET)
    madrid = ZoneInfo("Europe/Madrid")
    start = slot(3, wall(18, 0))
    booked = await clinic.book(clinic.patient(zone="Europe/Madrid"), start)
    day_before, two_hours = clinic.reminders(booked["id"])
    local = day_before.due_at.astimezone(madrid)
    assert (local.hour, local.minute) == (20, 59)
    assert day_before.due_at < start.astimezone(UTC) - timedelta(days=1)
    local_two = two_hours.due_at.astimezone(madrid)
    # 16:00 Santiago is 20:00 or 21:00 in Madrid: either allowed as is, or moved before 21:00.
    assert not (local_two.hour >= 21)
    assert not (local_two.hour < 8)


async def test_a_reminder_caught_up_at_night_waits_for_the_morning_without_an_attempt(
    clinic: Clinic, dispatcher: Dispatcher, smtp: SmtpServer,
) -> None:
    await set_policy(clinic, DEFAULT_QUIET)
    booked = await clinic.book(clinic.patient(), slot(3, wall(16, 0)))
    clinic.make_due(booked["id"], at=datetime(2020, 1, 1, tzinfo=UTC))
    santiago_night = (datetime.now(UTC).astimezone(ZoneInfo("America/Santiago"))
                      + timedelta(days=1)).replace(hour=2, minute=30)
    with time_machine.travel(santiago_night, tick=True):
        assert dispatcher.run_once().outcomes == {"waiting": 2}
    rows = clinic.reminders(booked["id"])
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}
    morning = {r.next_attempt_at.astimezone(ZoneInfo("America/Santiago")).time() for r in rows}
    assert morning == {wall(8, 0)}
    assert smtp.mailbox.count() == 0


def _send_in_thread(dispatcher: Dispatcher) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        out["result"] = dispatcher.run_once()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


async def _wait_until(predicate: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("change", ["reschedule", "cancel"])
async def test_a_change_racing_a_send_in_progress_waits_for_it_and_nothing_old_goes_after(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider, change: str,
) -> None:
    """The provider holds its answer for a second after taking the message. The change
    made meanwhile commits only after that send is recorded as sent, and no message about
    the old time is taken once the change has committed."""
    provider.delay = 1.0
    old_start = slot(3, wall(10, 0))
    booked = await clinic.book(clinic.patient(channels=("sms",)), old_start)
    clinic.make_due(booked["id"])
    thread, _ = _send_in_thread(dispatcher)
    await _wait_until(lambda: len(provider.messages()) == 1)
    # Whichever of the two due reminders the dispatcher took first: a batch has no order.
    in_flight = provider.messages()[0].key
    body = ({"start": slot(4, wall(11, 0)).isoformat()} if change == "reschedule"
            else {"reason": "Patient called"})
    response = await clinic.command(booked["id"], change, body)
    assert response.status_code == 200, response.text
    taken_at_commit = {d.key for d in provider.messages()}
    status_at_commit = {r.id: r.status for r in clinic.reminders(booked["id"])}
    assert status_at_commit[uuid.UUID(in_flight.removesuffix("-sms"))] == "sent"  # it waited
    await asyncio.to_thread(thread.join)
    clinic.make_due(booked["id"])  # whatever is still queued, due now
    dispatcher.run_once()
    about_old = {f"{r.id}-sms" for r in clinic.reminders(booked["id"])
                 if r.kind != "cancelled" and r.appointment_starts_at == old_start}
    delivered = {d.key for d in provider.messages()}
    assert delivered & about_old == taken_at_commit & about_old
    assert in_flight in taken_at_commit
    notice = next(r for r in clinic.reminders(booked["id"])
                  if r.kind == ("rescheduled" if change == "reschedule" else "cancelled"))
    assert notice.status == "sent"
    assert f"{notice.id}-sms" in delivered


@pytest.mark.parametrize("change", ["reschedule", "cancel"])
async def test_a_change_committed_before_the_send_locks_the_row_means_nothing_old_goes_out(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider, change: str,
) -> None:
    booked = await clinic.book(clinic.patient(channels=("sms",)), slot(3, wall(10, 0)))
    clinic.make_due(booked["id"])
    claimed = dispatcher.claim(datetime.now(UTC))  # claimed, not yet sent
    assert len(claimed) == 2
    body = ({"start": slot(4, wall(11, 0)).isoformat()} if change == "reschedule"
            else {"reason": "Patient called"})
    assert (await clinic.command(booked["id"], change, body)).status_code == 200
    outcomes = [dispatcher.deliver(c, r) for c, r in claimed]
    assert outcomes == ["gone", "gone"]
    assert provider.messages() == []


async def test_retry_and_dead_letters_refuse_bad_requests_and_other_roles(
    clinic: Clinic, client: httpx.AsyncClient,
) -> None:
    unknown = await client.post(f"/api/v1/reminders/{uuid.uuid4()}/retry",
                                headers=clinic.headers())
    expect_error(unknown, 404, "reminder_not_found")
    malformed = await client.post("/api/v1/reminders/not-an-id/retry", headers=clinic.headers())
    assert malformed.status_code == 422
    for role in (Role.DOCTOR, Role.LAB_TECH, Role.PHARMACIST):
        denied = await client.get("/api/v1/reminders/dead-letters", headers=clinic.headers(role))
        assert denied.status_code == 403, role
    too_many = await client.get("/api/v1/reminders/dead-letters", params={"limit": 100000},
                                headers=clinic.headers())
    assert too_many.status_code == 422


async def test_a_message_whose_process_dies_on_every_claim_is_dead_lettered_not_sent_again(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    """A claim counts as an attempt. Claims that ended without an outcome, as a process
    killed while sending leaves them, use the attempts up: the next claim buries the
    message instead of sending it (and perhaps dying) once more."""
    booked = await clinic.book(clinic.patient(channels=("sms",)), slot(3, wall(14, 0)))
    clinic.make_due(booked["id"])
    settings = dispatcher.settings
    now, lease = datetime.now(UTC), timedelta(seconds=settings.reminder_lease_seconds + 1)
    for n in range(settings.reminder_max_attempts):
        assert len(dispatcher.claim(now + n * lease)) == 2  # and then the process died
    assert dispatcher.run_once(now + settings.reminder_max_attempts * lease).outcomes == {
        "dead": 2}
    assert provider.requests == {}
    rows = clinic.reminders(booked["id"])
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {
        ("dead", settings.reminder_max_attempts + 1,
         "the last attempt ended without an outcome; sending may stop the dispatcher")}
    assert all(clinic.attempts(r.id) == [] for r in rows)


async def test_failures_about_an_old_time_leave_the_list_when_the_appointment_changes(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    provider.invalid.add("+56987654321")
    booked = await clinic.book(clinic.patient(channels=("sms",)), slot(3, wall(13, 0)))
    clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"dead": 2}
    listed = await clinic.client.get("/api/v1/reminders/dead-letters", headers=clinic.headers())
    dead = [d for d in listed.json()["data"] if d["appointment_id"] == booked["id"]]
    assert {(d["kind"], d["offset_minutes"], d["channel"]) for d in dead} == {
        ("reminder", 1440, "sms"), ("reminder", 120, "sms")}
    moved = await clinic.command(booked["id"], "reschedule",
                                 {"start": slot(4, wall(9, 0)).isoformat()})
    assert moved.status_code == 200, moved.text
    listed = await clinic.client.get("/api/v1/reminders/dead-letters", headers=clinic.headers())
    assert booked["id"] not in {d["appointment_id"] for d in listed.json()["data"]}
    old = [r for r in clinic.reminders(booked["id"]) if r.id in {uuid.UUID(d["id"]) for d in dead}]
    assert {(r.status, r.last_error) for r in old} == {("cancelled", "rescheduled")}


async def test_a_slow_batch_renews_the_lease_of_the_rows_it_has_not_reached(
    clinic: Clinic, reminder_settings: Settings, db_urls: tuple[object, object],
    provider: TextProvider,
) -> None:
    """Sends that take longer than the lease would let another process claim the rest of
    the batch (and spend their attempts); the holder renews while it works."""
    from sqlalchemy.engine import URL

    from sync_server.reminders.runner import build_dispatcher

    app_url = db_urls[1]
    assert isinstance(app_url, URL)
    slow = build_dispatcher(app_url, reminder_settings.model_copy(
        update={"reminder_lease_seconds": 3}))
    other = build_dispatcher(app_url, reminder_settings)
    try:
        provider.delay = 0.6
        patient_id = clinic.patient(channels=("sms",))
        clinic.queue(8, patient_id=patient_id, start=slot(3, wall(8, 0)))
        worker = threading.Thread(target=slow.run_once)
        worker.start()
        await asyncio.sleep(4)  # past the first lease: unrenewed, the rest would be free
        taken = other.claim(datetime.now(UTC))
        await asyncio.to_thread(worker.join)
    finally:
        for d in (slow, other):
            d.close()
            d.engine.dispose()
    assert taken == []
    assert {(r.status, r.attempts) for r in clinic.reminders()} == {("sent", 1)}
