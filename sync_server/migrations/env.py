"""Alembic environment: always online, on the connection `sync_server.db.migrate` hands in."""

from __future__ import annotations

from alembic import context

from shared_models.tables import metadata

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
