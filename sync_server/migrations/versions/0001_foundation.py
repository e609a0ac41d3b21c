"""Foundation: clinics, staff, devices, patients, providers, availability, appointments,
auth tokens, audit events; row-level security, grants and the server_version sequence.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.core.config import APP_DB_ROLE
from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clinic",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("default_locale", sa.String(length=10), server_default="es", nullable=False),
        sa.Column("country", sa.String(length=2), server_default="MX", nullable=False),
        sa.Column("next_mrn", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinic")),
        sa.UniqueConstraint("slug", name=op.f("uq_clinic_slug")),
    )
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "audit_event",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_device_id", sa.Uuid(), nullable=True),
        sa.Column("client_addr", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=True),
        sa.Column("detail", postgresql.JSONB(), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_audit_event_clinic_id_clinic"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_audit_event")),
    )
    op.create_index(
        "ix_audit_event_entity", "audit_event", ["clinic_id", "entity", "entity_id"], unique=False
    )
    op.create_table(
        "device",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_device_clinic_id_clinic"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_device")),
    )
    op.create_table(
        "patient",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mrn", sa.String(length=32), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=10), server_default="unknown", nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("preferred_language", sa.String(length=10), server_default="es", nullable=False),
        sa.Column("preferred_channels", postgresql.JSONB(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("needs_review", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("search_text", sa.Text(), server_default="", nullable=False),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "sex IN ('female', 'male', 'other', 'unknown')", name=op.f("ck_patient_sex")
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_patient_clinic_id_clinic"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_patient")),
        sa.UniqueConstraint("clinic_id", "mrn", name=op.f("uq_patient_clinic_id_mrn")),
    )
    op.create_index(
        "ix_patient_clinic_id_family_name",
        "patient",
        ["clinic_id", "family_name", "given_name", "id"],
        unique=False,
    )
    op.create_table(
        "staff_user",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'receptionist', 'doctor', 'lab_tech', 'pharmacist')",
            name=op.f("ck_staff_user_role"),
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_staff_user_email_lower")),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_staff_user_clinic_id_clinic"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_staff_user")),
        sa.UniqueConstraint("clinic_id", "email", name=op.f("uq_staff_user_clinic_id_email")),
    )
    op.create_index("ix_staff_user_email", "staff_user", ["email"], unique=False)
    op.create_table(
        "provider",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id", "user_id"],
            ["staff_user.clinic_id", "staff_user.id"],
            name=op.f("fk_provider_clinic_id_user_id_staff_user"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinic.id"],
            name=op.f("fk_provider_clinic_id_clinic"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_provider")),
    )
    op.create_table(
        "refresh_token",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["clinic_id", "user_id"],
            ["staff_user.clinic_id", "staff_user.id"],
            name=op.f("fk_refresh_token_clinic_id_user_id_staff_user"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_refresh_token")),
    )
    op.create_index(
        "ix_refresh_token_family", "refresh_token", ["clinic_id", "family_id"], unique=False
    )
    op.create_table(
        "appointment",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=20), server_default="desk", nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'booked', 'checked_in', 'in_progress', 'completed', "
            "'cancelled', 'no_show', 'rejected')",
            name=op.f("ck_appointment_status"),
        ),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_appointment_period")),
        sa.ForeignKeyConstraint(
            ["clinic_id", "patient_id"],
            ["patient.clinic_id", "patient.id"],
            name=op.f("fk_appointment_clinic_id_patient_id_patient"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id", "provider_id"],
            ["provider.clinic_id", "provider.id"],
            name=op.f("fk_appointment_clinic_id_provider_id_provider"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_appointment")),
    )
    op.create_index(
        "ix_appointment_patient", "appointment", ["clinic_id", "patient_id"], unique=False
    )
    op.create_index(
        "ix_appointment_provider_starts",
        "appointment",
        ["clinic_id", "provider_id", "starts_at"],
        unique=False,
    )
    op.create_table(
        "availability_exception",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('time_off', 'extra_hours')", name=op.f("ck_availability_exception_kind")
        ),
        sa.CheckConstraint("starts_at < ends_at", name=op.f("ck_availability_exception_period")),
        sa.ForeignKeyConstraint(
            ["clinic_id", "provider_id"],
            ["provider.clinic_id", "provider.id"],
            name=op.f("fk_availability_exception_clinic_id_provider_id_provider"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_availability_exception")),
    )
    op.create_table(
        "availability_rule",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("slot_minutes", sa.SmallInteger(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "slot_minutes BETWEEN 5 AND 480", name=op.f("ck_availability_rule_slot_minutes")
        ),
        sa.CheckConstraint("start_time < end_time", name=op.f("ck_availability_rule_hours")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_availability_rule_weekday")),
        sa.ForeignKeyConstraint(
            ["clinic_id", "provider_id"],
            ["provider.clinic_id", "provider.id"],
            name=op.f("fk_availability_rule_clinic_id_provider_id_provider"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f("pk_availability_rule")),
    )

    _server_version()
    _row_level_security()
    _grants()
    _login_lookup()
    # Prefix search over the folded name/phone/record-number text (core full-text search:
    # the embedded server has neither pg_trgm nor unaccent).
    op.execute(
        "CREATE INDEX ix_patient_search ON patient USING gin (to_tsvector('simple', search_text))"
    )


SYNCED = (
    "staff_user",
    "patient",
    "provider",
    "availability_rule",
    "availability_exception",
    "appointment",
)
TENANT = (*SYNCED, "device", "refresh_token", "audit_event")


def _server_version() -> None:
    """One sequence numbers every committed change of a synced row, whatever path made it."""
    op.execute("CREATE SEQUENCE server_version_seq AS bigint")
    op.execute(
        """
        CREATE FUNCTION bump_server_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.server_version := nextval('server_version_seq');
            NEW.updated_at := now();
            RETURN NEW;
        END
        $$
        """
    )
    for table in SYNCED:
        op.execute(
            f"CREATE TRIGGER {table}_server_version BEFORE INSERT OR UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION bump_server_version()"
        )


def _row_level_security() -> None:
    for table in TENANT:
        enable_tenant_rls(table)
    enable_tenant_rls("clinic", column="id")


def _grants() -> None:
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_DB_ROLE}")
    op.execute(f"GRANT USAGE ON SEQUENCE server_version_seq TO {APP_DB_ROLE}")
    # Synced rows are tombstoned, never deleted; the audit trail is append-only.
    for table in SYNCED:
        grant_app(table, "SELECT, INSERT, UPDATE")
    grant_app("clinic", "SELECT, UPDATE")
    grant_app("device", "SELECT, INSERT, UPDATE")
    grant_app("refresh_token", "SELECT, INSERT, UPDATE")
    grant_app("audit_event", "SELECT, INSERT")
    grant_app("login_throttle", "SELECT, INSERT, UPDATE, DELETE")


def _login_lookup() -> None:
    """Sign-in must find an account before any clinic is known.

    The app role may not read staff_user outside its clinic, so this one function, owned
    by the migration role and running with its rights, returns the few columns sign-in
    needs for one exact e-mail address, and nothing else. The owner reads through a policy
    of its own because FORCE ROW LEVEL SECURITY applies to owners too.
    """
    op.execute(
        "CREATE POLICY staff_user_login_lookup ON staff_user FOR SELECT "
        "TO CURRENT_USER USING (true)"
    )
    op.execute(
        """
        CREATE FUNCTION login_candidates(p_email text)
        RETURNS TABLE (clinic_id uuid, user_id uuid, role text, password_hash text,
                       is_active boolean, clinic_slug text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT u.clinic_id, u.id, u.role, u.password_hash, u.is_active, c.slug
            FROM staff_user u JOIN clinic c ON c.id = u.clinic_id
            WHERE u.email = lower(p_email) AND u.deleted_at IS NULL
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION login_candidates(text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION login_candidates(text) TO {APP_DB_ROLE}")
    op.execute(
        "CREATE POLICY clinic_login_lookup ON clinic FOR SELECT TO CURRENT_USER USING (true)"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION login_candidates(text)")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_DB_ROLE}")
    op.execute(f"REVOKE ALL ON SEQUENCE server_version_seq FROM {APP_DB_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_DB_ROLE}")
    op.drop_table("availability_rule")
    op.drop_table("availability_exception")
    op.drop_index("ix_appointment_provider_starts", table_name="appointment")
    op.drop_index("ix_appointment_patient", table_name="appointment")
    op.drop_table("appointment")
    op.drop_index("ix_refresh_token_family", table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_table("provider")
    op.drop_index("ix_staff_user_email", table_name="staff_user")
    op.drop_table("staff_user")
    op.drop_index("ix_patient_clinic_id_family_name", table_name="patient")
    op.drop_table("patient")
    op.drop_table("device")
    op.drop_index("ix_audit_event_entity", table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_table("login_throttle")
    op.drop_table("clinic")
    op.execute("DROP FUNCTION bump_server_version()")
    op.execute("DROP SEQUENCE server_version_seq")
