"""Sync between devices and the server (DESIGN section 5)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from shared_models.schemas.sync import (
    MAX_PAGE,
    ConflictResolve,
    PullResponse,
    PushRequest,
    PushResponse,
    SyncConflictPublic,
    SyncConflictsPublic,
)
from sync_server.actions import conflicts, sync_push
from sync_server.actions import sync as actions
from sync_server.api.deps import AnyStaff
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response

router = APIRouter(prefix="/sync", tags=["sync"], responses=ERROR_RESPONSES)


@router.get("/pull", response_model=PullResponse)
async def pull(
    ctx: AnyStaff,
    since: Annotated[str | None, Query(max_length=100, description="next_cursor of the "
                                       "previous pull; empty for a full sync")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> Response:
    """Changes since the cursor, oldest first, in pages; `has_more` asks for the next."""
    return model_response(await actions.pull(ctx, since=since, limit=limit))


@router.post("/push", response_model=PushResponse)
async def push(ctx: AnyStaff, body: PushRequest) -> Response:
    """Apply an ordered batch of mutations; a replayed batch gets the stored results."""
    return model_response(await sync_push.push(ctx, body))


@router.get("/conflicts", response_model=SyncConflictsPublic)
async def list_conflicts(
    ctx: AnyStaff,
    state: conflicts.State = "open",
    record_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=conflicts.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Response:
    """Values that lost a merge, newest first: patients' for the staff who edit them, a
    note's for its author."""
    return model_response(await conflicts.list_conflicts(
        ctx, state=state, record_id=record_id, limit=limit, offset=offset))


@router.post("/conflicts/{conflict_id}/resolve", response_model=SyncConflictPublic)
async def resolve_conflict(ctx: AnyStaff, conflict_id: uuid.UUID, body: ConflictResolve
                           ) -> Response:
    """Keep the record as it is, or restore the value that lost."""
    return model_response(await conflicts.resolve(ctx, conflict_id, body.keep))
