"""Payments at the front desk: take, list, void (admins and receptionists only)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shared_models.schemas.payments import (
    PaymentCreate,
    PaymentPublic,
    PaymentsPublic,
    PaymentVoid,
)
from sync_server.actions import payments as actions
from sync_server.api.deps import Cashier
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/payments", tags=["payments"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PaymentPublic)
async def take_payment(ctx: Cashier, body: PaymentCreate) -> Response:
    """Take a payment for a visit; the answer carries its receipt number."""
    return model_response(await actions.do_take_payment(ctx, body),
                          status_code=status.HTTP_201_CREATED)


@router.get("", response_model=PaymentsPublic)
async def list_payments(
    ctx: Cashier,
    appointment_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    day: Annotated[date | None, Query(description="A day in the clinic's time zone")] = None,
    limit: Annotated[int, Query(ge=1, le=actions.MAX_PAGE)] = 100,
) -> Response:
    """Payments of a visit, a patient or a day, newest first; the latest without filters."""
    return model_response(await actions.list_payments(
        ctx, appointment_id=appointment_id, patient_id=patient_id, day=day, limit=limit))


@router.post("/{payment_id}/void", response_model=PaymentPublic)
async def void_payment(ctx: Cashier, payment_id: uuid.UUID, body: PaymentVoid) -> Response:
    """Void a payment taken by mistake (once); take the right one again."""
    return model_response(await actions.do_void_payment(ctx, payment_id, body))
