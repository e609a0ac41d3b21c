"""Wire schemas of patient self-booking: what the booking page (and a future mobile app)
sends to book, and what it gets back to show and manage the appointment.

None of the answers says anything about the patient record the booking was filed under:
whether the details matched someone already registered is never visible here.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from shared_models.enums import AppointmentStatus
from shared_models.schemas.appointments import Reason
from shared_models.schemas.common import NoNul
from shared_models.schemas.patients import (
    Language,
    Name,
    _check_birth_date,
    _written_out_date,
)

Phone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32),
                  NoNul]


class PublicBookingCreate(BaseModel):
    """A patient booking a free slot for themself."""

    model_config = ConfigDict(extra="forbid")

    provider_id: uuid.UUID
    start: AwareDatetime = Field(description="A free slot's start with its UTC offset, as "
                                 "listed by .../providers/{id}/slots")
    given_name: Name
    family_name: Name
    phone: Phone = Field(description="With its area code, or in international form (+52 ...)")
    email: EmailStr | None = None
    date_of_birth: date = Field(description="YYYY-MM-DD")
    reason: Reason | None = None
    reminders: bool = Field(default=False, description="Consent to appointment reminders")
    language: Language = "es"
    request_id: uuid.UUID | None = Field(
        default=None, description="Made once per form by the client: the same request sent "
        "again (a double tap, a retry) books once and answers with the same appointment.")

    _dob_format = field_validator("date_of_birth", mode="before")(_written_out_date)
    _dob = field_validator("date_of_birth")(_check_birth_date)


class PublicReschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime = Field(description="Another free slot of the same provider")


class PublicBooking(BaseModel):
    """An appointment as its patient sees it through the manage link."""

    appointment_id: uuid.UUID
    clinic_name: str
    provider_id: uuid.UUID
    provider_name: str
    specialty: str | None
    start: datetime = Field(description="In the clinic's time zone, with its offset")
    end: datetime
    timezone: str
    status: AppointmentStatus
    can_change: bool = Field(description="Whether it may still be cancelled or rescheduled "
                             "online (booked, and before the clinic's cut-off)")
    change_until: datetime = Field(description="The clinic's cut-off for online changes")
    manage_token: str = Field(description="Send as X-Manage-Token to see, cancel or "
                              "reschedule this appointment; the booking page's link holds it")
    manage_expires_at: datetime

