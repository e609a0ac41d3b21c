"""Appointment commands: book, reschedule, cancel, check in, start, complete, no-show."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from shared_models.schemas.appointments import (
    AppointmentCancel,
    AppointmentCreate,
    AppointmentPublic,
    AppointmentReschedule,
    AppointmentsPublic,
)
from sync_server.actions import appointments as actions
from sync_server.api.deps import FrontDesk
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/appointments", tags=["appointments"], responses=ERROR_RESPONSES)


@router.get("", response_model=AppointmentsPublic)
async def list_appointments(
    ctx: FrontDesk,
    start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
    provider_id: uuid.UUID | None = None,
) -> Response:
    return model_response(
        await actions.list_appointments(ctx, start=start, end=end, provider_id=provider_id)
    )


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppointmentPublic)
async def book(ctx: FrontDesk, body: AppointmentCreate) -> Response:
    """Book a free slot; 409 with the next free slots if it was taken meanwhile."""
    return model_response(await actions.do_book(ctx, body), status_code=status.HTTP_201_CREATED)


@router.post("/{appointment_id}/reschedule", response_model=AppointmentPublic)
async def reschedule(
    ctx: FrontDesk, appointment_id: uuid.UUID, body: AppointmentReschedule
) -> Response:
    """Move to another free slot; the old one is freed only if the new one is secured."""
    return model_response(await actions.do_reschedule(ctx, appointment_id, body))


@router.post("/{appointment_id}/cancel", response_model=AppointmentPublic)
async def cancel(ctx: FrontDesk, appointment_id: uuid.UUID, body: AppointmentCancel) -> Response:
    return model_response(
        await actions.do_transition(ctx, appointment_id, "cancel", cancel_reason=body.reason)
    )


def _command(name: str, path: str, summary: str) -> None:
    async def endpoint(ctx: FrontDesk, appointment_id: uuid.UUID) -> Response:
        return model_response(await actions.do_transition(ctx, appointment_id, name))

    endpoint.__name__ = name
    router.add_api_route(f"/{{appointment_id}}/{path}", endpoint, methods=["POST"],
                         response_model=AppointmentPublic, summary=summary)


_command("check_in", "check-in", "Check the patient in")
_command("start", "start", "Start the consultation")
_command("complete", "complete", "Complete the consultation")
_command("no_show", "no-show", "Mark that the patient did not come")
