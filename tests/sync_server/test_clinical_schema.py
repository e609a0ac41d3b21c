"""The database's own rules for clinical records (migration 0013), on a real PostgreSQL and
as the app role the server connects as: a prescription's signed content and its items never
change and its status only moves forward, a lab order's request never changes and its
status only moves forward, results close with their order, a signing key stays bound to its
owner and a revoked key stays revoked. Every new table keeps clinics apart.

Each case runs in a transaction that is rolled back, so the rows made once per module serve
every case.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from alembic import command
from psycopg import errors, sql
from psycopg.types.json import Jsonb
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.signing import verify_prescription
from shared_models.tables import metadata, prescription_item
from sync_server.actions.clinics import scope
from sync_server.db import bootstrap
from sync_server.db.migrate import alembic_config, upgrade
from tests.factories import ClinicData, Factory, SigningKey, item

NEW_TABLES = ("allergy", "condition", "medication", "vital_signs", "pharmacy", "signing_key",
              "prescription", "prescription_item", "lab_order", "lab_result")

PRESCRIPTION_STATUSES = ("signed", "sent", "received", "dispensed", "refused", "cancelled")
LAB_ORDER_STATUSES = ("ordered", "sample_received", "processing", "completed", "cancelled")
KEY_STATUSES = ("pending", "active", "revoked")
# The rule triggers' functions: four on prescription, three each on lab_order and
# signing_key, one each on prescription_item and lab_result.
RULES = 12


@dataclass
class Records:
    a: ClinicData
    b: ClinicData
    pharmacies: tuple[uuid.UUID, uuid.UUID]
    prescriptions: dict[str, uuid.UUID]
    orders: dict[str, uuid.UUID]
    keys: dict[str, SigningKey]
    appointment_id: uuid.UUID
    b_prescription: uuid.UUID
    b_order: uuid.UUID


@pytest.fixture(scope="module")
def records(factory: Factory) -> Records:
    a, b = factory.clinic(patients=2, providers=1), factory.clinic(patients=2, providers=1)
    for clinic in (a, b):
        factory.populate(clinic)
    first, second = factory.pharmacy(a), factory.pharmacy(a)
    return Records(
        a=a, b=b, pharmacies=(first, second),
        prescriptions={status: factory.prescription(
            a, status=status, pharmacy_id=None if status == "signed" else first)
            for status in PRESCRIPTION_STATUSES},
        # Open orders hold a result, so that closing them with results is covered.
        orders={status: factory.lab_order(
            a, status=status, results=0 if status == "ordered" else 1)
            for status in LAB_ORDER_STATUSES},
        keys={status: factory.signing_key(a, status=status) for status in KEY_STATUSES},
        appointment_id=factory.appointment(a, a.provider_ids[0], a.patient_ids[0],
                                           starts_at=datetime.now(UTC) + timedelta(days=3)),
        b_prescription=factory.prescription(b, status="sent"),
        b_order=factory.lab_order(b, status="processing", results=1),
    )


@contextmanager
def scoped(conn: psycopg.Connection, clinic: ClinicData) -> Iterator[psycopg.Connection]:
    """The app role inside one clinic, in a transaction that is rolled back."""
    with conn.transaction(force_rollback=True):
        conn.execute("SELECT set_config('app.clinic_id', %s, true)", (str(clinic.id),))
        yield conn


def _value(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict | list) else value


def change(conn: psycopg.Connection, table: str, row_id: uuid.UUID, **values: Any) -> int:
    """UPDATE one row by id; how many rows it changed."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = %s").format(sql.Identifier(column)) for column in values)
    query = sql.SQL("UPDATE {} SET {} WHERE id = %s").format(sql.Identifier(table), assignments)
    return conn.execute(query, [*map(_value, values.values()), row_id]).rowcount


def add(conn: psycopg.Connection, table: str, row: dict[str, Any]) -> None:
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)))
    conn.execute(query, [_value(v) for v in row.values()])


