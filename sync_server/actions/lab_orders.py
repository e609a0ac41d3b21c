"""Laboratory orders: ordered by doctors, worked by the lab, results back to the chart.

A doctor's computer pushes an order (offline or not); the order is then what was asked
for, and never changes: a different request is a cancellation and a new order. The lab
works its worklist through the steps ordered -> sample_received -> processing ->
completed (or cancelled before completion, with a reason) and enters one value per
analyte while it holds the sample. The server flags each value against the range in use
(the lab's own, or the catalogue's) and the catalogue's critical limits, so every
computer shows the same flag. Each result write bumps the result's server_version, which
is how the doctor's computer pulls it.

Every step locks the order row, so two people working one order at once make one change
and the other sees it. The database refuses what no path may do (migration 0013): an
order's request changing, a status going backwards, results on a closed order. Audit
events hold ids, steps and counts, never values.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, case, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models import lab_tests
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.lab_orders import (
    NEXT_LAB_STATUS,
    RESULTS_OPEN,
    LabOrderCancel,
    LabOrderCreate,
    LabOrderPublic,
    LabOrdersPublic,
    LabOrderStatus,
    LabOrderTransition,
    LabResultIn,
    LabResultPublic,
    LabResultsEntry,
)
from shared_models.schemas.sync import Mutation
from shared_models.tables import appointment, lab_order, lab_result, patient, staff_user
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.mutations import Rejected, Status, invalid_change
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields
from sync_server.reminders import notices

MAX_PAGE = 200
MAX_OFFSET = 100_000
# The worklist without a status filter: what the lab still has to do.
OPEN_STATUSES: tuple[LabOrderStatus, ...] = ("ordered", "sample_received", "processing")
# A doctor may take an order back until the lab starts running it.
DOCTOR_CANCELLABLE = frozenset({"ordered", "sample_received"})
READERS = frozenset({Role.LAB_TECH, Role.DOCTOR})

# What the order asks for: a re-push with the same values is the same order.
_REQUEST_FIELDS = ("patient_id", "appointment_id", "tests", "priority", "clinical_info",
                   "ordered_by")
_STATUS_FIELDS = ["status", "status_changed_at", "status_changed_by", "status_reason",
                  "completed_at"]
_RESULT_FIELDS = ["value", "value_numeric", "unit", "ref_low", "ref_high", "ref_text", "flag",
                  "entered_by", "entered_at"]
# Compared to tell a corrected value from the same value sent again.
_RESULT_CONTENT = ("value", "unit", "ref_low", "ref_high", "ref_text")


def _check_lab(ctx: ClinicContext) -> None:
    if ctx.role is not Role.LAB_TECH:
        raise PermissionDenied(f"Your role ({ctx.role}) does not work lab orders; the lab "
                               "does.", code="role_not_allowed")


async def access_lab_order(ctx: ClinicContext, order_id: uuid.UUID, *,
                           for_update: bool = False) -> Row[Any]:
    """The lab order of the caller's clinic, or 404 (also for another clinic's id)."""
    stmt = select(lab_order).where(lab_order.c.id == order_id, lab_order.c.deleted_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await ctx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"No lab order with id {order_id} in this clinic.",
                       code="lab_order_not_found")
    return row


# --- reading ------------------------------------------------------------------------------


def _analyte_rank(test_code: str, analyte: str) -> int:
    try:
        ids = [a.id for a in lab_tests.test(test_code).analytes]
    except lab_tests.UnknownTestError:
        return 0
    return ids.index(analyte) if analyte in ids else len(ids)


async def _publish(ctx: ClinicContext, orders: list[Row[Any]]) -> list[LabOrderPublic]:
    """Orders as the lab and the doctor see them, with the patient's name and record number
    for labelling the sample and the results so far, in the order the tests were asked for
    and the catalogue lists their analytes."""
    if not orders:
        return []
    ids = [o.id for o in orders]
    people = {r.id: r for r in (await ctx.conn.execute(
        select(patient.c.id, patient.c.given_name, patient.c.family_name, patient.c.mrn)
        .where(patient.c.id.in_({o.patient_id for o in orders})))).all()}
    doctors = {r.id: r.full_name for r in (await ctx.conn.execute(
        select(staff_user.c.id, staff_user.c.full_name)
        .where(staff_user.c.id.in_({o.ordered_by for o in orders})))).all()}
    results: dict[uuid.UUID, list[Row[Any]]] = {i: [] for i in ids}
    for r in (await ctx.conn.execute(
            select(lab_result).where(lab_result.c.lab_order_id.in_(ids),
                                     lab_result.c.deleted_at.is_(None)))).all():
        results[r.lab_order_id].append(r)
    published = []
    for o in orders:
        person = people[o.patient_id]
        tests: list[str] = list(o.tests)
        rows = sorted(results[o.id], key=lambda r: (
            tests.index(r.test_code) if r.test_code in tests else len(tests),
            _analyte_rank(r.test_code, r.analyte), r.analyte))
        published.append(LabOrderPublic.model_validate({
            **o._mapping, "tests": tests,
            "patient_name": f"{person.given_name} {person.family_name}",
            "patient_mrn": person.mrn, "ordered_by_name": doctors.get(o.ordered_by, ""),
            "results": [LabResultPublic.model_validate(r._mapping) for r in rows]}))
    return published


async def list_worklist(ctx: ClinicContext, *, status: LabOrderStatus | None, limit: int,
                        offset: int) -> LabOrdersPublic:
    """The lab's worklist: urgent orders first, the oldest first within each priority.
    Without `status`, the orders the lab still has to finish."""
    _check_lab(ctx)
    if offset > MAX_OFFSET:
        raise InvalidInput(f"offset goes up to {MAX_OFFSET}; narrow the list by status.",
                           code="offset_too_large", details={"field": "offset"})
    statuses = OPEN_STATUSES if status is None else (status,)
    urgent_first = case((lab_order.c.priority == "urgent", 0), else_=1)
    rows = list((await ctx.conn.execute(
        select(lab_order)
        .where(lab_order.c.status.in_(statuses), lab_order.c.deleted_at.is_(None))
        .order_by(urgent_first, lab_order.c.created_at, lab_order.c.id)
        .limit(limit + 1).offset(offset))).all())
    page = await _publish(ctx, rows[:limit])
    has_more = len(rows) > limit
    await audit.record(ctx, action="lab_order.list", entity="lab_order",
                       detail={"returned": [str(o.id) for o in page],
                               "patient_ids": sorted({str(o.patient_id) for o in page})})
    return LabOrdersPublic(data=page, has_more=has_more,
                           next_offset=offset + limit if has_more else None)


async def get_order(ctx: ClinicContext, order_id: uuid.UUID) -> LabOrderPublic:
    """One order with its results, for the lab or any doctor of the clinic."""
    if ctx.role not in READERS:
        raise PermissionDenied(f"Your role ({ctx.role}) cannot read lab orders.",
                               code="role_not_allowed")
    [published] = await _publish(ctx, [await access_lab_order(ctx, order_id)])
    await audit.record(ctx, action="lab_order.read", entity="lab_order", entity_id=order_id,
                       detail={"patient_id": str(published.patient_id)})
    return published


# --- pushed by doctors ---------------------------------------------------------------------


async def push_lab_order(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    """A doctor's new order (`upsert`) or their cancellation of it (`cancel`)."""
    if ctx.role is not Role.DOCTOR:
        raise Rejected("Only doctors order lab tests.", code="role_not_allowed")
    try:
        if m.op == "upsert":
            await _create(ctx, m.record_id, LabOrderCreate.model_validate(m.changes), stamp)
        elif m.op == "cancel":
            await _cancel_by_doctor(ctx, m.record_id, LabOrderCancel.model_validate(m.changes),
                                    stamp)
        else:
            raise Rejected(f"'{m.op}' does not apply to lab orders; they are ordered (upsert) "
                           "or cancelled.", code="invalid_operation")
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    return "applied"


