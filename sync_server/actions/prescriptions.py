"""Prescriptions: signed on a prescriber's computer, checked here, and moved forward by
pharmacies.

A prescription arrives by push, already signed (op `sign`). The server accepts it only
from the key's owner, with a key the admin approved and not revoked, when the signature
verifies over the canonical document rebuilt from exactly what will be stored, and when
every high-severity safety warning the server finds now (with the allergies and
medications it knows, which may be newer than the laptop's copy) was acknowledged with a
reason. The prescriber may then route it to a pharmacy or cancel it (ops `route`,
`cancel`), until the pharmacy has received it.

The pharmacy's pharmacist receives, dispenses or refuses it through the API. Before a
prescription is received or dispensed its signature is checked again from the stored
rows, so a change made at rest, or a key revoked since, stops it at the counter. Each
step locks the row, so two pharmacists pressing "dispense" at once make one transition.
The database refuses changes to the signed content and backward moves (migration 0013);
those refusals are mapped to errors a person can act on.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Row, Select, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models import prescribing, signing
from shared_models.enums import Role
from shared_models.schemas.prescriptions import (
    Acknowledgement,
    PrescriptionCancel,
    PrescriptionItemPublic,
    PrescriptionPublic,
    PrescriptionRoute,
    PrescriptionSign,
    PrescriptionsPublic,
    SignatureCheck,
    item_id,
)
from shared_models.schemas.sync import Mutation
from shared_models.tables import (
    allergy,
    appointment,
    medication,
    patient,
    pharmacy,
    prescription,
    prescription_item,
    signing_key,
    staff_user,
)
from sync_server.actions import audit
from sync_server.actions.signing_keys import REPLACED_REASON
from sync_server.core.errors import (
    Conflict,
    ConsultaError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from sync_server.lib.context import ClinicContext
from sync_server.lib.mutations import Rejected, Status, invalid_change
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields
from sync_server.reminders import notices

MAX_PAGE = 100
PharmacyStep = Literal["receive", "dispense", "refuse"]
IncomingStatus = Literal["sent", "received", "dispensed", "refused"]
# What a pharmacy works on when it asks for no status in particular.
OPEN_STATUSES: tuple[IncomingStatus, ...] = ("sent", "received")
_STEP_TARGET: dict[PharmacyStep, str] = {
    "receive": "received", "dispense": "dispensed", "refuse": "refused"}
_STEP_FROM: dict[PharmacyStep, frozenset[str]] = {
    "receive": frozenset({"sent"}), "dispense": frozenset({"received"}),
    "refuse": frozenset({"sent", "received"}),
}
_STATUS_FIELDS = ["status", "status_changed_at", "status_changed_by", "status_reason"]
_SIGNED_FIELDS = [*signing.SIGNED_FIELDS, "signature", "pharmacy_id", "status"]
# The database's refusals (migration 0013): the trigger named, and the code it answers with.
_DB_RULES = {
    "prescription_is_final": "prescription_closed",
    "prescription_signed_content": "signed_content",
    "prescription_status_forward": "invalid_transition",
    "prescription_routing": "routing_closed",
    "prescription_item_is_signed": "signed_content",
}


# --- reading ---------------------------------------------------------------------------


def _view() -> Select[Any]:
    """A prescription with what its readers need beside it: the patient's name and date of
    birth (nothing else of the patient), the prescriber's name, the signing key."""
    return (
        select(prescription,
               patient.c.given_name.label("patient_given_name"),
               patient.c.family_name.label("patient_family_name"),
               patient.c.date_of_birth.label("patient_date_of_birth"),
               staff_user.c.full_name.label("prescriber_name"),
               signing_key.c.public_key.label("public_key"),
               signing_key.c.status.label("key_status"),
               signing_key.c.revoked_at.label("key_revoked_at"),
               signing_key.c.revoke_reason.label("key_revoke_reason"))
        .join(patient, patient.c.id == prescription.c.patient_id)
        .join(staff_user, staff_user.c.id == prescription.c.prescriber_id)
        .join(signing_key, signing_key.c.id == prescription.c.signing_key_id)
    )


async def _items(ctx: ClinicContext, ids: Sequence[uuid.UUID]
                 ) -> dict[uuid.UUID, list[Mapping[str, Any]]]:
    found: dict[uuid.UUID, list[Mapping[str, Any]]] = {i: [] for i in ids}
    if ids:
        rows = await ctx.conn.execute(
            select(prescription_item).where(prescription_item.c.prescription_id.in_(ids))
            .order_by(prescription_item.c.prescription_id, prescription_item.c.position))
        for row in rows:
            found[row.prescription_id].append(dict(row._mapping))
    return found


