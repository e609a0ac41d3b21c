"""Provider wire schemas."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared_models.schemas.common import NoNul


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    display_name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
    ]
    specialty: Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=100), NoNul
    ] | None = None
    user_id: uuid.UUID | None = None
    color: Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")] | None = None


class ProviderPublic(BaseModel):
    id: uuid.UUID
    display_name: str
    specialty: str | None
    user_id: uuid.UUID | None
    color: str | None
    is_active: bool
    server_version: int


class ProvidersPublic(BaseModel):
    data: list[ProviderPublic]


class PublicProvider(BaseModel):
    """What a patient sees of a provider on the booking page."""

    id: uuid.UUID
    display_name: str
    specialty: str | None
    color: str | None


class PublicProviders(BaseModel):
    data: list[PublicProvider]
