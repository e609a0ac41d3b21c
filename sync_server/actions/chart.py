"""Reading a patient's chart, and the audit of every read.

A chart is read in two ways: through the API (`do_read_chart`), and on a doctor's
computer from its own copy, possibly offline, which the computer reports afterwards as a
pushed `chart` `read` (`push_chart_read`). Both leave one `chart.read` audit event, at the
time the chart was opened, so the log answers "who looked at this patient" either way.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import Select, Table, and_, or_, select

from shared_models.enums import Role
from shared_models.schemas.chart import (
    AllergyPublic,
    ChartLabOrderPublic,
    ChartNotePublic,
    ChartPatient,
    ChartPrescriptionPublic,
    ChartPublic,
    ConditionPublic,
    MedicationPublic,
    VitalSignsPublic,
)
from shared_models.schemas.lab_orders import LabResultPublic
from shared_models.schemas.prescriptions import PrescriptionItemPublic
from shared_models.schemas.sync import Mutation
from shared_models.tables import (
    allergy,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    prescription,
    prescription_item,
    staff_user,
    vital_signs,
)
from sync_server.actions import audit
from sync_server.lib.context import ClinicContext
from sync_server.lib.mutations import Rejected
from sync_server.lib.patients import access_patient
from sync_server.lib.stamps import stamp_time


async def push_chart_read(ctx: ClinicContext, m: Mutation) -> None:
    """A doctor opened this patient's chart on their computer, when its clock says."""
    if ctx.role is not Role.DOCTOR:
        raise Rejected(f"Only doctors open charts; your role ({ctx.role}) has no chart to "
                       "report as read.", code="role_not_allowed")
    if m.op != "read":
        raise Rejected(f"'{m.op}' does not apply to a chart; a computer reports that a chart "
                       "was read.", code="invalid_operation")
    # A patient removed since the chart was opened was still read: only an id this
    # clinic never had is refused.
    known = (await ctx.conn.execute(
        select(patient.c.id).where(patient.c.id == m.record_id))).first()
    if known is None:
        raise Rejected("The chart read names a patient this clinic does not have.",
                       code="unknown_reference")
    await audit.record(ctx, action="chart.read", entity="patient", entity_id=m.record_id,
                       detail={"source": "device"}, occurred_at=stamp_time(m.hlc))


def _live(table: Table, patient_id: uuid.UUID) -> Select[Any]:
    return select(table).where(table.c.patient_id == patient_id, table.c.deleted_at.is_(None))


def _with_name(table: Table, person: str, label: str) -> Select[Any]:
    """`table`'s rows with the name of the staff member in column `person`."""
    staff = staff_user.alias("staff")
    return select(table, staff.c.full_name.label(label)).join(staff, and_(
        staff.c.clinic_id == table.c.clinic_id, staff.c.id == table.c[person]))


async def _rows(ctx: ClinicContext, stmt: Select[Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in await ctx.conn.execute(stmt)]


async def do_read_chart(ctx: ClinicContext, patient_id: uuid.UUID) -> ChartPublic:
    """The whole chart, one query per table whatever its size (404 for a patient this
    clinic does not have)."""
    person = await access_patient(ctx, patient_id)
    allergies = await _rows(ctx, _live(allergy, patient_id).order_by(allergy.c.id))
    conditions = await _rows(ctx, _live(condition, patient_id).order_by(condition.c.id))
    medications = await _rows(ctx, _live(medication, patient_id).order_by(medication.c.id))
    vitals = await _rows(ctx, _live(vital_signs, patient_id).order_by(
        vital_signs.c.measured_at.desc(), vital_signs.c.id.desc()))
    notes = await _rows(ctx, _with_name(clinical_note, "author_id", "author_name")
                        .where(clinical_note.c.patient_id == patient_id,
                               clinical_note.c.deleted_at.is_(None),
                               # Another doctor's draft is theirs until they sign it.
                               or_(clinical_note.c.status == "signed",
                                   clinical_note.c.author_id == ctx.user_id))
                        .order_by(clinical_note.c.id))
    prescriptions = await _rows(
        ctx, _with_name(prescription, "prescriber_id", "prescriber_name")
        .where(prescription.c.patient_id == patient_id, prescription.c.deleted_at.is_(None))
        .order_by(prescription.c.signed_at, prescription.c.id))
    items = await _rows(
        ctx, select(prescription_item)
        .join(prescription, and_(prescription.c.clinic_id == prescription_item.c.clinic_id,
                                 prescription.c.id == prescription_item.c.prescription_id))
        .where(prescription.c.patient_id == patient_id,
               prescription_item.c.deleted_at.is_(None))
        .order_by(prescription_item.c.prescription_id, prescription_item.c.position))
    orders = await _rows(
        ctx, _with_name(lab_order, "ordered_by", "ordered_by_name")
        .where(lab_order.c.patient_id == patient_id, lab_order.c.deleted_at.is_(None))
        .order_by(lab_order.c.id))
    results = await _rows(ctx, _live(lab_result, patient_id).order_by(
        lab_result.c.lab_order_id, lab_result.c.test_code, lab_result.c.id))
    await audit.record(ctx, action="chart.read", entity="patient", entity_id=patient_id,
                       detail={"source": "api"})

    items_of: defaultdict[uuid.UUID, list[PrescriptionItemPublic]] = defaultdict(list)
    for line in items:
        items_of[line["prescription_id"]].append(PrescriptionItemPublic.model_validate(line))
    results_of: defaultdict[uuid.UUID, list[LabResultPublic]] = defaultdict(list)
    for value in results:
        results_of[value["lab_order_id"]].append(LabResultPublic.model_validate(value))
    return ChartPublic(
        patient=ChartPatient.model_validate(dict(person._mapping)),
        allergies=[AllergyPublic.model_validate(r) for r in allergies],
        conditions=[ConditionPublic.model_validate(r) for r in conditions],
        medications=[MedicationPublic.model_validate(r) for r in medications],
        vital_signs=[VitalSignsPublic.model_validate(r) for r in vitals],
        notes=[ChartNotePublic.model_validate(r) for r in notes],
        prescriptions=[ChartPrescriptionPublic.model_validate(
            {**r, "items": items_of[r["id"]]}) for r in prescriptions],
        lab_orders=[ChartLabOrderPublic.model_validate(
            {**r, "results": results_of[r["id"]]}) for r in orders],
    )
