"""Appointment, slot and booking-policy wire schemas."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shared_models.enums import AppointmentStatus
from shared_models.schemas.common import NoNul

Reason = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), NoNul]


class AppointmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID
    provider_id: uuid.UUID
    start: AwareDatetime = Field(description="Slot start with its UTC offset, e.g. "
                                 "2026-03-09T09:00:00-03:00")
    reason: Reason | None = None


class AppointmentReschedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    provider_id: uuid.UUID | None = Field(
        default=None, description="Move to another provider; the same one if left out.")


class AppointmentCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=500), NoNul]


class AppointmentPublic(BaseModel):
    id: uuid.UUID
    patient_id: uuid.UUID
    provider_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    reason: str | None
    cancel_reason: str | None
    source: str
    confirmed_at: datetime | None = Field(
        default=None, description="When the patient confirmed by replying to a reminder")
    server_version: int


class AppointmentsPublic(BaseModel):
    data: list[AppointmentPublic]


class SlotPublic(BaseModel):
    start: datetime = Field(description="In the clinic's time zone, with its offset")
    end: datetime


class SlotsPublic(BaseModel):
    provider_id: uuid.UUID
    timezone: str
    data: list[SlotPublic]


class ProviderSlots(BaseModel):
    provider_id: uuid.UUID
    data: list[SlotPublic]


class ClinicSlotsPublic(BaseModel):
    timezone: str
    providers: list[ProviderSlots]


class BookingPolicyPublic(BaseModel):
    clinic_id: uuid.UUID
    timezone: str
    booking_horizon_days: int
    min_notice_minutes: int
    cancel_cutoff_minutes: int


class BookingPolicyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    booking_horizon_days: int | None = Field(default=None, ge=1, le=730)
    min_notice_minutes: int | None = Field(default=None, ge=0, le=10_080)
    cancel_cutoff_minutes: int | None = Field(default=None, ge=0, le=10_080)


class NoShowRate(BaseModel):
    provider_id: uuid.UUID | None
    appointments: int
    no_shows: int
    rate: float | None


class NoShowReport(BaseModel):
    start: datetime
    end: datetime
    clinic: NoShowRate
    providers: list[NoShowRate]
