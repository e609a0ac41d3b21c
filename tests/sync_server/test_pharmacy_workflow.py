"""The pharmacy's side of a prescription: the pharmacist sees what was sent to their
pharmacy with the server's fresh check of its signature, receives it, dispenses it once
however many times the button is pressed, or refuses it. A prescription changed at rest,
or signed with a key revoked since, is not received or dispensed. Other pharmacies, the
front desk and the lab see none of it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import patient, prescription, prescription_item, staff_user
from sync_server.actions.clinics import scope
from tests.conftest import make_client
from tests.factories import ClinicData, Factory, SigningKey, StaffUser, expect_error
from tests.sync_server.test_prescriptions import push_sign, signed
from tests.sync_server.test_sync_pull import pull_all

PRESCRIPTIONS = "/api/v1/prescriptions"
INCOMING = f"{PRESCRIPTIONS}/incoming"


def _link(factory: Factory, clinic: ClinicData, user: StaffUser,
          pharmacy_id: uuid.UUID) -> None:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(staff_user).where(staff_user.c.id == user.id)
                     .values(pharmacy_id=pharmacy_id))


def _pharmacy(factory: Factory) -> tuple[ClinicData, SigningKey, uuid.UUID, dict[str, str]]:
    """A clinic with a doctor's active key and a pharmacy its pharmacist is linked to."""
    clinic = factory.clinic(patients=2, providers=1)
    key = factory.signing_key(clinic)
    place = factory.pharmacy(clinic, name="Farmacia Central")
    _link(factory, clinic, clinic.users[Role.PHARMACIST], place)
    return clinic, key, place, factory.headers(clinic.users[Role.PHARMACIST])


