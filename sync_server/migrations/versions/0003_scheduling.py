"""Scheduling: booking policy, breaks and buffers, extra hours, and the database's own
guarantee that no two active appointments of one provider overlap.

The embedded server has no btree_gist, so there is no exclusion constraint. Instead a
BEFORE INSERT OR UPDATE trigger on appointment takes a transaction-scoped advisory lock
per (clinic, provider) and then looks for an overlapping active appointment. Two
transactions booking one provider take turns on the lock; at READ COMMITTED the second
one's check runs with a snapshot taken after the first committed, so it sees the first
booking and fails with SQLSTATE 23P01 (exclusion_violation). SERIALIZABLE is also safe (its
conflict detection aborts one of them). REPEATABLE READ would check against a stale
snapshot, so the trigger refuses to run there. Every writer (REST, sync, the booking
page, an admin at psql) goes through the trigger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ACTIVE = "('pending', 'booked', 'checked_in', 'in_progress')"


def upgrade() -> None:
    op.add_column("clinic", sa.Column("booking_horizon_days", sa.Integer(),
                                      server_default="60", nullable=False))
    op.add_column("clinic", sa.Column("min_notice_minutes", sa.Integer(),
                                      server_default="60", nullable=False))
    op.add_column("clinic", sa.Column("cancel_cutoff_minutes", sa.Integer(),
                                      server_default="120", nullable=False))
    op.add_column("availability_rule", sa.Column("buffer_minutes", sa.SmallInteger(),
                                                 server_default="0", nullable=False))
    op.add_column("availability_rule", sa.Column("break_start", sa.Time(), nullable=True))
    op.add_column("availability_rule", sa.Column("break_end", sa.Time(), nullable=True))
    op.create_check_constraint("buffer_minutes", "availability_rule",
                               "buffer_minutes BETWEEN 0 AND 240")
    op.create_check_constraint(
        "break",
        "availability_rule",
        "(break_start IS NULL) = (break_end IS NULL) AND "
        "(break_start IS NULL OR (start_time <= break_start AND break_start < break_end "
        "AND break_end <= end_time))",
    )
    op.add_column("availability_exception",
                  sa.Column("slot_minutes", sa.SmallInteger(), nullable=True))
    op.create_check_constraint(
        "extra_hours",
        "availability_exception",
        "kind = 'time_off' OR (provider_id IS NOT NULL AND slot_minutes BETWEEN 5 AND 480)",
    )
    op.execute(
        """
        CREATE FUNCTION appointment_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status NOT IN @ACTIVE@ OR NEW.deleted_at IS NOT NULL THEN
                RETURN NEW;
            END IF;
            IF current_setting('transaction_isolation') = 'repeatable read' THEN
                RAISE EXCEPTION 'appointments cannot be written at REPEATABLE READ: the '
                    'overlap check needs READ COMMITTED or SERIALIZABLE';
            END IF;
            PERFORM pg_advisory_xact_lock(
                hashtextextended('appointment:' || NEW.clinic_id::text || ':'
                                 || NEW.provider_id::text, 0));
            IF EXISTS (
                SELECT 1 FROM appointment a
                WHERE a.clinic_id = NEW.clinic_id AND a.provider_id = NEW.provider_id
                  AND a.id <> NEW.id AND a.status IN @ACTIVE@ AND a.deleted_at IS NULL
                  AND a.starts_at < NEW.ends_at AND NEW.starts_at < a.ends_at
            ) THEN
                RAISE EXCEPTION USING
                    ERRCODE = 'exclusion_violation',
                    CONSTRAINT = 'appointment_no_overlap',
                    MESSAGE = 'the provider already has an active appointment at that time';
            END IF;
            RETURN NEW;
        END
        $$
        """.replace("@ACTIVE@", ACTIVE)
    )
    op.execute(
        "CREATE TRIGGER appointment_no_overlap BEFORE INSERT OR UPDATE ON appointment "
        "FOR EACH ROW EXECUTE FUNCTION appointment_no_overlap()"
    )
    op.execute(
        "CREATE INDEX ix_appointment_active_provider ON appointment "
        f"(clinic_id, provider_id, starts_at) WHERE status IN {ACTIVE} AND deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_appointment_active_provider")
    op.execute("DROP TRIGGER appointment_no_overlap ON appointment")
    op.execute("DROP FUNCTION appointment_no_overlap()")
    op.drop_constraint("ck_availability_exception_extra_hours", "availability_exception")
    op.drop_column("availability_exception", "slot_minutes")
    op.drop_constraint("ck_availability_rule_break", "availability_rule")
    op.drop_constraint("ck_availability_rule_buffer_minutes", "availability_rule")
    for column in ("break_end", "break_start", "buffer_minutes"):
        op.drop_column("availability_rule", column)
    for column in ("cancel_cutoff_minutes", "min_notice_minutes", "booking_horizon_days"):
        op.drop_column("clinic", column)
