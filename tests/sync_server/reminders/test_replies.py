"""Patients answering a text reminder, over a server whose messaging provider is set up:
each reply is signed Twilio-style and matched to a reminder the dispatcher really sent by
SMS or WhatsApp. "2"/"NO" cancels through the booking service (freeing the slot, queueing
the cancellation notice, respecting the clinic's cut-off), "1"/"SI"/"YES" confirms, and
anything unsigned, misaddressed or malformed changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from datetime import time as wall
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.tables import appointment
from sync_server.core.config import Settings
from sync_server.main import create_app
from sync_server.reminders.dispatcher import Dispatcher
from tests.conftest import make_client
from tests.factories import Factory, expect_error
from tests.fakes.smtp import SmtpServer
from tests.fakes.text_provider import TOKEN, TextProvider
from tests.sync_server.reminders.conftest import (
    PUBLIC_URL,
    Clinic,
    channel_settings,
    slot,
)

PHONE = "+56987654321"
ANSWERS = {
    "cancelled_es": "Su cita fue cancelada y la hora quedó libre. Gracias por avisar.",
    "cancelled_en": "Your appointment is cancelled and the time is free again. Thank you for "
                    "letting us know.",
    "confirmed_es": "Gracias, su cita quedó confirmada.",
    "confirmed_en": "Thank you, your appointment is confirmed.",
    "help_es": "Responda 1 para confirmar su cita o 2 para cancelarla.",
    "too_late_es": "Ya no es posible cancelar por mensaje. Por favor llame a la clínica.",
    "not_found_es": "No encontramos una cita próxima para este número. Por favor llame a la "
                    "clínica.",
}
# Confirming sets confirmed_at; the sync bookkeeping (version, time, transaction) follows.
CHANGED_BY_CONFIRMING = {"confirmed_at", "server_version", "updated_at", "version_xid"}


@pytest.fixture
async def texting(settings: Settings, smtp: SmtpServer, provider: TextProvider,
                  db_urls: tuple[URL, URL]) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a server that has the messaging provider's token (the one the
    `dispatcher` sends with), so it accepts signed replies."""
    application = create_app(channel_settings(settings, smtp, provider), db_urls[1])
    async with application.router.lifespan_context(application), \
            make_client(application) as client:
        yield client


def twilio_signature(token: str, url: str, fields: dict[str, str]) -> str:
    """The provider's signature, written from its documentation: the full URL, then each
    form field's name and value sorted by name, HMAC-SHA1 with the auth token, base64."""
    payload = url + "".join(name + fields[name] for name in sorted(fields))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
                            ).decode()


async def reply(client: httpx.AsyncClient, slug: str, body: str | None, *,
                sender: str | None = PHONE, channel: str = "sms", token: str = TOKEN,
                signed_path: str | None = None,
                signature: str | None = None) -> httpx.Response:
    path = f"/api/v1/public/{slug}/replies/{channel}"
    fields = {"MessageSid": f"SM{uuid.uuid4().hex}", "AccountSid": "AC-test-account"}
    if sender is not None:
        fields["From"] = sender
    if body is not None:
        fields["Body"] = body
    signature = signature or twilio_signature(token, PUBLIC_URL + (signed_path or path), fields)
    return await client.post(path, data=fields, headers={"X-Twilio-Signature": signature})


