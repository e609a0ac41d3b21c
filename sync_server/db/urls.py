"""Turning configuration into the owner and app-role database URLs."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from sync_server.core.config import APP_DB_ROLE


def as_psycopg(url: str | URL) -> URL:
    """Accept `postgresql://` or `postgres://` URLs and use the psycopg 3 driver."""
    parsed = make_url(str(url).replace("postgres://", "postgresql://", 1)) if isinstance(
        url, str
    ) else url
    if parsed.drivername in {"postgresql", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def app_role_url(owner_url: URL, password: str | None) -> URL:
    """The owner's URL with the unprivileged app role as user."""
    return owner_url.set(username=APP_DB_ROLE, password=password)
