"""Patients answering a text reminder: "1", "SI" or "YES" confirms the appointment, "2"
or "NO" cancels it and frees the slot.

The provider posts each incoming message to the clinic's webhook, signed Twilio-style
(HMAC-SHA1 of the public URL and the sorted form fields, keyed with the account token).
The reply is matched to the latest reminder sent to that phone number for an appointment
still ahead (by a keyed hash of the number stored with the sent reminder), and the
answer to the patient goes back in the response, in the patient's language.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

import phonenumbers
from sqlalchemy import select, update

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, AppointmentStatus
from shared_models.tables import appointment, patient, reminder
from sync_server.actions import audit
from sync_server.actions.appointments import do_transition
from sync_server.core.config import Settings
from sync_server.core.errors import PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.public_booking import change_deadline
from sync_server.lib.scheduling import clinic_schedule
from sync_server.reminders.dispatcher import reply_key
from sync_server.web.i18n import Lang, as_lang

CONFIRM_WORDS = frozenset({"1", "si", "s", "yes", "y", "confirmo", "confirmar", "ok"})
CANCEL_WORDS = frozenset({"2", "no", "n", "cancelar", "cancelo", "cancel"})
CANCELLED_BY_REPLY = "Cancelled by the patient's reply to a reminder"

ANSWERS: dict[str, dict[Lang, str]] = {
    "confirmed": {"es": "Gracias, su cita quedó confirmada.",
                  "en": "Thank you, your appointment is confirmed."},
    "cancelled": {"es": "Su cita fue cancelada y la hora quedó libre. Gracias por avisar.",
                  "en": "Your appointment is cancelled and the time is free again. Thank you "
                        "for letting us know."},
    "too_late": {"es": "Ya no es posible cancelar por mensaje. Por favor llame a la clínica.",
                 "en": "It is too late to cancel by message. Please call the clinic."},
    "not_found": {"es": "No encontramos una cita próxima para este número. Por favor llame a "
                        "la clínica.",
                  "en": "We found no upcoming appointment for this number. Please call the "
                        "clinic."},
    "help": {"es": "Responda 1 para confirmar su cita o 2 para cancelarla.",
             "en": "Reply 1 to confirm your appointment or 2 to cancel it."},
}


def signature(token: str, url: str, fields: dict[str, str]) -> str:
    payload = url + "".join(k + fields[k] for k in sorted(fields))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def check_signature(settings: Settings, url: str, fields: dict[str, str],
                    given: str | None) -> None:
    if settings.sms_token is None:
        raise PermissionDenied("Replies are not accepted: this server has no messaging "
                               "provider configured.", code="replies_not_configured")
    expected = signature(settings.sms_token.get_secret_value(), url, fields)
    if not given or not hmac.compare_digest(expected, given):
        raise PermissionDenied("The request signature does not match; only the messaging "
                               "provider may post replies.", code="invalid_signature")


def intent(body: str) -> str | None:
    """'confirm', 'cancel' or None, from the first word of a reply, ignoring case,
    accents and punctuation ("Sí!", "no, gracias")."""
    folded = unicodedata.normalize("NFKD", body).encode("ascii", "ignore").decode().lower()
    words = re.findall(r"[a-z0-9]+", folded)
    if not words:
        return None
    if words[0] in CONFIRM_WORDS:
        return "confirm"
    if words[0] in CANCEL_WORDS:
        return "cancel"
    return None


def sender_number(raw: str) -> str | None:
    number = raw.strip().removeprefix("whatsapp:")
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass(frozen=True, slots=True)
class ReplyAnswer:
    outcome: str
    text: str

    def twiml(self) -> str:
        return ('<?xml version="1.0" encoding="UTF-8"?>'
                f"<Response><Message>{escape(self.text)}</Message></Response>")


async def handle_reply(ctx: ClinicContext, settings: Settings, *, sender: str, body: str,
                       now: datetime) -> ReplyAnswer:
    phone = sender_number(sender)
    found = None
    if phone is not None:
        found = (await ctx.conn.execute(
            select(reminder.c.id, reminder.c.appointment_id, appointment.c.starts_at,
                   appointment.c.status, appointment.c.confirmed_at, appointment.c.patient_id,
                   patient.c.preferred_language)
            .join(appointment, appointment.c.id == reminder.c.appointment_id)
            .join(patient, patient.c.id == appointment.c.patient_id)
            .where(reminder.c.reply_key == reply_key(settings, phone),
                   reminder.c.status == "sent",
                   reminder.c.kind.in_(("reminder", "rescheduled")),
                   reminder.c.appointment_starts_at == appointment.c.starts_at,
                   appointment.c.starts_at > now,
                   appointment.c.status.in_([s.value for s in ACTIVE_APPOINTMENT_STATUSES]),
                   appointment.c.deleted_at.is_(None))
            .order_by(reminder.c.sent_at.desc()).limit(1))).first()
    if found is None:
        return ReplyAnswer("not_found", ANSWERS["not_found"]["es"])
    lang: Lang = as_lang(found.preferred_language) or "es"
    wanted = intent(body)
    if wanted is None:
        return ReplyAnswer("help", ANSWERS["help"][lang])
    detail = {"reminder_id": str(found.id), "via": "reply"}
    if wanted == "confirm":
        if found.confirmed_at is None:
            await ctx.conn.execute(update(appointment)
                                   .where(appointment.c.id == found.appointment_id)
                                   .values(confirmed_at=now))
            await audit.record(ctx, action="appointment.confirm", entity="appointment",
                               entity_id=found.appointment_id, detail=detail)
        return ReplyAnswer("confirmed", ANSWERS["confirmed"][lang])
    schedule = await clinic_schedule(ctx)
    if found.status != AppointmentStatus.BOOKED.value or now >= change_deadline(found,
                                                                                 schedule):
        return ReplyAnswer("too_late", ANSWERS["too_late"][lang])
    await do_transition(ctx, found.appointment_id, "cancel", cancel_reason=CANCELLED_BY_REPLY,
                        now=now)
    return ReplyAnswer("cancelled", ANSWERS["cancelled"][lang])