def refused(conn: psycopg.Connection, constraint: str, table: str, row_id: uuid.UUID,
            **values: Any) -> str:
    """Assert the UPDATE is refused by the rule `constraint`; the message it gave."""
    with pytest.raises(errors.CheckViolation) as caught, conn.transaction():
        change(conn, table, row_id, **values)
    assert caught.value.diag.constraint_name == constraint, str(caught.value)
    return str(caught.value)


def status_of(conn: psycopg.Connection, table: str, row_id: uuid.UUID) -> str:
    row = conn.execute(sql.SQL("SELECT status FROM {} WHERE id = %s").format(
        sql.Identifier(table)), (row_id,)).fetchone()
    assert row is not None
    return str(row[0])


def owner_row(factory: Factory, table: str, clinic: ClinicData, row_id: uuid.UUID
              ) -> dict[str, Any]:
    return factory.row(metadata.tables[table], clinic, row_id)


def result_row(clinic: ClinicData, order_id: uuid.UUID, analyte: str) -> dict[str, Any]:
    return {"clinic_id": clinic.id, "id": uuid7(), "lab_order_id": order_id,
            "patient_id": clinic.patient_ids[0], "test_code": "cbc", "analyte": analyte,
            "value": "250", "value_numeric": 250.0, "unit": "10^3/µL", "ref_low": 150.0,
            "ref_high": 450.0, "entered_by": clinic.users[Role.LAB_TECH].id,
            "entered_at": datetime.now(UTC)}


# --- prescriptions ------------------------------------------------------------------------


def _signed_changes(records: Records, factory: Factory) -> dict[str, Any]:
    a = records.a
    row = owner_row(factory, "prescription", a, records.prescriptions["signed"])
    return {
        "id": uuid7(),
        "patient_id": a.patient_ids[1],
        "prescriber_id": a.users[Role.ADMIN].id,
        "appointment_id": records.appointment_id,
        "signed_at": row["signed_at"] + timedelta(minutes=1),
        "formulary_version": "1999.01",
        "notes": "Tomar con alimentos",
        "acknowledgements": [{"warning": "interaction", "reason": "Benefit outweighs risk"}],
        "signing_key_id": records.keys["active"].id,
        "signature": row["signature"][:-4] + "AAA=",
    }


def test_a_stored_prescription_verifies_against_its_prescribers_key(
    factory: Factory, records: Records,
) -> None:
    key = factory.signing_key(records.a)
    losartan = item(2, medicine_id="losartan", medicine_name="losartan", strength="50 mg",
                    form="tablet")
    rx = factory.prescription(records.a, key, items=[item(1), losartan],
                              acknowledgements=[{"warning": "duplicate", "reason": "Motivo"}])
    stored = owner_row(factory, "prescription", records.a, rx)
    with factory.engine.begin() as conn:
        scope(conn, records.a.id)
        items = [dict(r._mapping) for r in conn.execute(
            select(prescription_item).where(prescription_item.c.prescription_id == rx))]
    assert len(items) == 2
    assert verify_prescription(key.public_key, stored, items)
    assert not verify_prescription(key.public_key, {**stored, "notes": "Otra"}, items)


@pytest.mark.parametrize("column", ["id", "patient_id", "prescriber_id", "appointment_id",
                                    "signed_at", "formulary_version", "notes",
                                    "acknowledgements", "signing_key_id", "signature"])
@pytest.mark.parametrize("status", ["signed", "sent", "received"])
def test_a_prescriptions_signed_content_never_changes(
    app_conn: psycopg.Connection, factory: Factory, records: Records, column: str, status: str,
) -> None:
    value = _signed_changes(records, factory)[column]
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "prescription_signed_content", "prescription",
                          records.prescriptions[status], **{column: value})
    assert "cancel it and write a new one" in message


