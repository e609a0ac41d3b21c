"""Device rollouts: one enrolment code for many computers (clinic IT installing the app on
every front-desk PC at once), each computer enrolled as its own device. The code is found
and one place taken from it before any clinic is known, so that step is one SECURITY
DEFINER function: it takes a place by exact code hash only, and never more places than the
rollout has, however many computers ask at the same moment.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.core.config import APP_DB_ROLE
from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_rollout",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("computers", sa.Integer(), nullable=False),
        sa.Column("enrolled", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("computers BETWEEN 1 AND 500",
                           name=op.f("ck_device_rollout_computers_range")),
        sa.CheckConstraint("enrolled BETWEEN 0 AND computers",
                           name=op.f("ck_device_rollout_enrolled_within")),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT",
                                name=op.f("fk_device_rollout_clinic_id_clinic")),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_device_rollout")),
    )
    op.create_index("ix_device_rollout_code_hash", "device_rollout", ["code_hash"])
    enable_tenant_rls("device_rollout")
    grant_app("device_rollout", "SELECT, INSERT, UPDATE")
    # The function below runs as the owner, which FORCE ROW LEVEL SECURITY also binds.
    op.execute("CREATE POLICY device_rollout_claim ON device_rollout FOR ALL TO CURRENT_USER "
               "USING (true) WITH CHECK (true)")
    op.execute(
        """
        CREATE FUNCTION claim_rollout_place(p_code_hash text)
        RETURNS TABLE (clinic_id uuid, rollout_id uuid, name text, place integer)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE device_rollout r SET enrolled = r.enrolled + 1
            WHERE r.code_hash = p_code_hash AND r.revoked_at IS NULL
              AND r.expires_at > now() AND r.enrolled < r.computers
            RETURNING r.clinic_id, r.id, r.name::text, r.enrolled
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION claim_rollout_place(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION claim_rollout_place(text) TO {APP_DB_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION claim_rollout_place(text)")
    op.drop_table("device_rollout")
