"""The signed-in staff member's clinic."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shared_models.schemas.clinics import ClinicPublic
from sync_server.actions import clinics as actions
from sync_server.api.deps import AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/clinic", tags=["clinic"], responses=ERROR_RESPONSES)


@router.get("", response_model=ClinicPublic)
async def read_clinic(ctx: AnyStaff) -> Response:
    """Name, IANA zone (all times are shown in it) and country (for phone numbers)."""
    return model_response(await actions.read_clinic(ctx))
