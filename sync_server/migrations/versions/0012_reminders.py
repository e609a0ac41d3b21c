"""Reminders: each clinic's policy, the queue of messages to patients and every attempt.

`reminder` is the queue every server process shares. Dispatchers claim due rows of any
clinic through `claim_due_reminders` (SECURITY DEFINER: a claim is the one step that looks
across clinics; it returns ids only, and everything else a dispatcher does runs scoped to
the reminder's clinic under row-level security). The claim skips rows another process has
locked and sets a lease, so a process that dies mid-send leaves the row to others once
the lease has run out.

Patients gain an optional timezone (quiet hours are kept in it) and appointments the time
the patient confirmed by replying to a reminder.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.core.config import APP_DB_ROLE
from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _parent(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["clinic_id", column], [f"{parent}.clinic_id", f"{parent}.id"], ondelete="RESTRICT",
        name=op.f(f"fk_{table}_clinic_id_{column}_{parent}"))


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"),
                     nullable=False)


def upgrade() -> None:
    op.add_column("patient", sa.Column("timezone", sa.String(length=64), nullable=True))
    op.add_column("appointment", sa.Column("confirmed_at", sa.DateTime(timezone=True),
                                           nullable=True))

    op.create_table(
        "reminder_policy",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("offsets_minutes", postgresql.JSONB(), nullable=False),
        sa.Column("quiet_start", sa.Time(), nullable=False),
        sa.Column("quiet_end", sa.Time(), nullable=False),
        sa.Column("templates", postgresql.JSONB(), nullable=False),
        _stamp("updated_at"),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT",
                                name=op.f("fk_reminder_policy_clinic_id_clinic")),
        sa.PrimaryKeyConstraint("clinic_id", name=op.f("pk_reminder_policy")),
    )
    enable_tenant_rls("reminder_policy")
    grant_app("reminder_policy", "SELECT, INSERT, UPDATE")

    op.create_table(
        "reminder",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("offset_minutes", sa.Integer(), nullable=True),
        sa.Column("appointment_starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.String(length=100), nullable=True),
        sa.Column("calendar_sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refused_channels", postgresql.JSONB(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("reply_key", sa.String(length=64), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
        _parent("reminder", "appointment_id", "appointment"),
        _parent("reminder", "patient_id", "patient"),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_reminder")),
        sa.CheckConstraint("kind IN ('reminder', 'rescheduled', 'cancelled')",
                           name=op.f("ck_reminder_kind")),
        sa.CheckConstraint("status IN ('pending', 'sent', 'dead', 'cancelled', 'skipped')",
                           name=op.f("ck_reminder_status")),
        sa.CheckConstraint("(kind = 'reminder') = (offset_minutes IS NOT NULL)",
                           name=op.f("ck_reminder_offset")),
    )
    op.create_index("ix_reminder_queue", "reminder", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_reminder_appointment", "reminder", ["clinic_id", "appointment_id"])
    op.create_index("ix_reminder_dead", "reminder", ["clinic_id", "updated_at"],
                    postgresql_where=sa.text("status = 'dead'"))
    op.create_index("ix_reminder_due_at", "reminder", ["clinic_id", "due_at"])
    op.create_index("ix_reminder_reply_key", "reminder", ["clinic_id", "reply_key", "sent_at"],
                    postgresql_where=sa.text("reply_key IS NOT NULL"))
    enable_tenant_rls("reminder")
    grant_app("reminder", "SELECT, INSERT, UPDATE")

    op.create_table(
        "reminder_attempt",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reminder_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("provider_message_id", sa.String(length=100), nullable=True),
        _parent("reminder_attempt", "reminder_id", "reminder"),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_reminder_attempt")),
        sa.CheckConstraint(
            "outcome IN ('delivered', 'temporary_failure', 'permanent_failure')",
            name=op.f("ck_reminder_attempt_outcome")),
    )
    op.create_index("ix_reminder_attempt_reminder", "reminder_attempt",
                    ["clinic_id", "reminder_id", "attempted_at"])
    enable_tenant_rls("reminder_attempt")
    grant_app("reminder_attempt", "SELECT, INSERT")

    # The claim runs as the owner, which the forced policy would otherwise hold to no
    # clinic at all; this policy lets the owner (and only it) see the queue as a whole.
    op.execute(
        "CREATE POLICY reminder_dispatch ON reminder FOR ALL TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
    op.execute(
        """
        CREATE FUNCTION claim_due_reminders(p_worker text, p_now timestamptz,
                                            p_lease_seconds integer, p_limit integer)
        RETURNS TABLE (clinic_id uuid, id uuid)
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            UPDATE reminder r
            SET lease_until = p_now + make_interval(secs => p_lease_seconds),
                leased_by = p_worker,
                attempts = r.attempts + 1
            FROM (
                SELECT q.clinic_id, q.id FROM reminder q
                WHERE q.status = 'pending' AND q.next_attempt_at <= p_now
                  AND (q.lease_until IS NULL OR q.lease_until <= p_now)
                ORDER BY q.next_attempt_at
                LIMIT least(greatest(p_limit, 1), 1000)
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE r.clinic_id = due.clinic_id AND r.id = due.id
            RETURNING r.clinic_id, r.id
        $$
        """
    )
    # A process still working through its batch keeps the rows it has not reached yet.
    op.execute(
        """
        CREATE FUNCTION renew_reminder_leases(p_worker text, p_now timestamptz,
                                              p_lease_seconds integer)
        RETURNS integer
        LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            WITH renewed AS (
                UPDATE reminder SET lease_until = p_now + make_interval(secs => p_lease_seconds)
                WHERE leased_by = p_worker AND status = 'pending'
                RETURNING 1
            )
            SELECT count(*)::integer FROM renewed
        $$
        """
    )
    for signature in ("claim_due_reminders(text, timestamptz, integer, integer)",
                      "renew_reminder_leases(text, timestamptz, integer)"):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {APP_DB_ROLE}")


def downgrade() -> None:
    op.execute("DROP FUNCTION renew_reminder_leases(text, timestamptz, integer)")
    op.execute("DROP FUNCTION claim_due_reminders(text, timestamptz, integer, integer)")
    op.drop_table("reminder_attempt")
    op.drop_table("reminder")
    op.drop_table("reminder_policy")
    op.drop_column("appointment", "confirmed_at")
    op.drop_column("patient", "timezone")
