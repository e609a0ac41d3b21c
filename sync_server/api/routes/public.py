"""The patient-facing API of the booking page: a clinic's providers and their free slots,
addressed by the clinic's slug, with no sign-in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from shared_models.schemas.appointments import SlotsPublic
from shared_models.schemas.providers import PublicProvider, PublicProviders
from sync_server.actions.providers import list_providers
from sync_server.api.deps import PublicClinic
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response
from sync_server.lib.scheduling import (
    access_provider,
    check_window,
    clinic_schedule,
    free_slots_by_provider,
    slots_public,
)

router = APIRouter(prefix="/public/{clinic_slug}", tags=["public"], responses=ERROR_RESPONSES)


@router.get("/providers", response_model=PublicProviders)
async def public_providers(ctx: PublicClinic) -> Response:
    providers = await list_providers(ctx)
    return model_response(PublicProviders(data=[
        PublicProvider.model_validate(p.model_dump()) for p in providers.data if p.is_active
    ]))


@router.get("/providers/{provider_id}/slots", response_model=SlotsPublic)
async def public_slots(
    ctx: PublicClinic, provider_id: uuid.UUID, start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> Response:
    """Free slots within the clinic's booking policy (notice and horizon)."""
    window = check_window(start, end)
    row = await access_provider(ctx, provider_id)
    schedule = await clinic_schedule(ctx)
    slots = (
        await free_slots_by_provider(ctx, schedule, [provider_id], window, now=datetime.now(UTC))
    )[provider_id] if row.is_active else []
    return model_response(SlotsPublic(
        provider_id=provider_id, timezone=schedule.zone.key,
        data=slots_public(slots, schedule),
    ))