def test_what_lies_outside_the_signature_changes_and_is_versioned(
    app_conn: psycopg.Connection, factory: Factory, records: Records,
) -> None:
    rx = records.prescriptions["signed"]
    before = owner_row(factory, "prescription", records.a, rx)
    with scoped(app_conn, records.a) as conn:
        assert change(conn, "prescription", rx, status="sent", pharmacy_id=records.pharmacies[0],
                      status_changed_at=datetime.now(UTC),
                      status_changed_by=records.a.users[Role.DOCTOR].id,
                      updated_hlc="1700000000000-000001-desk", field_stamps={"status": "x"}) == 1
        after = conn.execute("SELECT status, server_version, version_xid, signature "
                             "FROM prescription WHERE id = %s", (rx,)).fetchone()
    assert after is not None
    assert after[0] == "sent"
    assert after[1] > before["server_version"]
    assert after[2] is not None
    assert after[3] == before["signature"]


ALLOWED_PRESCRIPTION_MOVES = [("signed", "sent"), ("signed", "cancelled"), ("sent", "received"),
                              ("sent", "refused"), ("sent", "cancelled"),
                              ("received", "dispensed"), ("received", "refused")]
REFUSED_PRESCRIPTION_MOVES = [("signed", "received"), ("signed", "dispensed"),
                              ("signed", "refused"), ("sent", "signed"), ("sent", "dispensed"),
                              ("received", "signed"), ("received", "sent"),
                              ("received", "cancelled")]


@pytest.mark.parametrize(("before", "after"), ALLOWED_PRESCRIPTION_MOVES)
def test_a_prescription_moves_forward(
    app_conn: psycopg.Connection, records: Records, before: str, after: str,
) -> None:
    rx = records.prescriptions[before]
    routing = {"pharmacy_id": records.pharmacies[0]} if after == "sent" else {}
    with scoped(app_conn, records.a) as conn:
        assert change(conn, "prescription", rx, status=after, status_reason="Motivo",
                      status_changed_at=datetime.now(UTC), **routing) == 1
        assert status_of(conn, "prescription", rx) == after


@pytest.mark.parametrize(("before", "after"), REFUSED_PRESCRIPTION_MOVES)
def test_a_prescription_never_moves_back_or_skips_a_step(
    app_conn: psycopg.Connection, records: Records, before: str, after: str,
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "prescription_status_forward", "prescription",
                          records.prescriptions[before], status=after)
    assert f"cannot go from {before} to {after}" in message


@pytest.mark.parametrize("status", ["dispensed", "refused", "cancelled"])
@pytest.mark.parametrize("values", [
    {"status": "sent"}, {"status_reason": "Otra razón"}, {"deleted_at": datetime.now(UTC)},
    {"updated_hlc": "1700000000000-000002-desk"}, {"status_changed_at": None},
], ids=["status", "reason", "tombstone", "clock", "changed_at"])
def test_a_final_prescription_refuses_every_change(
    app_conn: psycopg.Connection, records: Records, status: str, values: dict[str, Any],
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "prescription_is_final", "prescription",
                          records.prescriptions[status], **values)
    assert f"a {status} prescription cannot change" in message