def answer(response: httpx.Response) -> str:
    """The text the patient gets back, from the TwiML answer."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ElementTree.fromstring(response.content)  # noqa: S314 - our own server's answer
    assert root.tag == "Response"
    (message,) = list(root)
    assert message.tag == "Message"
    return message.text or ""


async def no_quiet_hours(clinic: Clinic) -> None:
    """Send at any hour the test runs (the tests are about replies, not the night)."""
    response = await clinic.client.put(
        "/api/v1/reminders/policy", headers=clinic.headers(Role.ADMIN),
        json={"offsets_minutes": [1440, 120], "quiet_start": "00:00", "quiet_end": "00:00"})
    assert response.status_code == 200, response.text


async def texted(clinic: Clinic, dispatcher: Dispatcher, start: datetime, *,
                 language: str = "es", channel: str = "sms", phone: str = PHONE
                 ) -> dict[str, Any]:
    """An appointment whose reminders the dispatcher has sent as text messages."""
    await no_quiet_hours(clinic)
    booked = await clinic.book(clinic.patient(channels=(channel,), language=language,
                                              phone=phone), start)
    clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"sent": 2}
    rows = clinic.reminders(booked["id"])
    assert {(r.status, r.channel) for r in rows} == {("sent", channel)}
    assert all(r.reply_key for r in rows)
    return booked


def stored(clinic: Clinic, booked: dict[str, Any]) -> dict[str, Any]:
    return clinic.factory.row(appointment, clinic.data, uuid.UUID(booked["id"]))


async def listed(clinic: Clinic, booked: dict[str, Any]) -> dict[str, Any]:
    """The appointment as the front desk's calendar lists it."""
    start = datetime.fromisoformat(booked["starts_at"])
    response = await clinic.client.get(
        "/api/v1/appointments", headers=clinic.headers(),
        params={"start": (start - timedelta(hours=1)).isoformat(),
                "end": (start + timedelta(hours=1)).isoformat()})
    assert response.status_code == 200, response.text
    return next(a for a in response.json()["data"] if a["id"] == booked["id"])


