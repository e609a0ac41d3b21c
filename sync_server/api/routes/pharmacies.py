"""The clinic's pharmacy directory: search for everyone, changes for admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shared_models.schemas.pharmacies import (
    PharmaciesPublic,
    PharmacistPublic,
    PharmacyCreate,
    PharmacyPublic,
    PharmacyUpdate,
)
from sync_server.actions import pharmacies as actions
from sync_server.api.deps import AdminOnly, AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/pharmacies", tags=["pharmacies"], responses=ERROR_RESPONSES)


@router.get("/search", response_model=PharmaciesPublic)
async def search_pharmacies(
    ctx: AnyStaff,
    q: Annotated[str, Query(max_length=200)] = "",
    limit: Annotated[int, Query(ge=1, le=actions.MAX_LIMIT)] = actions.DEFAULT_LIMIT,
    include_inactive: Annotated[bool, Query(description="Admins only: also the pharmacies "
                                                        "switched off.")] = False,
) -> Response:
    """Active pharmacies by name, address or registry number (accents and case ignored),
    an exact registry number first, then names that start with `q`."""
    return model_response(await actions.search(ctx, q, limit=limit,
                                               include_inactive=include_inactive))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PharmacyPublic)
async def create_pharmacy(ctx: AdminOnly, body: PharmacyCreate) -> Response:
    """Add a pharmacy to the directory; its registry number is unique in the clinic."""
    return model_response(await actions.do_create_pharmacy(ctx, body),
                          status_code=status.HTTP_201_CREATED)


@router.patch("/{pharmacy_id}", response_model=PharmacyPublic)
async def update_pharmacy(ctx: AdminOnly, pharmacy_id: uuid.UUID, body: PharmacyUpdate
                          ) -> Response:
    """Change a pharmacy's details, or switch it off (`is_active: false`)."""
    return model_response(await actions.do_update_pharmacy(ctx, pharmacy_id, body))


@router.put("/{pharmacy_id}/pharmacists/{user_id}", response_model=PharmacistPublic)
async def link_pharmacist(ctx: AdminOnly, pharmacy_id: uuid.UUID, user_id: uuid.UUID
                          ) -> Response:
    """Link a pharmacist's account to this pharmacy: they receive what is sent to it."""
    return model_response(await actions.do_link_pharmacist(ctx, pharmacy_id, user_id))
