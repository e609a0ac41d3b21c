"""Lab orders: placed and cancelled by doctors over sync, worked by the lab one step at a
time (urgent first, a repeated step changing nothing, two technicians at once making one
step), refused clearly when the request is wrong, and seen only by the lab and doctors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import lab_order, lab_result, patient
from tests.factories import ClinicData, Factory, expect_error
from tests.sync_server.test_sync_pull import pull_all
from tests.sync_server.test_sync_push import mutation, push

LAB = "/api/v1/lab-orders"


def order(clinic: ClinicData, tests: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"patient_id": str(clinic.patient_ids[0]),
            "tests": ["cbc"] if tests is None else tests, **extra}


async def place(client: httpx.AsyncClient, factory: Factory, clinic: ClinicData,
                changes: dict[str, Any], *, doctor: Role = Role.DOCTOR) -> uuid.UUID:
    """An order pushed by the clinic's doctor, applied."""
    order_id = uuid7()
    [result] = await push(client, factory.headers(clinic.users[doctor]),
                          [mutation("lab_order", "upsert", order_id, changes)])
    assert result["status"] == "applied", result
    return order_id


async def step(client: httpx.AsyncClient, headers: dict[str, str], order_id: uuid.UUID,
               to: str, reason: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"to": to}
    if reason is not None:
        body["reason"] = reason
    return await client.post(f"{LAB}/{order_id}/status", headers=headers, json=body)


def lab(factory: Factory, clinic: ClinicData) -> dict[str, str]:
    return factory.headers(clinic.users[Role.LAB_TECH])


# --- placing and cancelling by push ---------------------------------------------------------


async def test_a_doctor_orders_by_push_and_the_same_order_pushed_again_is_one_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    order_id = uuid7()
    changes = order(clinic, ["cbc", "glucose"], priority="urgent",
                    clinical_info="Fatiga de 3 semanas")
    [first] = await push(client, headers, [mutation("lab_order", "upsert", order_id, changes)])
    assert first["status"] == "applied", first
    record = first["record"]
    assert (record["status"], record["tests"], record["priority"]) == (
        "ordered", ["cbc", "glucose"], "urgent")
    assert record["ordered_by"] == str(clinic.users[Role.DOCTOR].id)
    # Sent again under a new mutation id (the outbox retried after a lost answer).
    [again] = await push(client, headers, [mutation("lab_order", "upsert", order_id, changes)])
    assert again["status"] == "applied"
    assert again["server_version"] == first["server_version"]
    assert factory.count(lab_order, clinic) == 1
    assert len(factory.audit_events(clinic, action="lab_order.create")) == 1
    # Orders are not edited: another request under the same id is refused.
    before = factory.row(lab_order, clinic, order_id)
    [edited] = await push(client, headers, [mutation(
        "lab_order", "upsert", order_id, order(clinic, ["cbc"], priority="urgent"))])
    assert (edited["status"], edited["code"]) == ("rejected", "already_exists")
    assert "cancel it and order again" in edited["reason"]
    assert factory.row(lab_order, clinic, order_id) == before


