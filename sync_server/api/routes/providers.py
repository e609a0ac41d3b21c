"""The clinic's providers."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from shared_models.schemas.providers import ProviderCreate, ProviderPublic, ProvidersPublic
from sync_server.actions import providers as actions
from sync_server.api.deps import AdminOnly, AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/providers", tags=["providers"], responses=ERROR_RESPONSES)


@router.get("", response_model=ProvidersPublic)
async def list_providers(ctx: AnyStaff) -> Response:
    return model_response(await actions.list_providers(ctx))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProviderPublic)
async def create_provider(ctx: AdminOnly, body: ProviderCreate) -> Response:
    return model_response(
        await actions.do_create_provider(ctx, body), status_code=status.HTTP_201_CREATED
    )
