"""A patient's chart in one response, as a doctor reads it through the API: who the patient
is, their allergies, conditions, medications and vital signs, the notes the reader may
see, prescriptions with their items and lab orders with their results."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

from shared_models.enums import Sex
from shared_models.schemas.clinical import AllergySeverity, MedicationStatus, RecordStatus
from shared_models.schemas.lab_orders import LabOrderStatus, LabResultPublic
from shared_models.schemas.prescriptions import (
    Acknowledgement,
    PrescriptionItemPublic,
    PrescriptionStatus,
)


class ChartPatient(BaseModel):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date | None
    sex: Sex


class _Entry(BaseModel):
    id: uuid.UUID
    recorded_by: uuid.UUID | None
    server_version: int
    created_at: datetime
    updated_at: datetime


class AllergyPublic(_Entry):
    substance: str
    formulary_ref: str | None
    reaction: str | None
    severity: AllergySeverity
    status: RecordStatus


class ConditionPublic(_Entry):
    description: str
    code: str | None
    onset_date: date | None
    status: RecordStatus


class MedicationPublic(_Entry):
    medicine_id: str | None
    name: str
    dose: str | None
    status: MedicationStatus
    started_on: date | None
    stopped_on: date | None
    prescription_id: uuid.UUID | None


class VitalSignsPublic(_Entry):
    appointment_id: uuid.UUID | None
    measured_at: datetime
    systolic_mmhg: int | None
    diastolic_mmhg: int | None
    heart_rate_bpm: int | None
    respiratory_rate: int | None
    temperature_c: float | None
    spo2_pct: int | None
    weight_kg: float | None
    height_cm: float | None


class ChartNotePublic(BaseModel):
    id: uuid.UUID
    author_id: uuid.UUID
    author_name: str
    appointment_id: uuid.UUID | None
    status: Literal["draft", "signed"]
    body: str
    signed_at: datetime | None
    # The signed note this one adds to, when it is an addendum.
    addendum_to: uuid.UUID | None
    # The note whose text this draft kept when two edits collided (only its author sees it).
    conflict_of: uuid.UUID | None
    server_version: int
    created_at: datetime
    updated_at: datetime


class ChartPrescriptionPublic(BaseModel):
    id: uuid.UUID
    prescriber_id: uuid.UUID
    prescriber_name: str
    appointment_id: uuid.UUID | None
    signed_at: datetime
    formulary_version: str
    notes: str | None
    acknowledgements: list[Acknowledgement]
    signing_key_id: uuid.UUID
    pharmacy_id: uuid.UUID | None
    status: PrescriptionStatus
    status_changed_at: datetime | None
    status_reason: str | None
    items: list[PrescriptionItemPublic]
    server_version: int


class ChartLabOrderPublic(BaseModel):
    id: uuid.UUID
    ordered_by: uuid.UUID
    ordered_by_name: str
    appointment_id: uuid.UUID | None
    tests: list[str]
    priority: Literal["routine", "urgent"]
    clinical_info: str | None
    status: LabOrderStatus
    status_changed_at: datetime | None
    status_reason: str | None
    completed_at: datetime | None
    created_at: datetime
    results: list[LabResultPublic]
    server_version: int


class ChartPublic(BaseModel):
    """Tombstoned entries are left out. Notes: every signed note, and the reader's own
    drafts, never another doctor's. Vital signs newest first; the rest oldest first."""

    patient: ChartPatient
    allergies: list[AllergyPublic]
    conditions: list[ConditionPublic]
    medications: list[MedicationPublic]
    vital_signs: list[VitalSignsPublic]
    notes: list[ChartNotePublic]
    prescriptions: list[ChartPrescriptionPublic]
    lab_orders: list[ChartLabOrderPublic]
