"""Laboratory orders: the lab's worklist, its steps and the results it enters.

Doctors place and cancel orders by sync push (`entity` lab_order); what they read here is
one order with its results. Everything else is the lab's.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared_models.enums import Role
from shared_models.schemas.lab_orders import (
    LabOrderPublic,
    LabOrdersPublic,
    LabOrderStatus,
    LabOrderTransition,
    LabResultsEntry,
)
from sync_server.actions import lab_orders as actions
from sync_server.api.deps import LabTechOnly, require_roles
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response
from sync_server.lib.context import ClinicContext

router = APIRouter(prefix="/lab-orders", tags=["lab_orders"], responses=ERROR_RESPONSES)

# The lab works the order; any doctor of the clinic may look at it and its results.
LabOrDoctor = Annotated[ClinicContext, require_roles(Role.LAB_TECH, Role.DOCTOR)]


@router.get("", response_model=LabOrdersPublic)
async def list_lab_orders(
    ctx: LabTechOnly,
    status: Annotated[LabOrderStatus | None,
                      Query(description="Only orders in this state; without it, the orders "
                                        "still open")] = None,
    limit: Annotated[int, Query(ge=1, le=actions.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=actions.MAX_OFFSET)] = 0,
) -> Response:
    """The lab's worklist: urgent orders first, then the oldest first."""
    return model_response(await actions.list_worklist(ctx, status=status, limit=limit,
                                                      offset=offset))


@router.get("/{order_id}", response_model=LabOrderPublic)
async def get_lab_order(ctx: LabOrDoctor, order_id: uuid.UUID) -> Response:
    """One order with the results entered so far."""
    return model_response(await actions.get_order(ctx, order_id))


@router.post("/{order_id}/status", response_model=LabOrderPublic)
async def move_lab_order(ctx: LabTechOnly, order_id: uuid.UUID, body: LabOrderTransition
                         ) -> Response:
    """The order's next step: sample_received, processing, completed, or cancelled with a
    reason. Sending the step the order is already at changes nothing."""
    return model_response(await actions.do_transition(ctx, order_id, body))


@router.put("/{order_id}/results", response_model=LabOrderPublic)
async def enter_lab_results(ctx: LabTechOnly, order_id: uuid.UUID, body: LabResultsEntry
                            ) -> Response:
    """Enter or correct values while the lab has the sample; answers the order with all
    its results and their flags."""
    return model_response(await actions.do_enter_results(ctx, order_id, body))
