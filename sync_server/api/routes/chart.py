"""A patient's chart for doctors; every read is audited."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from shared_models.schemas.chart import ChartPublic
from sync_server.actions import chart as actions
from sync_server.api.deps import DoctorOnly
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/patients", tags=["chart"], responses=ERROR_RESPONSES)


@router.get("/{patient_id}/chart", response_model=ChartPublic)
async def read_chart(ctx: DoctorOnly, patient_id: uuid.UUID) -> Response:
    """Allergies, conditions, medications, vital signs, notes, prescriptions and lab
    orders of one patient; drafts only the caller's own."""
    return model_response(await actions.do_read_chart(ctx, patient_id))
