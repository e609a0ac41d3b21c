"""Audit events: who read or changed what, when, from which device or address.

Written in the same transaction as the work they describe, so an audited change and its
event commit or roll back together. The app role may insert and read them, never change
or delete them. Details hold ids and counts, never the patient data itself.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from shared_models.ids import uuid7
from shared_models.tables import audit_event
from sync_server.lib.context import ClinicContext


async def record(
    ctx: ClinicContext,
    *,
    action: str,
    entity: str,
    entity_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> None:
    """`occurred_at` is for what a device did earlier (offline); it defaults to now."""
    when = {} if occurred_at is None else {"occurred_at": occurred_at}
    await ctx.conn.execute(
        insert(audit_event).values(
            clinic_id=ctx.clinic_id,
            id=uuid7(),
            actor_user_id=ctx.user_id,
            actor_device_id=ctx.device_id,
            client_addr=ctx.client_addr,
            action=action,
            entity=entity,
            entity_id=entity_id,
            detail=detail,
            **when,
        )
    )
