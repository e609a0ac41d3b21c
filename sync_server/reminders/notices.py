"""Care notices: telling a patient that a prescription is ready at the pharmacy or that
lab results are in, through the same queue, channels, quiet hours and retries as
appointment reminders.

A notice says where to go and whom to ask, never what was prescribed or measured: an SMS
or a shared inbox is no place for clinical content. Queued in the transaction that moves
the prescription or the order, so a notice exists exactly when the step committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from shared_models.ids import uuid7
from shared_models.tables import reminder
from sync_server.lib.context import ClinicContext
from sync_server.reminders.messages import Message, environment
from sync_server.reminders.policy import quiet_hours
from sync_server.reminders.schedule import patient_setting
from sync_server.web.i18n import Lang, as_lang

NOTICE_KINDS = frozenset({"prescription_ready", "results_ready"})

SUBJECTS: dict[str, dict[Lang, str]] = {
    "prescription_ready": {"es": "Su receta está lista en {pharmacy}",
                           "en": "Your prescription is ready at {pharmacy}"},
    "results_ready": {"es": "Sus resultados de laboratorio están listos — {clinic}",
                      "en": "Your lab results are ready — {clinic}"},
}
BODIES: dict[str, dict[Lang, str]] = {
    "prescription_ready": {
        "es": "Su receta de {clinic} está lista para recoger en {pharmacy}, {address}.",
        "en": "Your prescription from {clinic} is ready to collect at {pharmacy}, "
              "{address}."},
    "results_ready": {
        "es": "Sus resultados de laboratorio ya llegaron a {clinic}. Su médico los revisará "
              "con usted; si tiene una duda, llame a la clínica.",
        "en": "Your lab results have reached {clinic}. Your doctor will go over them with "
              "you; if you have a question, call the clinic."},
}
SHORT: dict[str, dict[Lang, str]] = {
    "prescription_ready": {
        "es": "{clinic}: Hola {patient}, su receta está lista en {pharmacy}, {address}.",
        "en": "{clinic}: Hi {patient}, your prescription is ready at {pharmacy}, {address}."},
    "results_ready": {
        "es": "{clinic}: Hola {patient}, sus resultados de laboratorio están listos. Su médico "
              "los revisará con usted.",
        "en": "{clinic}: Hi {patient}, your lab results are ready. Your doctor will go over "
              "them with you."},
}
GREETING: dict[Lang, str] = {"es": "Hola {patient}:", "en": "Hello {patient},"}
FOOTER: dict[Lang, str] = {
    "es": "Recibe este mensaje porque es paciente de {clinic}.",
    "en": "You receive this message because you are a patient of {clinic}.",
}


@dataclass(frozen=True, slots=True)
class Notice:
    """What a care notice says, read from the database by the sender."""

    kind: str
    clinic_name: str
    patient_name: str
    language: str
    pharmacy_name: str | None = None
    pharmacy_address: str | None = None


def render_notice(notice: Notice, *, key: str) -> Message:
    lang: Lang = as_lang(notice.language) or "es"
    fields = {"clinic": notice.clinic_name, "patient": notice.patient_name,
              "pharmacy": notice.pharmacy_name or "", "address": notice.pharmacy_address or ""}
    words = {"greeting": GREETING[lang].format(**fields),
             "body": BODIES[notice.kind][lang].format(**fields),
             "footer": FOOTER[lang].format(**fields)}
    context = {"lang": lang, "words": words, "fields": fields}
    env = environment()
    return Message(key=key, kind=notice.kind,
                   subject=SUBJECTS[notice.kind][lang].format(**fields),
                   text=env.get_template("notice.txt").render(context),
                   html=env.get_template("notice.html").render(context),
                   short=SHORT[notice.kind][lang].format(**fields), ics=b"")


async def _queue(ctx: ClinicContext, *, patient_id: uuid.UUID, kind: str, now: datetime,
                 subject: dict[str, Any]) -> None:
    policy, zone = await patient_setting(ctx, patient_id)
    due = quiet_hours(policy).next_allowed(now, zone)
    await ctx.conn.execute(insert(reminder).values(
        clinic_id=ctx.clinic_id, id=uuid7(), patient_id=patient_id, kind=kind, due_at=due,
        next_attempt_at=due, refused_channels=[], **subject))


async def on_prescription_dispensed(ctx: ClinicContext, *, prescription_id: uuid.UUID,
                                    patient_id: uuid.UUID, now: datetime) -> None:
    await _queue(ctx, patient_id=patient_id, kind="prescription_ready", now=now,
                 subject={"prescription_id": prescription_id})


async def on_results_ready(ctx: ClinicContext, *, lab_order_id: uuid.UUID,
                           patient_id: uuid.UUID, now: datetime) -> None:
    await _queue(ctx, patient_id=patient_id, kind="results_ready", now=now,
                 subject={"lab_order_id": lab_order_id})