async def offered(clinic: Clinic, start: datetime) -> bool:
    """Whether the provider's slots offer `start` to the front desk."""
    response = await clinic.client.get(
        f"/api/v1/providers/{clinic.provider_id}/slots", headers=clinic.headers(),
        params={"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()})
    assert response.status_code == 200, response.text
    return any(datetime.fromisoformat(s["start"]) == start for s in response.json()["data"])


# --- cancelling -----------------------------------------------------------------------


async def test_no_cancels_frees_the_slot_answers_in_the_patients_language_and_queues_a_notice(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
    texting: httpx.AsyncClient,
) -> None:
    start = slot(3, wall(10, 0))
    booked = await texted(clinic, dispatcher, start, language="en")
    assert not await offered(clinic, start)
    response = await reply(texting, clinic.data.slug, "NO")
    assert answer(response) == ANSWERS["cancelled_en"]
    row = stored(clinic, booked)
    assert (row["status"], row["cancel_reason"]) == (
        "cancelled", "Cancelled by the patient's reply to a reminder")
    assert await offered(clinic, start)
    notices = [r for r in clinic.reminders(booked["id"]) if r.kind == "cancelled"]
    assert [(n.status, n.calendar_sequence) for n in notices] == [("pending", 1)]
    (event,) = clinic.factory.audit_events(clinic.data, action="appointment.cancel")
    assert (event.entity_id, event.actor_user_id) == (uuid.UUID(booked["id"]), None)
    # The notice goes out like any message, by the patient's channel.
    assert dispatcher.run_once().outcomes == {"sent": 1}
    assert provider.messages()[-1].body.startswith(f"Clinic {clinic.data.slug}: Hi Ana, your "
                                                   "appointment with")
    assert "was cancelled" in provider.messages()[-1].body
    # A second "NO" finds no upcoming appointment left to cancel.
    again = await reply(texting, clinic.data.slug, "no")
    assert answer(again) == ANSWERS["not_found_es"]


async def test_no_inside_the_clinics_cut_off_answers_too_late_and_cancels_nothing(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(10, 0)))
    # Changes by message close a week ahead: three days ahead is already inside.
    policy = await clinic.client.patch("/api/v1/clinic/booking-policy",
                                       headers=clinic.headers(Role.ADMIN),
                                       json={"cancel_cutoff_minutes": 7 * 24 * 60})
    assert policy.status_code == 200, policy.text
    before = stored(clinic, booked)
    assert answer(await reply(texting, clinic.data.slug, "NO")) == ANSWERS["too_late_es"]
    assert stored(clinic, booked) == before
    assert clinic.factory.audit_events(clinic.data, action="appointment.cancel") == []
    assert not [r for r in clinic.reminders(booked["id"]) if r.kind == "cancelled"]
    # Confirming is still welcome.
    confirmed = await reply(texting, clinic.data.slug, "1")
    assert answer(confirmed) == ANSWERS["confirmed_es"]
    assert stored(clinic, booked)["status"] == "booked"


# --- confirming -----------------------------------------------------------------------


async def test_each_yes_confirms_once_and_the_calendar_shows_when(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    await no_quiet_hours(clinic)
    words = {"Sí": "es", "si": "es", "YES": "en", "1": "es", "Sí, gracias!": "es"}
    patients = {word: (f"+5698765430{i}", await clinic.book(
        clinic.patient(channels=("sms",), language=language, phone=f"+5698765430{i}"),
        slot(3, wall(10 + i, 0)))) for i, (word, language) in enumerate(words.items())}
    for _, booked in patients.values():
        clinic.make_due(booked["id"])
    assert dispatcher.run_once().outcomes == {"sent": 2 * len(words)}
    for word, (phone, booked) in patients.items():
        assert (await listed(clinic, booked))["confirmed_at"] is None
        before = stored(clinic, booked)
        thanks = ANSWERS[f"confirmed_{words[word]}"]
        assert answer(await reply(texting, clinic.data.slug, word, sender=phone)) == thanks
        after = stored(clinic, booked)
        assert after["confirmed_at"] is not None, word
        assert after["server_version"] > before["server_version"]  # devices pull it
        assert {k: v for k, v in after.items() if k not in CHANGED_BY_CONFIRMING} == {
            k: v for k, v in before.items() if k not in CHANGED_BY_CONFIRMING}
        shown = await listed(clinic, booked)
        assert datetime.fromisoformat(shown["confirmed_at"]) == after["confirmed_at"]
        assert shown["status"] == "booked"
        # Confirming again answers the same and keeps the first time.
        assert answer(await reply(texting, clinic.data.slug, "1", sender=phone)) == thanks
        assert stored(clinic, booked)["confirmed_at"] == after["confirmed_at"]
    confirms = clinic.factory.audit_events(clinic.data, action="appointment.confirm")
    assert sorted(str(e.entity_id) for e in confirms) == sorted(
        b["id"] for _, b in patients.values())


async def test_a_whatsapp_reply_from_a_whatsapp_sender_confirms(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
    texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(12, 0)), channel="whatsapp")
    assert {m.to for m in provider.messages()} == {f"whatsapp:{PHONE}"}
    response = await reply(texting, clinic.data.slug, "1", channel="whatsapp",
                           sender=f"whatsapp:{PHONE}")
    assert answer(response) == ANSWERS["confirmed_es"]
    assert stored(clinic, booked)["confirmed_at"] is not None


async def test_a_reschedule_clears_the_confirmation_and_old_reminders_no_longer_match(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(12, 30)))
    assert answer(await reply(texting, clinic.data.slug, "1")) == ANSWERS["confirmed_es"]
    assert (await listed(clinic, booked))["confirmed_at"] is not None
    moved = await clinic.command(booked["id"], "reschedule",
                                 {"start": slot(4, wall(9, 0)).isoformat()})
    assert moved.status_code == 200, moved.text
    assert moved.json()["confirmed_at"] is None
    assert stored(clinic, booked)["confirmed_at"] is None
    # The reminders sent were about the old time: a "1" now confirms nothing ...
    assert answer(await reply(texting, clinic.data.slug, "1")) == ANSWERS["not_found_es"]
    assert stored(clinic, booked)["confirmed_at"] is None
    # ... until the notice of the new time has gone out.
    assert dispatcher.run_once().outcomes == {"sent": 1}
    assert answer(await reply(texting, clinic.data.slug, "1")) == ANSWERS["confirmed_es"]
    assert stored(clinic, booked)["confirmed_at"] is not None


# --- replies that change nothing ------------------------------------------------------


async def test_an_unknown_answer_gets_the_help_text_and_changes_nothing(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(13, 0)))
    before = stored(clinic, booked)
    for body in ("quizás", "", None, "¿a qué hora era?", "nop", "12"):
        response = await reply(texting, clinic.data.slug, body)
        assert answer(response) == ANSWERS["help_es"], body
    assert stored(clinic, booked) == before
    assert clinic.factory.audit_events(clinic.data, action="appointment.confirm") == []


