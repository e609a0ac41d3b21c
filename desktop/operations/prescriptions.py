"""Prescriptions on the prescriber's computer, online or not: the safety check against
the chart as this computer holds it, signing with the unlocked key, and cancelling or
sending a signed prescription to a pharmacy.

A prescription is signed here over exactly the content the server will rebuild from what
is pushed (`shared_models.signing.document` of the validated `PrescriptionSign`), written
locally with its lines and the medicines it adds to the patient's active list, and
queued as ONE "sign" mutation, followed by the medication entries.

    PrescriptionError           a message a doctor can act on (shown in a dialog)
    └── UnacknowledgedWarnings  `.warnings` still need a reason before signing
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, Row, insert, select, update

from desktop.operations.signing import Signer, SigningError, key_info
from desktop.store.local import outbox, signing_identity
from desktop.store.records import to_json
from shared_models import prescribing, signing
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.prescribing import PrescribingWarning
from shared_models.schemas.clinical import MedicationCreate
from shared_models.schemas.prescriptions import (
    MAX_ITEMS,
    PrescriptionCancel,
    PrescriptionSign,
    SignatureCheck,
    item_id,
)
from shared_models.search import fold
from shared_models.tables import (
    allergy,
    medication,
    patient,
    pharmacy,
    prescription,
    prescription_item,
    signing_key,
)

MIN_REASON_CHARS = 3
# Who may still change course: once a pharmacy has it, the pharmacy decides.
_CANCELLABLE = frozenset({"signed", "sent"})
# Stands in for the signature while the content is validated, before it is signed.
_PLACEHOLDER_SIGNATURE = base64.b64encode(bytes(64)).decode()
_FIELD_LABELS = {
    "medicine_id": "the medicine", "medicine_name": "the medicine's name",
    "strength": "the strength", "form": "the form", "dose": "the dose", "route": "the route",
    "frequency": "the frequency", "duration_days": "the duration (days)",
    "quantity": "the quantity", "refills": "the refills", "instructions": "the instructions",
    "notes": "the notes", "reason": "the reason",
}


class PrescriptionError(Exception):
    """The prescription cannot be signed or changed as asked; the message says why."""


class UnacknowledgedWarnings(PrescriptionError):
    def __init__(self, warnings: list[PrescribingWarning]) -> None:
        count = len(warnings)
        super().__init__(
            f"{count} safety warning{'s' if count != 1 else ''} still "
            f"need{'s' if count == 1 else ''} a reason (at least {MIN_REASON_CHARS} "
            "characters) before you sign.")
        self.warnings = warnings


@dataclass
class DraftItem:
    """One line as the prescriber fills it in."""

    medicine_id: str
    strength: str
    form: str
    dose: str
    route: str
    frequency: str
    quantity: int
    duration_days: int | None = None
    refills: int = 0
    instructions: str | None = None


def warning_key(w: PrescribingWarning) -> tuple[str, tuple[str, ...]]:
    """How an acknowledgement names the warning it answers (the server matches on it)."""
    return w.kind, w.medicines


# --- checking --------------------------------------------------------------------------


def _problem(exc: ValidationError) -> str:
    """The first problem of a validation error as a sentence about the form."""
    error = exc.errors()[0]
    loc = list(error["loc"])
    line = ""
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        line, loc = f"Line {loc[1] + 1}: ", loc[2:]
    name = str(loc[-1]) if loc else ""
    field = _FIELD_LABELS.get(name, name.replace("_", " ") or "the prescription")
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind in ("greater_than_equal", "greater_than"):
        what = f"{field} must be at least {ctx.get('ge', ctx.get('gt'))}"
    elif kind in ("less_than_equal", "less_than"):
        what = f"{field} must be at most {ctx.get('le', ctx.get('lt'))}"
    elif kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        what = f"{field} is required"
    elif kind == "string_too_short":
        what = f"{field} needs at least {ctx.get('min_length')} characters"
    elif kind == "string_too_long":
        what = f"{field} is too long (at most {ctx.get('max_length')} characters)"
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        what = f"{field} must be a whole number"
    else:
        what = f"{field}: {str(error.get('msg', 'not valid')).removeprefix('Value error, ')}"
    return f"{line}{what[0].upper()}{what[1:]}."


def _known_medicines(items: list[DraftItem]) -> None:
    if not items:
        raise PrescriptionError("Add at least one medicine to the prescription.")
    if len(items) > MAX_ITEMS:
        raise PrescriptionError(f"A prescription holds at most {MAX_ITEMS} medicines; split "
                                "it into two.")
    for position, item in enumerate(items, start=1):
        try:
            prescribing.medicine(item.medicine_id)
        except prescribing.UnknownMedicineError:
            raise PrescriptionError(
                f"Line {position}: '{item.medicine_id}' is not a medicine of the formulary "
                f"{prescribing.FORMULARY_VERSION}; choose it from the list.") from None


def _chart_refs(conn: Connection, patient_id: uuid.UUID) -> tuple[list[str], list[str]]:
    """The patient's active allergies (formulary refs) and active medicines, as this
    computer holds them."""
    allergies = conn.execute(select(allergy.c.formulary_ref).where(
        allergy.c.patient_id == patient_id, allergy.c.status == "active",
        allergy.c.deleted_at.is_(None), allergy.c.formulary_ref.is_not(None))
        .order_by(allergy.c.id)).scalars().all()
    active = conn.execute(select(medication.c.medicine_id).where(
        medication.c.patient_id == patient_id, medication.c.status == "active",
        medication.c.deleted_at.is_(None), medication.c.medicine_id.is_not(None))
        .order_by(medication.c.id)).scalars().all()
    return [str(a) for a in allergies], [str(m) for m in active]


def _check(conn: Connection, patient_id: uuid.UUID, items: list[DraftItem]
           ) -> list[PrescribingWarning]:
    allergies, active = _chart_refs(conn, patient_id)
    try:
        return prescribing.check([i.medicine_id for i in items], allergies=allergies,
                                 active=active)
    except prescribing.UnknownMedicineError as exc:
        # A chart entry recorded against a newer formulary than this release bundles.
        raise PrescriptionError(f"The chart names {exc.ref!r}, which this version of "
                                "Consulta does not know; update Consulta to check this "
                                "prescription.") from None


def check_draft(engine: Engine, *, patient_id: uuid.UUID, items: list[DraftItem]
                ) -> list[PrescribingWarning]:
    """Allergy, interaction and duplicate-therapy warnings for the draft, against the
    patient's active allergies and medicines on this computer."""
    if not items:
        return []
    _known_medicines(items)
    with engine.connect() as conn:
        return _check(conn, patient_id, items)