def _same_request(row: Row[Any], values: dict[str, Any]) -> None:
    """Nothing to do when the order already stands as asked; refused when it differs."""
    if any(getattr(row, f) != values[f] for f in _REQUEST_FIELDS):
        raise Rejected("A lab order with this id already exists and asks for something else. "
                       "Orders are not edited: cancel it and order again.",
                       code="already_exists")


async def _check_references(ctx: ClinicContext, data: LabOrderCreate) -> None:
    found = (await ctx.conn.execute(select(patient.c.id).where(
        patient.c.id == data.patient_id, patient.c.deleted_at.is_(None)))).first()
    if found is None:
        raise InvalidInput(f"No patient with id {data.patient_id} in this clinic; the order "
                           "was not placed.", code="unknown_reference",
                           details={"field": "patient_id"})
    if data.appointment_id is None:
        return
    visit = (await ctx.conn.execute(select(appointment.c.patient_id).where(
        appointment.c.id == data.appointment_id, appointment.c.deleted_at.is_(None)))).first()
    if visit is None or visit.patient_id != data.patient_id:
        raise InvalidInput(f"No appointment with id {data.appointment_id} for this patient in "
                           "this clinic; the order was not placed.", code="unknown_reference",
                           details={"field": "appointment_id"})


async def _create(ctx: ClinicContext, order_id: uuid.UUID, data: LabOrderCreate,
                  stamp: WriteStamp) -> None:
    values: dict[str, Any] = {
        "patient_id": data.patient_id, "appointment_id": data.appointment_id,
        "tests": list(data.tests), "priority": data.priority,
        "clinical_info": data.clinical_info or None, "ordered_by": ctx.user_id}
    existing = (await ctx.conn.execute(select(lab_order).where(lab_order.c.id == order_id))
                ).first()
    if existing is not None:
        _same_request(existing, values)
        return
    await _check_references(ctx, data)
    created = (await ctx.conn.execute(
        pg_insert(lab_order).values(
            clinic_id=ctx.clinic_id, id=order_id, status="ordered", **values,
            **stamp_fields(None, list(values), stamp))
        .on_conflict_do_nothing().returning(lab_order.c.id))).first()
    if created is None:
        # The same order pushed twice at once: the other push placed it first.
        raced = (await ctx.conn.execute(select(lab_order).where(lab_order.c.id == order_id))
                 ).one()
        _same_request(raced, values)
        return
    await audit.record(ctx, action="lab_order.create", entity="lab_order", entity_id=order_id,
                       detail={"patient_id": str(data.patient_id), "tests": len(data.tests)})