def _verdict(row: Row[Any], items: Iterable[Mapping[str, Any]]
             ) -> tuple[str | None, SignatureCheck]:
    """The signature checked now, from the stored rows, and the key's standing: the code a
    refused step answers with (None when it may go ahead), and what the pharmacist sees."""
    if not signing.verify_prescription(row.public_key, dict(row._mapping), items):
        return "signature_invalid", SignatureCheck(
            valid=False, key_status=row.key_status,
            message="This prescription does not match the doctor's signature: it was changed "
                    "after it was signed. Do not dispense it; call the clinic.")
    if row.key_status == "active":
        return None, SignatureCheck(valid=True, key_status="active",
                                    message="The doctor's signature matches this prescription.")
    if row.key_status == "pending":
        return "key_not_approved", SignatureCheck(
            valid=False, key_status="pending",
            message="The doctor's signing key has not been approved by the clinic. Do not "
                    "dispense this prescription; call the clinic.")
    # A key replaced by the doctor's newer one was good when the server accepted this
    # prescription; only a key revoked for cause (lost, compromised) taints what it signed.
    if row.key_revoke_reason == REPLACED_REASON and row.created_at < row.key_revoked_at:
        return None, SignatureCheck(
            valid=True, key_status="revoked",
            message="The doctor's signature matches. It was made with their previous key, "
                    "replaced by a newer one after this prescription was issued.")
    return "key_revoked", SignatureCheck(
        valid=False, key_status="revoked",
        message=f"The doctor's signing key was revoked on {row.key_revoked_at:%Y-%m-%d}, so "
                "this prescription cannot be trusted. Do not dispense it; call the clinic to "
                "confirm it.")


def server_check(row: Row[Any], items: Iterable[Mapping[str, Any]]) -> SignatureCheck:
    return _verdict(row, items)[1]


def _public(row: Row[Any], items: list[Mapping[str, Any]]) -> PrescriptionPublic:
    return PrescriptionPublic.model_validate({
        **row._mapping,
        "patient_name": f"{row.patient_given_name} {row.patient_family_name}",
        "acknowledgements": row.acknowledgements or [],
        "items": [PrescriptionItemPublic.model_validate(i) for i in items],
        "server_check": server_check(row, items),
    })


async def _read(ctx: ClinicContext, prescription_id: uuid.UUID
                ) -> tuple[Row[Any], list[Mapping[str, Any]]]:
    row = (await ctx.conn.execute(
        _view().where(prescription.c.id == prescription_id))).one()
    return row, (await _items(ctx, [prescription_id]))[prescription_id]


def _not_found(prescription_id: uuid.UUID) -> NotFound:
    return NotFound(f"No prescription with id {prescription_id} for you in this clinic.",
                    code="prescription_not_found")


def _not_for_role() -> PermissionDenied:
    return PermissionDenied("Prescriptions are for the clinic's doctors and the pharmacy they "
                            "are sent to.", code="role_not_allowed")


async def pharmacy_of(ctx: ClinicContext) -> uuid.UUID:
    """The pharmacy the calling pharmacist works for; 409 if the admin has not linked
    their account to one yet."""
    pharmacy_id: uuid.UUID | None = (await ctx.conn.execute(
        select(staff_user.c.pharmacy_id).where(staff_user.c.id == ctx.user_id))).scalar()
    if pharmacy_id is None:
        raise Conflict("Your account is not linked to a pharmacy yet, so no prescriptions "
                       "reach you. Ask the clinic admin to link it to your pharmacy.",
                       code="no_pharmacy")
    return pharmacy_id