@pytest.mark.parametrize(("changes", "code", "words"), [
    ({"tests": ["cbc", "unicorn_panel"]}, "invalid_change", "unicorn_panel"),
    ({"tests": ["cbc", "cbc"]}, "invalid_change", "once per order"),
    ({"tests": []}, "invalid_change", "tests"),
    ({"tests": ["cbc"], "priority": "stat"}, "invalid_change", "priority"),
    ({"tests": ["cbc"], "clinical_info": "x" * 501}, "invalid_change", "clinical_info"),
    ({"tests": ["cbc"], "fasting": True}, "invalid_change", "fasting"),
    ({"tests": ["cbc"], "patient_id": "unknown"}, "unknown_reference", "patient"),
    ({"tests": ["cbc"], "appointment_id": "unknown"}, "unknown_reference", "appointment"),
    ({"tests": ["cbc"], "appointment_id": "other_patients"}, "unknown_reference",
     "appointment"),
])
async def test_a_wrong_order_is_refused_with_its_reason_and_nothing_is_placed(
    client: httpx.AsyncClient, factory: Factory, changes: dict[str, Any], code: str,
    words: str
) -> None:
    clinic = factory.clinic(patients=2, providers=1)
    visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[1],
                                starts_at=datetime.now(UTC) + timedelta(hours=2))
    body = order(clinic, **changes)
    if body.get("patient_id") == "unknown":
        body["patient_id"] = str(uuid7())
    if body.get("appointment_id") == "unknown":
        body["appointment_id"] = str(uuid7())
    if body.get("appointment_id") == "other_patients":
        body["appointment_id"] = str(visit)  # the second patient's visit
    [result] = await push(client, factory.headers(clinic.users[Role.DOCTOR]),
                          [mutation("lab_order", "upsert", uuid7(), body)])
    assert (result["status"], result["code"]) == ("rejected", code), result
    assert words in result["reason"]
    assert factory.count(lab_order, clinic) == 0
    assert factory.audit_events(clinic, action="lab_order.create") == []


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.PHARMACIST, Role.LAB_TECH,
                                  Role.ADMIN])