async def _cancel_by_doctor(ctx: ClinicContext, order_id: uuid.UUID, data: LabOrderCancel,
                            stamp: WriteStamp) -> None:
    current = await access_lab_order(ctx, order_id, for_update=True)
    if current.ordered_by != ctx.user_id:
        raise Rejected("Only the doctor who ordered these tests can cancel them.",
                       code="not_orderer")
    if current.status == "cancelled":
        return
    if current.status not in DOCTOR_CANCELLABLE:
        doing = ("has finished it and the results are in" if current.status == "completed"
                 else "is already processing it")
        raise Rejected(f"Too late to cancel this order: the lab {doing}. Call the lab if it "
                       "must stop.", code="too_late")
    await _move(ctx, current, "cancelled", reason=data.reason, stamp=stamp)
    await audit.record(ctx, action="lab_order.cancel", entity="lab_order", entity_id=order_id,
                       detail={"from": current.status})


# --- worked by the lab -----------------------------------------------------------------------


async def _move(ctx: ClinicContext, current: Row[Any], to: str, *, reason: str | None,
                stamp: WriteStamp) -> Row[Any]:
    now = datetime.now(UTC)
    row: Row[Any] = (await ctx.conn.execute(
        update(lab_order).where(lab_order.c.id == current.id).values(
            status=to, status_changed_at=now, status_changed_by=ctx.user_id,
            status_reason=reason, completed_at=now if to == "completed" else None,
            **stamp_fields(current.field_stamps, _STATUS_FIELDS, stamp))
        .returning(lab_order))).one()
    return row