async def list_incoming(ctx: ClinicContext, *, status: IncomingStatus | None = None,
                        limit: int = 50, offset: int = 0) -> PrescriptionsPublic:
    """Prescriptions sent to the caller's pharmacy: by default the open ones (sent,
    received) oldest first, a queue; a closed status newest first, a history."""
    if ctx.role is not Role.PHARMACIST:
        raise _not_for_role()
    pharmacy_id = await pharmacy_of(ctx)
    statuses = OPEN_STATUSES if status is None else (status,)
    stmt = _view().where(prescription.c.pharmacy_id == pharmacy_id,
                         prescription.c.status.in_(statuses))
    if status in ("dispensed", "refused"):
        stmt = stmt.order_by(prescription.c.status_changed_at.desc(), prescription.c.id.desc())
    else:
        stmt = stmt.order_by(prescription.c.status_changed_at, prescription.c.id)
    rows = (await ctx.conn.execute(stmt.limit(limit + 1).offset(offset))).all()
    page = rows[:limit]
    items = await _items(ctx, [r.id for r in page])
    if page:
        await audit.record(ctx, action="prescription.list", entity="prescription",
                           detail={"pharmacy_id": str(pharmacy_id),
                                   "returned": [str(r.id) for r in page]})
    has_more = len(rows) > limit
    return PrescriptionsPublic(data=[_public(r, items[r.id]) for r in page],
                               has_more=has_more,
                               next_offset=offset + limit if has_more else None)


async def get_prescription(ctx: ClinicContext, prescription_id: uuid.UUID
                           ) -> PrescriptionPublic:
    """One prescription, for the clinic's doctors and the pharmacist it was sent to."""
    stmt = _view().where(prescription.c.id == prescription_id)
    if ctx.role is Role.PHARMACIST:
        stmt = stmt.where(prescription.c.pharmacy_id == await pharmacy_of(ctx))
    elif ctx.role is not Role.DOCTOR:
        raise _not_for_role()
    row = (await ctx.conn.execute(stmt)).first()
    if row is None:
        raise _not_found(prescription_id)
    await audit.record(ctx, action="prescription.read", entity="prescription",
                       entity_id=prescription_id,
                       detail={"patient_id": str(row.patient_id)})
    return _public(row, (await _items(ctx, [prescription_id]))[prescription_id])


# --- database refusals -----------------------------------------------------------------


def _db_refusal(exc: IntegrityError) -> tuple[str, str] | None:
    """(code, message) for a rule of migration 0013 that refused a write; None for any
    other integrity error. The rules' messages name statuses only, never patient data."""
    diag = getattr(exc.orig, "diag", None)
    code = _DB_RULES.get(str(getattr(diag, "constraint_name", None)))
    if code is None:
        return None
    message = str(getattr(diag, "message_primary", None) or "the change was refused")
    return code, f"{message[:1].upper()}{message[1:]}."


async def _set_status(ctx: ClinicContext, current: Row[Any], *, status: str,
                      reason: str | None, stamp: WriteStamp, pharmacy_id: uuid.UUID | None,
                      refused: type[ConsultaError]) -> None:
    """Move `current` to `status`; a refusal by the database becomes `refused`."""
    try:
        async with ctx.conn.begin_nested():
            await ctx.conn.execute(
                update(prescription).where(prescription.c.id == current.id).values(
                    status=status, status_changed_at=datetime.now(UTC),
                    status_changed_by=ctx.user_id, status_reason=reason,
                    pharmacy_id=pharmacy_id,
                    **stamp_fields(current.field_stamps, [*_STATUS_FIELDS, "pharmacy_id"],
                                   stamp)))
    except IntegrityError as exc:
        found = _db_refusal(exc)
        if found is None:
            raise InvalidInput("The prescription refers to a pharmacy this clinic does not "
                               "have.", code="unknown_reference") from exc
        raise refused(found[1], code=found[0]) from exc


# --- the pharmacy's steps --------------------------------------------------------------


def _wrong_step(step: PharmacyStep, status: str) -> Conflict:
    if step == "dispense" and status == "sent":
        return Conflict("This prescription has not been received yet: mark it received "
                        "first, then dispensed.", code="not_received",
                        details={"current_status": status})
    said = {"dispensed": "was already dispensed", "refused": "was refused",
            "cancelled": "was cancelled by the prescriber"}
    return Conflict(f"This prescription {said.get(status, 'is ' + status)}; it cannot be "
                    f"{_STEP_TARGET[step]} now.", code="invalid_transition",
                    details={"current_status": status})


