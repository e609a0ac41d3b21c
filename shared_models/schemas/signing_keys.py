"""Prescribers' public keys on the wire: registering one, approving and revoking it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared_models.schemas.common import NoNul

KeyStatus = Literal["pending", "active", "revoked"]


class SigningKeyRegister(BaseModel):
    """A key made on the doctor's computer. `proof` is the key's signature of
    `shared_models.signing.key_registration_payload(...)`: only the holder of the private
    half can register it."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    public_key: Annotated[str, StringConstraints(min_length=100, max_length=1000)]
    proof: Annotated[str, StringConstraints(min_length=8, max_length=200)]


class SigningKeyRevoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3,
                                             max_length=300), NoNul]


class SigningKeyPublic(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    user_name: str
    device_id: uuid.UUID | None
    public_key: str
    fingerprint: str = Field(description="SHA-256 of the DER public key; compare it with "
                                         "the one the doctor's screen shows before approving.")
    status: KeyStatus
    created_at: datetime
    approved_at: datetime | None
    approved_by: uuid.UUID | None
    revoked_at: datetime | None
    revoke_reason: str | None


class SigningKeysPublic(BaseModel):
    data: list[SigningKeyPublic]
