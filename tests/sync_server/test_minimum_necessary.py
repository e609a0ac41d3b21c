"""Minimum necessary (DESIGN sections 5 and 8): what doctors write, prescribe and get back
from the lab reaches doctors only. The front desk, the lab, the pharmacy and the clinic
admin pull none of it, cannot read a chart or write one, and every chart read is in the
audit log with who, on which computer, and whose chart."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared_models.enums import Role
from shared_models.ids import uuid7
from tests.factories import ClinicData, Factory, expect_error, item
from tests.sync_server.test_clinical_records import new_entry
from tests.sync_server.test_devices import DEVICES, issue, sign_in
from tests.sync_server.test_sync_push import mutation, push

PULL = "/api/v1/sync/pull"
CLINICAL = frozenset({"clinical_note", "allergy", "condition", "medication", "vital_signs",
                      "prescription", "prescription_item", "lab_order", "lab_result"})
NOT_TREATING = (Role.RECEPTIONIST, Role.LAB_TECH, Role.PHARMACIST, Role.ADMIN)
# Text only the chart holds, each of it in one kind of record.
SECRETS = {"clinical_note": "NOTEBODYSECRET", "allergy": "SUBSTANCESECRET",
           "condition": "CONDITIONSECRET", "medication": "DOSESECRET",
           "vital_signs": None, "prescription": "RXNOTESECRET",
           "prescription_item": "RXINSTRUCTIONSECRET"}


async def chart_with_everything(client: httpx.AsyncClient, factory: Factory
                                ) -> tuple[ClinicData, uuid.UUID]:
    """A clinic whose first patient has one record of every clinical kind, written by its
    doctor over sync where doctors write them."""
    clinic = factory.clinic(patients=1, providers=1)
    patient_id = clinic.patient_ids[0]
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    results = await push(client, doctor, [
        mutation("clinical_note", "sign", uuid7(), {"patient_id": str(patient_id),
                                                    "body": SECRETS["clinical_note"]}),
        mutation("allergy", "upsert", uuid7(), new_entry(
            "allergy", patient_id, substance=SECRETS["allergy"])),
        mutation("condition", "upsert", uuid7(), new_entry(
            "condition", patient_id, description=SECRETS["condition"])),
        mutation("medication", "upsert", uuid7(), new_entry(
            "medication", patient_id, dose=SECRETS["medication"])),
        mutation("vital_signs", "upsert", uuid7(), new_entry("vital_signs", patient_id)),
    ])
    assert {r["status"] for r in results} == {"applied"}, results
    factory.prescription(clinic, patient_id=patient_id, status="sent",
                         notes=SECRETS["prescription"],
                         items=[item(instructions=SECRETS["prescription_item"])])
    factory.lab_order(clinic, patient_id=patient_id, status="processing", results=2)
    return clinic, patient_id


async def full_pull(client: httpx.AsyncClient, headers: dict[str, str]
                    ) -> tuple[list[dict[str, Any]], str]:
    """Every change a device with `headers` receives, paged to the end, and the raw JSON
    of all the pages."""
    changes: list[dict[str, Any]] = []
    raw: list[str] = []
    params: dict[str, Any] = {"limit": 7}
    while True:
        response = await client.get(PULL, headers=headers, params=params)
        assert response.status_code == 200, response.text
        raw.append(response.text)
        body = response.json()
        changes.extend(body["changes"])
        if not body["has_more"]:
            return changes, "".join(raw)
        params["since"] = body["next_cursor"]


async def test_only_doctors_pull_the_chart(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, _ = await chart_with_everything(client, factory)
    changes, _ = await full_pull(client, factory.headers(clinic.users[Role.DOCTOR]))
    assert {c["entity"] for c in changes} >= CLINICAL
    for role in NOT_TREATING:
        changes, raw = await full_pull(client, factory.headers(clinic.users[role]))
        assert not {c["entity"] for c in changes} & CLINICAL, role
        for secret in filter(None, SECRETS.values()):
            assert secret not in raw, (role, secret)
        # The lab order's clinical information and the results travel to no one but doctors.
        assert '"analyte"' not in raw, role
        assert '"clinical_info"' not in raw, role


@pytest.mark.parametrize("role", NOT_TREATING)
async def test_roles_that_do_not_treat_cannot_read_a_chart(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, patient_id = await chart_with_everything(client, factory)
    response = await client.get(f"/api/v1/patients/{patient_id}/chart",
                                headers=factory.headers(clinic.users[role]))
    error = expect_error(response, 403, "permission_denied")
    assert f"Your role ({role.value})" in error["message"]
    assert error["details"]["required_roles"] == ["doctor"]
    assert not any(secret and secret in response.text for secret in SECRETS.values())
    assert factory.audit_events(clinic, action="chart.read") == []


PUSHED_CLINICAL = [
    ("clinical_note", "upsert", lambda p: {"patient_id": p, "body": "x"}),
    ("allergy", "upsert", lambda p: new_entry("allergy", p)),
    ("condition", "upsert", lambda p: new_entry("condition", p)),
    ("medication", "upsert", lambda p: new_entry("medication", p)),
    ("vital_signs", "upsert", lambda p: new_entry("vital_signs", p)),
    ("lab_order", "upsert", lambda p: {"patient_id": p, "tests": ["cbc"]}),
    ("prescription", "sign", lambda p: {"patient_id": p}),
    ("chart", "read", None),
]


@pytest.mark.parametrize(("entity", "op", "changes"), PUSHED_CLINICAL,
                         ids=[e for e, _, _ in PUSHED_CLINICAL])
async def test_the_front_desk_cannot_push_anything_clinical(
    client: httpx.AsyncClient, factory: Factory, entity: str, op: str, changes: Any
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    patient_id = clinic.patient_ids[0]
    record_id = patient_id if changes is None else uuid7()
    body = {} if changes is None else changes(str(patient_id))
    [refused] = await push(client, factory.headers(clinic.users[Role.RECEPTIONIST]), [
        mutation(entity, op, record_id, body)])
    assert (refused["status"], refused["code"]) == ("rejected", "role_not_allowed")
    assert refused["reason"]
    assert refused["record"] is None
    assert [e for e in factory.audit_events(clinic) if e.action.split(".")[0] in
            {*CLINICAL, "note", "chart"}] == []


async def test_every_chart_read_is_in_the_audit_log_with_reader_computer_and_patient(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, patient_id = await chart_with_everything(client, factory)
    code = await issue(client, factory, clinic, name="Consultorio 2")
    creds = (await client.post(f"{DEVICES}/enrol", json={"code": code["code"]})).json()
    signed = await sign_in(client, clinic, creds, role=Role.DOCTOR)
    assert signed.status_code == 200, signed.text
    on_laptop = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    response = await client.get(f"/api/v1/patients/{patient_id}/chart", headers=on_laptop)
    assert response.status_code == 200
    [pushed] = await push(client, on_laptop, [mutation("chart", "read", patient_id, {})])
    assert pushed["status"] == "applied"
    reads = factory.audit_events(clinic, action="chart.read")
    assert sorted((e.actor_user_id, str(e.actor_device_id), e.entity, e.entity_id,
                   e.detail["source"]) for e in reads) == [
        (clinic.users[Role.DOCTOR].id, creds["device_id"], "patient", patient_id, source)
        for source in ("api", "device")]
    # Only ids in the log: what the chart says is not copied there.
    assert not any(secret and secret in str(e.detail) for e in reads
                   for secret in SECRETS.values())
