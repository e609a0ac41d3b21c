"""GET /api/v1/sync/conflicts and POST .../resolve: staff review the values that lost a
merge and keep the record as it is or restore the lost value; a note's conflicts reach
only its author."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import clinical_note, patient
from tests.factories import ClinicData, Factory, expect_error
from tests.sync_server.test_sync_push import mutation, push

CONFLICTS = "/api/v1/sync/conflicts"
DEVICE = HybridClock("reviewer")


async def phone_conflict(client: httpx.AsyncClient, factory: Factory
                         ) -> tuple[ClinicData, dict[str, str], dict[str, Any]]:
    """A phone edited offline that lost to a later edit at the desk."""
    clinic = factory.clinic(patients=1, providers=1)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    target = clinic.patient_ids[0]
    before = factory.row(patient, clinic, target)
    offline = DEVICE.now().pack()
    changed = await client.patch(f"/api/v1/patients/{target}", headers=headers,
                                 json={"phone": "+56 9 6123 4567"})
    assert changed.status_code == 200
    [result] = await push(client, headers, [mutation(
        "patient", "upsert", target, {"phone": "+56 9 7123 4567"},
        base={"phone": before["phone"]}, base_version=before["server_version"], hlc=offline)])
    assert result["status"] == "conflict"
    listed = await client.get(CONFLICTS, headers=headers)
    assert listed.status_code == 200
    [conflict] = listed.json()["data"]
    return clinic, headers, conflict


async def test_the_front_desk_restores_a_phone_that_lost_a_merge(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers, conflict = await phone_conflict(client, factory)
    assert (conflict["field"], conflict["kept"], conflict["lost"]) == (
        "phone", "+56961234567", "+56971234567")
    assert conflict["resolved_at"] is None
    resolved = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=headers,
                                 json={"keep": "lost"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution"] == "lost"
    assert factory.row(patient, clinic, clinic.patient_ids[0])["phone"] == "+56971234567"
    still_open = await client.get(CONFLICTS, headers=headers)
    assert still_open.json()["data"] == []
    done = await client.get(CONFLICTS, headers=headers, params={"state": "resolved"})
    assert [c["id"] for c in done.json()["data"]] == [conflict["id"]]
    again = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=headers,
                              json={"keep": "current"})
    expect_error(again, 409, "already_resolved")
    assert factory.audit_events(clinic, action="sync_conflict.resolve")


async def test_keeping_the_current_value_changes_nothing_but_closes_the_conflict(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers, conflict = await phone_conflict(client, factory)
    before = factory.row(patient, clinic, clinic.patient_ids[0])
    resolved = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=headers,
                                 json={"keep": "current"})
    assert resolved.json()["resolution"] == "current"
    after = factory.row(patient, clinic, clinic.patient_ids[0])
    assert after["server_version"] == before["server_version"]


async def test_a_notes_conflict_reaches_only_its_author_who_can_restore_the_other_text(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    author = factory.headers(clinic.users[Role.DOCTOR])
    note_id = uuid7()
    [made] = await push(client, author, [mutation(
        "clinical_note", "upsert", note_id,
        {"patient_id": str(clinic.patient_ids[0]), "body": "Inicio."})])
    early = DEVICE.now().pack()
    await push(client, author, [mutation("clinical_note", "upsert", note_id,
                                         {"body": "Inicio. Texto B."},
                                         base={"body": "Inicio."}, hlc=DEVICE.now().pack())])
    [lost] = await push(client, author, [mutation(
        "clinical_note", "upsert", note_id, {"body": "Inicio. Texto A."},
        base={"body": "Inicio."}, base_version=made["server_version"], hlc=early)])
    assert lost["status"] == "conflict"
    assert lost["record"]["body"] == "Inicio. Texto B."  # the later edit is the note

    for other in (factory.headers(clinic.users[Role.RECEPTIONIST]),
                  factory.headers(factory.user(clinic, Role.DOCTOR))):
        assert (await client.get(CONFLICTS, headers=other)).json()["data"] == []
    [conflict] = (await client.get(CONFLICTS, headers=author)).json()["data"]
    refused = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve",
                                headers=factory.headers(clinic.users[Role.RECEPTIONIST]),
                                json={"keep": "lost"})
    expect_error(refused, 404, "conflict_not_found")

    resolved = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=author,
                                 json={"keep": "lost"})
    assert resolved.status_code == 200, resolved.text
    assert factory.row(clinical_note, clinic, note_id)["body"] == "Inicio. Texto A."
    copy = factory.row(clinical_note, clinic, conflict["lost"]["conflict_copy"])
    assert copy["deleted_at"] is not None


async def test_the_text_kept_beside_a_signed_note_cannot_replace_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    author = factory.headers(clinic.users[Role.DOCTOR])
    note_id = uuid7()
    await push(client, author, [
        mutation("clinical_note", "sign", note_id,
                 {"patient_id": str(clinic.patient_ids[0]), "body": "Firmada."}),
        mutation("clinical_note", "upsert", note_id, {"body": "Firmada. Tarde."},
                 base={"body": "Firmada."})])
    [conflict] = (await client.get(CONFLICTS, headers=author)).json()["data"]
    refused = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=author,
                                json={"keep": "lost"})
    expect_error(refused, 409, "note_signed")
    assert "addendum" in refused.json()["error"]["message"]
    kept = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=author,
                             json={"keep": "current"})
    assert kept.status_code == 200
    assert factory.row(clinical_note, clinic, note_id)["body"] == "Firmada."


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"keep": "maybe"}, 422, "invalid_input"),
    ({}, 422, "invalid_input"),
    ({"keep": "lost", "also": 1}, 422, "invalid_input"),
])
async def test_a_bad_resolution_is_refused_and_the_conflict_stays_open(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, Any], status: int, code: str
) -> None:
    _clinic, headers, conflict = await phone_conflict(client, factory)
    response = await client.post(f"{CONFLICTS}/{conflict['id']}/resolve", headers=headers,
                                 json=body)
    expect_error(response, status, code)
    [still] = (await client.get(CONFLICTS, headers=headers)).json()["data"]
    assert still["resolved_at"] is None


async def test_unknown_conflicts_and_bad_filters_get_clear_answers(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _clinic, headers, _conflict = await phone_conflict(client, factory)
    missing = await client.post(f"{CONFLICTS}/{uuid7()}/resolve", headers=headers,
                                json={"keep": "lost"})
    expect_error(missing, 404, "conflict_not_found")
    expect_error(await client.get(CONFLICTS, headers=headers, params={"state": "closed"}),
                 422, "invalid_input")
    expect_error(await client.get(CONFLICTS, headers=headers, params={"limit": 0}),
                 422, "invalid_input")
