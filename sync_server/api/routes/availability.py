"""Providers' weekly hours, exceptions and closures, and the clinic's booking policy."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from shared_models.schemas.appointments import BookingPolicyPublic, BookingPolicyUpdate
from shared_models.schemas.availability import (
    AvailabilityExceptionCreate,
    AvailabilityExceptionPublic,
    AvailabilityExceptionsPublic,
    AvailabilityRuleCreate,
    AvailabilityRulePublic,
    AvailabilityRulesPublic,
)
from sync_server.actions import availability as actions
from sync_server.api.deps import AdminOnly, AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(tags=["availability"], responses=ERROR_RESPONSES)


@router.get("/providers/{provider_id}/availability-rules",
            response_model=AvailabilityRulesPublic)
async def list_rules(ctx: AnyStaff, provider_id: uuid.UUID) -> Response:
    return model_response(await actions.list_rules(ctx, provider_id))


@router.post("/providers/{provider_id}/availability-rules",
             status_code=status.HTTP_201_CREATED, response_model=AvailabilityRulePublic)
async def add_rule(ctx: AdminOnly, provider_id: uuid.UUID, body: AvailabilityRuleCreate
                   ) -> Response:
    return model_response(await actions.do_add_rule(ctx, provider_id, body),
                          status_code=status.HTTP_201_CREATED)


@router.delete("/providers/{provider_id}/availability-rules/{rule_id}",
               status_code=status.HTTP_204_NO_CONTENT)
async def remove_rule(ctx: AdminOnly, provider_id: uuid.UUID, rule_id: uuid.UUID) -> Response:
    await actions.do_remove_rule(ctx, provider_id, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/availability-exceptions", response_model=AvailabilityExceptionsPublic)
async def list_exceptions(
    ctx: AnyStaff, start: Annotated[AwareDatetime, Query()],
    end: Annotated[AwareDatetime, Query()],
) -> Response:
    return model_response(await actions.list_exceptions(ctx, start=start, end=end))


@router.post("/availability-exceptions", status_code=status.HTTP_201_CREATED,
             response_model=AvailabilityExceptionPublic)
async def add_exception(ctx: AdminOnly, body: AvailabilityExceptionCreate) -> Response:
    """Time off (with provider_id), a clinic closure (without), or extra hours."""
    return model_response(await actions.do_add_exception(ctx, body),
                          status_code=status.HTTP_201_CREATED)


@router.delete("/availability-exceptions/{exception_id}",
               status_code=status.HTTP_204_NO_CONTENT)
async def remove_exception(ctx: AdminOnly, exception_id: uuid.UUID) -> Response:
    await actions.do_remove_exception(ctx, exception_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/clinic/booking-policy", response_model=BookingPolicyPublic)
async def read_policy(ctx: AnyStaff) -> Response:
    return model_response(await actions.read_policy(ctx))


@router.patch("/clinic/booking-policy", response_model=BookingPolicyPublic)
async def update_policy(ctx: AdminOnly, body: BookingPolicyUpdate) -> Response:
    return model_response(await actions.do_update_policy(ctx, body))
