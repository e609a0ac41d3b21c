"""Registering and editing patients on this computer, online or not.

Each change is written to the local copy at once and queued in the outbox with the
values it started from, so the server can merge it field by field later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from pydantic import ValidationError
from sqlalchemy import Engine, insert, select, update

from desktop.store.local import outbox
from desktop.store.records import to_json, to_row
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.patients import PatientCreate
from shared_models.search import search_document
from shared_models.tables import patient


def _queue(conn: Any, *, clock: HybridClock, op: str, record_id: uuid.UUID,
           base_version: int | None, changes: dict[str, Any], base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity="patient", op=op, record_id=record_id,
        base_version=base_version, changes={k: to_json(v) for k, v in changes.items()},
        base={k: to_json(v) for k, v in base.items()}, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def register_patient(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                     fields: dict[str, Any]) -> uuid.UUID:
    """A new patient, born here with its own id; the server numbers the record later."""
    patient_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn=f"LOCAL-{patient_id.hex[-8:]}",
            preferred_channels=fields.get("preferred_channels", []),
            search_text=search_document(names=[fields.get("given_name"),
                                               fields.get("family_name")],
                                        phone=fields.get("phone"), mrn=None),
            **to_row(patient, {k: v for k, v in fields.items()
                               if k != "preferred_channels"})))
        _queue(conn, clock=clock, op="upsert", record_id=patient_id, base_version=None,
               changes=fields, base={})
    return patient_id


def edit_patient(engine: Engine, clock: HybridClock, patient_id: uuid.UUID,
                 changes: dict[str, Any]) -> None:
    with engine.begin() as conn:
        current = conn.execute(select(patient).where(patient.c.id == patient_id)).one()
        base = {name: getattr(current, name) for name in changes}
        conn.execute(update(patient).where(patient.c.id == patient_id)
                     .values(**to_row(patient, changes)))
        _queue(conn, clock=clock, op="upsert", record_id=patient_id,
               base_version=current.server_version, changes=changes, base=base)


# A message for the form, in English with `{name}` placeholders, and their values: the
# screen translates the message and fills the values in.
Problem = tuple[str, dict[str, object]]


class PatientInvalid(ValueError):
    """Some fields are not valid; `problems` says, per field, what to fix."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        super().__init__("; ".join(f"{k}: {v[0].format(**v[1])}" for k, v in problems.items()))
        self.problems = problems


def _field_message(error: Any) -> Problem:
    kind = error["type"]
    if kind == "string_too_long":
        return "Too long (at most {n} characters).", {"n": error["ctx"]["max_length"]}
    if kind in ("missing", "string_too_short"):
        return "Required.", {}
    field = error["loc"][0] if error["loc"] else ""
    if field == "email":
        return "Not a valid e-mail address.", {}
    if field == "date_of_birth":
        text = str(error.get("msg", ""))
        if "future" in text:
            return "The date of birth cannot be in the future.", {}
        if "1900" in text:
            return "The date of birth must be on or after 1900-01-01.", {}
        return "Write the date as YYYY-MM-DD.", {}
    return str(error.get("msg", "Not valid.")).replace("{", "(").replace("}", ")"), {}


def check_patient(fields: dict[str, Any], *, region: str) -> dict[str, Any]:
    """The fields a person typed, checked by the server's own rules and cleaned (phone in
    international form, e-mail in lower case); PatientInvalid says what to fix where."""
    typed = {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items()}
    typed = {k: v for k, v in typed.items() if v not in ("", None)}
    problems: dict[str, Problem] = {}
    try:
        clean = PatientCreate.model_validate(typed).model_dump(exclude_unset=True,
                                                              mode="json")
    except ValidationError as exc:
        clean = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "record"
            problems.setdefault(field, _field_message(error))
    if typed.get("phone") and "phone" not in problems:
        try:
            number = phonenumbers.parse(typed["phone"], region)
            valid = phonenumbers.is_valid_number(number)
        except phonenumbers.NumberParseException:
            valid = False
        if not valid:
            problems["phone"] = ("Not a valid phone number; include the area code.", {})
        else:
            clean["phone"] = phonenumbers.format_number(number,
                                                        phonenumbers.PhoneNumberFormat.E164)
    channels = typed.get("preferred_channels") or []
    if "email" in channels and not typed.get("email") and "email" not in problems:
        problems["email"] = ("E-mail reminders need an e-mail address.", {})
    if {"sms", "whatsapp"} & set(channels) and not typed.get("phone") and \
            "phone" not in problems:
        problems["phone"] = ("Text reminders need a phone number.", {})
    if problems:
        raise PatientInvalid(problems)
    if clean.get("email"):
        clean["email"] = clean["email"].lower()
    return clean
