"""Payments at the front desk, over REST and sync: taken once with a gapless receipt
number, never changed or deleted (not even by the database owner), voided once, refused
clearly when the input is wrong, and never seen by clinical staff."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import clinic as clinic_table
from shared_models.tables import payment
from sync_server.actions.clinics import scope
from tests.factories import ClinicData, Factory, expect_error
from tests.sync_server.test_sync_pull import pull_all
from tests.sync_server.test_sync_push import mutation, push

PAYMENTS = "/api/v1/payments"
DESK = HybridClock("frontdesk")


def _clinic(factory: Factory, *, status: str = "checked_in") -> tuple[ClinicData, uuid.UUID]:
    """A Chilean clinic (pesos, no cents) and one of its visits in `status`."""
    clinic = factory.clinic(patients=2, providers=1)
    visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[0],
                                starts_at=datetime.now(UTC) + timedelta(hours=1),
                                status=status)
    return clinic, visit


def _desk(factory: Factory, clinic: ClinicData) -> dict[str, str]:
    return factory.headers(clinic.users[Role.RECEPTIONIST])


def _in_pesos(visit: uuid.UUID, amount: Any = "12500", **extra: Any) -> dict[str, Any]:
    return {"appointment_id": str(visit), "amount": amount, "currency": "CLP",
            "method": "cash", **extra}


def _set_currency(factory: Factory, clinic: ClinicData, currency: str) -> None:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(clinic_table).where(clinic_table.c.id == clinic.id)
                     .values(currency=currency))


def _next_receipt(factory: Factory, clinic: ClinicData) -> int:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        return int(conn.execute(select(clinic_table.c.next_receipt)
                                .where(clinic_table.c.id == clinic.id)).scalar_one())


async def _take(client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
                ) -> dict[str, Any]:
    response = await client.post(PAYMENTS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    taken: dict[str, Any] = response.json()
    return taken


# --- taking -----------------------------------------------------------------------------


async def test_a_receptionist_takes_payments_numbered_in_order_for_the_visits_patient(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    first = await _take(client, headers, _in_pesos(visit, "12500", method="card",
                                                   reference=" VOUCHER-991 "))
    second = await _take(client, headers, _in_pesos(visit, "3000.00"))
    assert (first["receipt_number"], second["receipt_number"]) == ("R-000001", "R-000002")
    assert (first["amount_minor"], first["amount"], first["currency"]) == (12500, "12500", "CLP")
    assert second["amount_minor"] == 3000
    assert first["patient_id"] == str(clinic.patient_ids[0])
    assert first["received_by"] == str(clinic.users[Role.RECEPTIONIST].id)
    assert (first["method"], first["reference"], first["voided_at"]) == ("card", "VOUCHER-991",
                                                                         None)
    listed = await client.get(PAYMENTS, headers=headers, params={"appointment_id": str(visit)})
    assert [p["receipt_number"] for p in listed.json()["data"]] == ["R-000002", "R-000001"]
    [event] = factory.audit_events(clinic, action="payment.take")[:1]
    assert event.entity_id == uuid.UUID(first["id"])
    assert set(event.detail) == {"appointment_id", "patient_id"}  # ids only, no amounts


async def test_amounts_in_a_currency_with_cents_keep_them_exactly(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    _set_currency(factory, clinic, "MXN")
    body = {"appointment_id": str(visit), "amount": "1250.5", "currency": "MXN",
            "method": "transfer", "reference": "SPEI 0042"}
    taken = await _take(client, factory.headers(clinic.users[Role.ADMIN]), body)
    assert (taken["amount_minor"], taken["amount"]) == (125050, "1250.50")
    assert factory.row(payment, clinic, uuid.UUID(taken["id"]))["amount_minor"] == 125050


@pytest.mark.parametrize("status", ["booked", "checked_in", "in_progress", "completed"])
async def test_a_visit_is_payable_ahead_at_check_in_during_or_after_it(
    client: httpx.AsyncClient, factory: Factory, status: str
) -> None:
    clinic, visit = _clinic(factory, status=status)
    await _take(client, _desk(factory, clinic), _in_pesos(visit))
    assert factory.count(payment, clinic) == 1


@pytest.mark.parametrize(("body", "field", "words"), [
    ({"amount": "0"}, "amount", "more than zero"),
    ({"amount": "-5000"}, "amount", "more than zero"),
    ({"amount": "12500.50"}, "amount", "no cents"),
    ({"amount": "100000001"}, "amount", "at most $100.000.000 CLP"),
    ({"amount": "1" * 30}, "amount", "at most"),
    ({"amount": "12,500"}, "amount", "digits and an optional decimal point"),
    ({"amount": 12500}, "amount", "string"),
    ({"amount": 12500.0}, "amount", "string"),
    ({"method": "cheque"}, "method", "cash"),
    ({"reference": "V" * 101}, "reference", "100 characters"),
    ({"reference": "VOU\x00CHER"}, "reference", "NUL"),
    ({"currency": "XYZ"}, "currency", "not a currency"),
    ({"tip": "500"}, "tip", "Extra inputs"),
])
async def test_bad_input_is_refused_beside_its_field_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, body: dict[str, Any], field: str, words: str
) -> None:
    clinic, visit = _clinic(factory)
    response = await client.post(PAYMENTS, headers=_desk(factory, clinic),
                                 json=_in_pesos(visit, **body))
    error = expect_error(response, 422, "invalid_input")
    [problem] = error["details"]["fields"]
    assert problem["field"] == field
    assert words in problem["message"]
    assert factory.count(payment, clinic) == 0
    assert _next_receipt(factory, clinic) == 1


async def test_a_payment_in_another_currency_than_the_clinics_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    response = await client.post(PAYMENTS, headers=_desk(factory, clinic), json={
        "appointment_id": str(visit), "amount": "350.50", "currency": "MXN", "method": "cash"})
    error = expect_error(response, 422, "currency_mismatch")
    assert "CLP" in error["message"]
    assert factory.count(payment, clinic) == 0


async def test_unknown_foreign_and_cancelled_visits_are_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, _visit = _clinic(factory)
    headers = _desk(factory, clinic)
    other, foreign = _clinic(factory)
    cancelled = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[1],
                                    starts_at=datetime.now(UTC) + timedelta(hours=3),
                                    status="cancelled")
    unknown_id = uuid7()
    unknown = await client.post(PAYMENTS, headers=headers, json=_in_pesos(unknown_id))
    expect_error(unknown, 404, "appointment_not_found")
    elsewhere = await client.post(PAYMENTS, headers=headers, json=_in_pesos(foreign))
    expect_error(elsewhere, 404, "appointment_not_found")
    # Another clinic's visit is answered exactly like one that does not exist.
    assert elsewhere.text.replace(str(foreign), "?") == unknown.text.replace(str(unknown_id), "?")
    refused = await client.post(PAYMENTS, headers=headers, json=_in_pesos(cancelled))
    error = expect_error(refused, 422, "appointment_not_payable")
    assert "cancelled" in error["message"]
    assert factory.count(payment, clinic) == factory.count(payment, other) == 0


# --- voiding and immutability -----------------------------------------------------------


async def test_a_payment_is_voided_once_and_keeps_its_amount(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    taken = await _take(client, headers, _in_pesos(visit, "15000"))
    path = f"{PAYMENTS}/{taken['id']}/void"
    expect_error(await client.post(path, headers=headers, json={"reason": "  "}), 422,
                 "invalid_input")
    voided = await client.post(path, headers=headers, json={"reason": "Monto equivocado"})
    assert voided.status_code == 200, voided.text
    body = voided.json()
    assert body["void_reason"] == "Monto equivocado"
    assert body["voided_by"] == str(clinic.users[Role.RECEPTIONIST].id)
    assert (body["amount_minor"], body["receipt_number"]) == (15000, taken["receipt_number"])
    again = await client.post(path, headers=factory.headers(clinic.users[Role.ADMIN]),
                              json={"reason": "Otra vez"})
    expect_error(again, 409, "already_voided")
    assert factory.row(payment, clinic, uuid.UUID(taken["id"]))["void_reason"] == \
        "Monto equivocado"
    expect_error(await client.post(f"{PAYMENTS}/{uuid7()}/void", headers=headers,
                                   json={"reason": "x"}), 404, "payment_not_found")


async def test_the_database_refuses_to_change_delete_or_unvoid_a_payment(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    taken = await _take(client, headers, _in_pesos(visit, "15000"))
    payment_id = uuid.UUID(taken["id"])
    refused_edits: list[dict[str, Any]] = [
        {"amount_minor": 1}, {"currency": "MXN"}, {"method": "card"}, {"reference": "x"},
        {"receipt_number": "R-999999"}, {"received_at": datetime.now(UTC)},
        {"deleted_at": datetime.now(UTC)}]
    for values in refused_edits:
        with factory.engine.begin() as conn:
            scope(conn, clinic.id)
            with pytest.raises(DBAPIError, match="cannot change once taken"):
                conn.execute(update(payment).where(payment.c.id == payment_id).values(**values))
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        with pytest.raises(DBAPIError, match="never deleted"):
            conn.execute(delete(payment).where(payment.c.id == payment_id))
    await client.post(f"{PAYMENTS}/{payment_id}/void", headers=headers, json={"reason": "Error"})
    for values in ({"voided_at": None, "voided_by": None, "void_reason": None},
                   {"void_reason": "Otra razón"}):
        with factory.engine.begin() as conn:
            scope(conn, clinic.id)
            with pytest.raises(DBAPIError, match="stays voided"):
                conn.execute(update(payment).where(payment.c.id == payment_id).values(**values))
    row = factory.row(payment, clinic, payment_id)
    assert (row["amount_minor"], row["void_reason"], row["deleted_at"]) == (15000, "Error", None)


# --- roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB_TECH, Role.PHARMACIST])
async def test_clinical_staff_cannot_take_list_void_push_or_pull_payments(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, visit = _clinic(factory)
    taken = await _take(client, _desk(factory, clinic), _in_pesos(visit))
    headers = factory.headers(clinic.users[role])
    expect_error(await client.post(PAYMENTS, headers=headers, json=_in_pesos(visit)), 403,
                 "permission_denied")
    expect_error(await client.get(PAYMENTS, headers=headers), 403, "permission_denied")
    expect_error(await client.post(f"{PAYMENTS}/{taken['id']}/void", headers=headers,
                                   json={"reason": "x"}), 403, "permission_denied")
    results = await push(client, headers, [
        mutation("payment", "take", uuid7(), _in_pesos(visit)),
        mutation("payment", "void", uuid.UUID(taken["id"]), {"reason": "x"})])
    assert [(r["status"], r["code"], r["record"]) for r in results] == [
        ("rejected", "role_not_allowed", None)] * 2
    changes, _ = await pull_all(client, headers, None)
    assert "payment" not in {c["entity"] for c in changes}
    assert taken["id"] not in str(changes)
    assert factory.count(payment, clinic) == 1
    assert factory.row(payment, clinic, uuid.UUID(taken["id"]))["voided_at"] is None


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.ADMIN])
async def test_the_front_desk_pulls_payments_without_server_bookkeeping(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, visit = _clinic(factory)
    taken = await _take(client, _desk(factory, clinic), _in_pesos(visit, "8000"))
    changes, _ = await pull_all(client, factory.headers(clinic.users[role]), None)
    [pulled] = [c for c in changes if c["entity"] == "payment"]
    assert pulled["id"] == taken["id"]
    record = pulled["record"]
    assert (record["amount_minor"], record["receipt_number"]) == (8000, "R-000001")
    assert not {"version_xid", "field_stamps", "search_text"} & set(record)


# --- sync -----------------------------------------------------------------------------------


async def test_a_payment_pushed_from_a_computer_is_taken_once_at_the_time_it_was_taken(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    payment_id = uuid7()
    stamp = DESK.now()
    batch = [mutation("payment", "take", payment_id, _in_pesos(visit, "20000", method="card",
                                                               reference="V-1"),
                      hlc=stamp.pack())]
    [first] = await push(client, headers, batch)
    assert first["status"] == "applied", first
    assert first["record"]["receipt_number"] == "R-000001"
    assert first["record"]["amount_minor"] == 20000
    taken_at = datetime.fromisoformat(first["record"]["received_at"])
    assert taken_at == datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)
    assert await push(client, headers, batch) == [first]  # the same batch sent again
    [again] = await push(client, headers, [mutation("payment", "take", payment_id,
                                                    _in_pesos(visit, "20000"))])
    assert (again["status"], again["code"]) == ("rejected", "already_exists")
    assert again["record"]["receipt_number"] == "R-000001"
    assert factory.count(payment, clinic) == 1
    assert _next_receipt(factory, clinic) == 2
    assert len(factory.audit_events(clinic, action="payment.take")) == 1


async def test_one_payment_pushed_twice_at_once_is_taken_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    payment_id = uuid7()
    batches = [[mutation("payment", "take", payment_id, _in_pesos(visit))] for _ in range(2)]
    results = await asyncio.gather(*(push(client, headers, b) for b in batches))
    assert sorted((r["status"], r["code"]) for [r] in results) == [
        ("applied", None), ("rejected", "already_exists")]
    assert factory.count(payment, clinic) == 1
    assert _next_receipt(factory, clinic) == 2


async def test_a_void_pushed_from_a_computer_applies_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    payment_id = uuid7()
    results = await push(client, headers, [
        mutation("payment", "take", payment_id, _in_pesos(visit)),
        mutation("payment", "void", payment_id, {"reason": "Cobro duplicado"}),
        mutation("payment", "void", payment_id, {"reason": "Otra vez"}),
        mutation("payment", "void", uuid7(), {"reason": "Nada"}),
    ])
    assert [(r["status"], r["code"]) for r in results] == [
        ("applied", None), ("applied", None), ("rejected", "already_voided"),
        ("rejected", "payment_not_found")]
    assert results[1]["record"]["void_reason"] == "Cobro duplicado"
    assert results[2]["record"]["void_reason"] == "Cobro duplicado"  # as it is now
    row = factory.row(payment, clinic, payment_id)
    assert (row["void_reason"], row["amount_minor"]) == ("Cobro duplicado", 12500)


@pytest.mark.parametrize(("op", "changes", "code"), [
    ("take", {"amount": "0"}, "invalid_change"),
    ("take", {"amount": "12500.5"}, "invalid_change"),
    ("take", {"reference": "a\x00b"}, "invalid_change"),
    ("take", {"currency": "MXN", "amount": "10.50"}, "currency_mismatch"),
    ("take", {"appointment_id": "not-a-uuid"}, "invalid_change"),
    ("upsert", {}, "invalid_operation"),
    ("delete", {}, "invalid_operation"),
])
async def test_bad_pushed_payments_are_refused_clearly_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, op: str, changes: dict[str, Any], code: str
) -> None:
    clinic, visit = _clinic(factory)
    [refused] = await push(client, _desk(factory, clinic), [
        mutation("payment", op, uuid7(), _in_pesos(visit, **changes))])
    assert (refused["status"], refused["code"]) == ("rejected", code)
    assert refused["reason"]
    assert factory.count(payment, clinic) == 0
    assert _next_receipt(factory, clinic) == 1


async def test_a_payment_for_another_clinics_visit_is_refused_as_unknown(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, _visit = _clinic(factory)
    other, foreign = _clinic(factory)
    [refused] = await push(client, _desk(factory, clinic), [
        mutation("payment", "take", uuid7(), _in_pesos(foreign))])
    assert (refused["status"], refused["code"]) == ("rejected", "appointment_not_found")
    assert factory.count(payment, clinic) == factory.count(payment, other) == 0


# --- listing --------------------------------------------------------------------------------


async def test_payments_are_listed_by_visit_patient_and_day_in_the_clinics_zone(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, visit = _clinic(factory)
    headers = _desk(factory, clinic)
    other_visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[1],
                                      starts_at=datetime.now(UTC) + timedelta(hours=2),
                                      status="booked")
    mine = await _take(client, headers, _in_pesos(visit))
    theirs = await _take(client, headers, _in_pesos(other_visit))

    async def ids(**params: str) -> list[str]:
        response = await client.get(PAYMENTS, headers=headers, params=params)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert await ids(patient_id=str(clinic.patient_ids[1])) == [theirs["id"]]
    today = datetime.fromisoformat(mine["received_at"]).astimezone(
        ZoneInfo("America/Santiago")).date()
    assert set(await ids(day=today.isoformat())) == {mine["id"], theirs["id"]}
    assert await ids(day=(today - timedelta(days=1)).isoformat()) == []
    assert await ids() == [theirs["id"], mine["id"]]
    expect_error(await client.get(PAYMENTS, headers=headers, params={"day": "9999-12-31"}),
                 422, "day_out_of_range")
