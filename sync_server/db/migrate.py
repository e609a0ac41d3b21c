"""Running the Alembic migrations as the owner (on start, or `consulta-server migrate`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL


def alembic_config(owner_url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", "sync_server:migrations")
    config.attributes["owner_url"] = owner_url
    return config


# Server processes and dispatch workers started together after a deploy migrate one at a
# time: the first applies the new revisions, the others then find nothing to do.
MIGRATION_LOCK = 0x636F6E73756C7461  # "consulta"


def upgrade(owner_url: URL, revision: str = "head") -> None:
    engine = create_engine(owner_url, poolclass=None)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config = alembic_config(owner_url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()
