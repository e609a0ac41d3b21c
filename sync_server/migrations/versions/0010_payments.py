"""Payments taken at the front desk, and the clinic's currency and receipt numbering.

A payment is a money record: once taken, the database refuses to change what was
received (amount, currency, method, reference, visit, patient, who took it, when, its
receipt number) or to delete it, whatever path tries. A mistake is corrected by voiding
the payment, which sets voided_at, voided_by and void_reason once; a void is final too.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

def _parent(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["clinic_id", column], [f"{table}.clinic_id", f"{table}.id"], ondelete="RESTRICT",
        name=op.f(f"fk_payment_clinic_id_{column}_{table}"))


def upgrade() -> None:
    op.add_column("clinic", sa.Column("currency", sa.String(length=3), server_default="MXN",
                                      nullable=False))
    op.add_column("clinic", sa.Column("next_receipt", sa.Integer(), server_default="1",
                                      nullable=False))
    # Existing clinics take their country's currency (the table as it stood when payments
    # arrived), clinic by clinic: a migration role without BYPASSRLS sees only the one it
    # is scoped to.
    op.execute(
        """
        DO $$
        DECLARE c uuid;
        BEGIN
            FOR c IN SELECT id FROM clinic LOOP
                PERFORM set_config('app.clinic_id', c::text, true);
                UPDATE clinic SET currency = CASE country
                    WHEN 'MX' THEN 'MXN' WHEN 'CL' THEN 'CLP' WHEN 'CO' THEN 'COP'
                    WHEN 'PE' THEN 'PEN' WHEN 'AR' THEN 'ARS'
                    WHEN 'US' THEN 'USD' WHEN 'EC' THEN 'USD' WHEN 'SV' THEN 'USD'
                    WHEN 'PA' THEN 'USD' ELSE currency END
                WHERE id = c;
            END LOOP;
            PERFORM set_config('app.clinic_id', '', true);
        END
        $$
        """
    )
    op.create_table(
        "payment",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("received_by", sa.Uuid(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("receipt_number", sa.String(length=40), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_by", sa.Uuid(), nullable=True),
        sa.Column("void_reason", sa.String(length=500), nullable=True),
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
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payment_amount_positive")),
        sa.CheckConstraint("length(currency) = 3 AND upper(currency) = currency",
                           name=op.f("ck_payment_currency")),
        sa.CheckConstraint("method IN ('cash', 'card', 'transfer')",
                           name=op.f("ck_payment_method")),
        sa.CheckConstraint("(voided_at IS NULL) = (void_reason IS NULL) AND "
                           "(voided_at IS NULL) = (voided_by IS NULL)",
                           name=op.f("ck_payment_void")),
        _parent("appointment_id", "appointment"),
        _parent("patient_id", "patient"),
        _parent("received_by", "staff_user"),
        _parent("voided_by", "staff_user"),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_payment")),
        sa.UniqueConstraint("clinic_id", "receipt_number",
                            name=op.f("uq_payment_clinic_id_receipt_number")),
    )
    op.create_index("ix_payment_appointment", "payment", ["clinic_id", "appointment_id"])
    op.create_index("ix_payment_patient", "payment", ["clinic_id", "patient_id"])
    op.create_index("ix_payment_received_at", "payment", ["clinic_id", "received_at"])
    op.create_index("ix_payment_clinic_id_version_xid", "payment",
                    ["clinic_id", "version_xid", "server_version"])
    op.execute(
        "CREATE TRIGGER payment_server_version BEFORE INSERT OR UPDATE ON payment "
        "FOR EACH ROW EXECUTE FUNCTION bump_server_version()"
    )
    # clinic_id is left to row-level security, whose check refuses a move to another
    # clinic with its own error.
    op.execute(
        """
        CREATE FUNCTION payment_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'payment_is_final',
                    MESSAGE = 'a payment is never deleted; void it instead';
            END IF;
            IF (NEW.id, NEW.appointment_id, NEW.patient_id, NEW.amount_minor, NEW.currency,
                NEW.method, NEW.reference, NEW.received_by, NEW.received_at,
                NEW.receipt_number, NEW.created_at, NEW.deleted_at)
               IS DISTINCT FROM
               (OLD.id, OLD.appointment_id, OLD.patient_id, OLD.amount_minor, OLD.currency,
                OLD.method, OLD.reference, OLD.received_by, OLD.received_at,
                OLD.receipt_number, OLD.created_at, OLD.deleted_at) THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'payment_is_final',
                    MESSAGE = 'a payment cannot change once taken; void it and take it again';
            END IF;
            IF OLD.voided_at IS NOT NULL AND (NEW.voided_at, NEW.voided_by, NEW.void_reason)
               IS DISTINCT FROM (OLD.voided_at, OLD.voided_by, OLD.void_reason) THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation',
                    CONSTRAINT = 'payment_is_final',
                    MESSAGE = 'a voided payment stays voided';
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER payment_is_final BEFORE UPDATE OR DELETE ON payment "
        "FOR EACH ROW EXECUTE FUNCTION payment_is_final()"
    )
    enable_tenant_rls("payment")
    grant_app("payment", "SELECT, INSERT, UPDATE")


def downgrade() -> None:
    op.drop_table("payment")
    op.execute("DROP FUNCTION payment_is_final()")
    op.drop_column("clinic", "next_receipt")
    op.drop_column("clinic", "currency")