async def _step(client: httpx.AsyncClient, headers: dict[str, str], prescription_id: Any,
                step: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await client.post(f"{PRESCRIPTIONS}/{prescription_id}/{step}", headers=headers,
                             json=body)


async def _ok(response: Any) -> dict[str, Any]:
    answered: httpx.Response = await response
    assert answered.status_code == 200, answered.text
    body: dict[str, Any] = answered.json()
    return body


async def test_a_pharmacist_receives_and_dispenses_a_prescription_the_doctor_sent(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    _, since = await pull_all(client, doctor, None)
    prescription_id, changes = signed(clinic, key, pharmacy_id=place)
    assert (await push_sign(client, factory, clinic, prescription_id, changes))["status"] \
        == "applied"
    queue = await _ok(client.get(INCOMING, headers=headers))
    [listed] = queue["data"]
    person = factory.row(patient, clinic, clinic.patient_ids[0])
    assert listed["id"] == str(prescription_id)
    assert listed["patient_name"] == f"{person['given_name']} {person['family_name']}"
    assert listed["patient_date_of_birth"] == (
        None if person["date_of_birth"] is None else person["date_of_birth"].isoformat())
    # Of the patient, the counter needs who they are and nothing more.
    assert {k for k in listed if k.startswith("patient")} == {
        "patient_id", "patient_name", "patient_date_of_birth"}
    assert listed["prescriber_name"] == "doctor user"
    assert listed["public_key"] == key.public_key
    assert listed["server_check"] == {
        "valid": True, "key_status": "active",
        "message": "The doctor's signature matches this prescription."}
    assert [i["medicine_id"] for i in listed["items"]] == ["amoxicillin"]
    assert (queue["has_more"], queue["next_offset"]) == (False, None)
    [read] = factory.audit_events(clinic, action="prescription.list")
    assert read.detail["returned"] == [str(prescription_id)]
    received = await _ok(_step(client, headers, prescription_id, "receive"))
    assert received["status"] == "received"
    dispensed = await _ok(_step(client, headers, prescription_id, "dispense"))
    assert dispensed["status"] == "dispensed"
    assert dispensed["status_changed_at"] is not None
    again = await _ok(_step(client, headers, prescription_id, "dispense"))
    assert again == dispensed  # pressed twice: one dispense
    assert len(factory.audit_events(clinic, action="prescription.dispense")) == 1
    stored = factory.row(prescription, clinic, prescription_id)
    assert stored["status_changed_by"] == clinic.users[Role.PHARMACIST].id
    # The doctor's computer learns the new status on its next pull.
    changes_pulled, _ = await pull_all(client, doctor, since)
    [pulled] = [c for c in changes_pulled if c["entity"] == "prescription"]
    assert pulled["record"]["status"] == "dispensed"
    assert (await _ok(client.get(INCOMING, headers=headers)))["data"] == []
    history = await _ok(client.get(INCOMING, headers=headers, params={"status": "dispensed"}))
    assert [p["id"] for p in history["data"]] == [str(prescription_id)]


async def test_a_prescription_is_dispensed_only_after_it_was_received(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    error = expect_error(await _step(client, headers, prescription_id, "dispense"), 409,
                         "not_received")
    assert "received first" in error["message"]
    assert factory.row(prescription, clinic, prescription_id)["status"] == "sent"
    cancelled = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(prescription).where(prescription.c.id == cancelled)
                     .values(status="cancelled", status_reason="Wrong dose"))
    for step in ("receive", "dispense"):
        error = expect_error(await _step(client, headers, cancelled, step), 409,
                             "invalid_transition")
        assert "cancelled by the prescriber" in error["message"]


async def test_a_pharmacist_refuses_a_prescription_with_a_reason(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    before = factory.row(prescription, clinic, prescription_id)
    for bad in (None, {}, {"reason": "no"}, {"reason": "Out of stock", "extra": 1},
                {"reason": "Out\x00"}):
        expect_error(await _step(client, headers, prescription_id, "refuse", bad), 422,
                     "invalid_input")
    assert factory.row(prescription, clinic, prescription_id) == before
    refused = await _ok(_step(client, headers, prescription_id, "refuse",
                              {"reason": "Out of stock"}))
    assert (refused["status"], refused["status_reason"]) == ("refused", "Out of stock")
    again = await _ok(_step(client, headers, prescription_id, "refuse",
                            {"reason": "Something else"}))
    assert again == refused
    expect_error(await _step(client, headers, prescription_id, "receive"), 409,
                 "invalid_transition")
    dispensed = factory.prescription(clinic, key, status="dispensed", pharmacy_id=place)
    expect_error(await _step(client, headers, dispensed, "refuse", {"reason": "Too late"}),
                 409, "invalid_transition")
    assert len(factory.audit_events(clinic, action="prescription.refuse")) == 1


async def test_two_pharmacists_dispensing_at_once_make_one_transition(
    app: FastAPI, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    colleague = factory.user(clinic, Role.PHARMACIST)
    _link(factory, clinic, colleague, place)
    prescription_id = factory.prescription(clinic, key, status="received", pharmacy_id=place)
    async with make_client(app) as one, make_client(app) as two:
        answers = await asyncio.gather(
            _step(one, headers, prescription_id, "dispense"),
            _step(two, factory.headers(colleague), prescription_id, "dispense"))
    assert [a.status_code for a in answers] == [200, 200]
    assert {a.json()["status"] for a in answers} == {"dispensed"}
    assert len(factory.audit_events(clinic, action="prescription.dispense")) == 1


async def test_another_pharmacy_sees_nothing_and_an_unlinked_pharmacist_is_told_why(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, _ = _pharmacy(factory)
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    other = factory.user(clinic, Role.PHARMACIST)
    _link(factory, clinic, other, factory.pharmacy(clinic))
    headers = factory.headers(other)
    assert (await _ok(client.get(INCOMING, headers=headers)))["data"] == []
    expect_error(await client.get(f"{PRESCRIPTIONS}/{prescription_id}", headers=headers), 404,
                 "prescription_not_found")
    for step, body in (("receive", None), ("dispense", None),
                       ("refuse", {"reason": "Not ours"})):
        expect_error(await _step(client, headers, prescription_id, step, body), 404,
                     "prescription_not_found")
    unlinked = factory.headers(factory.user(clinic, Role.PHARMACIST))
    error = expect_error(await client.get(INCOMING, headers=unlinked), 409, "no_pharmacy")
    assert "admin" in error["message"]
    expect_error(await _step(client, unlinked, prescription_id, "receive"), 409, "no_pharmacy")
    elsewhere = factory.clinic(patients=0, providers=0)
    foreign = factory.headers(elsewhere.users[Role.DOCTOR])
    expect_error(await client.get(f"{PRESCRIPTIONS}/{prescription_id}", headers=foreign), 404,
                 "prescription_not_found")
    assert factory.row(prescription, clinic, prescription_id)["status"] == "sent"


async def test_any_doctor_of_the_clinic_reads_a_prescription_and_the_read_is_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    colleague = factory.headers(factory.user(clinic, Role.DOCTOR))
    for reader in (factory.headers(clinic.users[Role.DOCTOR]), colleague, headers):
        body = await _ok(client.get(f"{PRESCRIPTIONS}/{prescription_id}", headers=reader))
        assert body["server_check"]["valid"] is True
    assert len(factory.audit_events(clinic, action="prescription.read")) == 3
    expect_error(await client.get(f"{PRESCRIPTIONS}/{uuid7()}", headers=colleague), 404,
                 "prescription_not_found")
    expect_error(await client.get(f"{PRESCRIPTIONS}/not-an-id", headers=colleague), 422,
                 "invalid_input")
    for step in ("receive", "dispense"):
        expect_error(await _step(client, headers, "not-an-id", step), 422, "invalid_input")
    expect_error(await client.get(INCOMING, headers=headers, params={"status": "cancelled"}),
                 422, "invalid_input")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.RECEPTIONIST, Role.LAB_TECH])
async def test_the_front_desk_the_lab_and_the_admin_reach_no_prescription(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, key, place, _ = _pharmacy(factory)
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    headers = factory.headers(clinic.users[role])
    calls = [client.get(INCOMING, headers=headers),
             client.get(f"{PRESCRIPTIONS}/{prescription_id}", headers=headers),
             _step(client, headers, prescription_id, "receive"),
             _step(client, headers, prescription_id, "dispense"),
             _step(client, headers, prescription_id, "refuse", {"reason": "Not mine"})]
    for call in calls:
        expect_error(await call, 403, "permission_denied")
    pulled, _ = await pull_all(client, headers, None)
    assert not {c["entity"] for c in pulled} & {"prescription", "prescription_item",
                                                 "signing_key"}
    assert factory.row(prescription, clinic, prescription_id)["status"] == "sent"


def _tamper_at_rest(factory: Factory, clinic: ClinicData, prescription_id: uuid.UUID) -> None:
    """Change an item as the database owner, past the trigger that forbids it."""
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(update(prescription_item)
                     .where(prescription_item.c.prescription_id == prescription_id)
                     .values(quantity=210))


async def test_a_prescription_changed_at_rest_is_flagged_and_cannot_be_dispensed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    sent = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    received = factory.prescription(clinic, key, status="received", pharmacy_id=place)
    for prescription_id in (sent, received):
        _tamper_at_rest(factory, clinic, prescription_id)
    queue = await _ok(client.get(INCOMING, headers=headers))
    checks = {p["id"]: p["server_check"] for p in queue["data"]}
    for prescription_id in (sent, received):
        check = checks[str(prescription_id)]
        assert (check["valid"], check["key_status"]) == (False, "active")
        assert "changed after it was signed" in check["message"]
    error = expect_error(await _step(client, headers, sent, "receive"), 409,
                         "signature_invalid")
    assert "changed after it was signed" in error["message"]
    expect_error(await _step(client, headers, received, "dispense"), 409, "signature_invalid")
    refused = await _ok(_step(client, headers, sent, "refuse",
                              {"reason": "Quantity does not match the signature"}))
    assert refused["status"] == "refused"
    assert factory.row(prescription, clinic, received)["status"] == "received"


async def test_a_key_revoked_for_cause_stops_what_it_signed_a_replaced_key_does_not(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    admin = factory.headers(clinic.users[Role.ADMIN])
    prescription_id = factory.prescription(clinic, key, status="sent", pharmacy_id=place)
    # The doctor's new laptop: a new key approved, the old one revoked as replaced.
    newer = factory.signing_key(clinic, status="pending")
    response = await client.post(f"/api/v1/signing-keys/{newer.id}/approve", headers=admin)
    assert response.status_code == 200, response.text
    listed = (await _ok(client.get(INCOMING, headers=headers)))["data"][0]
    assert (listed["server_check"]["valid"], listed["server_check"]["key_status"]) == (
        True, "revoked")
    assert (await _ok(_step(client, headers, prescription_id, "receive")))["status"] \
        == "received"
    # The new key is lost: what it signed is no longer trusted.
    stolen = factory.prescription(clinic, newer, status="sent", pharmacy_id=place)
    response = await client.post(f"/api/v1/signing-keys/{newer.id}/revoke", headers=admin,
                                 json={"reason": "Laptop stolen"})
    assert response.status_code == 200, response.text
    check = (await _ok(client.get(f"{PRESCRIPTIONS}/{stolen}", headers=headers)))[
        "server_check"]
    assert (check["valid"], check["key_status"]) == (False, "revoked")
    assert "revoked" in check["message"]
    expect_error(await _step(client, headers, stolen, "receive"), 409, "key_revoked")
    assert factory.row(prescription, clinic, stolen)["status"] == "sent"


async def test_the_incoming_queue_pages_oldest_first(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, key, place, headers = _pharmacy(factory)
    ids = [str(factory.prescription(clinic, key, status="sent", pharmacy_id=place))
           for _ in range(3)]
    first = await _ok(client.get(INCOMING, headers=headers, params={"limit": 2}))
    assert [p["id"] for p in first["data"]] == ids[:2]
    assert (first["has_more"], first["next_offset"]) == (True, 2)
    rest = await _ok(client.get(INCOMING, headers=headers, params={"limit": 2, "offset": 2}))
    assert [p["id"] for p in rest["data"]] == ids[2:]
    assert rest["has_more"] is False
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "lost"}):
        expect_error(await client.get(INCOMING, headers=headers, params=bad), 422,
                     "invalid_input")
