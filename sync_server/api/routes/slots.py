"""Free slots, in the clinic's time zone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from shared_models.schemas.appointments import (
    ClinicSlotsPublic,
    ProviderSlots,
    SlotsPublic,
)
from sync_server.api.deps import AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response
from sync_server.lib.scheduling import (
    access_provider,
    check_window,
    clinic_schedule,
    free_slots_by_provider,
    list_provider_ids,
    slots_public,
)

router = APIRouter(tags=["slots"], responses=ERROR_RESPONSES)


@router.get("/providers/{provider_id}/slots", response_model=SlotsPublic)
async def provider_slots(
    ctx: AnyStaff, provider_id: uuid.UUID, start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> Response:
    window = check_window(start, end)
    await access_provider(ctx, provider_id)
    schedule = await clinic_schedule(ctx)
    slots = await free_slots_by_provider(ctx, schedule, [provider_id], window,
                                         now=datetime.now(UTC))
    return model_response(SlotsPublic(
        provider_id=provider_id, timezone=schedule.zone.key,
        data=slots_public(slots[provider_id], schedule),
    ))


@router.get("/slots", response_model=ClinicSlotsPublic)
async def clinic_slots(
    ctx: AnyStaff, start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> Response:
    """Free slots of every active provider of the clinic in one call."""
    window = check_window(start, end)
    schedule = await clinic_schedule(ctx)
    provider_ids = await list_provider_ids(ctx)
    slots = await free_slots_by_provider(ctx, schedule, provider_ids, window,
                                         now=datetime.now(UTC))
    return model_response(ClinicSlotsPublic(
        timezone=schedule.zone.key,
        providers=[
            ProviderSlots(provider_id=pid, data=slots_public(slots[pid], schedule))
            for pid in provider_ids
        ],
    ))
