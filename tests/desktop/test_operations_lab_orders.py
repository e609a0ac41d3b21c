"""Lab orders placed on a doctor's computer with no server, over a real encrypted store:
an order is written at once and queued in the shape the server takes; it is cancelled,
with a reason, only while the lab has not started on it; every refused order or
cancellation says why and writes nothing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from desktop.operations.chart import load_summary
from desktop.operations.lab_orders import LabOrderError, cancel_order, order_tests
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.lab_orders import LabOrderCancel, LabOrderCreate
from shared_models.tables import appointment, lab_order, patient

CLINIC = uuid7()
DOCTOR = uuid7()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("doctorpc")


def _patient(engine: Engine) -> uuid.UUID:
    pid = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=pid, mrn=f"P-{pid.hex[-6:]}", given_name="Rosario",
            family_name="Quispe", preferred_channels=[]))
    return pid


@pytest.fixture
def patient_id(engine: Engine) -> uuid.UUID:
    return _patient(engine)


def _visit(engine: Engine, patient_id: uuid.UUID) -> uuid.UUID:
    visit_id, starts = uuid7(), datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(appointment).values(
            clinic_id=CLINIC, id=visit_id, patient_id=patient_id, provider_id=uuid7(),
            starts_at=starts, ends_at=starts + timedelta(minutes=20), status="in_progress"))
    return visit_id


def _order(engine: Engine, clock: HybridClock, patient_id: uuid.UUID, **given: Any
           ) -> uuid.UUID:
    fields: dict[str, Any] = {"tests": ["cbc", "lipids"], **given}
    return order_tests(engine, clock, clinic_id=CLINIC, patient_id=patient_id,
                       ordered_by=DOCTOR, **fields)


def _queued(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


def _orders(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(lab_order)))


def test_an_order_is_stored_at_once_and_queued_in_the_servers_shape(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    visit = _visit(engine, patient_id)
    order_id = _order(engine, clock, patient_id, priority="urgent", appointment_id=visit,
                      clinical_info="  Dolor torácico, descartar dislipidemia  ")

    [row] = _orders(engine)
    assert (row.id, row.clinic_id, row.patient_id, row.ordered_by, row.appointment_id) == (
        order_id, CLINIC, patient_id, DOCTOR, visit)
    assert (row.tests, row.priority, row.status) == (["cbc", "lipids"], "urgent", "ordered")
    assert row.clinical_info == "Dolor torácico, descartar dislipidemia"
    [queued] = _queued(engine)
    assert (queued.entity, queued.op, queued.record_id, queued.base_version) == (
        "lab_order", "upsert", order_id, None)
    assert LabOrderCreate.model_validate(queued.changes).model_dump(mode="json") == \
        queued.changes
    assert queued.changes["tests"] == ["cbc", "lipids"]
    [entry] = load_summary(engine, patient_id, viewer_id=DOCTOR).recent
    assert (entry.kind, entry.id, entry.status, entry.children) == (
        "lab", order_id, "ordered", ())


@pytest.mark.parametrize(("given", "words"), [
    ({"tests": []}, "choose at least one test"),
    ({"tests": ["cbc", "unicorn"]}, "'unicorn' is not a test of the lab catalogue"),
    ({"tests": ["cbc", "cbc"]}, "each test may be ordered once per order"),
    ({"tests": ["cbc"] * 21}, "tests takes at most 20"),
    ({"priority": "stat"}, "priority must be 'routine' or 'urgent'"),
    ({"clinical_info": "x" * 501}, "clinical info is too long (at most 500 characters)"),
    ({"clinical_info": "Dolor\x00"}, "NUL"),
])
def test_an_order_the_server_would_refuse_is_refused_here_and_nothing_is_written(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, given: dict[str, Any],
        words: str) -> None:
    with pytest.raises(LabOrderError) as refused:
        _order(engine, clock, patient_id, **given)
    assert words in str(refused.value)
    assert str(refused.value).startswith("The order was not placed: ")
    assert _orders(engine) == _queued(engine) == []


def test_an_order_for_a_patient_or_visit_not_on_this_computer_is_refused(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    someone_else = _patient(engine)
    with pytest.raises(LabOrderError, match="patient is not on this computer"):
        _order(engine, clock, uuid7())
    with pytest.raises(LabOrderError, match="not one of this patient's appointments"):
        _order(engine, clock, patient_id, appointment_id=uuid7())
    with pytest.raises(LabOrderError, match="not one of this patient's appointments"):
        _order(engine, clock, patient_id, appointment_id=_visit(engine, someone_else))
    with engine.begin() as conn:
        conn.execute(update(patient).where(patient.c.id == patient_id)
                     .values(deleted_at=datetime.now(UTC)))
    with pytest.raises(LabOrderError, match="patient is not on this computer"):
        _order(engine, clock, patient_id)
    assert _orders(engine) == _queued(engine) == []


@pytest.mark.parametrize("status", ["ordered", "sample_received"])
def test_an_order_the_lab_has_not_started_on_is_cancelled_with_its_reason(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, status: str) -> None:
    order_id = _order(engine, clock, patient_id)
    with engine.begin() as conn:
        conn.execute(update(lab_order).values(status=status, server_version=17))
        conn.execute(outbox.delete())

    cancel_order(engine, clock, order_id, "  Se ordenó al paciente equivocado  ")

    [row] = _orders(engine)
    assert (row.status, row.status_reason) == ("cancelled", "Se ordenó al paciente equivocado")
    assert (row.status_changed_by, row.completed_at) == (DOCTOR, None)
    assert row.status_changed_at is not None
    [queued] = _queued(engine)
    assert (queued.entity, queued.op, queued.record_id, queued.base_version) == (
        "lab_order", "cancel", order_id, 17)
    assert queued.changes == {"reason": "Se ordenó al paciente equivocado"}
    LabOrderCancel.model_validate(queued.changes)


@pytest.mark.parametrize(("status", "words"), [
    ("processing", "Too late to cancel this order: the lab is already processing it"),
    ("completed", "Too late to cancel this order: the lab has finished it"),
    ("cancelled", "already cancelled"),
])
def test_an_order_the_lab_has_started_on_or_that_is_closed_cannot_be_cancelled(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, status: str,
        words: str) -> None:
    order_id = _order(engine, clock, patient_id)
    with engine.begin() as conn:
        conn.execute(update(lab_order).values(
            status=status, completed_at=datetime.now(UTC) if status == "completed" else None))
        conn.execute(outbox.delete())
    before = _orders(engine)

    with pytest.raises(LabOrderError, match=words):
        cancel_order(engine, clock, order_id, "Ya no hace falta")

    assert _orders(engine) == before
    assert _queued(engine) == []


@pytest.mark.parametrize(("reason", "words"), [
    ("", "reason needs at least 3 characters"),
    ("  ok ", "reason needs at least 3 characters"),
    ("x" * 501, "reason is too long (at most 500 characters)"),
    ("Error\x00", "NUL"),
])
def test_a_cancellation_without_a_proper_reason_is_refused(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, reason: str,
        words: str) -> None:
    order_id = _order(engine, clock, patient_id)
    before_orders, before_queue = _orders(engine), _queued(engine)
    with pytest.raises(LabOrderError) as refused:
        cancel_order(engine, clock, order_id, reason)
    assert words in str(refused.value)
    assert _orders(engine) == before_orders
    assert _queued(engine) == before_queue


def test_an_order_not_on_this_computer_cannot_be_cancelled(
        engine: Engine, clock: HybridClock) -> None:
    with pytest.raises(LabOrderError, match="not on this computer"):
        cancel_order(engine, clock, uuid7(), "Paciente equivocado")
    assert _queued(engine) == []
