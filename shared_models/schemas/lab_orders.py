"""Laboratory orders and results on the wire."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from shared_models import lab_tests
from shared_models.schemas.common import NoNul

LabOrderStatus = Literal["ordered", "sample_received", "processing", "completed",
                         "cancelled"]
NEXT_LAB_STATUS: dict[str, frozenset[str]] = {
    "ordered": frozenset({"sample_received", "cancelled"}),
    "sample_received": frozenset({"processing", "cancelled"}),
    "processing": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
# Results can be entered while the sample is in the lab.
RESULTS_OPEN = frozenset({"sample_received", "processing"})


def _known_test(code: str) -> str:
    try:
        lab_tests.test(code)
    except lab_tests.UnknownTestError:
        raise ValueError(f"'{code}' is not a test of the lab catalogue "
                         f"{lab_tests.catalogue().version}") from None
    return code


TestCode = Annotated[str, AfterValidator(_known_test)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                          max_length=500), NoNul]


def _distinct(codes: list[str]) -> list[str]:
    if len(set(codes)) != len(codes):
        raise ValueError("each test may be ordered once per order")
    return codes


class LabOrderCreate(BaseModel):
    """A doctor's order (push op `upsert` of a new lab_order)."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    appointment_id: uuid.UUID | None = None
    tests: Annotated[list[TestCode], Field(min_length=1, max_length=20),
                     AfterValidator(_distinct)]
    priority: Literal["routine", "urgent"] = "routine"
    clinical_info: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500),
                             NoNul] | None = None


class LabOrderCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class LabOrderTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: Literal["sample_received", "processing", "completed", "cancelled"]
    reason: Reason | None = Field(default=None, description="Required to cancel.")


class LabResultIn(BaseModel):
    """One value. Unit and range default to the catalogue's; a lab that reports its own
    sends them, and the flag is worked out from those."""

    model_config = ConfigDict(extra="forbid")

    test_code: TestCode
    analyte: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=100), NoNul]
    unit: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30),
                    NoNul] | None = None
    ref_low: float | None = None
    ref_high: float | None = None
    ref_text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100),
                        NoNul] | None = None


class LabResultsEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    results: list[LabResultIn] = Field(min_length=1, max_length=100)


class LabResultPublic(BaseModel):
    id: uuid.UUID
    test_code: str
    analyte: str
    value: str
    value_numeric: float | None
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    ref_text: str | None
    flag: lab_tests.Flag
    entered_by: uuid.UUID
    entered_at: datetime


class LabOrderPublic(BaseModel):
    """An order as the lab sees it: the patient's identity for labelling the sample, the
    tests, and the results entered so far."""

    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    patient_mrn: str
    ordered_by: uuid.UUID
    ordered_by_name: str
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


class LabOrdersPublic(BaseModel):
    data: list[LabOrderPublic]
    has_more: bool
    next_offset: int | None
