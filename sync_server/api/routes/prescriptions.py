"""Prescriptions after signing: the pharmacy's queue and its steps, the prescriber's view.

Prescriptions are signed on the doctor's computer and arrive by sync push (op `sign`);
routing and cancelling travel the same way (`route`, `cancel`)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared_models.schemas.prescriptions import (
    PrescriptionPublic,
    PrescriptionRefuse,
    PrescriptionsPublic,
)
from sync_server.actions import prescriptions as actions
from sync_server.api.deps import DoctorOrPharmacist, PharmacistOnly
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/prescriptions", tags=["prescriptions"], responses=ERROR_RESPONSES)


@router.get("/incoming", response_model=PrescriptionsPublic)
async def incoming(
    ctx: PharmacistOnly,
    status: Annotated[actions.IncomingStatus | None,
                      Query(description="Without it: the open ones, sent and received.")
                      ] = None,
    limit: Annotated[int, Query(ge=1, le=actions.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """Prescriptions sent to your pharmacy, each with the server's check of its signature
    made just now."""
    return model_response(await actions.list_incoming(ctx, status=status, limit=limit,
                                                      offset=offset))


@router.get("/{prescription_id}", response_model=PrescriptionPublic)
async def get_prescription(ctx: DoctorOrPharmacist, prescription_id: uuid.UUID) -> Response:
    """One prescription: for the clinic's doctors, and the pharmacy it was sent to."""
    return model_response(await actions.get_prescription(ctx, prescription_id))


@router.post("/{prescription_id}/receive", response_model=PrescriptionPublic)
async def receive(ctx: PharmacistOnly, prescription_id: uuid.UUID) -> Response:
    """The pharmacy has the prescription (sent -> received); refused if its signature no
    longer verifies or its key was revoked."""
    return model_response(await actions.do_pharmacy_step(ctx, prescription_id, "receive"))


@router.post("/{prescription_id}/dispense", response_model=PrescriptionPublic)
async def dispense(ctx: PharmacistOnly, prescription_id: uuid.UUID) -> Response:
    """The medicines were handed over (received -> dispensed)."""
    return model_response(await actions.do_pharmacy_step(ctx, prescription_id, "dispense"))


@router.post("/{prescription_id}/refuse", response_model=PrescriptionPublic)
async def refuse(ctx: PharmacistOnly, prescription_id: uuid.UUID, body: PrescriptionRefuse
                 ) -> Response:
    """The pharmacy will not dispense it (sent or received -> refused), with the reason."""
    return model_response(await actions.do_pharmacy_step(ctx, prescription_id, "refuse",
                                                         reason=body.reason))
