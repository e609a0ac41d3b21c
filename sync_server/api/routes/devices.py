"""Enrolling and revoking the clinic's computers."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from shared_models.schemas.devices import (
    DeviceCreate,
    DeviceCredentials,
    DeviceEnrol,
    DeviceEnrolmentCode,
    DevicePublic,
    DeviceRolloutCode,
    DeviceRolloutCreate,
    DeviceRolloutPublic,
    DeviceRolloutsPublic,
    DevicesPublic,
)
from sync_server.actions import devices as actions
from sync_server.api.deps import AdminOnly, PreAuthEngine
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERROR_RESPONSES)


@router.get("", response_model=DevicesPublic)
async def list_devices(ctx: AdminOnly) -> Response:
    return model_response(await actions.list_devices(ctx))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DeviceEnrolmentCode)
async def issue_code(ctx: AdminOnly, body: DeviceCreate) -> Response:
    """A one-time code (valid 24 hours) to type on the computer being enrolled."""
    return model_response(await actions.do_issue_code(ctx, body),
                          status_code=status.HTTP_201_CREATED)


@router.get("/rollouts", response_model=DeviceRolloutsPublic)
async def list_rollouts(ctx: AdminOnly) -> Response:
    return model_response(await actions.list_rollouts(ctx))


@router.post("/rollouts", status_code=status.HTTP_201_CREATED, response_model=DeviceRolloutCode)
async def issue_rollout(ctx: AdminOnly, body: DeviceRolloutCreate) -> Response:
    """One code that enrols up to `computers` computers (the installer's ENROLMENT_CODE)."""
    return model_response(await actions.do_issue_rollout(ctx, body),
                          status_code=status.HTTP_201_CREATED)


@router.post("/rollouts/{rollout_id}/revoke", response_model=DeviceRolloutPublic)
async def revoke_rollout(ctx: AdminOnly, rollout_id: uuid.UUID) -> Response:
    """No further computer enrols with the code; those already enrolled stay."""
    return model_response(await actions.do_revoke_rollout(ctx, rollout_id))


@router.post("/enrol", response_model=DeviceCredentials)
async def enrol(engine: PreAuthEngine, body: DeviceEnrol) -> Response:
    """Exchange a one-time or rollout code for this computer's credentials (no sign-in
    needed)."""
    return model_response(await actions.do_enrol(engine, body))


@router.post("/{device_id}/revoke", response_model=DevicePublic)
async def revoke(ctx: AdminOnly, device_id: uuid.UUID) -> Response:
    """Cut a computer off at once (a lost laptop): its sessions end on their next request."""
    return model_response(await actions.do_revoke(ctx, device_id))
