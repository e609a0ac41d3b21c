"""The booking page finds its clinic by the slug in the URL.

Like sign-in, this happens before any clinic is set, so one SECURITY DEFINER function
returns the id of the clinic with that exact slug, and nothing else.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from sync_server.core.config import APP_DB_ROLE

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION clinic_by_slug(p_slug text) RETURNS TABLE (id uuid)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT c.id FROM clinic c WHERE c.slug = p_slug
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION clinic_by_slug(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION clinic_by_slug(text) TO {APP_DB_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION clinic_by_slug(text)")
