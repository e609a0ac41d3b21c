"""Care notices: the reminder queue also carries messages about a patient's care that
name no appointment — a prescription ready at the pharmacy, lab results in.

Such a row points at its prescription or lab order instead of an appointment; check
constraints keep each kind tied to exactly its own subject.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_APPOINTMENT_KINDS = "('reminder', 'rescheduled', 'cancelled')"


def upgrade() -> None:
    op.add_column("reminder", sa.Column("prescription_id", sa.Uuid(), nullable=True))
    op.add_column("reminder", sa.Column("lab_order_id", sa.Uuid(), nullable=True))
    for column, parent in (("prescription_id", "prescription"), ("lab_order_id", "lab_order")):
        op.create_foreign_key(
            op.f(f"fk_reminder_clinic_id_{column}_{parent}"), "reminder", parent,
            ["clinic_id", column], ["clinic_id", "id"], ondelete="RESTRICT")
    op.alter_column("reminder", "appointment_id", nullable=True)
    op.alter_column("reminder", "appointment_starts_at", nullable=True)
    op.drop_constraint(op.f("ck_reminder_kind"), "reminder", type_="check")
    op.create_check_constraint(
        op.f("ck_reminder_kind"), "reminder",
        "kind IN ('reminder', 'rescheduled', 'cancelled', 'prescription_ready', "
        "'results_ready')")
    op.create_check_constraint(
        op.f("ck_reminder_subject_appointment"), "reminder",
        f"(kind IN {_APPOINTMENT_KINDS}) = "
        "(appointment_id IS NOT NULL AND appointment_starts_at IS NOT NULL)")
    op.create_check_constraint(
        op.f("ck_reminder_subject_prescription"), "reminder",
        "(kind = 'prescription_ready') = (prescription_id IS NOT NULL)")
    op.create_check_constraint(
        op.f("ck_reminder_subject_lab_order"), "reminder",
        "(kind = 'results_ready') = (lab_order_id IS NOT NULL)")


def downgrade() -> None:
    op.execute("DELETE FROM reminder_attempt WHERE reminder_id IN (SELECT id FROM reminder "
               "WHERE appointment_id IS NULL)")
    op.execute("DELETE FROM reminder WHERE appointment_id IS NULL")
    for name in ("subject_lab_order", "subject_prescription", "subject_appointment", "kind"):
        op.drop_constraint(op.f(f"ck_reminder_{name}"), "reminder", type_="check")
    op.create_check_constraint(op.f("ck_reminder_kind"), "reminder",
                               f"kind IN {_APPOINTMENT_KINDS}")
    op.alter_column("reminder", "appointment_starts_at", nullable=False)
    op.alter_column("reminder", "appointment_id", nullable=False)
    for column, parent in (("lab_order_id", "lab_order"), ("prescription_id", "prescription")):
        op.drop_constraint(op.f(f"fk_reminder_clinic_id_{column}_{parent}"), "reminder",
                           type_="foreignkey")
        op.drop_column("reminder", column)
