"""Prescribers' signing keys: a doctor registers a key only by proving they hold it, it
signs nothing until the admin approves it, a doctor has one active key at a time, and a
revoked key stays revoked. Only doctors and the admin reach these endpoints."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.signing import (
    fingerprint,
    generate_key,
    key_registration_payload,
    public_pem,
    sign,
)
from shared_models.tables import signing_key
from tests.conftest import make_client
from tests.factories import ClinicData, Factory, StaffUser, expect_error

KEYS = "/api/v1/signing-keys"


def registration(clinic: ClinicData, user: StaffUser, *,
                 key: ec.EllipticCurvePrivateKey | None = None,
                 key_id: uuid.UUID | None = None) -> dict[str, Any]:
    """What a doctor's computer sends to register a key it just made."""
    key = key or generate_key()
    key_id = key_id or uuid7()
    pem = public_pem(key)
    proof = sign(key, key_registration_payload(key_id=key_id, clinic_id=clinic.id,
                                               user_id=user.id, public_key=pem))
    return {"id": str(key_id), "public_key": pem, "proof": proof}


async def register(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                   user: StaffUser | None = None) -> dict[str, Any]:
    user = user or clinic.users[Role.DOCTOR]
    response = await client.post(KEYS, headers=factory.headers(user),
                                 json=registration(clinic, user))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def approve(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                  key_id: str) -> dict[str, Any]:
    response = await client.post(f"{KEYS}/{key_id}/approve",
                                 headers=factory.headers(clinic.users[Role.ADMIN]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_doctor_registers_a_key_as_pending_and_a_retry_answers_with_the_same_key(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    doctor = clinic.users[Role.DOCTOR]
    body = registration(clinic, doctor)
    first = await client.post(KEYS, headers=factory.headers(doctor), json=body)
    assert first.status_code == 201, first.text
    key = first.json()
    assert (key["id"], key["user_id"], key["status"]) == (body["id"], str(doctor.id), "pending")
    assert key["fingerprint"] == fingerprint(body["public_key"])
    assert key["user_name"] == "doctor user"
    assert key["approved_at"] is None
    again = await client.post(KEYS, headers=factory.headers(doctor), json=body)
    assert again.status_code == 200, again.text
    assert again.json() == key
    assert factory.count(signing_key, clinic) == 1
    assert len(factory.audit_events(clinic, action="signing_key.register")) == 1


async def test_an_id_or_a_public_key_already_registered_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    doctor = clinic.users[Role.DOCTOR]
    key = generate_key()
    first = await register(client, factory, clinic)
    same_id = registration(clinic, doctor, key=key, key_id=uuid.UUID(first["id"]))
    expect_error(await client.post(KEYS, headers=factory.headers(doctor), json=same_id),
                 409, "key_id_taken")
    taken = await client.post(KEYS, headers=factory.headers(doctor),
                              json=registration(clinic, doctor, key=key))
    assert taken.status_code == 201
    again = registration(clinic, doctor, key=key)  # the same public key under a new id
    error = expect_error(await client.post(KEYS, headers=factory.headers(doctor), json=again),
                         409, "key_already_registered")
    assert "already registered" in error["message"]
    assert factory.count(signing_key, clinic) == 2


def _p384_registration(clinic: ClinicData, user: StaffUser) -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP384R1())
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    key_id = uuid7()
    payload = key_registration_payload(key_id=key_id, clinic_id=clinic.id, user_id=user.id,
                                       public_key=pem)
    proof = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    return {"id": str(key_id), "public_key": pem, "proof": proof}


def _bad_registrations(clinic: ClinicData, doctor: StaffUser, other: StaffUser
                       ) -> list[tuple[str, dict[str, Any], str]]:
    good = registration(clinic, doctor)
    by_another_key = registration(clinic, doctor)
    by_another_key["proof"] = registration(clinic, doctor)["proof"]
    for_another_user = registration(clinic, other)
    proof_not_base64 = {**good, "proof": "not-base64!!"}
    garbage = {**good, "public_key": "-----BEGIN PUBLIC KEY-----\n" + "A" * 120
               + "\n-----END PUBLIC KEY-----\n"}
    return [
        ("proof made by another key", by_another_key, "invalid_proof"),
        ("proof made for another doctor", for_another_user, "invalid_proof"),
        ("proof that is not base64", proof_not_base64, "invalid_proof"),
        ("a P-384 key", _p384_registration(clinic, doctor), "invalid_public_key"),
        ("garbage in the PEM", garbage, "invalid_public_key"),
        ("no proof", {k: v for k, v in good.items() if k != "proof"}, "invalid_input"),
        ("an extra field", {**good, "status": "active"}, "invalid_input"),
        ("a public key too short", {**good, "public_key": "short"}, "invalid_input"),
    ]


async def test_a_key_without_a_valid_proof_or_not_on_p256_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    doctor = clinic.users[Role.DOCTOR]
    other = factory.user(clinic, Role.DOCTOR)
    for label, body, code in _bad_registrations(clinic, doctor, other):
        response = await client.post(KEYS, headers=factory.headers(doctor), json=body)
        error = expect_error(response, 422, code)
        assert error["message"], label
    assert factory.count(signing_key, clinic) == 0
    assert factory.audit_events(clinic, action="signing_key.register") == []


async def test_the_admin_approves_a_key_and_a_newer_one_replaces_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    admin = clinic.users[Role.ADMIN]
    old = await register(client, factory, clinic)
    approved = await approve(client, factory, clinic, old["id"])
    assert approved["status"] == "active"
    assert approved["approved_by"] == str(admin.id)
    assert (await approve(client, factory, clinic, old["id"])) == approved  # changes nothing
    new = await register(client, factory, clinic)
    assert (await approve(client, factory, clinic, new["id"]))["status"] == "active"
    replaced = factory.row(signing_key, clinic, uuid.UUID(old["id"]))
    assert replaced["status"] == "revoked"
    assert replaced["revoke_reason"] == "replaced by a newer key"
    assert replaced["revoked_by"] == admin.id
    expect_error(await client.post(f"{KEYS}/{old['id']}/approve",
                                   headers=factory.headers(admin)), 409, "key_revoked")
    expect_error(await client.post(f"{KEYS}/{uuid7()}/approve", headers=factory.headers(admin)),
                 404, "signing_key_not_found")
    expect_error(await client.post(f"{KEYS}/not-a-key/approve", headers=factory.headers(admin)),
                 422, "invalid_input")
    assert [e.entity_id for e in factory.audit_events(clinic, action="signing_key.approve")] \
        == [uuid.UUID(old["id"]), uuid.UUID(new["id"])]
    assert len(factory.audit_events(clinic, action="signing_key.revoke")) == 1


async def test_two_keys_approved_at_once_leave_one_active(
    app: FastAPI, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    async with make_client(app) as one, make_client(app) as two:
        first = await register(one, factory, clinic)
        second = await register(two, factory, clinic)
        await asyncio.gather(approve(one, factory, clinic, first["id"]),
                             approve(two, factory, clinic, second["id"]))
    statuses = sorted(factory.row(signing_key, clinic, uuid.UUID(k["id"]))["status"]
                      for k in (first, second))
    assert statuses == ["active", "revoked"]


async def test_admins_list_every_key_doctors_their_own(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    colleague = factory.user(clinic, Role.DOCTOR)
    mine = await register(client, factory, clinic)
    theirs = await register(client, factory, clinic, colleague)
    await approve(client, factory, clinic, theirs["id"])
    admin = factory.headers(clinic.users[Role.ADMIN])
    listed = (await client.get(KEYS, headers=admin)).json()["data"]
    assert [k["id"] for k in listed] == [theirs["id"], mine["id"]]
    pending = (await client.get(KEYS, headers=admin, params={"status": "pending"})).json()
    assert [k["id"] for k in pending["data"]] == [mine["id"]]
    own = await client.get(KEYS, headers=factory.headers(clinic.users[Role.DOCTOR]))
    assert [k["id"] for k in own.json()["data"]] == [mine["id"]]
    expect_error(await client.get(KEYS, headers=admin, params={"status": "lost"}),
                 422, "invalid_input")
    elsewhere = factory.clinic(patients=0, providers=0)
    other_admin = factory.headers(elsewhere.users[Role.ADMIN])
    assert (await client.get(KEYS, headers=other_admin)).json()["data"] == []


async def test_the_owner_or_the_admin_revokes_a_key_once_and_for_good(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    key = await register(client, factory, clinic)
    await approve(client, factory, clinic, key["id"])
    colleague = factory.headers(factory.user(clinic, Role.DOCTOR))
    url = f"{KEYS}/{key['id']}/revoke"
    expect_error(await client.post(url, headers=colleague, json={"reason": "Not mine"}),
                 403, "not_key_owner")
    for bad in ({}, {"reason": "x"}, {"reason": "Lost\x00"}, {"reason": "ok", "extra": 1}):
        expect_error(await client.post(url, headers=doctor, json=bad), 422, "invalid_input")
    assert factory.row(signing_key, clinic, uuid.UUID(key["id"]))["status"] == "active"
    revoked = await client.post(url, headers=doctor, json={"reason": "Laptop stolen"})
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["revoke_reason"]) == (
        "revoked", "Laptop stolen")
    again = await client.post(url, headers=factory.headers(clinic.users[Role.ADMIN]),
                              json={"reason": "Another reason"})
    assert again.json() == revoked.json()
    assert len(factory.audit_events(clinic, action="signing_key.revoke")) == 1
    expect_error(await client.post(f"{KEYS}/{uuid7()}/revoke", headers=doctor,
                                   json={"reason": "Lost"}), 404, "signing_key_not_found")


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.LAB_TECH, Role.PHARMACIST])
async def test_other_roles_reach_no_signing_key_endpoint(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    key = await register(client, factory, clinic)
    user = clinic.users[role]
    headers = factory.headers(user)
    calls = [
        client.post(KEYS, headers=headers, json=registration(clinic, user)),
        client.get(KEYS, headers=headers),
        client.post(f"{KEYS}/{key['id']}/approve", headers=headers),
        client.post(f"{KEYS}/{key['id']}/revoke", headers=headers, json={"reason": "Lost"}),
    ]
    for call in calls:
        expect_error(await call, 403, "permission_denied")
    expect_error(await client.post(f"{KEYS}/{key['id']}/approve",
                                   headers=factory.headers(clinic.users[Role.DOCTOR])),
                 403, "permission_denied")
    assert factory.row(signing_key, clinic, uuid.UUID(key["id"]))["status"] == "pending"