async def do_pharmacy_step(ctx: ClinicContext, prescription_id: uuid.UUID,
                           step: PharmacyStep, *, reason: str | None = None
                           ) -> PrescriptionPublic:
    """receive (sent -> received), dispense (received -> dispensed), refuse (sent or
    received -> refused), by a pharmacist of the pharmacy it was sent to. Repeating a step
    already taken answers with the record and changes nothing."""
    if ctx.role is not Role.PHARMACIST:
        raise _not_for_role()
    pharmacy_id = await pharmacy_of(ctx)
    # Locked before anything is decided: a second pharmacist's request waits here, then
    # finds the step taken.
    current = (await ctx.conn.execute(
        select(prescription).where(prescription.c.id == prescription_id,
                                   prescription.c.pharmacy_id == pharmacy_id)
        .with_for_update())).first()
    if current is None:
        raise _not_found(prescription_id)
    target = _STEP_TARGET[step]
    if current.status == target:
        return _public(*await _read(ctx, prescription_id))
    if current.status not in _STEP_FROM[step]:
        raise _wrong_step(step, current.status)
    if step != "refuse":
        code, check = _verdict(*await _read(ctx, prescription_id))
        if code is not None:
            raise Conflict(f"{check.message} It can still be refused.", code=code)
    await _set_status(ctx, current, status=target, reason=reason, stamp=server_stamp(),
                      pharmacy_id=pharmacy_id, refused=Conflict)
    await audit.record(ctx, action=f"prescription.{step}", entity="prescription",
                       entity_id=prescription_id,
                       detail={"pharmacy_id": str(pharmacy_id),
                               "patient_id": str(current.patient_id)})
    if step == "dispense":
        # In the same transaction: the patient hears of it exactly when it happened.
        await notices.on_prescription_dispensed(ctx, prescription_id=prescription_id,
                                                patient_id=current.patient_id,
                                                now=datetime.now(UTC))
    return _public(*await _read(ctx, prescription_id))


# --- pushed by the prescriber's computer -------------------------------------------------


