"""GET /api/v1/patients/{id}/chart: the whole chart in one response and a handful of
queries, only what the reader may see, and one audit event for every read, whether made
through the API or on a doctor's computer and reported later."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event, update

from shared_models.clock import Hlc, HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import lab_result, patient
from sync_server.actions.clinics import scope
from tests.factories import Factory, expect_error, item
from tests.sync_server.test_clinical_records import new_entry
from tests.sync_server.test_sync_push import mutation, push

LAPTOP = HybridClock("chartlaptop")


def chart_url(patient_id: uuid.UUID) -> str:
    return f"/api/v1/patients/{patient_id}/chart"


async def write(client: httpx.AsyncClient, headers: dict[str, str], entity: str, op: str,
                changes: dict[str, Any], record_id: uuid.UUID | None = None) -> uuid.UUID:
    record_id = record_id or uuid7()
    [result] = await push(client, headers, [mutation(entity, op, record_id, changes,
                                                     hlc=LAPTOP.now().pack())])
    assert result["status"] == "applied", result
    return record_id


async def test_a_doctor_reads_the_whole_chart_and_only_what_they_may_see(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=2, providers=1)
    me = factory.headers(clinic.users[Role.DOCTOR])
    colleague = factory.headers(factory.user(clinic, Role.DOCTOR))
    patient_id, other_patient = clinic.patient_ids
    allergy_id = await write(client, me, "allergy", "upsert", new_entry("allergy", patient_id))
    removed = await write(client, me, "allergy", "upsert",
                          new_entry("allergy", patient_id, substance="Látex",
                                    formulary_ref=None))
    await write(client, me, "allergy", "delete", {}, removed)
    await write(client, me, "condition", "upsert", new_entry("condition", patient_id))
    await write(client, me, "medication", "upsert", new_entry("medication", patient_id))
    now = datetime.now(UTC)
    older = await write(client, me, "vital_signs", "upsert", new_entry(
        "vital_signs", patient_id, measured_at=(now - timedelta(days=30)).isoformat()))
    newer = await write(client, me, "vital_signs", "upsert", new_entry(
        "vital_signs", patient_id, measured_at=now.isoformat()))
    mine_signed = await write(client, me, "clinical_note", "sign",
                              {"patient_id": str(patient_id), "body": "Nota firmada."})
    mine_draft = await write(client, me, "clinical_note", "upsert",
                             {"patient_id": str(patient_id), "body": "Mi borrador."})
    theirs_signed = await write(client, colleague, "clinical_note", "sign",
                                {"patient_id": str(patient_id), "body": "Nota de colega."})
    await write(client, colleague, "clinical_note", "upsert",
                {"patient_id": str(patient_id), "body": "Borrador ajeno."})
    addendum = await write(client, colleague, "clinical_note", "sign",
                           {"patient_id": str(patient_id), "body": "Adenda.",
                            "addendum_to": str(mine_signed)})
    prescription_id = factory.prescription(
        clinic, patient_id=patient_id, status="sent",
        items=[item(1), item(2, medicine_id="ibuprofen", medicine_name="ibuprofen",
                             strength="400 mg", form="tablet", dose="1 tablet")])
    order_id = factory.lab_order(clinic, patient_id=patient_id, status="processing", results=2)
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(lab_result).where(lab_result.c.lab_order_id == order_id,
                                              lab_result.c.analyte == "hgb")
                     .values(value="10.1", value_numeric=10.1, flag="low"))
    # Another patient's chart entries stay in their own chart.
    await write(client, me, "allergy", "upsert", new_entry("allergy", other_patient))
    factory.prescription(clinic, patient_id=other_patient)
    factory.lab_order(clinic, patient_id=other_patient)

    response = await client.get(chart_url(patient_id), headers=me)
    assert response.status_code == 200, response.text
    chart = response.json()
    person = factory.row(patient, clinic, patient_id)
    assert chart["patient"] == {
        "id": str(patient_id), "mrn": person["mrn"], "given_name": person["given_name"],
        "family_name": person["family_name"],
        "date_of_birth": person["date_of_birth"] and person["date_of_birth"].isoformat(),
        "sex": person["sex"]}
    assert [a["id"] for a in chart["allergies"]] == [str(allergy_id)]
    assert chart["allergies"][0]["formulary_ref"] == "class:penicillin"
    assert [c["code"] for c in chart["conditions"]] == ["I10"]
    assert [m["medicine_id"] for m in chart["medications"]] == ["losartan"]
    assert [v["id"] for v in chart["vital_signs"]] == [str(newer), str(older)]
    notes = {n["id"]: n for n in chart["notes"]}
    assert set(notes) == {str(mine_signed), str(mine_draft), str(theirs_signed), str(addendum)}
    assert notes[str(addendum)]["addendum_to"] == str(mine_signed)
    assert notes[str(mine_draft)]["status"] == "draft"
    assert notes[str(theirs_signed)]["author_name"] == "Extra user"
    assert "Borrador ajeno." not in response.text
    [rx] = chart["prescriptions"]
    assert (rx["id"], rx["status"]) == (str(prescription_id), "sent")
    assert rx["pharmacy_id"] is not None
    assert [(i["position"], i["medicine_id"]) for i in rx["items"]] == [
        (1, "amoxicillin"), (2, "ibuprofen")]
    [order] = chart["lab_orders"]
    assert (order["id"], order["status"], order["tests"]) == (str(order_id), "processing",
                                                              ["cbc"])
    assert {r["analyte"]: r["flag"] for r in order["results"]} == {"hgb": "low",
                                                                   "hct": "normal"}
    assert "Látex" not in response.text


async def test_every_read_through_the_api_is_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    reader = clinic.users[Role.DOCTOR]
    for _ in range(2):
        assert (await client.get(chart_url(clinic.patient_ids[0]),
                                 headers=factory.headers(reader))).status_code == 200
    events = factory.audit_events(clinic, action="chart.read")
    assert [(e.entity, e.entity_id, e.actor_user_id, e.detail) for e in events] == [
        ("patient", clinic.patient_ids[0], reader.id, {"source": "api"})] * 2


async def test_a_patient_the_clinic_does_not_have_is_not_found_and_nothing_is_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=2, providers=1)
    other = factory.clinic(patients=1, providers=1)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    factory.tombstone(patient, clinic, clinic.patient_ids[1])
    for missing in (uuid7(), other.patient_ids[0], clinic.patient_ids[1]):
        error = expect_error(await client.get(chart_url(missing), headers=headers), 404,
                             "patient_not_found")
        assert str(missing) in error["message"]
    expect_error(await client.get("/api/v1/patients/not-an-id/chart", headers=headers), 422,
                 "invalid_input")
    assert factory.audit_events(clinic, action="chart.read") == []
    assert factory.audit_events(other, action="chart.read") == []


@contextmanager
def statements(app: FastAPI) -> Iterator[list[str]]:
    """The SQL statements the app sends while the block runs."""
    seen: list[str] = []
    engine = app.state.engine.sync_engine

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_chart_is_read_in_the_same_few_queries_whatever_its_size(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    clinic = factory.clinic(patients=2, providers=1)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    small, large = clinic.patient_ids
    mutations = []
    for i in range(10):
        for entity in ("allergy", "condition", "medication", "vital_signs"):
            mutations.append(mutation(entity, "upsert", uuid7(), new_entry(entity, large)))
        mutations.append(mutation("clinical_note", "sign", uuid7(),
                                  {"patient_id": str(large), "body": f"Nota {i}."}))
    assert {r["status"] for r in await push(client, headers, mutations)} == {"applied"}
    for _ in range(5):
        factory.prescription(clinic, patient_id=large, items=[item(1), item(2)])
        factory.lab_order(clinic, patient_id=large, status="processing", results=3)
    counts = []
    for patient_id in (small, large):
        with statements(app) as seen:
            response = await client.get(chart_url(patient_id), headers=headers)
        assert response.status_code == 200
        counts.append(len(seen))
    assert len(response.json()["allergies"]) == 10
    assert len(response.json()["prescriptions"]) == 5
    assert counts[0] == counts[1] <= 16, counts


async def test_a_chart_read_on_a_computer_is_audited_at_the_time_it_was_opened(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    opened = datetime.now(UTC) - timedelta(hours=3)  # offline, that morning
    stamp = Hlc(int(opened.timestamp() * 1000), 0, "chartlaptop").pack()
    read = mutation("chart", "read", clinic.patient_ids[0], {}, hlc=stamp)
    [result] = await push(client, headers, [read])
    assert result["status"] == "applied"
    assert result["record"] is None
    [again] = await push(client, headers, [read])  # sent again after a lost answer
    assert again["status"] == "applied"
    [logged] = factory.audit_events(clinic, action="chart.read")
    assert (logged.entity, logged.entity_id, logged.detail) == (
        "patient", clinic.patient_ids[0], {"source": "device"})
    assert logged.actor_user_id == clinic.users[Role.DOCTOR].id
    assert abs(logged.occurred_at - opened) < timedelta(milliseconds=2)


async def test_a_bad_chart_read_from_a_computer_is_refused_and_logs_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    other = factory.clinic(patients=1, providers=1)
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    results = await push(client, doctor, [
        mutation("chart", "read", uuid7(), {}),
        mutation("chart", "read", other.patient_ids[0], {}),
        mutation("chart", "upsert", clinic.patient_ids[0], {}),
    ])
    assert [(r["status"], r["code"]) for r in results] == [
        ("rejected", "unknown_reference"), ("rejected", "unknown_reference"),
        ("rejected", "invalid_operation")]
    assert all(r["reason"] for r in results)
    for role in (Role.RECEPTIONIST, Role.LAB_TECH, Role.PHARMACIST, Role.ADMIN):
        [refused] = await push(client, factory.headers(clinic.users[role]), [
            mutation("chart", "read", clinic.patient_ids[0], {})])
        assert (refused["status"], refused["code"]) == ("rejected", "role_not_allowed")
    assert factory.audit_events(clinic, action="chart.read") == []
    assert factory.audit_events(other, action="chart.read") == []

