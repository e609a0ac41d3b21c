"""Clinical notes: drafts that sync between a doctor's computers, signed notes that no
one can change afterwards (the database refuses any update of a signed note, whatever
path tries it). Conflicts record how a reviewer resolved them.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _parent(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["clinic_id", column], [f"{table}.clinic_id", f"{table}.id"], ondelete="RESTRICT",
        name=op.f(f"fk_clinical_note_clinic_id_{column}_{table}"))


def upgrade() -> None:
    op.create_table(
        "clinical_note",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="draft", nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("conflict_of", sa.Uuid(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version_xid", sa.BigInteger(), nullable=True),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("field_stamps", postgresql.JSONB(), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("status IN ('draft', 'signed')", name=op.f("ck_clinical_note_status")),
        sa.CheckConstraint("(status = 'signed') = (signed_at IS NOT NULL)",
                           name=op.f("ck_clinical_note_signed")),
        _parent("patient_id", "patient"),
        _parent("author_id", "staff_user"),
        _parent("appointment_id", "appointment"),
        _parent("conflict_of", "clinical_note"),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_clinical_note")),
    )
    op.create_index("ix_clinical_note_patient", "clinical_note", ["clinic_id", "patient_id"])
    op.create_index("ix_clinical_note_clinic_id_version_xid", "clinical_note",
                    ["clinic_id", "version_xid", "server_version"])
    op.execute(
        "CREATE TRIGGER clinical_note_server_version BEFORE INSERT OR UPDATE ON clinical_note "
        "FOR EACH ROW EXECUTE FUNCTION bump_server_version()"
    )
    op.execute(
        """
        CREATE FUNCTION clinical_note_signed_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF OLD.status = 'signed' THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'clinical_note_signed_is_final',
                    MESSAGE = 'a signed note cannot change; add an addendum';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER clinical_note_signed_is_final BEFORE UPDATE ON clinical_note "
        "FOR EACH ROW EXECUTE FUNCTION clinical_note_signed_is_final()"
    )
    enable_tenant_rls("clinical_note")
    grant_app("clinical_note", "SELECT, INSERT, UPDATE")
    op.add_column("sync_conflict", sa.Column("resolution", sa.String(length=10), nullable=True))
    op.create_check_constraint(
        "resolution", "sync_conflict",
        "(resolved_at IS NULL) = (resolution IS NULL) AND "
        "(resolution IS NULL OR resolution IN ('current', 'lost'))")


def downgrade() -> None:
    op.drop_constraint("ck_sync_conflict_resolution", "sync_conflict")
    op.drop_column("sync_conflict", "resolution")
    op.drop_table("clinical_note")
    op.execute("DROP FUNCTION clinical_note_signed_is_final()")
