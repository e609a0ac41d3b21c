"""POST /api/v1/sync/push: exactly-once application, field-level merges that keep the
losing value, booking commands through the booking service, and clear refusals."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import patient, sync_conflict
from tests.factories import ClinicData, Factory, expect_error

PUSH = "/api/v1/sync/push"
DEVICE = HybridClock("dev1")


def mutation(entity: str, op: str, record_id: uuid.UUID, changes: dict[str, Any], *,
             base: dict[str, Any] | None = None, base_version: int | None = None,
             hlc: str | None = None) -> dict[str, Any]:
    return {"mutation_id": str(uuid7()), "entity": entity, "op": op,
            "record_id": str(record_id), "changes": changes, "base": base or {},
            "base_version": base_version, "hlc": hlc or DEVICE.now().pack()}


async def push(client: httpx.AsyncClient, headers: dict[str, str],
               mutations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = await client.post(PUSH, headers=headers, json={"mutations": mutations})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def desk(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic = factory.clinic(patients=2, providers=1)
    return clinic, factory.headers(clinic.users[Role.RECEPTIONIST])


async def test_a_patient_made_offline_arrives_once_however_often_the_batch_is_sent(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    born = uuid7()
    batch = [mutation("patient", "upsert", born, {"given_name": "Offline",
                                                  "family_name": "Nacida"})]
    first = await push(client, headers, batch)
    assert first[0]["status"] == "applied"
    assert first[0]["record"]["id"] == str(born)
    again = await push(client, headers, batch)
    assert again == first
    assert factory.count(patient, clinic) == 3
    assert len(factory.audit_events(clinic, action="patient.create")) == 1


async def test_the_same_batch_sent_twice_at_once_is_applied_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    batch = [mutation("patient", "upsert", uuid7(), {"given_name": f"Doble{i}",
                                                     "family_name": "Envio"}) for i in range(5)]
    one, two = await asyncio.gather(push(client, headers, batch), push(client, headers, batch))
    assert one == two
    assert [r["status"] for r in one] == ["applied"] * 5
    assert factory.count(patient, clinic) == 2 + 5


async def test_edits_of_different_fields_merge_and_a_field_edited_on_both_sides_keeps_the_loser(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    target = clinic.patient_ids[0]
    before = factory.row(patient, clinic, target)
    offline_stamp = DEVICE.now().pack()  # the device edits while offline...
    changed = await client.patch(f"/api/v1/patients/{target}", headers=headers,
                                 json={"phone": "+56 9 6123 4567"})  # ...the desk edits later
    assert changed.status_code == 200
    results = await push(client, headers, [
        mutation("patient", "upsert", target, {"address": "Calle Nueva 1"},
                 base={"address": before["address"]}, base_version=before["server_version"]),
        mutation("patient", "upsert", target, {"phone": "+56 9 7123 4567"},
                 base={"phone": before["phone"]}, base_version=before["server_version"],
                 hlc=offline_stamp),
    ])
    assert results[0]["status"] == "merged"
    assert results[1]["status"] == "conflict"
    assert results[1]["conflicts"] == [{"field": "phone", "kept": "+56961234567",
                                        "lost": "+56971234567", "winner": "server"}]
    after = factory.row(patient, clinic, target)
    assert (after["address"], after["phone"]) == ("Calle Nueva 1", "+56961234567")
    with factory.engine.connect() as conn:
        kept = conn.execute(select(sync_conflict.c.lost, sync_conflict.c.winner).where(
            sync_conflict.c.record_id == target)).all()
    assert [(r.lost, r.winner) for r in kept] == [("+56971234567", "server")]


async def test_an_offline_booking_of_a_taken_slot_is_rejected_with_alternatives(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    provider_id = clinic.provider_ids[0]
    factory.weekly_hours(clinic, provider_id)
    now = datetime.now(UTC)
    slots = (await client.get(f"/api/v1/providers/{provider_id}/slots", headers=headers,
                              params={"start": (now + timedelta(days=1)).isoformat(),
                                      "end": (now + timedelta(days=2)).isoformat()})).json()
    start = slots["data"][0]["start"]
    taken = await client.post("/api/v1/appointments", headers=headers, json={
        "patient_id": str(clinic.patient_ids[0]), "provider_id": str(provider_id),
        "start": start})
    assert taken.status_code == 201
    [result] = await push(client, headers, [mutation("appointment", "book", uuid7(), {
        "patient_id": str(clinic.patient_ids[1]), "provider_id": str(provider_id),
        "start": start})])
    assert result["status"] == "rejected"
    assert result["code"] == "slot_taken"
    assert len(result["alternatives"]) == 3
    assert start not in [a["start"] for a in result["alternatives"]]


async def test_one_refused_mutation_leaves_the_rest_of_the_batch_applied(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    results = await push(client, headers, [
        mutation("patient", "upsert", uuid7(), {"given_name": "Buena", "family_name": "Uno"}),
        mutation("patient", "upsert", uuid7(), {"given_name": "Mala", "family_name": "Dos",
                                                 "phone": "12"}),
        mutation("provider", "upsert", clinic.provider_ids[0], {"display_name": "X"}),
        mutation("patient", "upsert", uuid7(), {"given_name": "", "family_name": "Tres"}),
        mutation("patient", "upsert", uuid7(), {"given_name": "Buena", "family_name": "Cuatro"}),
    ])
    assert [(r["status"], r["code"]) for r in results] == [
        ("applied", None), ("rejected", "invalid_phone"), ("rejected", "not_syncable"),
        ("rejected", "invalid_change"), ("applied", None)]
    assert all(r["reason"] for r in results if r["status"] == "rejected")
    assert factory.count(patient, clinic) == 2 + 2


async def test_roles_that_do_not_register_patients_cannot_push_them(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    [result] = await push(client, factory.headers(clinic.users[Role.LAB_TECH]), [
        mutation("patient", "upsert", uuid7(), {"given_name": "A", "family_name": "B"})])
    assert (result["status"], result["code"]) == ("rejected", "role_not_allowed")
    assert factory.count(patient, clinic) == 0


async def test_malformed_batches_are_refused_whole_with_a_clear_message(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    one = mutation("patient", "upsert", uuid7(), {"given_name": "A", "family_name": "B"})
    for body in ({"mutations": []}, {"mutations": [one] * 501},
                 {"mutations": [{**one, "hlc": "yesterday"}]},
                 {"mutations": [{**one, "entity": "invoice"}]}):
        expect_error(await client.post(PUSH, headers=headers, json=body), 422, "invalid_input")
    with factory.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(patient)
                            .where(patient.c.clinic_id == clinic.id)).scalar_one() == 2


async def test_pushing_another_clinics_record_ids_changes_nothing_there(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    a, headers = desk(factory)
    b = factory.clinic(patients=1, providers=1)
    b_patient = b.patient_ids[0]
    b_appointment = factory.appointment(b, b.provider_ids[0], b_patient,
                                        starts_at=datetime.now(UTC) + timedelta(days=3))
    before = factory.row(patient, b, b_patient)
    results = await push(client, headers, [
        mutation("patient", "upsert", b_patient, {"given_name": "Intruso"},
                 base={"given_name": before["given_name"]},
                 base_version=before["server_version"]),
        mutation("patient", "delete", b_patient, {}),
        mutation("appointment", "cancel", b_appointment, {"reason": "intrusion"}),
    ])
    # Clinic A cannot see B's patient: the upsert registers nothing it can match, so it is
    # refused as an incomplete new patient; the cancel finds no appointment.
    assert [(r["status"], r["code"]) for r in results] == [
        ("rejected", "invalid_change"), ("applied", None),
        ("rejected", "appointment_not_found")]
    assert factory.row(patient, b, b_patient) == before
    assert "Intruso" not in str(results)
    assert factory.count(patient, a) == 2


async def test_a_replayed_or_refused_change_answers_with_the_record_as_it_is_now(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # A device ignores pulled versions of a record while its own change to it is queued,
    # so the answer to that change is how it catches up, even a stored or refused one.
    clinic, headers = desk(factory)
    target = clinic.patient_ids[0]
    batch = [mutation("patient", "upsert", target, {"address": "Calle Uno 1"})]
    [first] = await push(client, headers, batch)
    later = await client.patch(f"/api/v1/patients/{target}", headers=headers,
                               json={"email": "despues@correo.cl"})
    assert later.status_code == 200
    [replayed] = await push(client, headers, batch)
    assert replayed["status"] == first["status"]
    assert replayed["conflicts"] == first["conflicts"]
    assert replayed["server_version"] == later.json()["server_version"] > first["server_version"]
    assert replayed["record"]["email"] == "despues@correo.cl"
    [refused] = await push(client, headers, [mutation("patient", "upsert", target,
                                                      {"phone": "not a phone"})])
    assert refused["status"] == "rejected"
    assert refused["record"]["address"] == "Calle Uno 1"
    assert refused["server_version"] == replayed["server_version"]
