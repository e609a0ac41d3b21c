"""The clinic's pharmacy directory on the wire."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared_models.schemas.common import NoNul

PharmacyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2,
                                                max_length=200), NoNul]
PharmacyAddress = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                                   max_length=300), NoNul]
RegistryNumber = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2,
                                                  max_length=50,
                                                  pattern=r"^[A-Za-z0-9][A-Za-z0-9\-/. ]*$")]


class PharmacyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PharmacyName
    address: PharmacyAddress
    registry_number: RegistryNumber
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None


class PharmacyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PharmacyName | None = None
    address: PharmacyAddress | None = None
    registry_number: RegistryNumber | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)] | None = None
    is_active: bool | None = None


class PharmacyPublic(BaseModel):
    id: uuid.UUID
    name: str
    address: str
    registry_number: str
    phone: str | None
    is_active: bool
    server_version: int


class PharmaciesPublic(BaseModel):
    data: list[PharmacyPublic]


class PharmacistPublic(BaseModel):
    """A pharmacist's account and the pharmacy whose prescriptions they receive."""

    user_id: uuid.UUID
    full_name: str
    pharmacy_id: uuid.UUID | None
