"""Patient wire schemas."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from shared_models.enums import Channel, Sex
from shared_models.schemas.common import NoNul

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul
]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul]
Language = Literal["es", "en"]
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _known_zone(value: str | None) -> str | None:
    if value is not None and value not in available_timezones():
        raise ValueError(f"'{value}' is not a time zone; use an IANA name such as "
                         "America/Mexico_City")
    return value


# An IANA zone name; reminders keep quiet hours in the patient's zone.
TimeZoneName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64),
                         AfterValidator(_known_zone)]


def _written_out_date(value: object) -> object:
    # Left alone, pydantic reads a number as a Unix timestamp, so 0 or "0" would be saved
    # as 1970-01-01: only a calendar date written out is accepted.
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        return value.strip()
    raise ValueError("write the date of birth as YYYY-MM-DD, e.g. 1985-03-02")


def _check_birth_date(value: date | None) -> date | None:
    if value is None:
        return None
    if value < EARLIEST_BIRTH_DATE:
        raise ValueError("date of birth must be on or after 1900-01-01")
    if value > date.today():  # noqa: DTZ011 - a birth date is a calendar date, not an instant
        raise ValueError("date of birth cannot be in the future")
    return value


def _unique_channels(value: list[Channel] | None) -> list[Channel] | None:
    if value is not None and len(set(value)) != len(value):
        raise ValueError("each channel may appear only once")
    return value


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    given_name: Name
    family_name: Name
    date_of_birth: date | None = None
    sex: Sex = Sex.UNKNOWN
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    email: EmailStr | None = None
    preferred_language: Language = "es"
    preferred_channels: list[Channel] = Field(default_factory=list, max_length=3)
    address: Address | None = None
    timezone: TimeZoneName | None = Field(
        default=None, description="The patient's zone when it is not the clinic's.")
    mrn: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32,
                               pattern=r"^[A-Za-z0-9][A-Za-z0-9\-/.]*$")
    ] | None = Field(default=None, description="Record number; assigned by the server if left out.")

    _dob_format = field_validator("date_of_birth", mode="before")(_written_out_date)
    _dob = field_validator("date_of_birth")(_check_birth_date)
    _channels = field_validator("preferred_channels")(_unique_channels)


class PatientUpdate(BaseModel):
    """Only the fields sent are changed; `expected_version` guards against lost updates."""

    model_config = ConfigDict(extra="forbid")

    given_name: Name | None = None
    family_name: Name | None = None
    date_of_birth: date | None = None
    sex: Sex | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    email: EmailStr | None = None
    preferred_language: Language | None = None
    preferred_channels: list[Channel] | None = Field(default=None, max_length=3)
    address: Address | None = None
    timezone: TimeZoneName | None = None
    expected_version: int | None = Field(
        default=None,
        description="The server_version the edit started from; 409 if the record moved on.",
    )

    _dob_format = field_validator("date_of_birth", mode="before")(_written_out_date)
    _dob = field_validator("date_of_birth")(_check_birth_date)
    _channels = field_validator("preferred_channels")(_unique_channels)


class PatientPublic(BaseModel):
    id: uuid.UUID
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date | None
    sex: Sex
    phone: str | None
    email: str | None
    preferred_language: str
    preferred_channels: list[Channel]
    address: str | None
    timezone: str | None
    needs_review: bool
    server_version: int
    created_at: datetime
    updated_at: datetime


class PatientsPublic(BaseModel):
    data: list[PatientPublic]
    has_more: bool
    next_offset: int | None
