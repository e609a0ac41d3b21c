"""Staff account checks shared by every authenticated path."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from shared_models.enums import Role
from shared_models.tables import staff_user
from sync_server.core.errors import NotAuthenticated


async def check_active_role(conn: AsyncConnection, user_id: uuid.UUID) -> Role:
    """The account's current role; 401 if it was disabled or removed since the token was
    issued. Read on every request so switching an account off takes effect at once."""
    row = (
        await conn.execute(
            select(staff_user.c.role, staff_user.c.is_active).where(
                staff_user.c.id == user_id, staff_user.c.deleted_at.is_(None)
            )
        )
    ).first()
    if row is None or not row.is_active:
        raise NotAuthenticated(
            "This account is disabled or no longer exists. Ask the clinic admin.",
            code="account_disabled",
        )
    return Role(row.role)
