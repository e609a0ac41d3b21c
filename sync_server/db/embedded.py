"""The embedded PostgreSQL 16 (the `pgserver` wheel), used when no DATABASE_URL is set.

Its data folder lives under the data dir and survives restarts; it listens on a Unix
socket only, so nothing outside this machine can reach it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path, *, keep_running: bool = False) -> Any:
    """Start (or attach to) the embedded server whose data lives in `data_dir/pgdata`."""
    from pgserver import get_server  # type: ignore[attr-defined,unused-ignore]

    pgdata = data_dir / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    return get_server(pgdata, cleanup_mode=None if keep_running else "stop")


def embedded_url(server: Any, database: str) -> URL:
    """The SQLAlchemy URL (psycopg driver) of `database` on an embedded server."""
    raw = make_url(server.get_uri())
    return URL.create(
        "postgresql+psycopg",
        username=raw.username,
        database=database,
        query=dict(raw.query),
    )
