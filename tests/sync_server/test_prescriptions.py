"""Prescriptions pushed from a doctor's computer: accepted once, only with the doctor's own
approved key, only when the signature covers exactly what is stored, and only when every
high-severity warning the server finds now was acknowledged. The prescriber then routes
or cancels it until the pharmacy has it; the database's refusals come back as clear
errors, never as server errors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.prescribing import FORMULARY_VERSION
from shared_models.signing import sign_prescription, signing_time
from shared_models.tables import allergy, medication, prescription, prescription_item
from sync_server.actions import prescriptions as actions
from sync_server.actions.clinics import scope
from sync_server.core.errors import Conflict
from sync_server.db.tenancy import set_clinic
from sync_server.lib.context import ClinicContext
from sync_server.lib.stamps import server_stamp
from tests.factories import ClinicData, Factory, SigningKey, item
from tests.sync_server.test_sync_push import mutation, push

PENICILLIN_ACK = {"kind": "allergy", "medicines": ["amoxicillin", "class:penicillin"],
                  "reason": "Allergy ruled out by skin test last month."}


def signed(clinic: ClinicData, key: SigningKey, *, patient_id: uuid.UUID | None = None,
           items: list[dict[str, Any]] | None = None, pharmacy_id: uuid.UUID | None = None,
           acknowledgements: list[dict[str, Any]] | None = None,
           appointment_id: uuid.UUID | None = None, notes: str | None = "Control en 7 días",
           prescription_id: uuid.UUID | None = None) -> tuple[uuid.UUID, dict[str, Any]]:
    """A prescription signed on the doctor's computer with `key`: its id and the changes
    of its `sign` mutation."""
    prescription_id = prescription_id or uuid7()
    items = items if items is not None else [item()]
    row: dict[str, Any] = {
        "id": prescription_id, "clinic_id": clinic.id,
        "patient_id": patient_id or clinic.patient_ids[0], "prescriber_id": key.user_id,
        "appointment_id": appointment_id, "signed_at": signing_time(),
        "formulary_version": FORMULARY_VERSION, "notes": notes,
        "acknowledgements": acknowledgements or [], "signing_key_id": key.id}
    changes = {
        "patient_id": str(row["patient_id"]),
        "appointment_id": None if appointment_id is None else str(appointment_id),
        "signed_at": row["signed_at"].isoformat(), "formulary_version": FORMULARY_VERSION,
        "notes": notes, "acknowledgements": row["acknowledgements"],
        "signing_key_id": str(key.id), "signature": sign_prescription(key.private_key, row, items),
        "pharmacy_id": None if pharmacy_id is None else str(pharmacy_id), "items": items}
    return prescription_id, changes


async def push_sign(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                    prescription_id: uuid.UUID, changes: dict[str, Any],
                    user: Any = None) -> dict[str, Any]:
    user = user or clinic.users[Role.DOCTOR]
    [result] = await push(client, factory.headers(user),
                          [mutation("prescription", "sign", prescription_id, changes)])
    return result


def _allergic(factory: Factory, clinic: ClinicData, ref: str = "class:penicillin",
              *, status: str = "active") -> None:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(insert(allergy).values(
            clinic_id=clinic.id, id=uuid7(), patient_id=clinic.patient_ids[0],
            substance="Penicilina", formulary_ref=ref, severity="severe", status=status))


def _clinic(factory: Factory) -> tuple[ClinicData, SigningKey]:
    clinic = factory.clinic(patients=2, providers=1)
    return clinic, factory.signing_key(clinic)


# --- signing ---------------------------------------------------------------------------


async def test_a_signed_prescription_is_stored_as_signed_with_its_items(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    lines = [item(1), item(2, medicine_id="paracetamol", medicine_name="paracetamol",
                          strength="500 mg", form="tablet", dose="1 tablet", quantity=10,
                          instructions="If fever")]
    prescription_id, changes = signed(clinic, key, items=lines)
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert result["status"] == "applied", result
    record = result["record"]
    assert (record["status"], record["pharmacy_id"]) == ("signed", None)
    assert record["prescriber_id"] == str(clinic.users[Role.DOCTOR].id)
    assert record["signature"] == changes["signature"]
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        stored = conn.execute(select(prescription_item).where(
            prescription_item.c.prescription_id == prescription_id)
            .order_by(prescription_item.c.position)).all()
    assert [(i.medicine_id, i.quantity, i.instructions) for i in stored] == [
        ("amoxicillin", 21, None), ("paracetamol", 10, "If fever")]
    [event] = factory.audit_events(clinic, action="prescription.sign")
    assert event.entity_id == prescription_id
    assert event.detail["items"] == 2


async def test_a_prescription_for_an_active_pharmacy_is_sent_there_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    place = factory.pharmacy(clinic)
    prescription_id, changes = signed(clinic, key, pharmacy_id=place)
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert (result["record"]["status"], result["record"]["pharmacy_id"]) == ("sent", str(place))
    closed = factory.pharmacy(clinic, active=False)
    other_id, other = signed(clinic, key, pharmacy_id=closed)
    kept = await push_sign(client, factory, clinic, other_id, other)
    # Signed and kept: the doctor routes it to a pharmacy that is still open.
    assert (kept["record"]["status"], kept["record"]["pharmacy_id"]) == ("signed", None)


async def test_a_replayed_push_answers_the_same_and_stores_one_prescription(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    prescription_id, changes = signed(clinic, key)
    batch = [mutation("prescription", "sign", prescription_id, changes)]
    first = await push(client, headers, batch)
    again = await push(client, headers, batch)
    assert again == first
    # The same prescription under a new mutation id (the outbox sent it twice): one row.
    resent = await push_sign(client, factory, clinic, prescription_id, changes)
    assert resent["status"] == "applied"
    assert factory.count(prescription, clinic) == 1
    assert factory.count(prescription_item, clinic) == 1
    assert len(factory.audit_events(clinic, action="prescription.sign")) == 1
    # Another prescription under the same id is refused.
    _, different = signed(clinic, key, prescription_id=prescription_id, notes="Otra")
    refused = await push_sign(client, factory, clinic, prescription_id, different)
    assert (refused["status"], refused["code"]) == ("rejected", "already_exists")
    assert factory.row(prescription, clinic, prescription_id)["notes"] == "Control en 7 días"


@pytest.mark.parametrize(("status", "code", "words"), [
    ("pending", "key_not_approved", "admin"),
    ("revoked", "key_revoked", "revoked"),
])
async def test_a_key_not_approved_or_revoked_signs_nothing(
    client: httpx.AsyncClient, factory: Factory, status: str, code: str, words: str
) -> None:
    clinic = factory.clinic(patients=1, providers=0)
    key = factory.signing_key(clinic, status=status)
    prescription_id, changes = signed(clinic, key)
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert (result["status"], result["code"]) == ("rejected", code)
    assert words in result["reason"]
    assert factory.count(prescription, clinic) == 0


async def test_a_key_of_another_doctor_signs_nothing_for_the_caller(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    colleague = factory.user(clinic, Role.DOCTOR)
    prescription_id, changes = signed(clinic, key)
    result = await push_sign(client, factory, clinic, prescription_id, changes, colleague)
    assert (result["status"], result["code"]) == ("rejected", "unknown_key")
    assert factory.count(prescription, clinic) == 0


def _tamper_quantity(changes: dict[str, Any], clinic: ClinicData) -> None:
    changes["items"][0]["quantity"] = 210


def _tamper_signature(changes: dict[str, Any], clinic: ClinicData) -> None:
    raw = bytearray(base64.b64decode(changes["signature"]))
    raw[-1] ^= 0x01
    changes["signature"] = base64.b64encode(bytes(raw)).decode()


def _swap_patient(changes: dict[str, Any], clinic: ClinicData) -> None:
    changes["patient_id"] = str(clinic.patient_ids[1])


def _tamper_notes(changes: dict[str, Any], clinic: ClinicData) -> None:
    changes["notes"] = "Control en 14 días"


@pytest.mark.parametrize("tamper", [_tamper_quantity, _tamper_signature, _swap_patient,
                                    _tamper_notes])
async def test_a_prescription_changed_after_signing_is_refused(
    client: httpx.AsyncClient, factory: Factory, tamper: Any
) -> None:
    clinic, key = _clinic(factory)
    prescription_id, changes = signed(clinic, key)
    tamper(changes, clinic)
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert (result["status"], result["code"]) == ("rejected", "signature_invalid")
    assert "does not match its signature" in result["reason"]
    assert factory.count(prescription, clinic) == 0


async def test_an_allergy_recorded_after_signing_offline_stops_the_prescription(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    prescription_id, changes = signed(clinic, key)  # signed offline, knowing no allergy
    _allergic(factory, clinic)  # recorded meanwhile at the clinic
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert (result["status"], result["code"]) == ("rejected", "unacknowledged_warning")
    assert "Recorded allergy to Penicillins" in result["reason"]
    assert factory.count(prescription, clinic) == 0
    acknowledged_id, acknowledged = signed(clinic, key, acknowledgements=[PENICILLIN_ACK])
    result = await push_sign(client, factory, clinic, acknowledged_id, acknowledged)
    assert result["status"] == "applied", result
    assert result["record"]["acknowledgements"] == [PENICILLIN_ACK]


async def test_resolved_allergies_and_moderate_warnings_do_not_stop_a_prescription(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    _allergic(factory, clinic, status="resolved")
    _allergic(factory, clinic, "class:cephalosporin")  # a moderate cross-reaction
    _allergic(factory, clinic, "no_longer_in_the_formulary")
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(insert(medication).values(
            clinic_id=clinic.id, id=uuid7(), patient_id=clinic.patient_ids[0],
            medicine_id="amoxicillin", name="amoxicillin"))  # a moderate duplicate
    prescription_id, changes = signed(clinic, key)
    result = await push_sign(client, factory, clinic, prescription_id, changes)
    assert result["status"] == "applied", result


async def test_a_prescription_for_a_patient_visit_or_pharmacy_the_clinic_lacks_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    elsewhere = factory.clinic(patients=1, providers=0)
    visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[1],
                                starts_at=datetime.now(UTC) + timedelta(hours=2))
    cases = [
        signed(clinic, key, patient_id=elsewhere.patient_ids[0]),
        signed(clinic, key, patient_id=uuid7()),
        signed(clinic, key, pharmacy_id=uuid7()),
        signed(clinic, key, pharmacy_id=factory.pharmacy(elsewhere)),
        signed(clinic, key, appointment_id=visit),  # another patient's visit
    ]
    for prescription_id, changes in cases:
        result = await push_sign(client, factory, clinic, prescription_id, changes)
        assert (result["status"], result["code"]) == ("rejected", "unknown_reference"), result
    assert factory.count(prescription, clinic) == 0


def _bad_changes(changes: dict[str, Any]) -> list[dict[str, Any]]:
    no_items = {**changes, "items": []}
    naive = {**changes, "signed_at": "2026-01-01T10:00:00"}
    gap = {**changes, "items": [item(2)]}
    unknown_medicine = {**changes, "items": [item(medicine_id="unobtainium")]}
    not_base64 = {**changes, "signature": "!!!"}
    too_short = {**changes, "signature": "AAAA"}
    extra = {**changes, "status": "dispensed"}
    nul = {**changes, "formulary_version": "2026\x00"}
    nul_ack = {**changes, "acknowledgements": [{**PENICILLIN_ACK, "medicines": ["a\x00"]}]}
    missing = {k: v for k, v in changes.items() if k != "signing_key_id"}
    return [no_items, naive, gap, unknown_medicine, not_base64, too_short, extra, nul,
            nul_ack, missing]


async def test_a_malformed_prescription_is_refused_with_what_to_correct(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    prescription_id, changes = signed(clinic, key)
    for bad in _bad_changes(changes):
        result = await push_sign(client, factory, clinic, prescription_id, bad)
        assert (result["status"], result["code"]) == ("rejected", "invalid_change"), bad
        assert result["reason"].startswith("The ")
    [other] = await push(client, factory.headers(clinic.users[Role.DOCTOR]), [
        mutation("prescription", "upsert", prescription_id, changes)])
    assert (other["status"], other["code"]) == ("rejected", "invalid_operation")
    assert factory.count(prescription, clinic) == 0


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECEPTIONIST, Role.LAB_TECH,
                                  Role.PHARMACIST])
async def test_only_doctors_push_prescriptions(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=1, providers=0)
    key = factory.signing_key(clinic, clinic.users[role])  # even with a key of their own
    prescription_id, changes = signed(clinic, key)
    result = await push_sign(client, factory, clinic, prescription_id, changes,
                             clinic.users[role])
    assert (result["status"], result["code"]) == ("rejected", "role_not_allowed")
    assert factory.count(prescription, clinic) == 0


# --- routing and cancelling ------------------------------------------------------------


async def _command(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                   op: str, prescription_id: uuid.UUID, changes: dict[str, Any],
                   user: Any = None) -> dict[str, Any]:
    user = user or clinic.users[Role.DOCTOR]
    [result] = await push(client, factory.headers(user),
                          [mutation("prescription", op, prescription_id, changes)])
    return result


async def test_the_prescriber_routes_a_prescription_and_may_send_it_elsewhere(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    first, second = factory.pharmacy(clinic), factory.pharmacy(clinic)
    prescription_id = factory.prescription(clinic, key)
    routed = await _command(client, factory, clinic, "route", prescription_id,
                            {"pharmacy_id": str(first)})
    assert (routed["status"], routed["record"]["status"]) == ("applied", "sent")
    again = await _command(client, factory, clinic, "route", prescription_id,
                           {"pharmacy_id": str(first)})
    assert again["server_version"] == routed["server_version"]  # nothing changed
    moved = await _command(client, factory, clinic, "route", prescription_id,
                           {"pharmacy_id": str(second)})
    assert (moved["record"]["status"], moved["record"]["pharmacy_id"]) == ("sent", str(second))
    assert len(factory.audit_events(clinic, action="prescription.route")) == 2


async def test_routing_is_refused_when_it_is_not_the_callers_or_the_pharmacy_is_wrong(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    prescription_id = factory.prescription(clinic, key)
    colleague = factory.user(clinic, Role.DOCTOR)
    place = factory.pharmacy(clinic)
    cases: list[tuple[dict[str, Any], Any, str]] = [
        ({"pharmacy_id": str(place)}, colleague, "not_prescriber"),
        ({"pharmacy_id": str(uuid7())}, None, "unknown_reference"),
        ({"pharmacy_id": str(factory.pharmacy(clinic, active=False))}, None,
         "pharmacy_inactive"),
        ({"pharmacy_id": "nowhere"}, None, "invalid_change"),
        ({}, None, "invalid_change"),
    ]
    for changes, user, code in cases:
        result = await _command(client, factory, clinic, "route", prescription_id, changes,
                                user)
        assert (result["status"], result["code"]) == ("rejected", code), result
    missing = await _command(client, factory, clinic, "route", uuid7(),
                             {"pharmacy_id": str(place)})
    assert missing["code"] == "prescription_not_found"
    assert factory.row(prescription, clinic, prescription_id)["status"] == "signed"


async def test_the_prescriber_cancels_until_the_pharmacy_has_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key = _clinic(factory)
    sent = factory.prescription(clinic, key, status="sent")
    for bad in ({}, {"reason": "no"}, {"reason": "Wrong dose", "extra": True}):
        refused = await _command(client, factory, clinic, "cancel", sent, bad)
        assert refused["code"] == "invalid_change"
    cancelled = await _command(client, factory, clinic, "cancel", sent,
                               {"reason": "Wrong dose"})
    assert (cancelled["record"]["status"], cancelled["record"]["status_reason"]) == (
        "cancelled", "Wrong dose")
    again = await _command(client, factory, clinic, "cancel", sent, {"reason": "Wrong dose"})
    assert again["status"] == "applied"
    assert again["server_version"] == cancelled["server_version"]
    rerouted = await _command(client, factory, clinic, "route", sent,
                              {"pharmacy_id": str(factory.pharmacy(clinic))})
    assert rerouted["code"] == "prescription_closed"
    for status, code in (("received", "too_late"), ("dispensed", "too_late"),
                         ("refused", "prescription_closed")):
        held = factory.prescription(clinic, key, status=status)
        result = await _command(client, factory, clinic, "cancel", held,
                                {"reason": "Wrong dose"})
        assert (result["status"], result["code"]) == ("rejected", code)
        assert factory.row(prescription, clinic, held)["status"] == status
    received = factory.prescription(clinic, key, status="received")
    late = await _command(client, factory, clinic, "cancel", received, {"reason": "Wrong"})
    assert "call the pharmacy" in late["reason"]
    assert len(factory.audit_events(clinic, action="prescription.cancel")) == 1


async def test_a_refusal_by_the_database_is_a_clear_conflict_not_a_server_error(
    app: FastAPI, factory: Factory
) -> None:
    """The actions check the status under a row lock first; the database's rules are the
    backstop, and their refusals must read as conflicts too."""
    clinic, key = _clinic(factory)
    dispensed = factory.prescription(clinic, key, status="dispensed")
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        stale = conn.execute(select(prescription).where(prescription.c.id == dispensed)).one()
    async with app.state.engine.connect() as conn, conn.begin():
        await set_clinic(conn, clinic.id)
        ctx = ClinicContext(conn=conn, clinic_id=clinic.id,
                            user_id=clinic.users[Role.DOCTOR].id, role=Role.DOCTOR,
                            device_id=None, client_addr=None)
        with pytest.raises(Conflict) as refused:
            await actions._set_status(ctx, stale, status="cancelled", reason="Too late",
                                      stamp=server_stamp(), pharmacy_id=stale.pharmacy_id,
                                      refused=Conflict)
    assert refused.value.code == "prescription_closed"
    assert refused.value.message == ("A dispensed prescription cannot change; write a new "
                                     "prescription.")
    assert factory.row(prescription, clinic, dispensed)["status"] == "dispensed"
