"""Managing providers' weekly hours, exceptions and the clinic's booking policy (admin)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, Table, insert, select, update

from shared_models.ids import uuid7
from shared_models.schemas.appointments import BookingPolicyPublic, BookingPolicyUpdate
from shared_models.schemas.availability import (
    AvailabilityExceptionCreate,
    AvailabilityExceptionPublic,
    AvailabilityExceptionsPublic,
    AvailabilityRuleCreate,
    AvailabilityRulePublic,
    AvailabilityRulesPublic,
)
from shared_models.tables import availability_exception, availability_rule, clinic
from sync_server.actions import audit
from sync_server.core.errors import NotFound
from sync_server.lib.context import ClinicContext
from sync_server.lib.scheduling import access_provider, check_provider_reference, check_window


def _rule_public(row: Row[Any]) -> AvailabilityRulePublic:
    return AvailabilityRulePublic.model_validate(row._mapping)


def _exception_public(row: Row[Any]) -> AvailabilityExceptionPublic:
    return AvailabilityExceptionPublic.model_validate(row._mapping)


async def list_rules(ctx: ClinicContext, provider_id: uuid.UUID) -> AvailabilityRulesPublic:
    await access_provider(ctx, provider_id)
    rows = await ctx.conn.execute(
        select(availability_rule)
        .where(availability_rule.c.provider_id == provider_id,
               availability_rule.c.deleted_at.is_(None))
        .order_by(availability_rule.c.weekday, availability_rule.c.start_time)
    )
    return AvailabilityRulesPublic(data=[_rule_public(r) for r in rows])


async def do_add_rule(
    ctx: ClinicContext, provider_id: uuid.UUID, data: AvailabilityRuleCreate
) -> AvailabilityRulePublic:
    await access_provider(ctx, provider_id)
    rule_id = uuid7()
    row = (
        await ctx.conn.execute(
            insert(availability_rule)
            .values(clinic_id=ctx.clinic_id, id=rule_id, provider_id=provider_id,
                    **data.model_dump())
            .returning(availability_rule)
        )
    ).one()
    await audit.record(ctx, action="availability_rule.create", entity="availability_rule",
                       entity_id=rule_id)
    return _rule_public(row)


async def _tombstone(ctx: ClinicContext, table: Table, *where: ColumnElement[bool]) -> bool:
    """Mark one live row deleted (synced rows are never hard-deleted); False if none."""
    removed = (
        await ctx.conn.execute(
            update(table).where(*where, table.c.deleted_at.is_(None))
            .values(deleted_at=datetime.now(UTC)).returning(table.c.id)
        )
    ).first()
    return removed is not None


async def do_remove_rule(ctx: ClinicContext, provider_id: uuid.UUID, rule_id: uuid.UUID) -> None:
    """Tombstone a weekly rule; appointments already booked in its hours stay booked."""
    rule = availability_rule
    if not await _tombstone(ctx, rule, rule.c.id == rule_id, rule.c.provider_id == provider_id):
        raise NotFound(f"No availability rule {rule_id} for this provider.",
                       code="rule_not_found")
    await audit.record(ctx, action="availability_rule.delete", entity="availability_rule",
                       entity_id=rule_id)


async def list_exceptions(ctx: ClinicContext, *, start: datetime, end: datetime
                          ) -> AvailabilityExceptionsPublic:
    check_window(start, end)
    rows = await ctx.conn.execute(
        select(availability_exception)
        .where(availability_exception.c.deleted_at.is_(None),
               availability_exception.c.starts_at < end,
               availability_exception.c.ends_at > start)
        .order_by(availability_exception.c.starts_at)
    )
    return AvailabilityExceptionsPublic(data=[_exception_public(r) for r in rows])


async def do_add_exception(
    ctx: ClinicContext, data: AvailabilityExceptionCreate
) -> AvailabilityExceptionPublic:
    if data.provider_id is not None:
        await check_provider_reference(ctx, data.provider_id)
    exception_id = uuid7()
    row = (
        await ctx.conn.execute(
            insert(availability_exception)
            .values(clinic_id=ctx.clinic_id, id=exception_id, **data.model_dump())
            .returning(availability_exception)
        )
    ).one()
    await audit.record(ctx, action="availability_exception.create",
                       entity="availability_exception", entity_id=exception_id)
    return _exception_public(row)


async def do_remove_exception(ctx: ClinicContext, exception_id: uuid.UUID) -> None:
    table = availability_exception
    if not await _tombstone(ctx, table, table.c.id == exception_id):
        raise NotFound(f"No availability exception {exception_id} in this clinic.",
                       code="exception_not_found")
    await audit.record(ctx, action="availability_exception.delete",
                       entity="availability_exception", entity_id=exception_id)


async def read_policy(ctx: ClinicContext) -> BookingPolicyPublic:
    row = (await ctx.conn.execute(select(clinic).where(clinic.c.id == ctx.clinic_id))).one()
    return BookingPolicyPublic.model_validate({**row._mapping, "clinic_id": row.id})


async def do_update_policy(ctx: ClinicContext, data: BookingPolicyUpdate) -> BookingPolicyPublic:
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None}
    if changes:
        await ctx.conn.execute(update(clinic).where(clinic.c.id == ctx.clinic_id).values(**changes))
        await audit.record(ctx, action="clinic.policy", entity="clinic", entity_id=ctx.clinic_id,
                           detail=changes)
    return await read_policy(ctx)