def test_a_prescription_is_routed_while_signed_and_rerouted_while_sent(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    first, second = records.pharmacies
    with scoped(app_conn, records.a) as conn:
        assert change(conn, "prescription", records.prescriptions["signed"],
                      pharmacy_id=first) == 1
        assert change(conn, "prescription", records.prescriptions["signed"],
                      pharmacy_id=None) == 1
        assert change(conn, "prescription", records.prescriptions["sent"],
                      pharmacy_id=second) == 1
        assert status_of(conn, "prescription", records.prescriptions["sent"]) == "sent"


def test_a_received_prescription_stays_with_its_pharmacy(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    second = records.pharmacies[1]
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "prescription_routing", "prescription",
                          records.prescriptions["received"], pharmacy_id=second)
        refused(conn, "prescription_routing", "prescription", records.prescriptions["sent"],
                pharmacy_id=second, status="received")
    assert "only while it is signed or sent" in message


@pytest.mark.parametrize("values", [
    {"quantity": 42}, {"dose": "2 capsules"}, {"position": 2}, {"instructions": "Con agua"},
    {"deleted_at": datetime.now(UTC)}, {"updated_hlc": "1700000000000-000003-desk"},
], ids=["quantity", "dose", "position", "instructions", "tombstone", "clock"])
@pytest.mark.parametrize("status", ["signed", "sent", "dispensed"])
def test_a_prescriptions_items_never_change(
    app_conn: psycopg.Connection, records: Records, values: dict[str, Any], status: str,
) -> None:
    with scoped(app_conn, records.a) as conn:
        row = conn.execute("SELECT id FROM prescription_item WHERE prescription_id = %s",
                           (records.prescriptions[status],)).fetchone()
        assert row is not None
        message = refused(conn, "prescription_item_is_signed", "prescription_item", row[0],
                          **values)
    assert "items cannot change" in message


# --- lab orders and results ---------------------------------------------------------------


ALLOWED_ORDER_MOVES = [("ordered", "sample_received"), ("ordered", "cancelled"),
                       ("sample_received", "processing"), ("sample_received", "cancelled"),
                       ("processing", "completed"), ("processing", "cancelled")]
REFUSED_ORDER_MOVES = [("ordered", "processing"), ("ordered", "completed"),
                       ("sample_received", "ordered"), ("sample_received", "completed"),
                       ("processing", "ordered"), ("processing", "sample_received")]


def _closing(after: str) -> dict[str, Any]:
    return {"completed_at": datetime.now(UTC)} if after == "completed" else {}


@pytest.mark.parametrize(("before", "after"), ALLOWED_ORDER_MOVES)
def test_a_lab_order_moves_forward(
    app_conn: psycopg.Connection, records: Records, before: str, after: str,
) -> None:
    order = records.orders[before]
    with scoped(app_conn, records.a) as conn:
        assert change(conn, "lab_order", order, status=after,
                      status_changed_by=records.a.users[Role.LAB_TECH].id,
                      status_changed_at=datetime.now(UTC), **_closing(after)) == 1
        assert status_of(conn, "lab_order", order) == after


@pytest.mark.parametrize(("before", "after"), REFUSED_ORDER_MOVES)
def test_a_lab_order_never_moves_back_or_skips_a_step(
    app_conn: psycopg.Connection, records: Records, before: str, after: str,
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "lab_order_status_forward", "lab_order", records.orders[before],
                          status=after, **_closing(after))
    assert f"cannot go from {before} to {after}" in message


@pytest.mark.parametrize("status", ["completed", "cancelled"])
@pytest.mark.parametrize("values", [
    {"status": "processing"}, {"clinical_info": "Ayuno de 8 horas"},
    {"deleted_at": datetime.now(UTC)}, {"priority": "urgent"},
], ids=["status", "info", "tombstone", "priority"])
def test_a_closed_lab_order_refuses_every_change(
    app_conn: psycopg.Connection, records: Records, status: str, values: dict[str, Any],
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "lab_order_is_final", "lab_order", records.orders[status],
                          **values)
    assert f"a {status} lab order cannot change" in message


@pytest.mark.parametrize("column", ["patient_id", "ordered_by", "tests", "appointment_id"])
@pytest.mark.parametrize("status", ["ordered", "processing"])
def test_what_a_lab_order_requests_never_changes(
    app_conn: psycopg.Connection, records: Records, column: str, status: str,
) -> None:
    a = records.a
    value = {"patient_id": a.patient_ids[1], "ordered_by": a.users[Role.ADMIN].id,
             "tests": ["cbc", "bmp"], "appointment_id": records.appointment_id}[column]
    with scoped(app_conn, a) as conn:
        refused(conn, "lab_order_request_is_fixed", "lab_order", records.orders[status],
                **{column: value})
        # The rest of an open order is the lab's to keep up to date.
        assert change(conn, "lab_order", records.orders[status], priority="urgent",
                      clinical_info="Paciente anticoagulado") == 1


@pytest.mark.parametrize("status", ["sample_received", "processing"])
def test_results_are_entered_and_corrected_while_the_lab_has_the_sample(
    app_conn: psycopg.Connection, records: Records, status: str,
) -> None:
    order = records.orders[status]
    row = result_row(records.a, order, "plt")
    with scoped(app_conn, records.a) as conn:
        add(conn, "lab_result", row)
        assert change(conn, "lab_result", row["id"], value="260", value_numeric=260.0) == 1


@pytest.mark.parametrize("status", ["ordered", "completed", "cancelled"])
def test_no_result_is_entered_before_the_sample_or_after_the_order_closes(
    app_conn: psycopg.Connection, records: Records, status: str,
) -> None:
    with (scoped(app_conn, records.a) as conn, pytest.raises(errors.CheckViolation) as caught,
          conn.transaction()):
        add(conn, "lab_result", result_row(records.a, records.orders[status], "plt"))
    assert caught.value.diag.constraint_name == "lab_result_order_is_open"
    assert f"(it is {status})" in str(caught.value)


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_results_are_closed_with_their_order(
    app_conn: psycopg.Connection, records: Records, status: str,
) -> None:
    order = records.orders[status]
    with scoped(app_conn, records.a) as conn:
        result = conn.execute("SELECT id FROM lab_result WHERE lab_order_id = %s",
                              (order,)).fetchone()
        assert result is not None
        for values in ({"value": "1.0", "value_numeric": 1.0},
                       {"deleted_at": datetime.now(UTC)},
                       {"lab_order_id": records.orders["processing"]}):
            refused(conn, "lab_result_order_is_open", "lab_result", result[0], **values)


def test_a_result_cannot_be_moved_into_a_closed_order(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    with scoped(app_conn, records.a) as conn:
        open_result = result_row(records.a, records.orders["processing"], "plt")
        add(conn, "lab_result", open_result)
        refused(conn, "lab_result_order_is_open", "lab_result", open_result["id"],
                lab_order_id=records.orders["completed"])


def test_completing_an_order_closes_the_results_already_entered(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    order = records.orders["processing"]
    with scoped(app_conn, records.a) as conn:
        result = conn.execute("SELECT id FROM lab_result WHERE lab_order_id = %s",
                              (order,)).fetchone()
        assert result is not None
        assert change(conn, "lab_order", order, status="completed",
                      completed_at=datetime.now(UTC)) == 1
        refused(conn, "lab_result_order_is_open", "lab_result", result[0], value="14.1")


def test_a_result_entered_while_its_order_is_being_closed_waits_and_is_refused(
    app_conn: psycopg.Connection, db_urls: tuple[URL, URL], factory: Factory, records: Records,
) -> None:
    order = factory.lab_order(records.a, status="processing")
    app_url = db_urls[1].set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(app_url) as lab, lab.transaction():
        lab.execute("SELECT set_config('app.clinic_id', %s, true)", (str(records.a.id),))
        change(lab, "lab_order", order, status="completed", completed_at=datetime.now(UTC))
        # Until the lab commits, the result cannot know whether the order is still open.
        with scoped(app_conn, records.a) as conn:
            conn.execute("SET LOCAL lock_timeout = '200ms'")
            with pytest.raises(errors.LockNotAvailable), conn.transaction():
                add(conn, "lab_result", result_row(records.a, order, "plt"))
    with scoped(app_conn, records.a) as conn:
        with pytest.raises(errors.CheckViolation) as caught, conn.transaction():
            add(conn, "lab_result", result_row(records.a, order, "plt"))
        assert caught.value.diag.constraint_name == "lab_result_order_is_open"


# --- signing keys -------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["user_id", "public_key", "fingerprint"])
@pytest.mark.parametrize("status", ["pending", "active"])
def test_a_signing_key_stays_bound_to_its_owner_and_public_key(
    app_conn: psycopg.Connection, factory: Factory, records: Records, column: str, status: str,
) -> None:
    other = records.keys["pending" if status == "active" else "active"]
    value = {"user_id": records.a.users[Role.ADMIN].id, "public_key": other.public_key,
             "fingerprint": "0" * 64}[column]
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "signing_key_owner_is_fixed", "signing_key",
                          records.keys[status].id, **{column: value})
    assert "register a new key" in message


@pytest.mark.parametrize(("before", "after"), [("pending", "active"), ("pending", "revoked"),
                                               ("active", "revoked")])
def test_a_signing_key_is_approved_or_revoked(
    app_conn: psycopg.Connection, records: Records, before: str, after: str,
) -> None:
    key = records.keys[before].id
    admin = records.a.users[Role.ADMIN].id
    now = datetime.now(UTC)
    values: dict[str, Any] = (
        {"approved_at": now, "approved_by": admin} if after == "active"
        else {"revoked_at": now, "revoked_by": admin, "revoke_reason": "Lost laptop"})
    with scoped(app_conn, records.a) as conn:
        assert change(conn, "signing_key", key, status=after, **values) == 1
        assert status_of(conn, "signing_key", key) == after
        # Which computer holds a live key is bookkeeping, not identity.
        if after == "active":
            assert change(conn, "signing_key", key, device_id=uuid7()) == 1


def test_an_active_signing_key_does_not_go_back_to_pending(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "signing_key_status_forward", "signing_key",
                          records.keys["active"].id, status="pending")
    assert "cannot go from active to pending" in message


@pytest.mark.parametrize("values", [
    {"status": "active", "revoked_at": None}, {"revoke_reason": "Otra"},
    {"deleted_at": datetime.now(UTC)}, {"device_id": uuid.UUID(int=1)},
], ids=["reactivate", "reason", "tombstone", "device"])
def test_a_revoked_signing_key_stays_revoked(
    app_conn: psycopg.Connection, records: Records, values: dict[str, Any],
) -> None:
    with scoped(app_conn, records.a) as conn:
        message = refused(conn, "signing_key_is_final", "signing_key",
                          records.keys["revoked"].id, **values)
    assert "stays revoked" in message


# --- clinics kept apart -------------------------------------------------------------------


def test_a_prescription_cannot_point_at_another_clinics_patient(
    app_conn: psycopg.Connection, factory: Factory, records: Records,
) -> None:
    a, b = records.a, records.b
    row = owner_row(factory, "prescription", a, records.prescriptions["signed"])
    row.update(id=uuid7(), patient_id=b.patient_ids[0], server_version=0, version_xid=None)
    with scoped(app_conn, a) as conn:
        with pytest.raises(errors.ForeignKeyViolation) as caught, conn.transaction():
            add(conn, "prescription", row)
        assert caught.value.diag.constraint_name == "fk_prescription_clinic_id_patient_id_patient"
        # Nor can a result be filed under another clinic's order; the order rule, which
        # cannot see that order, leaves it to the foreign key.
        with pytest.raises(errors.ForeignKeyViolation) as caught, conn.transaction():
            add(conn, "lab_result", result_row(a, records.b_order, "plt"))
        assert (caught.value.diag.constraint_name
                == "fk_lab_result_clinic_id_lab_order_id_lab_order")


def _ids(factory: Factory, table: str, clinic: ClinicData) -> list[uuid.UUID]:
    rows = metadata.tables[table]
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        return list(conn.execute(select(rows.c.id).where(rows.c.clinic_id == clinic.id)
                                 .order_by(rows.c.id)).scalars())


@pytest.mark.parametrize("table", NEW_TABLES)
def test_row_level_security_hides_another_clinics_rows(
    app_conn: psycopg.Connection, factory: Factory, records: Records, table: str,
) -> None:
    theirs = _ids(factory, table, records.b)
    assert theirs, f"clinic B has no {table} rows: the check would be vacuous"
    t = sql.Identifier(table)
    with scoped(app_conn, records.a) as conn:
        seen = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE id = ANY(%s) OR "
                                    "clinic_id = %s").format(t), (theirs, records.b.id))
        assert seen.fetchone() == (0,)
        assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(t)).fetchone() != (0,)
        touched = conn.execute(sql.SQL("UPDATE {} SET updated_hlc = 'intruder' "
                                       "WHERE id = ANY(%s)").format(t), (theirs,))
        assert touched.rowcount == 0
    with scoped(app_conn, records.b) as conn:
        seen = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE id = ANY(%s)").format(t),
                            (theirs,))
        assert seen.fetchone() == (len(theirs),)


