"""The chart's plain records as devices push them: allergies, conditions, active
medications and vital signs.

Each entity has a create shape (every required field, and the patient) and an update
shape (only the fields sent change, merged field by field like demographics). Both sides
validate with these, so a bad value is refused on the doctor's screen before it is queued.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shared_models import prescribing
from shared_models.schemas.common import NoNul


def _known_formulary_ref(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        if value.startswith(prescribing.CLASS_PREFIX):
            prescribing.therapeutic_class(value)
        else:
            prescribing.medicine(value)
    except prescribing.UnknownMedicineError:
        raise ValueError(f"'{value}' is not a medicine or class of the formulary "
                         f"{prescribing.FORMULARY_VERSION}; leave it empty for a substance "
                         "that is not a medicine") from None
    return value


def _known_medicine(value: str | None) -> str | None:
    if value is not None and value.startswith(prescribing.CLASS_PREFIX):
        raise ValueError("name a medicine, not a class")
    return _known_formulary_ref(value)


FormularyRef = Annotated[str, AfterValidator(_known_formulary_ref)]
MedicineId = Annotated[str, AfterValidator(_known_medicine)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=200), NoNul]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=300), NoNul]
AllergySeverity = Literal["mild", "moderate", "severe", "unknown"]
RecordStatus = Literal["active", "resolved"]
# ICD-10: a letter, two digits, then an optional dot and up to four more characters.
Icd10 = Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"),
                  BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AllergyCreate(_Strict):
    patient_id: uuid.UUID
    substance: Text200
    formulary_ref: FormularyRef | None = Field(
        default=None, description="Medicine id or 'class:<slug>': what prescribing checks.")
    reaction: Text300 | None = None
    severity: AllergySeverity = "unknown"
    status: RecordStatus = "active"


class AllergyUpdate(_Strict):
    substance: Text200 | None = None
    formulary_ref: FormularyRef | None = None
    reaction: Text300 | None = None
    severity: AllergySeverity | None = None
    status: RecordStatus | None = None


class ConditionCreate(_Strict):
    patient_id: uuid.UUID
    description: Text300
    code: Icd10 | None = None
    onset_date: date | None = None
    status: RecordStatus = "active"


class ConditionUpdate(_Strict):
    description: Text300 | None = None
    code: Icd10 | None = None
    onset_date: date | None = None
    status: RecordStatus | None = None


MedicationStatus = Literal["active", "stopped"]


class MedicationCreate(_Strict):
    patient_id: uuid.UUID
    medicine_id: MedicineId | None = None
    name: Text200
    dose: Text200 | None = None
    status: MedicationStatus = "active"
    started_on: date | None = None
    stopped_on: date | None = None
    prescription_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _period(self) -> MedicationCreate:
        if self.started_on and self.stopped_on and self.stopped_on < self.started_on:
            raise ValueError("stopped_on cannot be before started_on")
        return self


class MedicationUpdate(_Strict):
    medicine_id: MedicineId | None = None
    name: Text200 | None = None
    dose: Text200 | None = None
    status: MedicationStatus | None = None
    started_on: date | None = None
    stopped_on: date | None = None


# Plausible human ranges: outside them the number is a typing mistake, not a reading.
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "systolic_mmhg": (40, 300),
    "diastolic_mmhg": (20, 200),
    "heart_rate_bpm": (20, 300),
    "respiratory_rate": (4, 80),
    "temperature_c": (30.0, 45.0),
    "spo2_pct": (40, 100),
    "weight_kg": (0.3, 500.0),
    "height_cm": (20.0, 260.0),
}
VITAL_UNITS = {"systolic_mmhg": "mmHg", "diastolic_mmhg": "mmHg", "heart_rate_bpm": "bpm",
               "respiratory_rate": "/min", "temperature_c": "°C", "spo2_pct": "%",
               "weight_kg": "kg", "height_cm": "cm"}


def _in_range(values: dict[str, Any]) -> None:
    for name, (low, high) in VITAL_RANGES.items():
        value = values.get(name)
        if value is not None and not low <= value <= high:
            raise ValueError(f"{name} {value} is outside {low:g}-{high:g} "
                             f"{VITAL_UNITS[name]}; check the reading")
    systolic, diastolic = values.get("systolic_mmhg"), values.get("diastolic_mmhg")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise ValueError("the diastolic pressure must be lower than the systolic")


class VitalSignsCreate(_Strict):
    patient_id: uuid.UUID
    appointment_id: uuid.UUID | None = None
    measured_at: datetime
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    heart_rate_bpm: int | None = None
    respiratory_rate: int | None = None
    temperature_c: float | None = None
    spo2_pct: int | None = None
    weight_kg: float | None = None
    height_cm: float | None = None

    @model_validator(mode="after")
    def _readings(self) -> VitalSignsCreate:
        values = self.model_dump(include=set(VITAL_RANGES))
        if all(v is None for v in values.values()):
            raise ValueError("record at least one measurement")
        if self.measured_at.tzinfo is None:
            raise ValueError("measured_at needs a time zone (UTC)")
        _in_range(values)
        return self


class VitalSignsUpdate(_Strict):
    measured_at: datetime | None = None
    systolic_mmhg: int | None = None
    diastolic_mmhg: int | None = None
    heart_rate_bpm: int | None = None
    respiratory_rate: int | None = None
    temperature_c: float | None = None
    spo2_pct: int | None = None
    weight_kg: float | None = None
    height_cm: float | None = None

    @model_validator(mode="after")
    def _readings(self) -> VitalSignsUpdate:
        _in_range(self.model_dump(include=set(VITAL_RANGES)))
        return self


# The push shape of each plain chart record, by entity: (create, update).
RECORD_SCHEMAS: dict[str, tuple[type[_Strict], type[_Strict]]] = {
    "allergy": (AllergyCreate, AllergyUpdate),
    "condition": (ConditionCreate, ConditionUpdate),
    "medication": (MedicationCreate, MedicationUpdate),
    "vital_signs": (VitalSignsCreate, VitalSignsUpdate),
}
