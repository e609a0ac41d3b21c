"""Index the search tokens by patient: the trigger that rewrites a patient's tokens on
every change deleted them by scanning all of the clinic's tokens.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_patient_search_token_patient", "patient_search_token",
                    ["clinic_id", "patient_id"])


def downgrade() -> None:
    op.drop_index("ix_patient_search_token_patient", table_name="patient_search_token")