def _document_values(ctx: ClinicContext, prescription_id: uuid.UUID, data: PrescriptionSign
                     ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The prescription's signed columns and its items, exactly as they will be stored."""
    row: dict[str, Any] = {
        "clinic_id": ctx.clinic_id, "id": prescription_id, "patient_id": data.patient_id,
        "prescriber_id": ctx.user_id, "appointment_id": data.appointment_id,
        "signed_at": signing.signing_time(data.signed_at),
        "formulary_version": data.formulary_version, "notes": data.notes,
        "acknowledgements": [a.model_dump(mode="json") for a in data.acknowledgements],
        "signing_key_id": data.signing_key_id, "signature": data.signature,
    }
    return row, [i.model_dump(mode="json") for i in data.items]


async def _stored_document(ctx: ClinicContext, prescription_id: uuid.UUID
                           ) -> tuple[dict[str, Any], str] | None:
    row = (await ctx.conn.execute(
        select(prescription).where(prescription.c.id == prescription_id))).first()
    if row is None:
        return None
    items = (await _items(ctx, [prescription_id]))[prescription_id]
    return signing.document(dict(row._mapping), items), row.signature


async def _check_signer(ctx: ClinicContext, key_id: uuid.UUID) -> str:
    """The public key that signed, once it is the caller's, approved and not revoked."""
    key = (await ctx.conn.execute(
        select(signing_key.c.user_id, signing_key.c.status, signing_key.c.public_key)
        .where(signing_key.c.id == key_id))).first()
    if key is None or key.user_id != ctx.user_id:
        raise Rejected("This prescription was signed with a key the server does not know as "
                       "yours. Register this computer's key and have the clinic admin approve "
                       "it, then sign again.", code="unknown_key")
    if key.status == "pending":
        raise Rejected("Your signing key is waiting for the clinic admin's approval; the "
                       "prescription is kept on this computer until an admin approves the "
                       "key. Ask them to compare the key's fingerprint and approve it.",
                       code="key_not_approved")
    if key.status == "revoked":
        raise Rejected("This prescription was signed with a key that has been revoked, so it "
                       "was not accepted. Register a new key, have it approved, and sign the "
                       "prescription again.", code="key_revoked")
    return str(key.public_key)


async def _check_references(ctx: ClinicContext, data: PrescriptionSign) -> bool:
    """Whether the prescription can go straight to its pharmacy (given, and active). 422
    for a patient, visit or pharmacy this clinic does not have."""
    found = (await ctx.conn.execute(
        select(patient.c.id).where(patient.c.id == data.patient_id,
                                   patient.c.deleted_at.is_(None)))).first()
    if found is None:
        raise InvalidInput("The prescription's patient does not exist in this clinic.",
                           code="unknown_reference", details={"field": "patient_id"})
    if data.appointment_id is not None:
        visit = (await ctx.conn.execute(
            select(appointment.c.patient_id).where(appointment.c.id == data.appointment_id)
        )).first()
        if visit is None or visit.patient_id != data.patient_id:
            raise InvalidInput("The prescription's visit is not one of this patient's in this "
                               "clinic.", code="unknown_reference",
                               details={"field": "appointment_id"})
    if data.pharmacy_id is None:
        return False
    place = (await ctx.conn.execute(
        select(pharmacy.c.is_active).where(pharmacy.c.id == data.pharmacy_id,
                                           pharmacy.c.deleted_at.is_(None)))).first()
    if place is None:
        raise InvalidInput("The pharmacy chosen is not in this clinic's directory.",
                           code="unknown_reference", details={"field": "pharmacy_id"})
    return bool(place.is_active)


def _known(ref: str) -> bool:
    try:
        if ref.startswith(prescribing.CLASS_PREFIX):
            prescribing.therapeutic_class(ref)
        else:
            prescribing.medicine(ref)
    except prescribing.UnknownMedicineError:
        return False
    return True


async def _check_safety(ctx: ClinicContext, data: PrescriptionSign) -> None:
    """Refuse when a high-severity warning, found now with the chart as the server has it,
    was not acknowledged: the laptop may have signed before a new allergy reached it."""
    allergies = (await ctx.conn.execute(
        select(allergy.c.formulary_ref).where(
            allergy.c.patient_id == data.patient_id, allergy.c.status == "active",
            allergy.c.deleted_at.is_(None), allergy.c.formulary_ref.is_not(None)))).scalars()
    active = (await ctx.conn.execute(
        select(medication.c.medicine_id).where(
            medication.c.patient_id == data.patient_id, medication.c.status == "active",
            medication.c.deleted_at.is_(None), medication.c.medicine_id.is_not(None)
        ))).scalars()
    # A reference the bundled formulary no longer has cannot be checked either way.
    warnings = prescribing.check([i.medicine_id for i in data.items],
                                 allergies=[r for r in allergies if _known(r)],
                                 active=[r for r in active if _known(r)])
    acknowledged = {_ack_key(a) for a in data.acknowledgements}
    for warning in warnings:
        if warning.severity == "high" and (warning.kind, frozenset(warning.medicines)) \
                not in acknowledged:
            raise Rejected(
                f"{warning.message_en} This warning was not acknowledged when the "
                "prescription was signed (the patient's record may have changed since). "
                "Review it and sign again.", code="unacknowledged_warning")


def _ack_key(ack: Acknowledgement) -> tuple[str, frozenset[str]]:
    return ack.kind, frozenset(ack.medicines)


async def _sign(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    if _has_nul(m.changes):
        # PostgreSQL stores no NUL in text or JSON; refused here, not as a server error.
        raise InvalidInput("The prescription contains the NUL character (\\x00); it was not "
                           "accepted.", code="invalid_change")
    try:
        data = PrescriptionSign.model_validate(m.changes)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    values, items = _document_values(ctx, m.record_id, data)
    document = signing.document(values, items)
    stored = await _stored_document(ctx, m.record_id)
    if stored is not None:
        return _same_as_stored(document, stored)
    public_key = await _check_signer(ctx, data.signing_key_id)
    if not signing.verify(public_key, signing.canonical(document), data.signature):
        raise Rejected("The prescription's content does not match its signature; it may have "
                       "been changed after signing. It was not accepted.",
                       code="signature_invalid")
    routed = await _check_references(ctx, data)
    await _check_safety(ctx, data)
    status = "sent" if routed else "signed"
    try:
        async with ctx.conn.begin_nested():
            await ctx.conn.execute(insert(prescription).values(
                **values, pharmacy_id=data.pharmacy_id if routed else None, status=status,
                status_changed_at=datetime.now(UTC) if routed else None,
                status_changed_by=ctx.user_id if routed else None,
                **stamp_fields(None, _SIGNED_FIELDS, stamp)))
            await ctx.conn.execute(insert(prescription_item), [
                {**item, "clinic_id": ctx.clinic_id, "id": item_id(m.record_id, item["position"]),
                 "prescription_id": m.record_id, **stamp_fields(None, [], stamp)}
                for item in items])
    except IntegrityError as exc:
        # The same prescription pushed from two places at once: the other insert committed
        # while this one waited on its key.
        stored = await _stored_document(ctx, m.record_id)
        if stored is not None:
            return _same_as_stored(document, stored)
        raise InvalidInput("The prescription refers to a record this clinic does not have.",
                           code="unknown_reference") from exc
    await audit.record(ctx, action="prescription.sign", entity="prescription",
                       entity_id=m.record_id,
                       detail={"patient_id": str(data.patient_id), "items": len(items),
                               "acknowledged": len(data.acknowledgements),
                               "pharmacy_id": str(data.pharmacy_id) if routed else None})
    return "applied"


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _same_as_stored(document: dict[str, Any], stored: tuple[dict[str, Any], str]) -> Status:
    """A prescription id already stored: the same signed content again is the same
    prescription (a replay); anything else is refused."""
    if stored[0] == document:
        return "applied"
    raise Rejected("A different prescription with this id was already accepted; this one was "
                   "not. Sign it again as a new prescription.", code="already_exists")


async def _prescribed_by_caller(ctx: ClinicContext, prescription_id: uuid.UUID) -> Row[Any]:
    current = (await ctx.conn.execute(
        select(prescription).where(prescription.c.id == prescription_id).with_for_update()
    )).first()
    if current is None:
        raise Rejected("This prescription is not on the server; it cannot be changed.",
                       code="prescription_not_found")
    if current.prescriber_id != ctx.user_id:
        raise Rejected("Only the doctor who signed a prescription routes or cancels it.",
                       code="not_prescriber")
    return current


_TOO_LATE = {
    "received": "The pharmacy has already received this prescription; call the pharmacy to "
                "stop it.",
    "dispensed": "The pharmacy has already dispensed this prescription.",
    "refused": "The pharmacy refused this prescription; write a new one if it is still "
               "needed.",
    "cancelled": "This prescription was cancelled; write a new one if it is still needed.",
}


def _too_late(status: str) -> Rejected:
    code = "too_late" if status in ("received", "dispensed") else "prescription_closed"
    return Rejected(_TOO_LATE[status], code=code)


async def _route(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    try:
        data = PrescriptionRoute.model_validate(m.changes)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    current = await _prescribed_by_caller(ctx, m.record_id)
    if current.status == "sent" and current.pharmacy_id == data.pharmacy_id:
        return "applied"
    if current.status not in ("signed", "sent"):
        raise _too_late(current.status)
    place = (await ctx.conn.execute(
        select(pharmacy.c.is_active).where(pharmacy.c.id == data.pharmacy_id,
                                           pharmacy.c.deleted_at.is_(None)))).first()
    if place is None:
        raise InvalidInput("The pharmacy chosen is not in this clinic's directory.",
                           code="unknown_reference", details={"field": "pharmacy_id"})
    if not place.is_active:
        raise Rejected("This pharmacy is no longer in service in the clinic's directory; "
                       "choose another.", code="pharmacy_inactive")
    await _set_status(ctx, current, status="sent", reason=None, stamp=stamp,
                      pharmacy_id=data.pharmacy_id, refused=Rejected)
    await audit.record(ctx, action="prescription.route", entity="prescription",
                       entity_id=m.record_id, detail={"pharmacy_id": str(data.pharmacy_id)})
    return "applied"


async def _cancel(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    try:
        data = PrescriptionCancel.model_validate(m.changes)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    current = await _prescribed_by_caller(ctx, m.record_id)
    if current.status == "cancelled":
        return "applied"
    if current.status not in ("signed", "sent"):
        raise _too_late(current.status)
    await _set_status(ctx, current, status="cancelled", reason=data.reason, stamp=stamp,
                      pharmacy_id=current.pharmacy_id, refused=Rejected)
    await audit.record(ctx, action="prescription.cancel", entity="prescription",
                       entity_id=m.record_id,
                       detail={"pharmacy_id": None if current.pharmacy_id is None
                               else str(current.pharmacy_id)})
    return "applied"


async def push_prescription(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    if ctx.role is not Role.DOCTOR:
        raise Rejected("Only doctors sign, route or cancel prescriptions.",
                       code="role_not_allowed")
    if m.op == "sign":
        return await _sign(ctx, m, stamp)
    if m.op == "route":
        return await _route(ctx, m, stamp)
    if m.op == "cancel":
        return await _cancel(ctx, m, stamp)
    raise Rejected(f"'{m.op}' does not apply to prescriptions; they are signed, routed or "
                   "cancelled.", code="invalid_operation")