# --- signing ---------------------------------------------------------------------------


def _blank_to_none(value: str | None) -> str | None:
    return value if value is not None and value.strip() else None


def _lines(items: list[DraftItem], language: Literal["en", "es"]) -> list[dict[str, Any]]:
    lines = []
    for position, item in enumerate(items, start=1):
        med = prescribing.medicine(item.medicine_id)
        lines.append({
            "position": position, "medicine_id": item.medicine_id,
            "medicine_name": med.name_es if language == "es" else med.name_en,
            "strength": item.strength, "form": item.form, "dose": item.dose,
            "route": item.route, "frequency": item.frequency,
            "duration_days": item.duration_days, "quantity": item.quantity,
            "refills": item.refills, "instructions": _blank_to_none(item.instructions)})
    return lines


def _acknowledged(warnings: list[PrescribingWarning],
                  acknowledgements: Mapping[tuple[str, tuple[str, ...]], str]
                  ) -> list[dict[str, Any]]:
    """Each warning with the prescriber's reason; UnacknowledgedWarnings for any without
    one. Reasons given for warnings that no longer apply are dropped."""
    missing, answered = [], []
    for w in warnings:
        reason = (acknowledgements.get(warning_key(w)) or "").strip()
        if len(reason) < MIN_REASON_CHARS:
            missing.append(w)
        else:
            answered.append({"kind": w.kind, "medicines": list(w.medicines), "reason": reason})
    if missing:
        raise UnacknowledgedWarnings(missing)
    return answered


