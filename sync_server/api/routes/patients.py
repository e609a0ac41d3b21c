"""Patient registration, demographics and search."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shared_models.schemas.appointments import AppointmentsPublic
from shared_models.schemas.patients import (
    PatientCreate,
    PatientPublic,
    PatientsPublic,
    PatientUpdate,
)
from sync_server.actions import appointments as appointment_actions
from sync_server.actions import patients as actions
from sync_server.api.deps import FrontDesk
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/patients", tags=["patients"], responses=ERROR_RESPONSES)


@router.get("", response_model=PatientsPublic)
async def search_patients(
    ctx: FrontDesk,
    q: Annotated[
        str | None, Query(max_length=100, description="Name, phone or record number")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=actions.MAX_PAGE)] = 25,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    return model_response(await actions.do_search_patients(ctx, q=q, limit=limit, offset=offset))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PatientPublic)
async def create_patient(ctx: FrontDesk, body: PatientCreate) -> Response:
    return model_response(
        await actions.do_create_patient(ctx, body), status_code=status.HTTP_201_CREATED
    )


@router.get("/{patient_id}", response_model=PatientPublic)
async def read_patient(ctx: FrontDesk, patient_id: uuid.UUID) -> Response:
    return model_response(await actions.do_read_patient(ctx, patient_id))


@router.patch("/{patient_id}", response_model=PatientPublic)
async def update_patient(ctx: FrontDesk, patient_id: uuid.UUID, body: PatientUpdate) -> Response:
    return model_response(await actions.do_update_patient(ctx, patient_id, body))


@router.get("/{patient_id}/appointments", response_model=AppointmentsPublic)
async def patient_appointments(ctx: FrontDesk, patient_id: uuid.UUID) -> Response:
    return model_response(await appointment_actions.patient_appointments(ctx, patient_id))
