"""Prescriptions on the wire: the signed prescription a doctor's computer pushes, and what
pharmacies and prescribers see and do with it afterwards."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared_models import prescribing
from shared_models.schemas.clinical import MedicineId
from shared_models.schemas.common import NoNul

MAX_ITEMS = 10
PrescriptionStatus = Literal["signed", "sent", "received", "dispensed", "refused",
                             "cancelled"]
# Where each status may go next, and who moves it there (DESIGN section 5).
NEXT_STATUS: dict[str, frozenset[str]] = {
    "signed": frozenset({"sent", "cancelled"}),
    "sent": frozenset({"sent", "received", "refused", "cancelled"}),
    "received": frozenset({"dispensed", "refused"}),
    "dispensed": frozenset(),
    "refused": frozenset(),
    "cancelled": frozenset(),
}
FINAL_STATUSES = frozenset({"dispensed", "refused", "cancelled"})


# A prescription's lines are stored twice: on the prescriber's computer when it is signed,
# and on the server from the pushed content. Both derive each line's id from the
# prescription and the line's position, so the copy a later pull brings is the line
# already stored, not a second one.
_ITEM_NAMESPACE = uuid.UUID("5b0f3c4e-8a57-4d1e-9c2b-7e6a1f0d2c93")


def item_id(prescription_id: uuid.UUID, position: int) -> uuid.UUID:
    """The id of line `position` of the prescription, the same on every side."""
    return uuid.uuid5(_ITEM_NAMESPACE, f"{prescription_id}/{position}")


def _short(max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length)


Short30 = Annotated[str, _short(30), NoNul]
Short50 = Annotated[str, _short(50), NoNul]
Short100 = Annotated[str, _short(100), NoNul]
Text200 = Annotated[str, _short(200), NoNul]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                          max_length=500), NoNul]


def _b64_signature(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signature must be base64") from None
    if not 8 <= len(raw) <= 80:
        raise ValueError("the signature is not an ECDSA P-256 signature")
    return value


class PrescriptionItemIn(BaseModel):
    """One medicine of a prescription, as the prescriber wrote it."""

    model_config = ConfigDict(extra="forbid")

    position: int = Field(ge=1, le=MAX_ITEMS)
    medicine_id: MedicineId
    medicine_name: Text200
    strength: Short50
    form: Short30
    dose: Short100 = Field(description="Per administration, e.g. '1 tablet'.")
    route: Short30
    frequency: Short100 = Field(description="e.g. 'every 8 hours'.")
    duration_days: int | None = Field(default=None, ge=1, le=365)
    quantity: int = Field(ge=1, le=10_000)
    refills: int = Field(default=0, ge=0, le=11)
    instructions: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500),
                            NoNul] | None = None


class Acknowledgement(BaseModel):
    """A safety warning the prescriber saw and chose to override, with the reason."""

    model_config = ConfigDict(extra="forbid")

    kind: prescribing.WarningKind
    medicines: list[str] = Field(min_length=1, max_length=10)
    reason: Reason


class PrescriptionSign(BaseModel):
    """A prescription signed on the prescriber's computer (push op `sign`). Every field
    but `pharmacy_id` is inside the signature."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    appointment_id: uuid.UUID | None = None
    signed_at: datetime
    formulary_version: Annotated[str, StringConstraints(max_length=20)]
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000),
                     NoNul] | None = None
    acknowledgements: list[Acknowledgement] = Field(default_factory=list, max_length=50)
    signing_key_id: uuid.UUID
    signature: Annotated[str, AfterValidator(_b64_signature)]
    pharmacy_id: uuid.UUID | None = None
    items: list[PrescriptionItemIn] = Field(min_length=1, max_length=MAX_ITEMS)

    @field_validator("signed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("signed_at needs a time zone (UTC)")
        return value

    @model_validator(mode="after")
    def _positions(self) -> PrescriptionSign:
        positions = [item.position for item in self.items]
        if sorted(positions) != list(range(1, len(positions) + 1)):
            raise ValueError("items must be numbered 1, 2, 3… without gaps or repeats")
        return self


class PrescriptionCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class PrescriptionRoute(BaseModel):
    """Send a signed prescription to a pharmacy, or to another one."""

    model_config = ConfigDict(extra="forbid")

    pharmacy_id: uuid.UUID


class PrescriptionRefuse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class PrescriptionItemPublic(BaseModel):
    position: int
    medicine_id: str
    medicine_name: str
    strength: str
    form: str
    dose: str
    route: str
    frequency: str
    duration_days: int | None
    quantity: int
    refills: int
    instructions: str | None


class SignatureCheck(BaseModel):
    """What the server found when it checked the signature just now."""

    valid: bool
    key_status: Literal["pending", "active", "revoked", "unknown"]
    message: str


class PrescriptionPublic(BaseModel):
    """A prescription as a pharmacist or its prescriber sees it through the API: the
    signed content, the key that signed it, and the patient's identity for the counter."""

    id: uuid.UUID
    clinic_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    patient_date_of_birth: date | None
    prescriber_id: uuid.UUID
    prescriber_name: str
    appointment_id: uuid.UUID | None
    signed_at: datetime
    formulary_version: str
    notes: str | None
    acknowledgements: list[Acknowledgement]
    signing_key_id: uuid.UUID
    signature: str
    public_key: str
    pharmacy_id: uuid.UUID | None
    status: PrescriptionStatus
    status_changed_at: datetime | None
    status_reason: str | None
    items: list[PrescriptionItemPublic]
    server_check: SignatureCheck
    server_version: int


class PrescriptionsPublic(BaseModel):
    data: list[PrescriptionPublic]
    has_more: bool
    next_offset: int | None