async def test_only_doctors_order_or_cancel_lab_tests(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    existing = factory.lab_order(clinic)
    headers = factory.headers(clinic.users[role])
    placed, cancelled = await push(client, headers, [
        mutation("lab_order", "upsert", uuid7(), order(clinic)),
        mutation("lab_order", "cancel", existing, {"reason": "Ya no se necesita"})])
    assert (placed["code"], cancelled["code"]) == ("role_not_allowed", "role_not_allowed")
    assert factory.count(lab_order, clinic) == 1
    assert factory.row(lab_order, clinic, existing)["status"] == "ordered"


async def test_the_ordering_doctor_cancels_until_the_lab_starts_processing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    order_id = await place(client, factory, clinic, order(clinic))
    received = factory.lab_order(clinic, status="sample_received")
    running = factory.lab_order(clinic, status="processing")
    done = factory.lab_order(clinic, status="completed", results=1)
    results = await push(client, headers, [
        mutation("lab_order", "cancel", order_id, {"reason": "Pedido por error"}),
        mutation("lab_order", "cancel", order_id, {"reason": "Pedido por error"}),
        mutation("lab_order", "cancel", received, {"reason": "Paciente se va de viaje"}),
        mutation("lab_order", "cancel", running, {"reason": "Ya no se necesita"}),
        mutation("lab_order", "cancel", done, {"reason": "Ya no se necesita"}),
    ])
    assert [r["status"] for r in results] == ["applied", "applied", "applied", "rejected",
                                              "rejected"]
    assert results[0]["record"]["status"] == "cancelled"
    assert results[0]["record"]["status_reason"] == "Pedido por error"
    assert results[0]["record"]["status_changed_by"] == str(clinic.users[Role.DOCTOR].id)
    assert (results[3]["code"], results[4]["code"]) == ("too_late", "too_late")
    assert "already processing" in results[3]["reason"]
    assert "results are in" in results[4]["reason"]
    assert factory.row(lab_order, clinic, running)["status"] == "processing"
    assert len(factory.audit_events(clinic, action="lab_order.cancel")) == 2


async def test_a_doctor_cancels_only_their_own_order_and_says_why(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = await place(client, factory, clinic, order(clinic))
    colleague = factory.user(clinic, Role.DOCTOR)
    [other] = await push(client, factory.headers(colleague), [mutation(
        "lab_order", "cancel", order_id, {"reason": "No es mío"})])
    assert (other["status"], other["code"]) == ("rejected", "not_orderer")
    own = factory.headers(clinic.users[Role.DOCTOR])
    no_reason, short, deleted, unknown = await push(client, own, [
        mutation("lab_order", "cancel", order_id, {}),
        mutation("lab_order", "cancel", order_id, {"reason": "x"}),
        mutation("lab_order", "delete", order_id, {}),
        mutation("lab_order", "cancel", uuid7(), {"reason": "No existe"})])
    assert (no_reason["code"], short["code"]) == ("invalid_change", "invalid_change")
    assert "reason" in no_reason["reason"]
    assert deleted["code"] == "invalid_operation"
    assert unknown["code"] == "lab_order_not_found"
    assert factory.row(lab_order, clinic, order_id)["status"] == "ordered"


# --- the lab's worklist -----------------------------------------------------------------------


async def test_the_worklist_puts_urgent_orders_first_then_the_oldest(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    routine_old = await place(client, factory, clinic, order(clinic))
    urgent_old = await place(client, factory, clinic, order(clinic, priority="urgent"))
    routine_new = await place(client, factory, clinic, order(clinic, ["glucose"]))
    urgent_new = await place(client, factory, clinic, order(clinic, priority="urgent"))
    finished = factory.lab_order(clinic, status="completed", results=1)
    headers = lab(factory, clinic)
    response = await client.get(LAB, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [o["id"] for o in body["data"]] == [
        str(urgent_old), str(urgent_new), str(routine_old), str(routine_new)]
    assert (body["has_more"], body["next_offset"]) == (False, None)
    first = body["data"][0]
    assert first["patient_id"] == str(clinic.patient_ids[0])
    person = factory.row(patient, clinic, clinic.patient_ids[0])
    assert first["patient_name"] == f"{person['given_name']} {person['family_name']}"
    assert first["patient_mrn"] == person["mrn"]
    assert first["ordered_by_name"] == "doctor user"
    assert (first["status"], first["results"]) == ("ordered", [])
    # The patient's identity for the sample label, and nothing else of the record.
    assert not {"date_of_birth", "phone", "email", "address"} & set(first)
    done = (await client.get(LAB, headers=headers, params={"status": "completed"})).json()
    assert [o["id"] for o in done["data"]] == [str(finished)]
    assert [r["analyte"] for r in done["data"][0]["results"]] == ["hgb"]
    page = (await client.get(LAB, headers=headers, params={"limit": 3})).json()
    assert (len(page["data"]), page["has_more"], page["next_offset"]) == (3, True, 3)
    rest = (await client.get(LAB, headers=headers, params={"limit": 3, "offset": 3})).json()
    assert [o["id"] for o in rest["data"]] == [str(routine_new)]
    reads = factory.audit_events(clinic, action="lab_order.list")
    assert len(reads) == 4
    assert reads[0].detail == {"returned": [o["id"] for o in body["data"]],
                               "patient_ids": [str(clinic.patient_ids[0])]}
    expect_error(await client.get(LAB, headers=headers, params={"status": "lost"}), 422,
                 "invalid_input")
    expect_error(await client.get(LAB, headers=headers, params={"limit": 0}), 422,
                 "invalid_input")


async def test_the_lab_and_any_doctor_read_an_order_and_each_read_is_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, tests=["cbc", "tsh"], status="processing", results=2)
    colleague = factory.user(clinic, Role.DOCTOR)
    for headers in (lab(factory, clinic), factory.headers(clinic.users[Role.DOCTOR]),
                    factory.headers(colleague)):
        response = await client.get(f"{LAB}/{order_id}", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["tests"], body["status"]) == (["cbc", "tsh"], "processing")
        assert [r["analyte"] for r in body["results"]] == ["hgb", "hct"]
    reads = factory.audit_events(clinic, action="lab_order.read")
    assert [r.entity_id for r in reads] == [order_id] * 3
    assert {r.actor_user_id for r in reads} == {clinic.users[Role.LAB_TECH].id,
                                                 clinic.users[Role.DOCTOR].id, colleague.id}
    expect_error(await client.get(f"{LAB}/{uuid7()}", headers=lab(factory, clinic)), 404,
                 "lab_order_not_found")


async def test_the_front_desk_pharmacy_and_admin_are_turned_away_from_every_lab_endpoint(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status="processing")
    before = factory.row(lab_order, clinic, order_id)
    calls = [("GET", LAB, None), ("GET", f"{LAB}/{order_id}", None),
             ("POST", f"{LAB}/{order_id}/status", {"to": "completed"}),
             ("PUT", f"{LAB}/{order_id}/results",
              {"results": [{"test_code": "cbc", "analyte": "hgb", "value": "13"}]})]
    for role in (Role.RECEPTIONIST, Role.PHARMACIST, Role.ADMIN):
        for method, url, body in calls:
            response = await client.request(method, url, json=body,
                                            headers=factory.headers(clinic.users[role]))
            error = expect_error(response, 403, "permission_denied")
            assert "lab_tech" in error["message"]
    assert factory.row(lab_order, clinic, order_id) == before
    assert factory.count(lab_result, clinic) == 0
    assert factory.audit_events(clinic, action="lab_order.read") == []


async def test_doctors_read_orders_but_do_not_work_them(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status="sample_received")
    headers = factory.headers(clinic.users[Role.DOCTOR])
    expect_error(await client.get(LAB, headers=headers), 403, "permission_denied")
    expect_error(await step(client, headers, order_id, "processing"), 403, "permission_denied")
    expect_error(await client.put(f"{LAB}/{order_id}/results", headers=headers, json={
        "results": [{"test_code": "cbc", "analyte": "hgb", "value": "13"}]}), 403,
        "permission_denied")
    assert factory.row(lab_order, clinic, order_id)["status"] == "sample_received"
    assert factory.count(lab_result, clinic) == 0


# --- the lab's steps ------------------------------------------------------------------------


async def test_the_lab_moves_an_order_one_step_at_a_time_and_a_repeated_step_is_one_step(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = await place(client, factory, clinic, order(clinic))
    headers = lab(factory, clinic)
    skipped = expect_error(await step(client, headers, order_id, "processing"), 409,
                           "lab_order_step_not_allowed")
    assert skipped["details"] == {"current_status": "ordered",
                                  "allowed": ["cancelled", "sample_received"]}
    assert "sample received" in skipped["message"]
    received = await step(client, headers, order_id, "sample_received")
    assert received.status_code == 200, received.text
    assert received.json()["status"] == "sample_received"
    again = await step(client, headers, order_id, "sample_received")
    assert again.status_code == 200
    assert again.json() == received.json()
    processing = await step(client, headers, order_id, "processing")
    assert processing.json()["status"] == "processing"
    row = factory.row(lab_order, clinic, order_id)
    assert row["status_changed_by"] == clinic.users[Role.LAB_TECH].id
    assert row["completed_at"] is None
    events = [e for e in factory.audit_events(clinic) if e.entity_id == order_id]
    assert [(e.action, e.detail) for e in events][1:] == [
        ("lab_order.sample_received", {"from": "ordered"}),
        ("lab_order.processing", {"from": "sample_received"})]


async def test_a_closed_order_says_it_cannot_change(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    headers = lab(factory, clinic)
    done = factory.lab_order(clinic, status="completed", results=1)
    before = factory.row(lab_order, clinic, done)
    error = expect_error(await step(client, headers, done, "cancelled", "Muestra hemolizada"),
                         409, "lab_order_closed")
    assert error["details"] == {"current_status": "completed", "allowed": []}
    repeated = await step(client, headers, done, "completed")
    assert repeated.status_code == 200
    assert factory.row(lab_order, clinic, done) == before
    expect_error(await step(client, headers, uuid7(), "processing"), 404,
                 "lab_order_not_found")
    expect_error(await step(client, headers, done, "dispensed"), 422, "invalid_input")


async def test_the_lab_cancels_an_order_only_with_a_reason(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status="processing")
    headers = lab(factory, clinic)
    before = factory.row(lab_order, clinic, order_id)
    error = expect_error(await step(client, headers, order_id, "cancelled"), 422,
                         "reason_required")
    assert error["details"] == {"field": "reason"}
    expect_error(await step(client, headers, order_id, "cancelled", " x "), 422,
                 "invalid_input")
    assert factory.row(lab_order, clinic, order_id) == before
    cancelled = await step(client, headers, order_id, "cancelled", "Muestra hemolizada")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert (body["status"], body["status_reason"]) == ("cancelled", "Muestra hemolizada")
    assert [e.detail for e in factory.audit_events(clinic, action="lab_order.cancelled")] == [
        {"from": "processing"}]


async def test_completing_needs_a_result_for_every_ordered_test(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, tests=["cbc", "glucose", "tsh"], status="processing",
                                 results=2)
    headers = lab(factory, clinic)
    error = expect_error(await step(client, headers, order_id, "completed"), 409,
                         "results_missing")
    assert error["details"] == {"missing_tests": ["glucose", "tsh"]}
    assert "glucose, tsh" in error["message"]
    assert factory.row(lab_order, clinic, order_id)["status"] == "processing"
    entered = await client.put(f"{LAB}/{order_id}/results", headers=headers, json={"results": [
        {"test_code": "glucose", "analyte": "glucose", "value": "92"},
        {"test_code": "tsh", "analyte": "tsh", "value": "2.1"}]})
    assert entered.status_code == 200, entered.text
    completed = await step(client, headers, order_id, "completed")
    assert completed.status_code == 200, completed.text
    assert completed.json()["completed_at"] is not None


async def test_two_lab_technicians_at_once_make_one_step(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    other_tech = factory.headers(factory.user(clinic, Role.LAB_TECH))
    headers = lab(factory, clinic)
    order_id = factory.lab_order(clinic)
    same = await asyncio.gather(step(client, headers, order_id, "sample_received"),
                                step(client, other_tech, order_id, "sample_received"))
    assert [r.status_code for r in same] == [200, 200]
    assert len(factory.audit_events(clinic, action="lab_order.sample_received")) == 1
    # From processing, completing and cancelling exclude each other: whichever runs second
    # finds the order closed.
    racing = factory.lab_order(clinic, status="processing", results=1)
    answers = await asyncio.gather(step(client, headers, racing, "completed"),
                                   step(client, other_tech, racing, "cancelled",
                                        "Muestra coagulada"))
    assert sorted(r.status_code for r in answers) == [200, 409]
    [won] = [r.json() for r in answers if r.status_code == 200]
    assert factory.row(lab_order, clinic, racing)["status"] == won["status"]
    closing = [e for e in factory.audit_events(clinic) if e.entity_id == racing]
    assert len(closing) == 1


async def test_a_lab_technician_of_another_clinic_finds_no_order(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    a, b = factory.clinic(patients=1, providers=1), factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(a, status="processing", results=1)
    before = factory.row(lab_order, a, order_id)
    intruder = lab(factory, b)
    unknown = uuid7()
    for target in (order_id, unknown):
        expect_error(await client.get(f"{LAB}/{target}", headers=intruder), 404,
                     "lab_order_not_found")
        expect_error(await step(client, intruder, target, "cancelled", "Intruso"), 404,
                     "lab_order_not_found")
        expect_error(await client.put(f"{LAB}/{target}/results", headers=intruder, json={
            "results": [{"test_code": "cbc", "analyte": "hgb", "value": "1"}]}), 404,
            "lab_order_not_found")
    listed = (await client.get(LAB, headers=intruder, params={"status": "processing"})).json()
    assert listed["data"] == []
    assert factory.row(lab_order, a, order_id) == before
    assert factory.count(lab_result, a) == 1


async def test_the_front_desk_and_the_pharmacy_never_pull_lab_orders_or_results(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    factory.lab_order(clinic, status="completed", results=2)
    for role in (Role.RECEPTIONIST, Role.PHARMACIST, Role.LAB_TECH):
        changes, _ = await pull_all(client, factory.headers(clinic.users[role]), None)
        assert not {"lab_order", "lab_result"} & {c["entity"] for c in changes}, role
    doctor, _ = await pull_all(client, factory.headers(clinic.users[Role.DOCTOR]), None)
    entities = [c["entity"] for c in doctor]
    assert (entities.count("lab_order"), entities.count("lab_result")) == (1, 2)
