"""Listing and adding the clinic's providers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.providers import ProviderCreate, ProviderPublic, ProvidersPublic
from shared_models.tables import provider, staff_user
from sync_server.actions import audit
from sync_server.core.errors import InvalidInput
from sync_server.lib.context import ClinicContext


def to_public(row: Row[Any]) -> ProviderPublic:
    return ProviderPublic.model_validate(row._mapping)


async def list_providers(ctx: ClinicContext) -> ProvidersPublic:
    rows = (
        await ctx.conn.execute(
            select(provider)
            .where(provider.c.deleted_at.is_(None))
            .order_by(provider.c.display_name, provider.c.id)
        )
    ).all()
    return ProvidersPublic(data=[to_public(r) for r in rows])


async def do_create_provider(ctx: ClinicContext, data: ProviderCreate) -> ProviderPublic:
    if data.user_id is not None:
        role = (
            await ctx.conn.execute(
                select(staff_user.c.role).where(
                    staff_user.c.id == data.user_id, staff_user.c.deleted_at.is_(None)
                )
            )
        ).scalar_one_or_none()
        if role is None:
            raise InvalidInput(
                f"No staff account with id {data.user_id} in this clinic.",
                code="user_not_found", details={"field": "user_id"},
            )
        if role != Role.DOCTOR:
            raise InvalidInput(
                "Only a doctor's account can be linked to a provider.",
                code="user_not_doctor", details={"field": "user_id"},
            )
    provider_id = uuid7()
    row = (
        await ctx.conn.execute(
            insert(provider)
            .values(clinic_id=ctx.clinic_id, id=provider_id, **data.model_dump())
            .returning(provider)
        )
    ).one()
    await audit.record(ctx, action="provider.create", entity="provider", entity_id=provider_id)
    return to_public(row)
