"""Device enrolment wire schemas."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared_models.schemas.common import NoNul


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=200), NoNul]


class DeviceEnrolmentCode(BaseModel):
    """Shown once to the admin, typed once on the new computer."""

    device_id: uuid.UUID
    name: str
    code: str
    expires_at: datetime


class DeviceEnrol(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    # The computer's own name (its hostname), so a rollout's devices can be told apart.
    computer_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=63),
                             NoNul] | None = None


class DeviceRolloutCreate(BaseModel):
    """One code for installing the app on many computers (e.g. through group policy)."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                           max_length=120), NoNul]
    computers: Annotated[int, Field(ge=1, le=500)]
    valid_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 72


class DeviceRolloutCode(BaseModel):
    """Shown once to the admin, given to IT for the installer's ENROLMENT_CODE."""

    rollout_id: uuid.UUID
    name: str
    code: str
    computers: int
    expires_at: datetime


class DeviceRolloutPublic(BaseModel):
    id: uuid.UUID
    name: str
    computers: int
    enrolled: int
    expires_at: datetime
    revoked_at: datetime | None
    created_at: datetime


class DeviceRolloutsPublic(BaseModel):
    data: list[DeviceRolloutPublic]


class DeviceCredentials(BaseModel):
    """What an enrolled device keeps (the secret in its OS keyring) to let staff sign in."""

    device_id: uuid.UUID
    device_secret: str
    clinic_id: uuid.UUID


class DevicePublic(BaseModel):
    id: uuid.UUID
    name: str
    enrolled_at: datetime | None
    revoked_at: datetime | None
    last_seen_at: datetime | None
    code_expires_at: datetime | None


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
