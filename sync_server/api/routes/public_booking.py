"""The patient self-booking API under the clinic's slug, with no sign-in: book a free
slot, then see, cancel or reschedule it with the manage token the booking answered with
(sent as `X-Manage-Token`). The booking page and a future mobile app share it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response

from shared_models.schemas.common import ErrorBody
from shared_models.schemas.public_booking import (
    PublicBooking,
    PublicBookingCreate,
    PublicReschedule,
)
from sync_server.actions.public_booking import (
    do_public_book,
    do_public_cancel,
    do_public_reschedule,
    managed_booking,
)
from sync_server.api.deps import PreAuthEngine, PublicClinic, RequestMetaDep, SettingsDep
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response
from sync_server.core.signed import InvalidManageLink

router = APIRouter(prefix="/public/{clinic_slug}", tags=["public"],
                   responses={**ERROR_RESPONSES, 410: {"model": ErrorBody}})

ManageToken = Annotated[str | None, Header(
    alias="X-Manage-Token", description="The manage token a booking answered with")]


def _private(model: PublicBooking, *, status_code: int = 200) -> Response:
    response = model_response(model, status_code=status_code)
    # It holds a token that opens the appointment: never kept by a shared cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _token(token: str | None) -> str:
    if not token:
        raise InvalidManageLink("Send the appointment's manage token in the X-Manage-Token "
                                "header.", code="manage_token_missing")
    return token


@router.post("/bookings", status_code=201, response_model=PublicBooking)
async def public_book(clinic_slug: str, data: PublicBookingCreate, engine: PreAuthEngine,
                      settings: SettingsDep, meta: RequestMetaDep) -> Response:
    """Book a free slot: 201 with the appointment and its manage token, or 409
    `slot_taken` with the next free slots in `details.alternatives`."""
    booking = await do_public_book(engine, settings, clinic_slug=clinic_slug, data=data,
                                   client_addr=meta.client_addr)
    return _private(booking, status_code=201)


@router.get("/bookings/{appointment_id}", response_model=PublicBooking)
async def public_booking(ctx: PublicClinic, settings: SettingsDep, appointment_id: uuid.UUID,
                         token: ManageToken = None) -> Response:
    return _private(await managed_booking(ctx, settings, _token(token),
                                          appointment_id=appointment_id))


@router.post("/bookings/{appointment_id}/cancel", response_model=PublicBooking)
async def public_cancel(ctx: PublicClinic, settings: SettingsDep, appointment_id: uuid.UUID,
                        token: ManageToken = None) -> Response:
    """Cancel, until the clinic's cut-off before the appointment."""
    return _private(await do_public_cancel(ctx, settings, _token(token),
                                           appointment_id=appointment_id))


@router.post("/bookings/{appointment_id}/reschedule", response_model=PublicBooking)
async def public_reschedule(ctx: PublicClinic, settings: SettingsDep, appointment_id: uuid.UUID,
                            data: PublicReschedule, token: ManageToken = None) -> Response:
    """Move to another free slot of the same provider, until the clinic's cut-off."""
    return _private(await do_public_reschedule(ctx, settings, _token(token), data.start,
                                               appointment_id=appointment_id))
