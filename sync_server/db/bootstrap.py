"""First-start provisioning done as the owner: the database and the app's login role.

The app role owns nothing and is created NOSUPERUSER NOBYPASSRLS, so row-level security
always applies to it; migrations grant it only what the request path needs.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL

from sync_server.core.config import APP_DB_ROLE


def _libpq(url: URL, *, database: str | None = None) -> str:
    return url.set(drivername="postgresql", database=database or url.database).render_as_string(
        hide_password=False
    )


def ensure_database(owner_url: URL) -> None:
    """Create the database named in `owner_url` if it does not exist (needs CREATEDB)."""
    assert owner_url.database
    try:
        psycopg.connect(_libpq(owner_url)).close()
        return
    except psycopg.OperationalError:
        pass  # most likely missing: create it from the maintenance database
    with psycopg.connect(_libpq(owner_url, database="postgres"), autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (owner_url.database,)
        ).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(owner_url.database)))


def ensure_app_role(owner_url: URL, *, password: str | None) -> None:
    """Create or tighten the app login role; set its password when one is configured."""
    with psycopg.connect(_libpq(owner_url), autocommit=True) as conn:
        role = sql.Identifier(APP_DB_ROLE)
        row = conn.execute(
            "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb "
            "FROM pg_roles WHERE rolname = %s",
            (APP_DB_ROLE,),
        ).fetchone()
        if row is None:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(role)
            )
        elif row[0]:
            conn.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE").format(
                    role
                )
            )
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(role, sql.Literal(password)))
