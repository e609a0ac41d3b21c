"""The request path's connection pool, as the unprivileged app role."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_app_engine(url: URL, *, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        url,
        # A fixed pool: overflow connections are closed as soon as they are returned, and
        # under steady load that means opening a PostgreSQL session per request.
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_recycle=1800,
    )
