"""Rollouts: one enrolment code for many computers (the installer's ENROLMENT_CODE given
to every front-desk PC by group policy), never more computers than it was issued for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from shared_models.enums import Role
from shared_models.tables import audit_event, device, device_rollout
from tests.factories import PASSWORD, ClinicData, Factory, expect_error

DEVICES = "/api/v1/devices"
ROLLOUTS = f"{DEVICES}/rollouts"


async def issue_rollout(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                        **body: Any) -> dict[str, Any]:
    response = await client.post(ROLLOUTS, headers=factory.headers(clinic.users[Role.ADMIN]),
                                 json={"name": "Recepción", "computers": 3, **body})
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def enrol(client: httpx.AsyncClient, code: str, name: str | None = None
                ) -> httpx.Response:
    body = {"code": code} | ({"computer_name": name} if name else {})
    return await client.post(f"{DEVICES}/enrol", json=body)


async def test_one_code_enrols_each_computer_as_its_own_device(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    rollout = await issue_rollout(client, factory, clinic, computers=2)
    assert rollout["computers"] == 2
    first = await enrol(client, rollout["code"], "PC-FRONT-01")
    second = await enrol(client, rollout["code"].lower(), "PC-FRONT-02")
    assert first.status_code == second.status_code == 200, first.text + second.text
    assert first.json()["device_id"] != second.json()["device_id"]
    assert first.json()["clinic_id"] == str(clinic.id)
    # the third computer is refused: the rollout was for two
    expect_error(await enrol(client, rollout["code"], "PC-FRONT-03"), 401,
                 "enrolment_code_invalid")
    admin = factory.headers(clinic.users[Role.ADMIN])
    names = [d["name"] for d in (await client.get(DEVICES, headers=admin)).json()["data"]]
    assert names == ["Recepción 1 (PC-FRONT-01)", "Recepción 2 (PC-FRONT-02)"]
    listed = (await client.get(ROLLOUTS, headers=admin)).json()["data"]
    assert [(r["computers"], r["enrolled"]) for r in listed] == [(2, 2)]
    # each is a device of its own: staff sign in on it
    signed = await client.post("/api/v1/auth/token", data={
        "username": clinic.users[Role.RECEPTIONIST].email, "password": PASSWORD,
        "client_id": first.json()["device_id"],
        "client_secret": first.json()["device_secret"]})
    assert signed.status_code == 200, signed.text
    with factory.engine.begin() as conn:
        actions = conn.execute(select(audit_event.c.action, audit_event.c.actor_device_id)
                               .where(audit_event.c.clinic_id == clinic.id,
                                      audit_event.c.action.like("device.%"))).all()
    assert sorted(a for a, _ in actions) == ["device.enrol_rollout", "device.enrol_rollout",
                                             "device.issue_rollout"]


async def test_computers_enrolling_at_the_same_moment_never_exceed_the_places(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    rollout = await issue_rollout(client, factory, clinic, computers=5)
    answers = await asyncio.gather(*(enrol(client, rollout["code"], f"PC-{n:02}")
                                     for n in range(20)))
    assert sorted(r.status_code for r in answers) == [200] * 5 + [401] * 15
    with factory.engine.begin() as conn:
        enrolled = conn.execute(select(device.c.name).where(device.c.clinic_id == clinic.id)
                                ).scalars().all()
        places = conn.execute(select(device_rollout.c.enrolled)
                              .where(device_rollout.c.clinic_id == clinic.id)).scalar_one()
    assert len(enrolled) == places == 5
    assert sorted(n.split(" (")[0] for n in enrolled) == [f"Recepción {n}" for n in range(1, 6)]


async def test_an_expired_or_revoked_rollout_enrols_no_one_and_keeps_its_devices(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    admin = factory.headers(clinic.users[Role.ADMIN])
    expiring = await issue_rollout(client, factory, clinic)
    with factory.engine.begin() as conn:
        conn.execute(device_rollout.update()
                     .where(device_rollout.c.id == expiring["rollout_id"])
                     .values(expires_at=datetime.now(UTC) - timedelta(minutes=1)))
    error = expect_error(await enrol(client, expiring["code"]), 401, "enrolment_code_invalid")
    assert "Ask the clinic admin for a new one" in error["message"]

    revoked = await issue_rollout(client, factory, clinic)
    kept = await enrol(client, revoked["code"])
    assert kept.status_code == 200
    answer = await client.post(f"{ROLLOUTS}/{revoked['rollout_id']}/revoke", headers=admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["revoked_at"] is not None
    expect_error(await enrol(client, revoked["code"]), 401, "enrolment_code_invalid")
    listed = (await client.get(DEVICES, headers=admin)).json()["data"]
    assert [d["revoked_at"] for d in listed] == [None]  # the enrolled computer stays
    expect_error(await client.post(f"{ROLLOUTS}/{kept.json()['device_id']}/revoke",
                                   headers=admin), 404, "rollout_not_found")


async def test_rollouts_are_the_admins_and_the_clinics_own(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    a, b = factory.clinic(patients=0), factory.clinic(patients=0)
    desk = factory.headers(a.users[Role.RECEPTIONIST])
    expect_error(await client.post(ROLLOUTS, headers=desk,
                                   json={"name": "x", "computers": 2}), 403,
                 "permission_denied")
    expect_error(await client.get(ROLLOUTS, headers=desk), 403, "permission_denied")
    rollout = await issue_rollout(client, factory, a)
    assert (await client.get(ROLLOUTS, headers=factory.headers(b.users[Role.ADMIN]))
            ).json()["data"] == []
    expect_error(await client.post(f"{ROLLOUTS}/{rollout['rollout_id']}/revoke",
                                   headers=factory.headers(b.users[Role.ADMIN])),
                 404, "rollout_not_found")
    enrolled = await enrol(client, rollout["code"])
    assert enrolled.json()["clinic_id"] == str(a.id)


async def test_bad_rollout_requests_are_refused_with_the_reason(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    admin = factory.headers(clinic.users[Role.ADMIN])
    for body in ({"name": "Recepción", "computers": 0},
                 {"name": "Recepción", "computers": 501},
                 {"name": "  ", "computers": 3},
                 {"name": "Recepción", "computers": 3, "valid_hours": 0},
                 {"name": "Recepción", "computers": 3, "valid_hours": 24 * 31},
                 {"name": "Recepción"},
                 {"name": "Recepción", "computers": 3, "seats": 3}):
        expect_error(await client.post(ROLLOUTS, headers=admin, json=body), 422,
                     "invalid_input")
    rollout = await issue_rollout(client, factory, clinic)
    expect_error(await client.post(f"{DEVICES}/enrol", json={
        "code": rollout["code"], "computer_name": "x" * 64}), 422, "invalid_input")
    expect_error(await client.post(f"{DEVICES}/enrol", json={
        "code": rollout["code"], "computer_name": "PC\x00"}), 422, "invalid_input")
    with factory.engine.begin() as conn:
        assert conn.execute(select(device_rollout.c.enrolled)
                            .where(device_rollout.c.clinic_id == clinic.id)).scalar_one() == 0
