"""A clinic's reminder policy: read (defaults when the clinic never set one) and saved."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models.schemas.reminders import ReminderPolicy
from shared_models.tables import reminder_policy
from sync_server.actions import audit
from sync_server.lib.context import ClinicContext
from sync_server.reminders.planning import QuietHours


def policy_of(row: Any) -> ReminderPolicy:
    if row is None or row.offsets_minutes is None:
        return ReminderPolicy()
    return ReminderPolicy.model_validate({
        "offsets_minutes": row.offsets_minutes, "quiet_start": row.quiet_start,
        "quiet_end": row.quiet_end, "templates": row.templates})


def quiet_hours(policy: ReminderPolicy) -> QuietHours:
    return QuietHours(policy.quiet_start, policy.quiet_end)


async def read_policy(ctx: ClinicContext) -> ReminderPolicy:
    row = (await ctx.conn.execute(select(reminder_policy))).first()
    return policy_of(row)


async def save_policy(ctx: ClinicContext, policy: ReminderPolicy) -> ReminderPolicy:
    """Replace the clinic's policy. It applies to appointments booked or moved from now
    on; reminders already queued keep their times."""
    values = {"offsets_minutes": policy.offsets_minutes, "quiet_start": policy.quiet_start,
              "quiet_end": policy.quiet_end,
              "templates": policy.templates.model_dump(exclude_none=True),
              "updated_by": ctx.user_id}
    await ctx.conn.execute(
        pg_insert(reminder_policy).values(clinic_id=ctx.clinic_id, **values)
        .on_conflict_do_update(index_elements=[reminder_policy.c.clinic_id],
                               set_={**values, "updated_at": func.now()}))
    await audit.record(ctx, action="reminder_policy.update", entity="clinic",
                       entity_id=ctx.clinic_id,
                       detail={"offsets_minutes": policy.offsets_minutes,
                               "quiet": [policy.quiet_start.isoformat(),
                                         policy.quiet_end.isoformat()]})
    return policy
