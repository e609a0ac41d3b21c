"""Push bookkeeping: idempotency records, reviewable conflicts, per-field clock stamps.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SYNCED = ("staff_user", "patient", "provider", "availability_rule", "availability_exception",
          "appointment")


def upgrade() -> None:
    for table in SYNCED:
        op.add_column(table, sa.Column("field_stamps", postgresql.JSONB(), nullable=True))
    op.create_table(
        "sync_mutation",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("mutation_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("result", postgresql.JSONB(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"],
                                name=op.f("fk_sync_mutation_clinic_id_clinic"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("clinic_id", "mutation_id", name=op.f("pk_sync_mutation")),
    )
    op.create_table(
        "sync_conflict",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("kept", postgresql.JSONB(), nullable=True),
        sa.Column("lost", postgresql.JSONB(), nullable=True),
        sa.Column("winner", sa.String(length=10), nullable=False),
        sa.Column("mutation_id", sa.Uuid(), nullable=True),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.CheckConstraint("winner IN ('device', 'server')", name=op.f("ck_sync_conflict_winner")),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"],
                                name=op.f("fk_sync_conflict_clinic_id_clinic"),
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_sync_conflict")),
    )
    op.create_index("ix_sync_conflict_open", "sync_conflict",
                    ["clinic_id", "resolved_at", "created_at"])
    for table in ("sync_mutation", "sync_conflict"):
        enable_tenant_rls(table)
    grant_app("sync_mutation", "SELECT, INSERT, UPDATE")
    grant_app("sync_conflict", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_index("ix_sync_conflict_open", table_name="sync_conflict")
    op.drop_table("sync_conflict")
    op.drop_table("sync_mutation")
    for table in SYNCED:
        op.drop_column(table, "field_stamps")
