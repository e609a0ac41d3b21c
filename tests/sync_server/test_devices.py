"""Enrolling a computer with a one-time code, signing in on it, and revoking it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from shared_models.enums import Role
from shared_models.tables import device
from tests.conftest import make_client
from tests.factories import PASSWORD, ClinicData, Factory, expect_error

DEVICES = "/api/v1/devices"


async def issue(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                name: str = "Recepción 1") -> dict[str, Any]:
    response = await client.post(DEVICES, headers=factory.headers(clinic.users[Role.ADMIN]),
                                 json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def sign_in(client: httpx.AsyncClient, clinic: ClinicData, creds: dict[str, Any],
                  role: Role = Role.RECEPTIONIST) -> httpx.Response:
    return await client.post("/api/v1/auth/token", data={
        "username": clinic.users[role].email, "password": PASSWORD,
        "client_id": creds["device_id"], "client_secret": creds["device_secret"]})


async def test_a_computer_enrols_with_a_one_time_code_and_staff_sign_in_on_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1)
    code = await issue(client, factory, clinic)
    assert len(code["code"]) == 14
    enrolled = await client.post(f"{DEVICES}/enrol", json={"code": code["code"].lower()})
    assert enrolled.status_code == 200, enrolled.text
    creds = enrolled.json()
    assert creds["device_id"] == code["device_id"]
    assert creds["clinic_id"] == str(clinic.id)

    signed = await sign_in(client, clinic, creds)
    assert signed.status_code == 200, signed.text
    access = signed.json()["access_token"]
    providers = await client.get("/api/v1/providers",
                                 headers={"Authorization": f"Bearer {access}"})
    assert providers.status_code == 200

    again = await client.post(f"{DEVICES}/enrol", json={"code": code["code"]})
    expect_error(again, 401, "enrolment_code_invalid")
    with factory.engine.connect() as conn:
        row = conn.execute(select(device).where(device.c.id == code["device_id"])).one()
    assert row.code_hash is None
    assert creds["device_secret"] not in (row.secret_hash or "")


async def test_revoking_a_computer_ends_its_sessions_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1)
    code = await issue(client, factory, clinic)
    creds = (await client.post(f"{DEVICES}/enrol", json={"code": code["code"]})).json()
    pair = (await sign_in(client, clinic, creds)).json()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/api/v1/patients", headers=auth)).status_code == 200

    revoked = await client.post(f"{DEVICES}/{creds['device_id']}/revoke",
                                headers=factory.headers(clinic.users[Role.ADMIN]))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None

    error = expect_error(await client.get("/api/v1/patients", headers=auth), 401,
                         "device_revoked")
    assert "revoked" in error["message"]
    pushed = await client.post("/api/v1/sync/push", headers=auth, json={"mutations": [{
        "mutation_id": "01900000-0000-7000-8000-0000000000aa", "entity": "patient",
        "op": "upsert", "record_id": "01900000-0000-7000-8000-0000000000ab",
        "changes": {"given_name": "No", "family_name": "Subido"},
        "hlc": "1700000000000-000000-dev"}]})
    expect_error(pushed, 401, "device_revoked")
    expect_error(await client.post("/api/v1/auth/refresh",
                                   json={"refresh_token": pair["refresh_token"]}),
                 401, "refresh_revoked")
    expect_error(await sign_in(client, clinic, creds), 401, "device_revoked")


async def test_a_wrong_device_secret_or_another_clinics_device_is_refused(
    app: FastAPI, factory: Factory
) -> None:
    a, b = factory.clinic(patients=0), factory.clinic(patients=0)
    async with make_client(app, client_addr="10.61.0.1") as client:
        creds_b = (await client.post(f"{DEVICES}/enrol", json={
            "code": (await issue(client, factory, b))["code"]})).json()
        wrong = {**creds_b, "device_secret": "not-the-secret"}
        expect_error(await sign_in(client, b, wrong), 401, "device_revoked")
        expect_error(await sign_in(client, a, creds_b), 401, "device_revoked")


async def test_an_expired_or_unknown_code_is_refused_clearly(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    code = await issue(client, factory, clinic)
    with factory.engine.begin() as conn:
        conn.execute(device.update().where(device.c.id == code["device_id"])
                     .values(code_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    error = expect_error(await client.post(f"{DEVICES}/enrol", json={"code": code["code"]}),
                         401, "enrolment_code_invalid")
    assert "Ask the clinic admin for a new one" in error["message"]
    expect_error(await client.post(f"{DEVICES}/enrol", json={"code": "AAAA-BBBB-CCCC"}),
                 401, "enrolment_code_invalid")
    expect_error(await client.post(f"{DEVICES}/enrol", json={"code": ""}), 422, "invalid_input")


async def test_one_code_exchanged_twice_at_once_enrols_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    code = (await issue(client, factory, clinic))["code"]
    first, second = await asyncio.gather(
        client.post(f"{DEVICES}/enrol", json={"code": code}),
        client.post(f"{DEVICES}/enrol", json={"code": code}))
    assert sorted([first.status_code, second.status_code]) == [200, 401]


async def test_only_an_admin_issues_codes_lists_and_revokes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    expect_error(await client.post(DEVICES, headers=desk, json={"name": "x"}), 403,
                 "permission_denied")
    expect_error(await client.get(DEVICES, headers=desk), 403, "permission_denied")
    code = await issue(client, factory, clinic, name="Consultorio 2")
    listed = await client.get(DEVICES, headers=factory.headers(clinic.users[Role.ADMIN]))
    assert [d["name"] for d in listed.json()["data"]] == ["Consultorio 2"]
    expect_error(await client.post(f"{DEVICES}/{code['device_id']}/revoke", headers=desk),
                 403, "permission_denied")
    expect_error(await client.post(DEVICES, headers=factory.headers(clinic.users[Role.ADMIN]),
                                   json={"name": "  "}), 422, "invalid_input")

