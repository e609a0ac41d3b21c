"""The clinic's providers."""

from __future__ import annotations

from fastapi import APIRouter, status

from shared_models.schemas.providers import ProviderCreate, ProviderPublic, ProvidersPublic
from sync_server.actions import providers as actions
from sync_server.api.deps import AdminOnly, AnyStaff
from sync_server.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/providers", tags=["providers"], responses=ERROR_RESPONSES)


@router.get("")
async def list_providers(ctx: AnyStaff) -> ProvidersPublic:
    return await actions.list_providers(ctx)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_provider(ctx: AdminOnly, body: ProviderCreate) -> ProviderPublic:
    return await actions.do_create_provider(ctx, body)
