"""Record which transaction wrote each version of a synced row, for the pull cursor.

server_version numbers come from one sequence, but transactions commit in any order: a
version drawn early can become visible after a later one. A cursor of "highest version
seen" would then skip it for good. The pull instead tracks transaction ids: everything
written by transactions older than the snapshot's xmin is final, so a cursor at that
xmin never misses a row that commits later.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SYNCED = ("staff_user", "patient", "provider", "availability_rule", "availability_exception",
          "appointment")


def upgrade() -> None:
    for table in SYNCED:
        op.add_column(table, sa.Column("version_xid", sa.BigInteger(), nullable=True))
        op.create_index(f"ix_{table}_clinic_id_version_xid", table,
                        ["clinic_id", "version_xid", "server_version"])
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bump_server_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.server_version := nextval('server_version_seq');
            NEW.version_xid := pg_current_xact_id()::text::bigint;
            NEW.updated_at := now();
            RETURN NEW;
        END
        $$
        """
    )
    # Rows written before this revision keep NULL: a first pull (cursor 0) takes them.


def downgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION bump_server_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.server_version := nextval('server_version_seq');
            NEW.updated_at := now();
            RETURN NEW;
        END
        $$
        """
    )
    for table in SYNCED:
        op.drop_index(f"ix_{table}_clinic_id_version_xid", table_name=table)
        op.drop_column(table, "version_xid")
