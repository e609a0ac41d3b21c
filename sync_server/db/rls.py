"""Row-level security and grants for tenant tables, used by the migrations.

Every table with `clinic_id` gets ENABLE + FORCE ROW LEVEL SECURITY and one policy that
compares `clinic_id` with the transaction-local `app.clinic_id`. With no clinic set the
setting is empty, NULLIF turns it into NULL and the policy matches nothing: it fails
closed.
"""

from __future__ import annotations

from alembic import op

from sync_server.core.config import APP_DB_ROLE

CURRENT_CLINIC = "NULLIF(current_setting('app.clinic_id', true), '')::uuid"


def enable_tenant_rls(table: str, *, column: str = "clinic_id") -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {table}_clinic_isolation ON {table} "
        f"USING ({column} = {CURRENT_CLINIC}) WITH CHECK ({column} = {CURRENT_CLINIC})"
    )


def grant_app(table: str, privileges: str) -> None:
    op.execute(f"GRANT {privileges} ON {table} TO {APP_DB_ROLE}")
