"""The clinic-scoped unit of work that actions receive."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from shared_models.enums import Role


@dataclass(frozen=True, slots=True)
class ClinicContext:
    """One transaction, already scoped to the caller's clinic, and who the caller is:
    a staff member (`role` set) or a patient on the public booking page (`role` None)."""

    conn: AsyncConnection
    clinic_id: uuid.UUID
    user_id: uuid.UUID | None
    role: Role | None
    device_id: uuid.UUID | None
    client_addr: str | None
