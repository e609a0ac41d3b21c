"""Running the Alembic migrations as the owner (on start, or `consulta-server migrate`)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import URL


def alembic_config(owner_url: URL) -> Config:
    config = Config()
    config.set_main_option("script_location", "sync_server:migrations")
    config.attributes["owner_url"] = owner_url
    return config


def upgrade(owner_url: URL, revision: str = "head") -> None:
    engine = create_engine(owner_url, poolclass=None)
    try:
        with engine.begin() as conn:
            config = alembic_config(owner_url)
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()