def _refuse_step(current: str, to: str) -> Conflict:
    allowed = sorted(NEXT_LAB_STATUS[current])
    if not allowed:
        return Conflict(f"This order is {current} and cannot change; order the tests again "
                        "if they are still needed.", code="lab_order_closed",
                        details={"current_status": current, "allowed": []})
    steps = " or ".join(s.replace("_", " ") for s in allowed)
    return Conflict(f"An order that is {current.replace('_', ' ')} cannot go to "
                    f"{to.replace('_', ' ')}; its next step is {steps}.",
                    code="lab_order_step_not_allowed",
                    details={"current_status": current, "allowed": allowed})


async def _tests_without_results(ctx: ClinicContext, order: Row[Any]) -> list[str]:
    done = set((await ctx.conn.execute(
        select(lab_result.c.test_code).where(lab_result.c.lab_order_id == order.id,
                                             lab_result.c.deleted_at.is_(None)).distinct()
    )).scalars())
    return [t for t in order.tests if t not in done]


async def do_transition(ctx: ClinicContext, order_id: uuid.UUID, data: LabOrderTransition
                        ) -> LabOrderPublic:
    """Move an order one step. Asking for the step it is already at changes nothing, so a
    step sent twice (a retry, or two people at once) is one step."""
    _check_lab(ctx)
    if data.to == "cancelled" and data.reason is None:
        raise InvalidInput("Say why the order is cancelled (for example: sample haemolysed), "
                           "so the doctor can act on it.", code="reason_required",
                           details={"field": "reason"})
    current = await access_lab_order(ctx, order_id, for_update=True)
    if current.status == data.to:
        [published] = await _publish(ctx, [current])
        return published
    if data.to not in NEXT_LAB_STATUS[current.status]:
        raise _refuse_step(current.status, data.to)
    if data.to == "completed":
        missing = await _tests_without_results(ctx, current)
        if missing:
            raise Conflict(f"Enter results for {', '.join(missing)} before completing the "
                           "order.", code="results_missing", details={"missing_tests": missing})
    row = await _move(ctx, current, data.to, reason=data.reason, stamp=server_stamp())
    await audit.record(ctx, action=f"lab_order.{data.to}", entity="lab_order",
                       entity_id=order_id, detail={"from": current.status})
    if data.to == "completed":
        await notices.on_results_ready(ctx, lab_order_id=order_id,
                                       patient_id=current.patient_id, now=row.completed_at)
    [published] = await _publish(ctx, [row])
    return published


@dataclass(frozen=True, slots=True)
class _Measured:
    """One result as it will be stored."""

    test_code: str
    analyte: str
    content: dict[str, Any]


def _finite(value: float | None, name: str) -> float | None:
    if value is not None and not math.isfinite(value):
        raise InvalidInput(f"{name} must be a number.", code="invalid_range",
                           details={"field": name})
    return value


