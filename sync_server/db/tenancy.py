"""The clinic context of a transaction: what row-level security compares rows against."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


async def set_clinic(conn: AsyncConnection, clinic_id: uuid.UUID) -> None:
    """Scope the current transaction to one clinic (`is_local`: it ends with the transaction)."""
    await conn.execute(
        text("SELECT set_config('app.clinic_id', :cid, true)"), {"cid": str(clinic_id)}
    )
