"""Prescriptions on the prescriber's computer with a real SQLCipher store: warnings from
the chart this computer holds, signing only once every warning has a reason, one queued
"sign" whose signature the server can check, the medicines added to the active list,
cancelling and routing while the pharmacy does not have it, and bad input refused with
nothing written."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import Engine, Table, func, insert, select, update

from desktop.operations.prescriptions import (
    DraftItem,
    PrescriptionError,
    UnacknowledgedWarnings,
    cancel_prescription,
    check_draft,
    route_prescription,
    search_pharmacies,
    sign_prescription,
    verify_stored,
    warning_key,
)
from desktop.operations.signing import (
    Signer,
    SigningError,
    confirm_key,
    create_key,
    mark_registered,
    unlock,
)
from desktop.store.database import open_store
from desktop.store.local import outbox, signing_identity
from shared_models import signing
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.prescribing import FORMULARY_VERSION
from shared_models.schemas.clinical import MedicationCreate
from shared_models.schemas.prescriptions import PrescriptionSign, item_id
from shared_models.tables import (
    allergy,
    medication,
    patient,
    pharmacy,
    prescription,
    prescription_item,
    signing_key,
)

CLINIC = uuid7()
DOCTOR = uuid7()
PASSWORD = "estetoscopio azul"

AMOXICILLIN = DraftItem(medicine_id="amoxicillin", strength="500 mg", form="capsule",
                        dose="1 capsule", route="oral", frequency="every 8 hours",
                        quantity=21, duration_days=7)
CEPHALEXIN = DraftItem(medicine_id="cephalexin", strength="500 mg", form="capsule",
                       dose="1 capsule", route="oral", frequency="every 6 hours",
                       quantity=28, duration_days=7, instructions="  Con comida.  ")
PARACETAMOL = DraftItem(medicine_id="paracetamol", strength="500 mg", form="tablet",
                        dose="1 tablet", route="oral", frequency="every 8 hours if pain",
                        quantity=10)


@dataclass
class Desk:
    engine: Engine
    clock: HybridClock
    signer: Signer
    patient_id: uuid.UUID
    pharmacy_id: uuid.UUID
    public_key: str


def _add_patient(engine: Engine) -> uuid.UUID:
    patient_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=patient_id, mrn=f"P-{patient_id.hex[-6:]}",
            given_name="Amparo", family_name="Fuentes", preferred_channels=[],
            server_version=3))
    return patient_id


def _add_pharmacy(engine: Engine, *, name: str, address: str = "Av. Matta 100",
                  registry: str | None = None, active: bool = True) -> uuid.UUID:
    pharmacy_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(pharmacy).values(
            clinic_id=CLINIC, id=pharmacy_id, name=name, address=address,
            registry_number=registry or f"REG-{pharmacy_id.hex[-6:]}", is_active=active,
            server_version=5))
    return pharmacy_id


def _approve(engine: Engine, *, status: str = "active") -> str:
    """The clinic's answer about this computer's key, as a pull brings it."""
    with engine.connect() as conn:
        key = conn.execute(select(signing_identity).where(
            signing_identity.c.user_id == DOCTOR)).one()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(signing_key).values(
            clinic_id=CLINIC, id=key.key_id, user_id=DOCTOR, public_key=key.public_key,
            fingerprint=key.fingerprint, status=status, approved_at=now,
            revoked_at=now if status == "revoked" else None, server_version=9))
    return str(key.public_key)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    engine = open_store(tmp_path / "local.db", os.urandom(32))
    enrolment = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR,
                           email="dr.soto@example.test", password=PASSWORD)
    confirm_key(engine, DOCTOR, pyotp.TOTP(enrolment.totp_secret).now())
    mark_registered(engine, DOCTOR, "pending")
    pem = _approve(engine)
    when = datetime.now(UTC) + timedelta(seconds=30)
    signer = unlock(engine, user_id=DOCTOR, password=PASSWORD,
                    code=pyotp.TOTP(enrolment.totp_secret).at(when), now=when)
    yield Desk(engine, HybridClock("laptop"), signer, _add_patient(engine),
               _add_pharmacy(engine, name="Farmacia Central"), pem)
    engine.dispose()


def _allergic_to(desk: Desk, ref: str, *, status: str = "active",
                 patient_id: uuid.UUID | None = None, deleted: bool = False) -> None:
    with desk.engine.begin() as conn:
        conn.execute(insert(allergy).values(
            clinic_id=CLINIC, id=uuid7(), patient_id=patient_id or desk.patient_id,
            substance=ref, formulary_ref=ref, status=status,
            deleted_at=datetime.now(UTC) if deleted else None))


def _taking(desk: Desk, medicine_id: str, *, status: str = "active") -> uuid.UUID:
    medication_id = uuid7()
    with desk.engine.begin() as conn:
        conn.execute(insert(medication).values(
            clinic_id=CLINIC, id=medication_id, patient_id=desk.patient_id,
            medicine_id=medicine_id, name=medicine_id, status=status))
    return medication_id


def _rows(engine: Engine, table: Table) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table))]


def _queued(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(outbox).order_by(outbox.c.seq))]


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (prescription, prescription_item, medication, outbox))


def _sign(desk: Desk, items: list[DraftItem], acknowledgements: dict[Any, str] | None = None,
          **kwargs: Any) -> uuid.UUID:
    return sign_prescription(desk.engine, desk.clock, desk.signer, clinic_id=CLINIC,
                             patient_id=desk.patient_id, prescriber_id=DOCTOR, items=items,
                             acknowledgements=acknowledgements or {}, **kwargs)


def _pushed_record(row: dict[str, Any]) -> dict[str, Any]:
    """The prescription as the server rebuilds it from the pushed mutation."""
    return {**row["changes"], "id": str(row["record_id"]), "clinic_id": str(CLINIC),
            "prescriber_id": str(DOCTOR)}


# --- the safety check ------------------------------------------------------------------


def test_warnings_come_from_the_active_allergies_and_medicines_on_this_computer(
    desk: Desk
) -> None:
    _allergic_to(desk, "class:penicillin")
    _allergic_to(desk, "ibuprofen", status="resolved")
    _allergic_to(desk, "paracetamol", deleted=True)
    _allergic_to(desk, "paracetamol", patient_id=_add_patient(desk.engine))
    _taking(desk, "warfarin")
    _taking(desk, "aspirin", status="stopped")

    warnings = check_draft(desk.engine, patient_id=desk.patient_id,
                           items=[AMOXICILLIN, CEPHALEXIN, PARACETAMOL])
    found = {warning_key(w): w.severity for w in warnings}
    # Penicillin allergy: amoxicillin is one; cephalexin may cross-react.
    assert found[("allergy", ("amoxicillin", "class:penicillin"))] == "high"
    assert found[("allergy", ("cephalexin", "class:penicillin"))] == "moderate"
    assert all(w.kind != "allergy" or "paracetamol" not in w.medicines for w in warnings)
    assert check_draft(desk.engine, patient_id=desk.patient_id, items=[]) == []
    ibuprofen = replace(PARACETAMOL, medicine_id="ibuprofen")
    [interaction] = check_draft(desk.engine, patient_id=desk.patient_id, items=[ibuprofen])
    assert warning_key(interaction) == ("interaction", ("ibuprofen", "warfarin"))


def test_signing_with_a_warning_left_without_a_reason_writes_nothing(desk: Desk) -> None:
    _allergic_to(desk, "class:penicillin")
    before = _counts(desk.engine)
    with pytest.raises(UnacknowledgedWarnings) as caught:
        _sign(desk, [AMOXICILLIN, CEPHALEXIN],
              {("allergy", ("amoxicillin", "class:penicillin")): "Alergia descartada"})
    [left] = caught.value.warnings
    assert warning_key(left) == ("allergy", ("cephalexin", "class:penicillin"))
    assert "1 safety warning still needs a reason" in str(caught.value)
    with pytest.raises(UnacknowledgedWarnings) as too_short:
        _sign(desk, [AMOXICILLIN], {("allergy", ("amoxicillin", "class:penicillin")): " ok "})
    assert len(too_short.value.warnings) == 1
    assert _counts(desk.engine) == before


# --- signing ---------------------------------------------------------------------------


def test_an_acknowledged_prescription_is_signed_stored_and_queued_once(desk: Desk) -> None:
    _allergic_to(desk, "class:penicillin")
    reasons = {("allergy", ("amoxicillin", "class:penicillin")): "  Prueba cutánea negativa ",
               ("allergy", ("cephalexin", "class:penicillin")): "Reacción previa leve"}
    prescription_id = _sign(desk, [AMOXICILLIN, CEPHALEXIN], reasons, notes="Control en 7 días")

    [stored] = _rows(desk.engine, prescription)
    assert (stored["id"], stored["status"], stored["pharmacy_id"]) == (
        prescription_id, "signed", None)
    assert stored["signing_key_id"] == desk.signer.key_id
    assert stored["formulary_version"] == FORMULARY_VERSION
    assert stored["signed_at"].microsecond == 0
    assert stored["acknowledgements"] == [
        {"kind": "allergy", "medicines": ["amoxicillin", "class:penicillin"],
         "reason": "Prueba cutánea negativa"},
        {"kind": "allergy", "medicines": ["cephalexin", "class:penicillin"],
         "reason": "Reacción previa leve"}]
    lines = sorted(_rows(desk.engine, prescription_item), key=lambda r: r["position"])
    assert [(r["id"], r["medicine_id"], r["medicine_name"]) for r in lines] == [
        (item_id(prescription_id, 1), "amoxicillin", "amoxicilina"),
        (item_id(prescription_id, 2), "cephalexin", "cefalexina")]
    assert lines[1]["instructions"] == "Con comida."
    medicines = _rows(desk.engine, medication)
    assert sorted(m["medicine_id"] for m in medicines) == ["amoxicillin", "cephalexin"]
    assert {(m["status"], m["prescription_id"], m["patient_id"]) for m in medicines} == {
        ("active", prescription_id, desk.patient_id)}

    # One "sign" first, then the medicines it adds: the server takes them in that order.
    queued = _queued(desk.engine)
    assert [(q["entity"], q["op"]) for q in queued] == [
        ("prescription", "sign"), ("medication", "upsert"), ("medication", "upsert")]
    sign = queued[0]
    assert (sign["record_id"], sign["base_version"], sign["base"]) == (
        prescription_id, None, {})
    pushed = PrescriptionSign.model_validate(sign["changes"])
    assert (pushed.patient_id, pushed.signing_key_id, len(pushed.items)) == (
        desk.patient_id, desk.signer.key_id, 2)
    assert pushed.signature == stored["signature"]
    for entry in queued[1:]:
        MedicationCreate.model_validate(entry["changes"])
        assert entry["changes"]["prescription_id"] == str(prescription_id)

    # What the server rebuilds from the push verifies; so does the stored copy.
    record = _pushed_record(sign)
    assert signing.verify_prescription(desk.public_key, record, sign["changes"]["items"])
    check = verify_stored(desk.engine, prescription_id)
    assert (check.valid, check.key_status) == (True, "active")


def test_changing_the_queued_content_breaks_its_signature(desk: Desk) -> None:
    prescription_id = _sign(desk, [PARACETAMOL])
    [sign] = _queued(desk.engine)[:1]
    tampered = {**sign["changes"], "items": [{**sign["changes"]["items"][0], "quantity": 100}]}
    with desk.engine.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.seq == sign["seq"]).values(changes=tampered))
    [queued] = _queued(desk.engine)[:1]
    assert not signing.verify_prescription(desk.public_key, _pushed_record(queued),
                                           queued["changes"]["items"])
    other_patient = {**_pushed_record(sign), "patient_id": str(uuid7())}
    assert not signing.verify_prescription(desk.public_key, other_patient,
                                           sign["changes"]["items"])
    # The stored copy, altered at rest, no longer checks either.
    with desk.engine.begin() as conn:
        conn.execute(update(prescription_item).where(
            prescription_item.c.prescription_id == prescription_id).values(quantity=100))
    check = verify_stored(desk.engine, prescription_id)
    assert not check.valid
    assert "does not match its content" in check.message


def test_a_prescription_for_a_chosen_pharmacy_is_sent(desk: Desk) -> None:
    prescription_id = _sign(desk, [PARACETAMOL], pharmacy_id=desk.pharmacy_id,
                            language="en")
    [stored] = _rows(desk.engine, prescription)
    assert (stored["status"], stored["pharmacy_id"]) == ("sent", desk.pharmacy_id)
    [line] = _rows(desk.engine, prescription_item)
    assert line["medicine_name"] == "paracetamol (acetaminophen)"
    [sign] = _queued(desk.engine)[:1]
    assert sign["changes"]["pharmacy_id"] == str(desk.pharmacy_id)
    assert verify_stored(desk.engine, prescription_id).valid


@pytest.mark.parametrize(("items", "message"), [
    ([], "at least one medicine"),
    ([replace(PARACETAMOL, quantity=0)], "Line 1: The quantity must be at least 1"),
    ([PARACETAMOL, replace(PARACETAMOL, medicine_id="unobtainium")],
     "Line 2: 'unobtainium' is not a medicine of the formulary"),
    ([replace(PARACETAMOL, strength="  ")], "Line 1: The strength is required"),
    ([replace(PARACETAMOL, duration_days=400)], "The duration \\(days\\) must be at most 365"),
    ([replace(PARACETAMOL, refills=12)], "The refills must be at most 11"),
    ([PARACETAMOL] * 11, "at most 10 medicines"),
])
def test_bad_lines_are_refused_with_nothing_written(desk: Desk, items: list[DraftItem],
                                                    message: str) -> None:
    with pytest.raises(PrescriptionError, match=message):
        _sign(desk, items)
    assert _counts(desk.engine) == (0, 0, 0, 0)


def test_unknown_medicines_and_places_are_refused_with_nothing_written(desk: Desk) -> None:
    with pytest.raises(PrescriptionError, match="not a medicine of the formulary"):
        check_draft(desk.engine, patient_id=desk.patient_id,
                    items=[replace(PARACETAMOL, medicine_id="class:penicillin")])
    closed = _add_pharmacy(desk.engine, name="Farmacia Cerrada", active=False)
    for pharmacy_id in (closed, uuid7()):
        with pytest.raises(PrescriptionError, match="directory"):
            _sign(desk, [PARACETAMOL], pharmacy_id=pharmacy_id)
    with pytest.raises(PrescriptionError, match="patient is not on this computer"):
        sign_prescription(desk.engine, desk.clock, desk.signer, clinic_id=CLINIC,
                          patient_id=uuid7(), prescriber_id=DOCTOR, items=[PARACETAMOL],
                          acknowledgements={})
    with pytest.raises(PrescriptionError, match="notes is too long"):
        _sign(desk, [PARACETAMOL], notes="x" * 1001)
    assert _counts(desk.engine) == (0, 0, 0, 0)


def test_a_locked_again_or_unapproved_key_signs_nothing(desk: Desk) -> None:
    later = desk.signer.expires_at + timedelta(seconds=1)
    stale = Signer(key_id=desk.signer.key_id, user_id=DOCTOR, public_key=desk.public_key,
                   private_key=signing.generate_key(), expires_at=datetime.now(UTC))
    with pytest.raises(SigningError, match="unlock"):
        _sign(replace(desk, signer=stale), [PARACETAMOL])
    assert desk.signer.expired(later)
    someone_else = Signer(key_id=desk.signer.key_id, user_id=uuid7(),
                          public_key=desk.public_key, private_key=signing.generate_key(),
                          expires_at=later)
    with pytest.raises(SigningError, match="someone else"):
        _sign(replace(desk, signer=someone_else), [PARACETAMOL])
    for status, message in (("pending", "approval"), ("revoked", "revoked")):
        with desk.engine.begin() as conn:
            conn.execute(update(signing_key).values(
                status=status, revoked_at=datetime.now(UTC) if status == "revoked" else None))
        with pytest.raises(SigningError, match=message):
            _sign(desk, [PARACETAMOL])
    assert _counts(desk.engine) == (0, 0, 0, 0)


# --- after signing ---------------------------------------------------------------------


def test_cancelling_stops_its_medicines_and_is_queued(desk: Desk) -> None:
    prescription_id = _sign(desk, [PARACETAMOL])
    with pytest.raises(PrescriptionError, match="Say why"):
        cancel_prescription(desk.engine, desk.clock, prescription_id, "no")
    assert len(_queued(desk.engine)) == 2
    cancel_prescription(desk.engine, desk.clock, prescription_id, "  Dosis equivocada ")
    [stored] = _rows(desk.engine, prescription)
    assert (stored["status"], stored["status_reason"]) == ("cancelled", "Dosis equivocada")
    [entry] = _rows(desk.engine, medication)
    assert entry["status"] == "stopped"
    queued = _queued(desk.engine)
    assert [(q["entity"], q["op"]) for q in queued[2:]] == [
        ("prescription", "cancel"), ("medication", "upsert")]
    assert queued[2]["changes"] == {"reason": "Dosis equivocada"}
    assert queued[3]["changes"]["status"] == "stopped"
    with pytest.raises(PrescriptionError, match="cancelled already"):
        cancel_prescription(desk.engine, desk.clock, prescription_id, "Otra vez")
    with pytest.raises(PrescriptionError, match="cancelled already"):
        route_prescription(desk.engine, desk.clock, prescription_id, desk.pharmacy_id)
    assert len(_queued(desk.engine)) == 4
    # Still a valid signature: cancelling is outside the signed content.
    assert verify_stored(desk.engine, prescription_id).valid


def test_routing_sends_it_to_an_active_pharmacy_until_one_has_it(desk: Desk) -> None:
    prescription_id = _sign(desk, [PARACETAMOL])
    route_prescription(desk.engine, desk.clock, prescription_id, desk.pharmacy_id)
    route_prescription(desk.engine, desk.clock, prescription_id, desk.pharmacy_id)  # no-op
    [stored] = _rows(desk.engine, prescription)
    assert (stored["status"], stored["pharmacy_id"]) == ("sent", desk.pharmacy_id)
    routes = [q for q in _queued(desk.engine) if q["op"] == "route"]
    assert [r["changes"] for r in routes] == [{"pharmacy_id": str(desk.pharmacy_id)}]
    with pytest.raises(PrescriptionError, match="directory"):
        route_prescription(desk.engine, desk.clock, prescription_id, uuid7())
    assert verify_stored(desk.engine, prescription_id).valid

    # The pharmacy's receipt came down by sync: it is theirs now.
    with desk.engine.begin() as conn:
        conn.execute(update(prescription).values(status="received"))
    other = _add_pharmacy(desk.engine, name="Farmacia Norte")
    with pytest.raises(PrescriptionError, match="Call the pharmacy"):
        route_prescription(desk.engine, desk.clock, prescription_id, other)
    with pytest.raises(PrescriptionError, match="Call the pharmacy"):
        cancel_prescription(desk.engine, desk.clock, prescription_id, "Ya no la necesita")
    with pytest.raises(PrescriptionError, match="not on this computer"):
        cancel_prescription(desk.engine, desk.clock, uuid7(), "No existe")
    assert len(_queued(desk.engine)) == 3


def test_pharmacies_are_found_by_name_address_or_registry_number(desk: Desk) -> None:
    _add_pharmacy(desk.engine, name="Farmacia Ñuñoa", address="Irarrázaval 2400",
                  registry="RF-1234")
    _add_pharmacy(desk.engine, name="Botica del Ahorro", address="Los Leones 55",
                  registry="RF-12")
    _add_pharmacy(desk.engine, name="Farmacia Cerrada", active=False)
    names = [p["name"] for p in search_pharmacies(desk.engine, "nunoa")]
    assert names == ["Farmacia Ñuñoa"]
    assert [p["name"] for p in search_pharmacies(desk.engine, "IRARRAZAVAL")] == [
        "Farmacia Ñuñoa"]
    # The exact registry number first, then the rest that contain it.
    assert [p["registry_number"] for p in search_pharmacies(desk.engine, "rf-12")] == [
        "RF-12", "RF-1234"]
    assert [p["name"] for p in search_pharmacies(desk.engine, "farm")] == [
        "Farmacia Central", "Farmacia Ñuñoa"]
    everything = [p["name"] for p in search_pharmacies(desk.engine, "  ")]
    assert everything == ["Botica del Ahorro", "Farmacia Central", "Farmacia Ñuñoa"]
    assert len(search_pharmacies(desk.engine, "", limit=1)) == 1


def test_a_prescription_whose_key_is_not_here_cannot_be_checked_yet(desk: Desk) -> None:
    prescription_id = _sign(desk, [PARACETAMOL])
    with desk.engine.begin() as conn:
        conn.execute(update(prescription).values(signing_key_id=uuid7()))
    check = verify_stored(desk.engine, prescription_id)
    assert (check.valid, check.key_status) == (False, "unknown")
    assert "sync" in check.message
