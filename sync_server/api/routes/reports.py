"""Reports for the clinic's admin and front desk."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from shared_models.schemas.appointments import NoShowReport
from sync_server.actions.reports import no_show_report
from sync_server.api.deps import FrontDesk
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/reports", tags=["reports"], responses=ERROR_RESPONSES)


@router.get("/no-shows", response_model=NoShowReport)
async def no_shows(
    ctx: FrontDesk, start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> Response:
    """No-show rate of the clinic and of each provider for appointments starting in
    [start, end): no-shows over appointments that were due (kept or missed)."""
    return model_response(await no_show_report(ctx, start=start, end=end))