def test_clinic_a_sees_neither_clinic_bs_prescription_nor_its_results(
    app_conn: psycopg.Connection, records: Records,
) -> None:
    with scoped(app_conn, records.a) as conn:
        assert conn.execute("SELECT * FROM prescription WHERE id = %s",
                            (records.b_prescription,)).fetchall() == []
        assert conn.execute("SELECT * FROM prescription_item WHERE prescription_id = %s",
                            (records.b_prescription,)).fetchall() == []
        assert conn.execute("SELECT * FROM lab_result WHERE lab_order_id = %s",
                            (records.b_order,)).fetchall() == []
    with scoped(app_conn, records.b) as conn:
        assert len(conn.execute("SELECT * FROM lab_result WHERE lab_order_id = %s",
                                (records.b_order,)).fetchall()) == 1


@pytest.mark.parametrize("table", NEW_TABLES)
def test_the_app_role_reads_writes_and_never_deletes_and_every_write_is_versioned(
    app_conn: psycopg.Connection, factory: Factory, records: Records, table: str,
) -> None:
    row_id = _ids(factory, table, records.a)[0]  # populate()'s, made first: none is final
    before = owner_row(factory, table, records.a, row_id)["server_version"]
    with scoped(app_conn, records.a) as conn:
        grants = conn.execute(
            "SELECT has_table_privilege(current_user, %(t)s, 'SELECT'), "
            "has_table_privilege(current_user, %(t)s, 'INSERT'), "
            "has_table_privilege(current_user, %(t)s, 'UPDATE'), "
            "has_table_privilege(current_user, %(t)s, 'DELETE')", {"t": table}).fetchone()
        assert grants == (True, True, True, False)
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(sql.Identifier(table)),
                         (row_id,))
        if table != "prescription_item":
            assert change(conn, table, row_id, updated_hlc="1700000000000-000009-desk") == 1
            after = conn.execute(sql.SQL("SELECT server_version, version_xid FROM {} "
                                         "WHERE id = %s").format(sql.Identifier(table)),
                                 (row_id,)).fetchone()
            assert after is not None
            assert after[0] > before
            assert after[1] is not None