def _measure(result: LabResultIn, tests: list[str]) -> _Measured:
    """The stored form of one value: its unit and range (the lab's, else the catalogue's)
    and its flag. The catalogue's range and critical limits are in the catalogue's unit, so
    they are used only for a value reported in that unit."""
    if result.test_code not in tests:
        raise InvalidInput(f"{result.test_code} was not ordered on this order (it asks for "
                           f"{', '.join(tests)}).", code="test_not_ordered",
                           details={"test_code": result.test_code})
    try:
        known = lab_tests.analyte(result.test_code, result.analyte)
    except lab_tests.UnknownTestError:
        names = ", ".join(a.id for a in lab_tests.test(result.test_code).analytes)
        raise InvalidInput(f"{result.analyte!r} is not measured by {result.test_code}; its "
                           f"analytes are {names}.", code="unknown_analyte",
                           details={"test_code": result.test_code,
                                    "analyte": result.analyte}) from None
    low, high = _finite(result.ref_low, "ref_low"), _finite(result.ref_high, "ref_high")
    if low is not None and high is not None and low > high:
        raise InvalidInput(f"The reference range of {result.test_code} {result.analyte} starts "
                           "above where it ends.", code="invalid_range",
                           details={"test_code": result.test_code, "analyte": result.analyte})
    unit = result.unit or known.unit
    same_unit = unit == known.unit
    if low is None and high is None and same_unit:
        low, high = known.low, known.high
    normal_text = known.normal_text
    number = lab_tests.parse_number(result.value)
    return _Measured(result.test_code, result.analyte, {
        "value": result.value,
        "value_numeric": number if number is not None and math.isfinite(number) else None,
        "unit": unit or None, "ref_low": low, "ref_high": high,
        "ref_text": result.ref_text or normal_text,
        "flag": lab_tests.flag(
            result.value, low=low, high=high,
            critical_low=known.critical_low if same_unit else None,
            critical_high=known.critical_high if same_unit else None,
            normal_text=normal_text)})


async def do_enter_results(ctx: ClinicContext, order_id: uuid.UUID, data: LabResultsEntry
                           ) -> LabOrderPublic:
    """Enter or correct values while the lab has the sample. A value sent again unchanged
    is left as it was; a corrected one replaces the earlier value (the audit counts it)."""
    _check_lab(ctx)
    order = await access_lab_order(ctx, order_id, for_update=True)
    if order.status not in RESULTS_OPEN:
        raise Conflict(f"This order is {order.status.replace('_', ' ')}; results are entered "
                       "once the sample is received and until the order is completed or "
                       "cancelled.", code="results_closed",
                       details={"current_status": order.status})
    tests: list[str] = list(order.tests)
    measured: dict[tuple[str, str], _Measured] = {}
    for result in data.results:
        item = _measure(result, tests)
        key = (item.test_code, item.analyte)
        if key in measured:
            raise InvalidInput(f"{item.test_code} {item.analyte} is sent twice; send one value "
                               "for each analyte.", code="duplicate_result",
                               details={"test_code": item.test_code, "analyte": item.analyte})
        measured[key] = item
    # The order's lock keeps other entries for this order out until this one commits.
    stored = {(r.test_code, r.analyte): r for r in (await ctx.conn.execute(
        select(lab_result).where(lab_result.c.lab_order_id == order_id))).all()}
    stamp = server_stamp()
    entered, corrected = 0, 0
    now = datetime.now(UTC)
    for key, item in measured.items():
        values = {**item.content, "entered_by": ctx.user_id, "entered_at": now}
        before = stored.get(key)
        if before is None:
            await ctx.conn.execute(insert(lab_result).values(
                clinic_id=ctx.clinic_id, id=uuid7(), lab_order_id=order_id,
                patient_id=order.patient_id, test_code=item.test_code, analyte=item.analyte,
                **values, **stamp_fields(None, _RESULT_FIELDS, stamp)))
            entered += 1
        elif any(getattr(before, f) != item.content[f] for f in _RESULT_CONTENT):
            await ctx.conn.execute(update(lab_result).where(lab_result.c.id == before.id).values(
                **values, **stamp_fields(before.field_stamps, _RESULT_FIELDS, stamp)))
            corrected += 1
    if entered or corrected:
        await audit.record(ctx, action="lab_result.enter", entity="lab_order",
                           entity_id=order_id,
                           detail={"patient_id": str(order.patient_id), "entered": entered,
                                   "corrected": corrected})
    [published] = await _publish(ctx, [order])
    return published