def _require_active_key(engine: Engine, signer: Signer) -> None:
    info = key_info(engine, signer.user_id)
    if info is None or info.key_id != signer.key_id:
        raise SigningError("The unlocked key is no longer your prescribing key on this "
                           "computer; unlock again.")
    if info.server_status == "active":
        return
    if info.server_status == "revoked":
        raise SigningError("Your prescribing key was revoked; make a new one (Prescribing "
                           "key…) and have the clinic admin approve it.")
    if info.server_status == "pending":
        raise SigningError("Your prescribing key is waiting for the clinic admin's approval. "
                           "Once approved, sync this computer and sign again.")
    raise SigningError("Your prescribing key is not registered with the clinic yet; "
                       "register it while online (Prescribing key…).")


def _medication_dose(line: Mapping[str, Any]) -> str:
    return f"{line['strength']} {line['form']}: {line['dose']} {line['frequency']}"[:200]


def _queue(conn: Connection, clock: HybridClock, *, entity: str, op: str,
           record_id: uuid.UUID, base_version: int | None, changes: dict[str, Any],
           base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity=entity, op=op, record_id=record_id,
        base_version=base_version, changes={k: to_json(v) for k, v in changes.items()},
        base={k: to_json(v) for k, v in base.items()}, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def sign_prescription(engine: Engine, clock: HybridClock, signer: Signer, *,
                      clinic_id: uuid.UUID, patient_id: uuid.UUID, prescriber_id: uuid.UUID,
                      items: list[DraftItem],
                      acknowledgements: Mapping[tuple[str, tuple[str, ...]], str],
                      pharmacy_id: uuid.UUID | None = None,
                      appointment_id: uuid.UUID | None = None, notes: str | None = None,
                      language: Literal["en", "es"] = "es") -> uuid.UUID:
    """Sign the draft with the unlocked key and queue it; offline too.

    `acknowledgements` maps `warning_key(w)` to the reason the prescriber gave for going
    ahead. `language` is that of the medicine names written on the prescription (what the
    pharmacy reads)."""
    if signer.expired():
        raise SigningError("Your prescribing key was locked again; unlock it with your "
                           "password and a new code to sign.")
    if signer.user_id != prescriber_id:
        raise SigningError("The unlocked key belongs to someone else; sign with your own.")
    _known_medicines(items)
    _require_active_key(engine, signer)
    prescription_id = uuid7()
    with engine.connect() as conn:
        if conn.execute(select(patient.c.id).where(patient.c.id == patient_id)).first() is None:
            raise PrescriptionError("This patient is not on this computer; sync and try again.")
        warnings = _check(conn, patient_id, items)
        if pharmacy_id is not None:
            _active_pharmacy(conn, pharmacy_id)
    draft = {
        "patient_id": patient_id, "appointment_id": appointment_id,
        "signed_at": signing.signing_time(),
        "formulary_version": prescribing.FORMULARY_VERSION, "notes": _blank_to_none(notes),
        "acknowledgements": _acknowledged(warnings, acknowledgements),
        "signing_key_id": signer.key_id, "signature": _PLACEHOLDER_SIGNATURE,
        "pharmacy_id": pharmacy_id, "items": _lines(items, language)}
    try:
        validated = PrescriptionSign.model_validate(draft)
    except ValidationError as exc:
        raise PrescriptionError(_problem(exc)) from None
    # Signed over the validated values (trimmed as the server will store them), so the
    # server's rebuild of the document gives the same bytes.
    content = validated.model_dump(mode="json")
    record = {**content, "id": str(prescription_id), "clinic_id": str(clinic_id),
              "prescriber_id": str(prescriber_id)}
    content["signature"] = signer.sign(signing.canonical(signing.document(record,
                                                                          content["items"])))
    signed = PrescriptionSign.model_validate(content)
    medications = [MedicationCreate(
        patient_id=patient_id, medicine_id=line.medicine_id, name=line.medicine_name,
        dose=_medication_dose(line.model_dump()), status="active",
        started_on=datetime.now(UTC).astimezone().date(), prescription_id=prescription_id)
        for line in signed.items]
    with engine.begin() as conn:
        conn.execute(insert(prescription).values(
            clinic_id=clinic_id, id=prescription_id, patient_id=patient_id,
            prescriber_id=prescriber_id, appointment_id=appointment_id,
            signed_at=signed.signed_at, formulary_version=signed.formulary_version,
            notes=signed.notes, acknowledgements=content["acknowledgements"],
            signing_key_id=signed.signing_key_id, signature=signed.signature,
            pharmacy_id=pharmacy_id, status="sent" if pharmacy_id else "signed"))
        conn.execute(insert(prescription_item), [
            {**line.model_dump(), "clinic_id": clinic_id,
             "id": item_id(prescription_id, line.position), "prescription_id": prescription_id}
            for line in signed.items])
        _queue(conn, clock, entity="prescription", op="sign", record_id=prescription_id,
               base_version=None, changes=signed.model_dump(mode="json"), base={})
        for entry in medications:
            medication_id = uuid7()
            conn.execute(insert(medication).values(
                clinic_id=clinic_id, id=medication_id, recorded_by=prescriber_id,
                **entry.model_dump()))
            _queue(conn, clock, entity="medication", op="upsert", record_id=medication_id,
                   base_version=None, changes=entry.model_dump(mode="json"), base={})
    return prescription_id


# --- after signing ---------------------------------------------------------------------


def _active_pharmacy(conn: Connection, pharmacy_id: uuid.UUID) -> Row[Any]:
    row = conn.execute(select(pharmacy).where(pharmacy.c.id == pharmacy_id,
                                              pharmacy.c.deleted_at.is_(None))).first()
    if row is None or not row.is_active:
        raise PrescriptionError("That pharmacy is not in the clinic's directory (or no longer "
                                "active); choose another one.")
    return row


def _prescription(conn: Connection, prescription_id: uuid.UUID) -> Row[Any]:
    row = conn.execute(select(prescription).where(prescription.c.id == prescription_id,
                                                  prescription.c.deleted_at.is_(None))).first()
    if row is None:
        raise PrescriptionError("This prescription is not on this computer.")
    return row


def _still_ours(row: Row[Any], doing: str) -> None:
    if row.status == "cancelled":
        raise PrescriptionError("This prescription was cancelled already.")
    if row.status == "refused":
        raise PrescriptionError("The pharmacy refused this prescription; write a new one if "
                                "the patient still needs it.")
    if row.status not in _CANCELLABLE:
        raise PrescriptionError(f"The pharmacy has this prescription already ({row.status}), "
                                f"so it cannot be {doing} from here. Call the pharmacy.")


def cancel_prescription(engine: Engine, clock: HybridClock, prescription_id: uuid.UUID,
                        reason: str) -> None:
    """Cancel a prescription no pharmacy has taken yet; the medicines it put on the
    active list are stopped with it."""
    try:
        cancel = PrescriptionCancel(reason=reason)
    except ValidationError:
        raise PrescriptionError(f"Say why the prescription is cancelled (at least "
                                f"{MIN_REASON_CHARS} characters).") from None
    today = datetime.now(UTC).astimezone().date()
    with engine.begin() as conn:
        row = _prescription(conn, prescription_id)
        _still_ours(row, "cancelled")
        conn.execute(update(prescription).where(prescription.c.id == prescription_id).values(
            status="cancelled", status_reason=cancel.reason,
            status_changed_at=datetime.now(UTC), status_changed_by=row.prescriber_id))
        _queue(conn, clock, entity="prescription", op="cancel", record_id=prescription_id,
               base_version=row.server_version, changes=cancel.model_dump(),
               base={"status": row.status})
        _stop_medicines(conn, clock, prescription_id, today)


def _stop_medicines(conn: Connection, clock: HybridClock, prescription_id: uuid.UUID,
                    today: date) -> None:
    entries = conn.execute(select(medication).where(
        medication.c.prescription_id == prescription_id, medication.c.status == "active",
        medication.c.deleted_at.is_(None))).all()
    for entry in entries:
        stopped_on = max(today, entry.started_on) if entry.started_on else today
        conn.execute(update(medication).where(medication.c.id == entry.id)
                     .values(status="stopped", stopped_on=stopped_on))
        _queue(conn, clock, entity="medication", op="upsert", record_id=entry.id,
               base_version=entry.server_version,
               changes={"status": "stopped", "stopped_on": stopped_on},
               base={"status": entry.status, "stopped_on": entry.stopped_on})


def route_prescription(engine: Engine, clock: HybridClock, prescription_id: uuid.UUID,
                       pharmacy_id: uuid.UUID) -> None:
    """Send a signed prescription to a pharmacy, or to another one before any has taken
    it. Routing is outside the signature: it is not signed again."""
    with engine.begin() as conn:
        row = _prescription(conn, prescription_id)
        _still_ours(row, "sent elsewhere")
        _active_pharmacy(conn, pharmacy_id)
        if row.pharmacy_id == pharmacy_id:
            return
        conn.execute(update(prescription).where(prescription.c.id == prescription_id).values(
            status="sent", pharmacy_id=pharmacy_id, status_changed_at=datetime.now(UTC),
            status_changed_by=row.prescriber_id))
        _queue(conn, clock, entity="prescription", op="route", record_id=prescription_id,
               base_version=row.server_version, changes={"pharmacy_id": pharmacy_id},
               base={"status": row.status, "pharmacy_id": row.pharmacy_id})


# --- reading ---------------------------------------------------------------------------


def _pharmacy_rank(query: str, row: Row[Any]) -> int | None:
    """Lower is better: registry number, name prefix, any other match; None: no match."""
    registry, name, address = (fold(row.registry_number), fold(row.name), fold(row.address))
    if query == registry:
        return 0
    if name.startswith(query):
        return 1
    if query in name or query in address or query in registry:
        return 2
    return None


def search_pharmacies(engine: Engine, query: str, limit: int = 20) -> list[Mapping[str, Any]]:
    """Active pharmacies of the directory matching `query` by name, address or registry
    number (accents and case ignored), best first; the first `limit` by name when the
    query is empty. The directory is small, so it is read whole and matched here."""
    with engine.connect() as conn:
        rows = conn.execute(select(pharmacy).where(
            pharmacy.c.is_active.is_(True), pharmacy.c.deleted_at.is_(None))).all()
    folded = fold(query)
    ranked = []
    for row in rows:
        rank = _pharmacy_rank(folded, row) if folded else 0
        if rank is not None:
            ranked.append((rank, fold(row.name), row))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [dict(row._mapping) for _, _, row in ranked[:max(limit, 0)]]


def _public_key(conn: Connection, key_id: uuid.UUID) -> tuple[str, str] | None:
    """(PEM, status) of a key: the synced row, else this computer's own key."""
    synced = conn.execute(select(signing_key.c.public_key, signing_key.c.status).where(
        signing_key.c.id == key_id)).first()
    if synced is not None:
        return synced.public_key, synced.status
    own = conn.execute(select(signing_identity.c.public_key, signing_identity.c.server_status)
                       .where(signing_identity.c.key_id == key_id)).first()
    if own is not None:
        return own.public_key, own.server_status
    return None


def verify_stored(engine: Engine, prescription_id: uuid.UUID) -> SignatureCheck:
    """Check the stored prescription's signature against its content and its key."""
    with engine.connect() as conn:
        row = _prescription(conn, prescription_id)
        items = conn.execute(select(prescription_item).where(
            prescription_item.c.prescription_id == prescription_id)).all()
        key = _public_key(conn, row.signing_key_id)
    if key is None:
        return SignatureCheck(valid=False, key_status="unknown",
                              message="The prescriber's key is not on this computer yet; "
                                      "sync to check the signature.")
    pem, status = key
    key_status = status if status in ("pending", "active", "revoked") else "unknown"
    valid = signing.verify_prescription(pem, dict(row._mapping),
                                        [dict(i._mapping) for i in items])
    if not valid:
        message = ("This prescription's signature does not match its content; it may have "
                   "been altered.")
    elif key_status == "revoked":
        message = "The signature matches, but the key that made it has been revoked."
    elif key_status == "active":
        message = "The signature matches the prescription's content."
    else:
        message = "The signature matches; the key is not approved by the clinic yet."
    return SignatureCheck(valid=valid, key_status=key_status, message=message)
