"""Availability rules and exceptions (time off, extra hours, clinic closures)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared_models.schemas.common import NoNul


class AvailabilityRuleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6, description="Monday = 0 ... Sunday = 6")
    start_time: time
    end_time: time
    slot_minutes: int = Field(ge=5, le=480)
    buffer_minutes: int = Field(default=0, ge=0, le=240)
    break_start: time | None = None
    break_end: time | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.start_time >= self.end_time:
            raise ValueError("end_time must be after start_time")
        if (self.break_start is None) != (self.break_end is None):
            raise ValueError("give both break_start and break_end, or neither")
        if self.break_start and self.break_end and not (
            self.start_time <= self.break_start < self.break_end <= self.end_time
        ):
            raise ValueError("the break must lie inside the working hours and end after "
                             "it starts")
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        return self


class AvailabilityRulePublic(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    weekday: int
    start_time: time
    end_time: time
    slot_minutes: int
    buffer_minutes: int
    break_start: time | None
    break_end: time | None
    valid_from: date | None
    valid_until: date | None


class AvailabilityRulesPublic(BaseModel):
    data: list[AvailabilityRulePublic]


class AvailabilityExceptionCreate(BaseModel):
    """Time off for one provider, a closure of the whole clinic (no provider), or extra
    hours for one provider."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["time_off", "extra_hours"]
    provider_id: uuid.UUID | None = None
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    slot_minutes: int | None = Field(default=None, ge=5, le=480)
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200),
                      NoNul] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.kind == "extra_hours" and (self.provider_id is None or self.slot_minutes is None):
            raise ValueError("extra hours need a provider_id and a slot_minutes")
        return self


class AvailabilityExceptionPublic(BaseModel):
    id: uuid.UUID
    kind: str
    provider_id: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int | None
    reason: str | None


class AvailabilityExceptionsPublic(BaseModel):
    data: list[AvailabilityExceptionPublic]
