"""From settings to ready databases: the embedded server when none is configured, the
database and app role, and the two URLs (owner for migrations, app role for requests)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL

from sync_server.core.config import EMBEDDED_DB_NAME, Settings
from sync_server.db import bootstrap
from sync_server.db.embedded import embedded_url, start_embedded
from sync_server.db.urls import app_role_url, as_psycopg


@dataclass(frozen=True)
class DatabaseUrls:
    owner: URL
    app: URL
    embedded_server: Any = None


def provision(settings: Settings, *, keep_embedded_running: bool = False) -> DatabaseUrls:
    app_password = (
        settings.app_db_password.get_secret_value() if settings.app_db_password else None
    )
    server = None
    if settings.database_url is None:
        server = start_embedded(settings.data_dir, keep_running=keep_embedded_running)
        owner = embedded_url(server, EMBEDDED_DB_NAME)
    else:
        owner = as_psycopg(settings.database_url)
    bootstrap.ensure_database(owner)
    bootstrap.ensure_app_role(owner, password=app_password)
    app = (
        as_psycopg(settings.app_database_url)
        if settings.app_database_url
        else app_role_url(owner, app_password)
    )
    return DatabaseUrls(owner=owner, app=app, embedded_server=server)
