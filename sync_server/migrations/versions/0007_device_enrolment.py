"""Device enrolment: one-time codes, device secrets, and the lookup of a code before any
clinic is known (one SECURITY DEFINER function, by exact code hash only).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.core.config import APP_DB_ROLE

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("device", sa.Column("code_hash", sa.String(length=64), nullable=True))
    op.add_column("device", sa.Column("code_expires_at", sa.DateTime(timezone=True),
                                      nullable=True))
    op.add_column("device", sa.Column("secret_hash", sa.String(length=64), nullable=True))
    op.add_column("device", sa.Column("enrolled_by", sa.Uuid(), nullable=True))
    op.create_index("ix_device_code_hash", "device", ["code_hash"],
                    postgresql_where=sa.text("code_hash IS NOT NULL"))
    op.execute(
        "CREATE POLICY device_code_lookup ON device FOR SELECT TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION device_for_code(p_code_hash text)
        RETURNS TABLE (clinic_id uuid, device_id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT d.clinic_id, d.id FROM device d
            WHERE d.code_hash = p_code_hash AND d.enrolled_at IS NULL
              AND d.revoked_at IS NULL AND d.code_expires_at > now()
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION device_for_code(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION device_for_code(text) TO {APP_DB_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION device_for_code(text)")
    op.execute("DROP POLICY device_code_lookup ON device")
    op.drop_index("ix_device_code_hash", table_name="device")
    for column in ("enrolled_by", "secret_hash", "code_expires_at", "code_hash"):
        op.drop_column("device", column)
