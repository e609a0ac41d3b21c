"""Liveness and readiness probes for load balancers and IT."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from sync_server.api.deps import PreAuthEngine

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(engine: PreAuthEngine) -> dict[str, str] | JSONResponse:
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return JSONResponse(
            {"status": "unavailable", "reason": "database not reachable"}, status_code=503
        )
    return {"status": "ready"}
