"""The words of each message, in the patient's language: an e-mail (text and HTML, with
the appointment as an .ics calendar entry and the manage link) and a short text for SMS
and WhatsApp, in the clinic's wording when it set one.

The .ics UID is the appointment's, so a reschedule updates the entry already in the
patient's calendar (a higher SEQUENCE) and a cancellation removes it (METHOD:CANCEL).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
from jinja2 import Environment, FileSystemLoader, select_autoescape

from shared_models.schemas.reminders import PolicyTemplates
from sync_server.web.i18n import Lang, as_lang, day_label, time_label, zone_label

TEMPLATES_DIR = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)

SUBJECTS: dict[str, dict[Lang, str]] = {
    "reminder": {"es": "Recordatorio de su cita en {clinic}: {date}, {time}",
                 "en": "Reminder of your appointment at {clinic}: {date}, {time}"},
    "rescheduled": {"es": "Su cita en {clinic} cambió: {date}, {time}",
                    "en": "Your appointment at {clinic} has moved: {date}, {time}"},
    "cancelled": {"es": "Su cita en {clinic} del {date}, {time} fue cancelada",
                  "en": "Your appointment at {clinic} on {date}, {time} was cancelled"},
}
SHORT: dict[str, dict[Lang, str]] = {
    "reminder": {
        "es": "{clinic}: Hola {patient}, le recordamos su cita con {provider} el {date} a las "
              "{time}. Responda 1 para confirmar o 2 para cancelar. {link}",
        "en": "{clinic}: Hi {patient}, a reminder of your appointment with {provider} on {date} "
              "at {time}. Reply 1 to confirm or 2 to cancel. {link}"},
    "rescheduled": {
        "es": "{clinic}: Hola {patient}, su cita con {provider} ahora es el {date} a las {time}. "
              "{link}",
        "en": "{clinic}: Hi {patient}, your appointment with {provider} is now on {date} at "
              "{time}. {link}"},
    "cancelled": {
        "es": "{clinic}: Hola {patient}, su cita con {provider} del {date} a las {time} fue "
              "cancelada. Para reservar otra hora: {link}",
        "en": "{clinic}: Hi {patient}, your appointment with {provider} on {date} at {time} "
              "was cancelled. To book another time: {link}"},
}
WORDS: dict[Lang, dict[str, str]] = {
    "es": {"greeting": "Hola {patient}:", "with": "Con", "when": "Cuándo", "where": "Dónde",
           "manage": "Ver, cambiar o cancelar su cita", "book": "Reservar otra hora",
           "reminder": "Le recordamos su cita.", "rescheduled": "Su cita cambió de hora.",
           "cancelled": "Su cita fue cancelada.",
           "calendar": "La cita va adjunta para su calendario.",
           "footer": "Recibe este mensaje porque tiene una cita en {clinic}."},
    "en": {"greeting": "Hello {patient},", "with": "With", "when": "When", "where": "Where",
           "manage": "See, change or cancel your appointment", "book": "Book another time",
           "reminder": "A reminder of your appointment.",
           "rescheduled": "Your appointment has moved.",
           "cancelled": "Your appointment was cancelled.",
           "calendar": "The appointment is attached for your calendar.",
           "footer": "You receive this message because you have an appointment at {clinic}."},
}


def environment() -> Environment:
    """The message templates (shared with care notices)."""
    return _env


@dataclass(frozen=True, slots=True)
class Appointment:
    """What a message says about an appointment, read from the database by the sender."""

    id: uuid.UUID
    clinic_name: str
    clinic_slug: str
    provider_name: str
    patient_name: str
    starts_at: datetime
    ends_at: datetime
    zone: ZoneInfo
    language: str


@dataclass(frozen=True, slots=True)
class Message:
    key: str  # the idempotency key: the same on every retry of this message
    kind: str
    subject: str
    text: str
    html: str
    short: str
    ics: bytes


def _fields(appt: Appointment, lang: Lang, link: str) -> dict[str, str]:
    local = appt.starts_at.astimezone(appt.zone)
    return {"clinic": appt.clinic_name, "provider": appt.provider_name,
            "patient": appt.patient_name, "date": day_label(local.date(), lang),
            "time": f"{time_label(local)} {zone_label(appt.zone, local)}", "link": link}


def calendar_entry(appt: Appointment, *, kind: str, sequence: int, organizer: str,
                   now: datetime) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Consulta//Reminders//EN")
    cal.add("version", "2.0")
    cal.add("method", "CANCEL" if kind == "cancelled" else "REQUEST")
    event = icalendar.Event()
    event.add("uid", f"{appt.id}@consulta")
    event.add("sequence", sequence)
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", appt.starts_at.astimezone(UTC))
    event.add("dtend", appt.ends_at.astimezone(UTC))
    event.add("summary", f"{appt.clinic_name}: {appt.provider_name}")
    event.add("location", appt.clinic_name)
    event.add("status", "CANCELLED" if kind == "cancelled" else "CONFIRMED")
    event.add("organizer", icalendar.vCalAddress(f"mailto:{organizer}"),
              parameters={"cn": appt.clinic_name})
    cal.add_component(event)
    return bytes(cal.to_ical())


def render(appt: Appointment, *, key: str, kind: str, sequence: int, link: str,
           organizer: str, templates: PolicyTemplates, now: datetime) -> Message:
    lang: Lang = as_lang(appt.language) or "es"
    fields = _fields(appt, lang, link)
    words = {k: v.format(**fields) for k, v in WORDS[lang].items()}
    own = getattr(getattr(templates, kind), lang)
    context = {"lang": lang, "kind": kind, "words": words, "fields": fields, "link": link}
    return Message(
        key=key, kind=kind, subject=SUBJECTS[kind][lang].format(**fields),
        text=_env.get_template("email.txt").render(context),
        html=_env.get_template("email.html").render(context),
        short=(own or SHORT[kind][lang]).format(**fields).strip(),
        ics=calendar_entry(appt, kind=kind, sequence=sequence, organizer=organizer, now=now),
    )