async def test_a_number_no_text_reminder_went_to_is_answered_not_found(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(13, 30)))
    # A patient reminded by e-mail only: no text went to the number.
    by_mail = await clinic.book(clinic.patient(channels=("email",), phone="+56911112222"),
                                slot(3, wall(14, 0)))
    clinic.make_due(by_mail["id"])
    assert dispatcher.run_once().outcomes == {"sent": 2}
    before = [stored(clinic, b) for b in (booked, by_mail)]
    for sender in ("+56911112222", "+56922223333", "not a number", "+1", "whatsapp:"):
        for body in ("NO", "1"):
            response = await reply(texting, clinic.data.slug, body, sender=sender)
            assert answer(response) == ANSWERS["not_found_es"], sender
    assert [stored(clinic, b) for b in (booked, by_mail)] == before


async def test_another_clinics_webhook_cannot_reach_this_clinics_appointment(
    factory: Factory, clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(14, 30)))
    other = factory.clinic(patients=0, providers=0)
    before = stored(clinic, booked)
    for body in ("NO", "1"):
        response = await reply(texting, other.slug, body)  # validly signed for its URL
        assert answer(response) == ANSWERS["not_found_es"]
    expect_error(await reply(texting, "no-such-clinic", "NO"), 404, "clinic_not_found")
    assert stored(clinic, booked) == before


# --- refused requests -----------------------------------------------------------------


async def test_a_bad_signature_is_refused_and_changes_nothing(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(15, 0)))
    before = stored(clinic, booked)
    slug = clinic.data.slug
    refused = [
        await reply(texting, slug, "NO", token="not-the-token"),
        await reply(texting, slug, "NO", signature="bm90IGEgc2lnbmF0dXJl"),
        # Signed for another clinic's address, or for the other channel.
        await reply(texting, slug, "NO", signed_path="/api/v1/public/other/replies/sms"),
        await reply(texting, slug, "NO", signed_path=f"/api/v1/public/{slug}/replies/whatsapp"),
    ]
    unsigned = await texting.post(f"/api/v1/public/{slug}/replies/sms",
                                  data={"From": PHONE, "Body": "NO"})
    # A body changed after signing.
    fields = {"From": PHONE, "Body": "1"}
    tampered = await texting.post(
        f"/api/v1/public/{slug}/replies/sms", data={**fields, "Body": "NO"},
        headers={"X-Twilio-Signature": twilio_signature(
            TOKEN, f"{PUBLIC_URL}/api/v1/public/{slug}/replies/sms", fields)})
    for response in (*refused, unsigned, tampered):
        error = expect_error(response, 403, "invalid_signature")
        assert "signature" in error["message"]
    assert stored(clinic, booked) == before
    assert [r.status for r in clinic.reminders(booked["id"])] == ["sent", "sent"]


async def test_a_server_without_a_provider_token_refuses_replies(
    clinic: Clinic, dispatcher: Dispatcher, client: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(15, 30)))
    before = stored(clinic, booked)
    response = await reply(client, clinic.data.slug, "NO")
    error = expect_error(response, 403, "replies_not_configured")
    assert "no messaging provider configured" in error["message"]
    assert stored(clinic, booked) == before


async def test_a_reply_without_a_sender_or_by_email_is_422_and_changes_nothing(
    clinic: Clinic, dispatcher: Dispatcher, texting: httpx.AsyncClient,
) -> None:
    booked = await texted(clinic, dispatcher, slot(3, wall(16, 0)))
    before = stored(clinic, booked)
    for sender in (None, ""):
        error = expect_error(await reply(texting, clinic.data.slug, "NO", sender=sender), 422,
                             "missing_sender")
        assert error["details"] == {"field": "From"}
        assert "'From'" in error["message"]
    error = expect_error(await reply(texting, clinic.data.slug, "NO", channel="email"), 422,
                         "invalid_channel")
    assert error["details"] == {"field": "channel"}
    assert "SMS or WhatsApp" in error["message"]
    unknown = expect_error(await reply(texting, clinic.data.slug, "NO", channel="fax"), 422,
                           "invalid_input")
    assert unknown["details"]["fields"][0]["field"] == "channel"
    assert stored(clinic, booked) == before
