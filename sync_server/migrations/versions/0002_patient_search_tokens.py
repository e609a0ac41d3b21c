"""Patient search through a token table that row-level security lets PostgreSQL index.

Full-text matching (`@@`, `to_tsvector`) is not leakproof, so under FORCE ROW LEVEL
SECURITY the planner may not use the GIN index for it and read every patient of the
clinic instead. Range comparisons on text are leakproof, so a btree over
(clinic_id, token) serves prefix search with the clinic's policy still in force.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX ix_patient_search")
    op.create_table(
        "patient_search_token",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=64, collation="C"), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "clinic_id", "token", "patient_id", name=op.f("pk_patient_search_token")
        ),
    )
    # Covering index: a prefix range yields (names, id) without visiting the table.
    op.create_index(
        "ix_patient_search_token_lookup",
        "patient_search_token",
        ["clinic_id", "token"],
        postgresql_include=["family_name", "given_name", "patient_id"],
    )
    enable_tenant_rls("patient_search_token")
    # Only the trigger below writes tokens, always from the patient row itself, so they
    # cannot point at another clinic's patient. No foreign key: checking one per token
    # turns a bulk import of patients quadratic while the table has no statistics yet.
    grant_app("patient_search_token", "SELECT")
    op.execute(
        """
        CREATE FUNCTION patient_search_token_sync() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            IF TG_OP = 'UPDATE' THEN
                IF NEW.search_text IS NOT DISTINCT FROM OLD.search_text
                   AND NEW.family_name IS NOT DISTINCT FROM OLD.family_name
                   AND NEW.given_name IS NOT DISTINCT FROM OLD.given_name
                   AND NEW.deleted_at IS NOT DISTINCT FROM OLD.deleted_at THEN
                    RETURN NULL;
                END IF;
                DELETE FROM patient_search_token
                WHERE clinic_id = OLD.clinic_id AND patient_id = OLD.id;
            END IF;
            IF NEW.deleted_at IS NULL THEN
                INSERT INTO patient_search_token
                    (clinic_id, token, patient_id, family_name, given_name)
                SELECT DISTINCT NEW.clinic_id, left(t, 64), NEW.id, NEW.family_name,
                       NEW.given_name
                FROM unnest(string_to_array(NEW.search_text, ' ')) AS t
                WHERE t <> '';
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER patient_search_token_sync AFTER INSERT OR UPDATE ON patient "
        "FOR EACH ROW EXECUTE FUNCTION patient_search_token_sync()"
    )
    # Existing patients, clinic by clinic: a migration role without BYPASSRLS sees only
    # the clinic it is scoped to.
    op.execute(
        """
        DO $$
        DECLARE c uuid;
        BEGIN
            FOR c IN SELECT id FROM clinic LOOP
                PERFORM set_config('app.clinic_id', c::text, true);
                INSERT INTO patient_search_token
                    (clinic_id, token, patient_id, family_name, given_name)
                SELECT DISTINCT p.clinic_id, left(t, 64), p.id, p.family_name, p.given_name
                FROM patient p, unnest(string_to_array(p.search_text, ' ')) AS t
                WHERE t <> '' AND p.deleted_at IS NULL AND p.clinic_id = c;
            END LOOP;
            PERFORM set_config('app.clinic_id', '', true);
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER patient_search_token_sync ON patient")
    op.execute("DROP FUNCTION patient_search_token_sync()")
    op.drop_table("patient_search_token")
    op.execute(
        "CREATE INDEX ix_patient_search ON patient "
        "USING gin (to_tsvector('simple', search_text))"
    )