# --- the migration itself -----------------------------------------------------------------


def test_downgrade_removes_the_clinical_records_and_upgrade_restores_them(
    pg_cluster: URL,
) -> None:
    owner = pg_cluster.set(database=f"consulta_mig_{uuid.uuid4().hex[:8]}")
    bootstrap.ensure_database(owner)
    bootstrap.ensure_app_role(owner, password=os.environ.get("CONSULTA_APP_DB_PASSWORD"))
    upgrade(owner)
    engine = create_engine(owner)
    catalog = text(
        "SELECT (SELECT count(*) FROM pg_class WHERE relname = ANY(:tables)), "
        "(SELECT count(*) FROM pg_proc WHERE proname LIKE ANY(:functions)), "
        "(SELECT count(*) FROM information_schema.columns WHERE (table_name, column_name) "
        "IN (('staff_user', 'pharmacy_id'), ('clinical_note', 'addendum_to')))")
    params = {"tables": list(NEW_TABLES),
              "functions": [f"{t}\\_%" for t in ("prescription", "lab_order", "lab_result",
                                                 "signing_key", "prescription_item")]}
    try:
        with engine.connect() as conn:
            tables, functions, columns = conn.execute(catalog, params).one()
        assert (tables, functions, columns) == (len(NEW_TABLES), RULES, 2)
        with engine.begin() as conn:
            config = alembic_config(owner)
            config.attributes["connection"] = conn
            command.downgrade(config, "0012")
        with engine.connect() as conn:
            assert tuple(conn.execute(catalog, params).one()) == (0, 0, 0)
        upgrade(owner)
        with engine.connect() as conn:
            assert tuple(conn.execute(catalog, params).one()) == (len(NEW_TABLES), RULES, 2)
    finally:
        engine.dispose()
