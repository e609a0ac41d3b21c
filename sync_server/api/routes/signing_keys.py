"""Prescribers' signing keys: registered from the doctor's computer, approved or
revoked by an admin."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shared_models.schemas.signing_keys import (
    KeyStatus,
    SigningKeyPublic,
    SigningKeyRegister,
    SigningKeyRevoke,
    SigningKeysPublic,
)
from sync_server.actions import signing_keys as actions
from sync_server.api.deps import AdminOnly, AdminOrDoctor, DoctorOnly
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/signing-keys", tags=["signing_keys"], responses=ERROR_RESPONSES)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SigningKeyPublic,
             responses={200: {"model": SigningKeyPublic,
                              "description": "This key was already registered under this id."}})
async def register_key(ctx: DoctorOnly, body: SigningKeyRegister) -> Response:
    """Register your new public key; it signs prescriptions once an admin approves it."""
    key, created = await actions.do_register_key(ctx, body)
    return model_response(key, status_code=status.HTTP_201_CREATED if created else 200)


@router.get("", response_model=SigningKeysPublic)
async def list_keys(
    ctx: AdminOrDoctor, key_status: Annotated[KeyStatus | None, Query(alias="status")] = None
) -> Response:
    """Every key of the clinic for the admin; a doctor's own keys for a doctor."""
    return model_response(await actions.list_keys(ctx, status=key_status))


@router.post("/{key_id}/approve", response_model=SigningKeyPublic)
async def approve_key(ctx: AdminOnly, key_id: uuid.UUID) -> Response:
    """Approve a pending key after comparing its fingerprint with the doctor's screen; the
    doctor's previous key is revoked."""
    return model_response(await actions.do_approve_key(ctx, key_id))


@router.post("/{key_id}/revoke", response_model=SigningKeyPublic)
async def revoke_key(ctx: AdminOrDoctor, key_id: uuid.UUID, body: SigningKeyRevoke
                     ) -> Response:
    """Revoke a key (its owner or the admin): it signs nothing more."""
    return model_response(await actions.do_revoke_key(ctx, key_id, body))
