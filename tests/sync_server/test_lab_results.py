"""Lab results: entered by the lab while it holds the sample, flagged the same way for
everyone (the range in use, the catalogue's critical limits, the expected answer of a
qualitative test), corrected in place while the order is open, refused clearly when they do
not belong to the order, and pulled by the doctor's computer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import lab_order, lab_result
from sync_server.actions.clinics import scope
from tests.factories import ClinicData, Factory, expect_error
from tests.sync_server.test_lab_orders import LAB, lab, order, step
from tests.sync_server.test_sync_pull import pull_all
from tests.sync_server.test_sync_push import mutation, push


def value(test_code: str, analyte: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"test_code": test_code, "analyte": analyte, "value": text, **extra}


async def enter(client: httpx.AsyncClient, headers: dict[str, str], order_id: uuid.UUID,
                *results: dict[str, Any]) -> httpx.Response:
    return await client.put(f"{LAB}/{order_id}/results", headers=headers,
                            json={"results": list(results)})


def by_analyte(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["analyte"]: r for r in body["results"]}


async def test_an_order_goes_from_the_doctor_through_the_lab_and_back_to_the_doctor(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    headers = lab(factory, clinic)
    _, cursor = await pull_all(client, doctor, None)
    order_id = uuid7()
    [placed] = await push(client, doctor, [mutation(
        "lab_order", "upsert", order_id,
        order(clinic, ["cbc", "glucose", "urinalysis"], clinical_info="Poliuria"))])
    assert placed["status"] == "applied", placed
    worklist = (await client.get(LAB, headers=headers)).json()
    assert [o["id"] for o in worklist["data"]] == [str(order_id)]
    for to in ("sample_received", "processing"):
        assert (await step(client, headers, order_id, to)).status_code == 200
    entered = await enter(
        client, headers, order_id,
        value("cbc", "hgb", "13.5"),
        value("cbc", "wbc", "12,5"),  # a decimal comma, as typed in much of Latin America
        value("glucose", "glucose", "450"),
        value("urinalysis", "protein", "positive"),
        value("urinalysis", "ph", "6.0"))
    assert entered.status_code == 200, entered.text
    results = by_analyte(entered.json())
    assert {a: r["flag"] for a, r in results.items()} == {
        "hgb": "normal", "wbc": "high", "glucose": "critical_high", "protein": "abnormal",
        "ph": "normal"}
    assert [r["analyte"] for r in entered.json()["results"]] == [
        "hgb", "wbc", "glucose", "ph", "protein"]
    wbc = results["wbc"]
    assert (wbc["value"], wbc["value_numeric"], wbc["unit"], wbc["ref_low"],
            wbc["ref_high"]) == ("12,5", 12.5, "10^3/µL", 4.0, 11.0)
    protein = results["protein"]
    assert (protein["value_numeric"], protein["ref_text"], protein["unit"]) == (
        None, "negative", None)
    assert results["hgb"]["entered_by"] == str(clinic.users[Role.LAB_TECH].id)
    completed = await step(client, headers, order_id, "completed")
    assert completed.status_code == 200, completed.text
    # The doctor's computer pulls the results with their flags, and the closed order.
    changes, _ = await pull_all(client, doctor, cursor)
    pulled = {c["record"]["analyte"]: c["record"] for c in changes
              if c["entity"] == "lab_result"}
    assert {a: r["flag"] for a, r in pulled.items()} == {
        "hgb": "normal", "wbc": "high", "glucose": "critical_high", "protein": "abnormal",
        "ph": "normal"}
    assert {r["lab_order_id"] for r in pulled.values()} == {str(order_id)}
    assert {r["patient_id"] for r in pulled.values()} == {str(clinic.patient_ids[0])}
    [closed] = [c["record"] for c in changes if c["entity"] == "lab_order"]
    assert (closed["status"], closed["id"]) == ("completed", str(order_id))
    [event] = factory.audit_events(clinic, action="lab_result.enter")
    assert event.detail == {"patient_id": str(clinic.patient_ids[0]), "entered": 5,
                            "corrected": 0}


async def test_a_corrected_value_replaces_the_earlier_one_and_reaches_the_doctor(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status="processing")
    headers = lab(factory, clinic)
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    first = by_analyte((await enter(client, headers, order_id,
                                    value("cbc", "hgb", "13.5"))).json())["hgb"]
    _, cursor = await pull_all(client, doctor, None)
    corrected = await enter(client, headers, order_id, value("cbc", "hgb", "6.5"),
                            value("cbc", "plt", "40"))
    assert corrected.status_code == 200, corrected.text
    results = by_analyte(corrected.json())
    assert (results["hgb"]["id"], results["hgb"]["value"], results["hgb"]["flag"]) == (
        first["id"], "6.5", "critical_low")
    assert results["plt"]["flag"] == "critical_low"
    assert factory.count(lab_result, clinic) == 2
    changes, cursor = await pull_all(client, doctor, cursor)
    assert {(c["record"]["analyte"], c["record"]["value"]) for c in changes
            if c["entity"] == "lab_result"} == {("hgb", "6.5"), ("plt", "40")}
    version = factory.row(lab_result, clinic, first["id"])["server_version"]
    # The same values sent again change nothing: no new version, no audit event.
    again = await enter(client, headers, order_id, value("cbc", "hgb", "6.5"))
    assert again.status_code == 200
    assert factory.row(lab_result, clinic, first["id"])["server_version"] == version
    events = factory.audit_events(clinic, action="lab_result.enter")
    assert [(e.detail["entered"], e.detail["corrected"]) for e in events] == [(1, 0), (1, 1)]
    # Counts and ids only: the values stay out of the audit log.
    assert all(set(e.detail) == {"patient_id", "entered", "corrected"} for e in events)


async def test_the_labs_own_unit_and_range_are_the_ones_a_value_is_flagged_against(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, tests=["glucose", "cbc"], status="sample_received")
    response = await enter(
        client, lab(factory, clinic), order_id,
        # In mmol/L: the catalogue's mg/dL limits (critical below 40) do not apply.
        value("glucose", "glucose", "5.0", unit="mmol/L", ref_low=3.9, ref_high=5.5),
        # The catalogue's unit with the lab's own range, and the catalogue's critical limits.
        value("cbc", "hgb", "12.5", ref_low=13.0, ref_high=17.0),
        value("cbc", "wbc", "35", ref_low=4.5, ref_high=11.0),
        # Another unit and no range: nothing to flag against.
        value("cbc", "plt", "9000", unit="/mm3"),
        value("cbc", "hct", "<20", ref_text="36-52"))
    assert response.status_code == 200, response.text
    results = by_analyte(response.json())
    glucose = results["glucose"]
    assert (glucose["unit"], glucose["ref_low"], glucose["ref_high"], glucose["flag"]) == (
        "mmol/L", 3.9, 5.5, "normal")
    assert (results["hgb"]["unit"], results["hgb"]["flag"]) == ("g/dL", "low")
    assert results["wbc"]["flag"] == "critical_high"
    plt = results["plt"]
    assert (plt["ref_low"], plt["ref_high"], plt["flag"]) == (None, None, "normal")
    hct = results["hct"]
    assert (hct["value_numeric"], hct["ref_text"], hct["flag"]) == (None, "36-52", "normal")


@pytest.mark.parametrize(("results", "status", "code", "words"), [
    ([value("glucose", "glucose", "90")], 422, "test_not_ordered", "glucose"),
    ([value("cbc", "glucose", "90")], 422, "unknown_analyte", "hgb, hct, wbc, plt, mcv"),
    ([value("cbc", "hgb", "13"), value("cbc", "ldl", "90")], 422, "unknown_analyte", "ldl"),
    ([value("unicorn_panel", "x", "1")], 422, "invalid_input", "unicorn_panel"),
    ([value("cbc", "hgb", "1" * 101)], 422, "invalid_input", "value"),
    ([value("cbc", "hgb", "   ")], 422, "invalid_input", "value"),
    ([value("cbc", "hgb", "13\x00")], 422, "invalid_input", "NUL"),
    ([value("cbc", "hgb", "13", unit="g\x00dL")], 422, "invalid_input", "NUL"),
    ([value("cbc", "hgb", "13", flag="normal")], 422, "invalid_input", "flag"),
    ([value("cbc", "hgb", "13"), value("cbc", "hgb", "14")], 422, "duplicate_result",
     "cbc hgb"),
    ([value("cbc", "hgb", "13", ref_low=17.5, ref_high=12.0)], 422, "invalid_range",
     "range"),
    ([], 422, "invalid_input", "results"),
])
async def test_results_that_do_not_belong_to_the_order_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, results: list[dict[str, Any]], status: int,
    code: str, words: str
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status="processing")
    before = factory.row(lab_order, clinic, order_id)
    response = await client.put(f"{LAB}/{order_id}/results", headers=lab(factory, clinic),
                                json={"results": results})
    error = expect_error(response, status, code)
    assert words in error["message"]
    assert factory.count(lab_result, clinic) == 0
    assert factory.row(lab_order, clinic, order_id) == before
    assert factory.audit_events(clinic, action="lab_result.enter") == []


@pytest.mark.parametrize("status", ["ordered", "completed", "cancelled"])
async def test_results_are_entered_only_while_the_lab_has_the_sample(
    client: httpx.AsyncClient, factory: Factory, status: str
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, status=status,
                                 results=0 if status == "ordered" else 1)
    stored = factory.count(lab_result, clinic)
    error = expect_error(await enter(client, lab(factory, clinic), order_id,
                                     value("cbc", "hgb", "9.9")), 409, "results_closed")
    assert error["details"] == {"current_status": status}
    assert factory.count(lab_result, clinic) == stored
    if stored:
        [row] = _results(factory, clinic)
        assert row.value == "13.5"


def _results(factory: Factory, clinic: ClinicData) -> list[Any]:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        return list(conn.execute(select(lab_result)
                                 .where(lab_result.c.clinic_id == clinic.id)).all())
