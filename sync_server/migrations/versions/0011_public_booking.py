"""The patient booking page: web bookings and their submission counters.

`web_booking` marks an appointment a patient booked on the booking page, with a keyed
hash of the phone number typed (to cap the upcoming bookings one phone may hold without
storing the number again), the form's one-time id (a form sent twice books once) and the
patient's consent to reminders. `booking_throttle` counts booking submissions per client
address and per phone inside a time window, in the database so that every server process
shares the counts; its keys are hashes and clinic ids, never a number or an address.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_booking",
        sa.Column("clinic_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("phone_key", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("reminders", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("language", sa.String(length=10), server_default="es", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id", "appointment_id"], ["appointment.clinic_id", "appointment.id"],
            ondelete="RESTRICT",
            name=op.f("fk_web_booking_clinic_id_appointment_id_appointment")),
        sa.PrimaryKeyConstraint("clinic_id", "appointment_id", name=op.f("pk_web_booking")),
        sa.UniqueConstraint("clinic_id", "request_id",
                            name=op.f("uq_web_booking_clinic_id_request_id")),
    )
    op.create_index("ix_web_booking_phone", "web_booking", ["clinic_id", "phone_key"])
    enable_tenant_rls("web_booking")
    grant_app("web_booking", "SELECT, INSERT")

    op.create_table(
        "booking_throttle",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_booking_throttle")),
    )
    op.create_index("ix_booking_throttle_window", "booking_throttle", ["window_started_at"])
    grant_app("booking_throttle", "SELECT, INSERT, UPDATE, DELETE")


def downgrade() -> None:
    op.drop_table("booking_throttle")
    op.drop_table("web_booking")
