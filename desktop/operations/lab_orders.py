"""Ordering lab tests on a doctor's computer, online or not, and cancelling an order.

An order is checked with the shape the server checks (tests of the bundled catalogue,
each once), written to the local chart at once and queued; the lab sees it after the next
sync. Orders are not edited: a wrong one is cancelled, while the lab has not started on
it, and ordered again. A refused change writes nothing.

    LabOrderError   the message says what to fix, for a dialog
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, insert, select, update

from desktop.operations.clinical import problems
from desktop.store.local import outbox
from desktop.store.records import to_json
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.lab_orders import LabOrderCancel, LabOrderCreate
from shared_models.tables import appointment, lab_order, patient

# The doctor can call an order off until the lab works on the sample; after that only the
# lab can (the server holds the same rule).
CANCELLABLE = frozenset({"ordered", "sample_received"})


class LabOrderError(Exception):
    """An order that cannot be placed or cancelled; the message says why, for a dialog."""


def _queue(conn: Connection, clock: HybridClock, *, op: str, order_id: uuid.UUID,
           base_version: int | None, changes: dict[str, Any], base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity="lab_order", op=op, record_id=order_id,
        base_version=base_version, changes={k: to_json(v) for k, v in changes.items()},
        base={k: to_json(v) for k, v in base.items()}, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def order_tests(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                patient_id: uuid.UUID, ordered_by: uuid.UUID, tests: list[str],
                priority: Literal["routine", "urgent"] = "routine",
                clinical_info: str | None = None,
                appointment_id: uuid.UUID | None = None) -> uuid.UUID:
    if not tests:
        raise LabOrderError("The order was not placed: choose at least one test.")
    try:
        data = LabOrderCreate.model_validate({
            "patient_id": patient_id, "appointment_id": appointment_id, "tests": tests,
            "priority": priority, "clinical_info": clinical_info})
    except ValidationError as exc:
        raise LabOrderError(f"The order was not placed: {problems(exc)}.") from exc
    order_id = uuid7()
    with engine.begin() as conn:
        _check_references(conn, data)
        now = datetime.now(UTC)
        conn.execute(insert(lab_order).values(
            clinic_id=clinic_id, id=order_id, patient_id=data.patient_id,
            ordered_by=ordered_by, appointment_id=data.appointment_id, tests=list(data.tests),
            priority=data.priority, clinical_info=data.clinical_info or None,
            status="ordered", created_at=now, updated_at=now))
        _queue(conn, clock, op="upsert", order_id=order_id, base_version=None,
               changes=data.model_dump(mode="json"), base={})
    return order_id


def _check_references(conn: Connection, data: LabOrderCreate) -> None:
    person = conn.execute(select(patient.c.deleted_at)
                          .where(patient.c.id == data.patient_id)).first()
    if person is None or person.deleted_at is not None:
        raise LabOrderError("The order was not placed: this patient is not on this computer; "
                            "sync, then try again.")
    if data.appointment_id is None:
        return
    visit = conn.execute(select(appointment.c.patient_id, appointment.c.deleted_at)
                         .where(appointment.c.id == data.appointment_id)).first()
    if visit is None or visit.deleted_at is not None or visit.patient_id != data.patient_id:
        raise LabOrderError("The order was not placed: the visit it names is not one of this "
                            "patient's appointments.")


def cancel_order(engine: Engine, clock: HybridClock, order_id: uuid.UUID, reason: str
                 ) -> None:
    """Call an order off while the lab has not started on it; the reason is kept."""
    try:
        data = LabOrderCancel.model_validate({"reason": reason})
    except ValidationError as exc:
        raise LabOrderError(f"The order was not cancelled: {problems(exc)}.") from exc
    with engine.begin() as conn:
        order = conn.execute(select(lab_order).where(lab_order.c.id == order_id)).first()
        if order is None or order.deleted_at is not None:
            raise LabOrderError("This order is not on this computer; sync, then try again.")
        if order.status == "cancelled":
            raise LabOrderError("This order is already cancelled.")
        if order.status not in CANCELLABLE:
            doing = ("has finished it and the results are in" if order.status == "completed"
                     else "is already processing it")
            raise LabOrderError(f"Too late to cancel this order: the lab {doing}. Call the "
                                "lab if it must stop.")
        now = datetime.now(UTC)
        conn.execute(update(lab_order).where(lab_order.c.id == order_id).values(
            status="cancelled", status_changed_at=now, status_changed_by=order.ordered_by,
            status_reason=data.reason, updated_at=now))
        _queue(conn, clock, op="cancel", order_id=order_id, base_version=order.server_version,
               changes=data.model_dump(), base={"status": order.status})
