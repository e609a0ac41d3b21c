"""Clinical records: the chart (allergies, conditions, medications, vital signs), signed
prescriptions with their items, the pharmacies they are sent to and the prescribers' public
keys, and lab orders with their results. Notes gain addenda; pharmacists their pharmacy.

What has been signed or completed cannot be changed by any path, so the database itself
refuses it: a prescription's signed content and its items never change and its status only
moves forward; a lab order's request never changes and its status only moves forward;
results are entered only between the sample's arrival and the order's closing; a signing
key stays bound to its owner and a revoked key stays revoked. Each refusal is a
check_violation naming its rule.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from sync_server.db.rls import enable_tenant_rls, grant_app

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# In creation order; downgrade drops them in reverse.
TABLES = ("allergy", "condition", "medication", "vital_signs", "pharmacy", "signing_key",
          "prescription", "prescription_item", "lab_order", "lab_result")


def _parent(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["clinic_id", column], [f"{parent}.clinic_id", f"{parent}.id"], ondelete="RESTRICT",
        name=op.f(f"fk_{table}_clinic_id_{column}_{parent}"))


def _check(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _key(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("clinic_id", "id", name=op.f(f"pk_{table}"))


def _ids() -> list[sa.Column[object]]:
    return [sa.Column("clinic_id", sa.Uuid(), nullable=False),
            sa.Column("id", sa.Uuid(), nullable=False)]


def _stamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"),
                     nullable=False)


def _sync_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("server_version", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version_xid", sa.BigInteger(), nullable=True),
        sa.Column("updated_hlc", sa.String(length=40), nullable=True),
        sa.Column("field_stamps", postgresql.JSONB(), nullable=True),
        sa.Column("updated_by_device", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        _stamp("created_at"),
        _stamp("updated_at"),
    ]


def _time(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _synced(table: str) -> None:
    op.create_index(f"ix_{table}_clinic_id_version_xid", table,
                    ["clinic_id", "version_xid", "server_version"])
    op.execute(
        f"CREATE TRIGGER {table}_server_version BEFORE INSERT OR UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION bump_server_version()"
    )
    enable_tenant_rls(table)
    # No DELETE: a synced record is tombstoned, never erased.
    grant_app(table, "SELECT, INSERT, UPDATE")


# Whether an UPDATE changes anything but the bookkeeping that bump_server_version() sets.
# clinic_id is left out here and in the rules below: row-level security and the foreign keys
# on (clinic_id, parent) refuse a move to another clinic with their own errors.
_CHANGED = ("to_jsonb(NEW) - '{clinic_id,server_version,version_xid,updated_at}'::text[] "
            "IS DISTINCT FROM "
            "to_jsonb(OLD) - '{clinic_id,server_version,version_xid,updated_at}'::text[]")

# (table, rule, events, condition, message): the trigger and its function are both named
# <table>_<rule>, which is also the CONSTRAINT the refusal names. The message is an SQL
# expression, so it can say which move was refused.
RULES: tuple[tuple[str, str, str, str, str], ...] = (
    ("signing_key", "is_final", "UPDATE",
     f"OLD.status = 'revoked' AND {_CHANGED}",
     "'a revoked signing key stays revoked; register a new key'"),
    ("signing_key", "owner_is_fixed", "UPDATE",
     "(NEW.id, NEW.user_id, NEW.public_key, NEW.fingerprint) "
     "IS DISTINCT FROM (OLD.id, OLD.user_id, OLD.public_key, OLD.fingerprint)",
     "'a signing key''s owner and public key cannot change; register a new key'"),
    ("signing_key", "status_forward", "UPDATE",
     "NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN "
     "(('pending', 'active'), ('pending', 'revoked'), ('active', 'revoked'))",
     "format('a signing key cannot go from %s to %s', OLD.status, NEW.status)"),
    # Once final, the row is the record of what happened: not even a tombstone may change.
    ("prescription", "is_final", "UPDATE",
     f"OLD.status IN ('dispensed', 'refused', 'cancelled') AND {_CHANGED}",
     "format('a %s prescription cannot change; write a new prescription', OLD.status)"),
    ("prescription", "signed_content", "UPDATE",
     "(NEW.id, NEW.patient_id, NEW.prescriber_id, NEW.appointment_id, "
     "NEW.signed_at, NEW.formulary_version, NEW.notes, NEW.acknowledgements, "
     "NEW.signing_key_id, NEW.signature) IS DISTINCT FROM "
     "(OLD.id, OLD.patient_id, OLD.prescriber_id, OLD.appointment_id, "
     "OLD.signed_at, OLD.formulary_version, OLD.notes, OLD.acknowledgements, "
     "OLD.signing_key_id, OLD.signature)",
     "'a signed prescription cannot change; cancel it and write a new one'"),
    ("prescription", "status_forward", "UPDATE",
     "NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN "
     "(('signed', 'sent'), ('signed', 'cancelled'), ('sent', 'received'), "
     "('sent', 'refused'), ('sent', 'cancelled'), ('received', 'dispensed'), "
     "('received', 'refused'))",
     "format('a prescription cannot go from %s to %s', OLD.status, NEW.status)"),
    # Before and after the change: a prescription is received, dispensed or refused by
    # the pharmacy it was sent to.
    ("prescription", "routing", "UPDATE",
     "NEW.pharmacy_id IS DISTINCT FROM OLD.pharmacy_id AND NOT "
     "(OLD.status IN ('signed', 'sent') AND NEW.status IN ('signed', 'sent'))",
     "format('a prescription changes pharmacy only while it is signed or sent, "
     "not from %s to %s', OLD.status, NEW.status)"),
    ("prescription_item", "is_signed", "UPDATE",
     _CHANGED,
     "'a signed prescription''s items cannot change; cancel it and write a new one'"),
    ("lab_order", "is_final", "UPDATE",
     f"OLD.status IN ('completed', 'cancelled') AND {_CHANGED}",
     "format('a %s lab order cannot change; order the tests again', OLD.status)"),
    ("lab_order", "request_is_fixed", "UPDATE",
     "(NEW.id, NEW.patient_id, NEW.ordered_by, NEW.tests, NEW.appointment_id) "
     "IS DISTINCT FROM (OLD.id, OLD.patient_id, OLD.ordered_by, OLD.tests, OLD.appointment_id)",
     "'what a lab order requests cannot change; cancel it and order again'"),
    ("lab_order", "status_forward", "UPDATE",
     "NEW.status IS DISTINCT FROM OLD.status AND (OLD.status, NEW.status) NOT IN "
     "(('ordered', 'sample_received'), ('ordered', 'cancelled'), "
     "('sample_received', 'processing'), ('sample_received', 'cancelled'), "
     "('processing', 'completed'), ('processing', 'cancelled'))",
     "format('a lab order cannot go from %s to %s', OLD.status, NEW.status)"),
)


def _create_rule(table: str, rule: str, events: str, condition: str, message: str) -> None:
    name = f"{table}_{rule}"
    op.execute(
        f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF {condition} THEN
                RAISE EXCEPTION USING ERRCODE = 'check_violation', CONSTRAINT = '{name}',
                    MESSAGE = {message};
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(f"CREATE TRIGGER {name} BEFORE {events} ON {table} "
               f"FOR EACH ROW EXECUTE FUNCTION {name}()")


def _create_lab_result_rule() -> None:
    # Results are entered once the lab has the sample and until the order is closed. The
    # order row is locked (FOR SHARE) so that it cannot be completed or cancelled by
    # another transaction between this check and the result's commit. An order this
    # transaction cannot see (another clinic's) is left to row-level security and the
    # foreign key, which refuse it with their own errors.
    op.execute(
        """
        CREATE FUNCTION lab_result_order_is_open() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE order_status text;
        BEGIN
            FOR order_status IN
                SELECT o.status FROM lab_order o
                WHERE (o.clinic_id, o.id) IN ((NEW.clinic_id, NEW.lab_order_id),
                                              (OLD.clinic_id, OLD.lab_order_id))
                FOR SHARE
            LOOP
                IF order_status NOT IN ('sample_received', 'processing') THEN
                    RAISE EXCEPTION USING ERRCODE = 'check_violation',
                        CONSTRAINT = 'lab_result_order_is_open',
                        MESSAGE = format('results are entered or changed only while the lab '
                                         'has the sample and the order is open (it is %s)',
                                         order_status);
                END IF;
            END LOOP;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute("CREATE TRIGGER lab_result_order_is_open BEFORE INSERT OR UPDATE ON lab_result "
               "FOR EACH ROW EXECUTE FUNCTION lab_result_order_is_open()")


def upgrade() -> None:
    op.add_column("clinical_note", sa.Column("addendum_to", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_clinical_note_clinic_id_addendum_to_clinical_note"), "clinical_note",
        "clinical_note", ["clinic_id", "addendum_to"], ["clinic_id", "id"], ondelete="RESTRICT")
    op.add_column("staff_user", sa.Column("pharmacy_id", sa.Uuid(), nullable=True))

    op.create_table(
        "allergy",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("substance", sa.String(length=200), nullable=False),
        sa.Column("formulary_ref", sa.String(length=80), nullable=True),
        sa.Column("reaction", sa.String(length=300), nullable=True),
        sa.Column("severity", sa.String(length=10), server_default="unknown", nullable=False),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        *_sync_columns(),
        _key("allergy"),
        _parent("allergy", "patient_id", "patient"),
        _parent("allergy", "recorded_by", "staff_user"),
        _check("allergy", "severity", "severity IN ('mild', 'moderate', 'severe', 'unknown')"),
        _check("allergy", "status", "status IN ('active', 'resolved')"),
    )
    op.create_index("ix_allergy_patient", "allergy", ["clinic_id", "patient_id"])

    op.create_table(
        "condition",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("description", sa.String(length=300), nullable=False),
        sa.Column("code", sa.String(length=10), nullable=True),
        sa.Column("onset_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        *_sync_columns(),
        _key("condition"),
        _parent("condition", "patient_id", "patient"),
        _parent("condition", "recorded_by", "staff_user"),
        _check("condition", "status", "status IN ('active', 'resolved')"),
    )
    op.create_index("ix_condition_patient", "condition", ["clinic_id", "patient_id"])

    op.create_table(
        "medication",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("medicine_id", sa.String(length=80), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dose", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="active", nullable=False),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("prescription_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        *_sync_columns(),
        _key("medication"),
        _parent("medication", "patient_id", "patient"),
        _parent("medication", "recorded_by", "staff_user"),
        _check("medication", "status", "status IN ('active', 'stopped')"),
        _check("medication", "period",
               "stopped_on IS NULL OR started_on IS NULL OR started_on <= stopped_on"),
    )
    op.create_index("ix_medication_patient", "medication", ["clinic_id", "patient_id"])

    op.create_table(
        "vital_signs",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        _time("measured_at", nullable=False),
        sa.Column("systolic_mmhg", sa.SmallInteger(), nullable=True),
        sa.Column("diastolic_mmhg", sa.SmallInteger(), nullable=True),
        sa.Column("heart_rate_bpm", sa.SmallInteger(), nullable=True),
        sa.Column("respiratory_rate", sa.SmallInteger(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("spo2_pct", sa.SmallInteger(), nullable=True),
        sa.Column("weight_kg", sa.Float(), nullable=True),
        sa.Column("height_cm", sa.Float(), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        *_sync_columns(),
        _key("vital_signs"),
        _parent("vital_signs", "patient_id", "patient"),
        _parent("vital_signs", "appointment_id", "appointment"),
        _parent("vital_signs", "recorded_by", "staff_user"),
    )
    op.create_index("ix_vital_signs_patient", "vital_signs",
                    ["clinic_id", "patient_id", "measured_at"])

    op.create_table(
        "pharmacy",
        *_ids(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("registry_number", sa.String(length=50), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        *_sync_columns(),
        _key("pharmacy"),
        sa.UniqueConstraint("clinic_id", "registry_number",
                            name=op.f("uq_pharmacy_clinic_id_registry_number")),
        sa.ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT",
                                name=op.f("fk_pharmacy_clinic_id_clinic")),
    )
    op.create_foreign_key(
        op.f("fk_staff_user_clinic_id_pharmacy_id_pharmacy"), "staff_user", "pharmacy",
        ["clinic_id", "pharmacy_id"], ["clinic_id", "id"], ondelete="RESTRICT")

    op.create_table(
        "signing_key",
        *_ids(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        _time("approved_at"),
        sa.Column("approved_by", sa.Uuid(), nullable=True),
        _time("revoked_at"),
        sa.Column("revoked_by", sa.Uuid(), nullable=True),
        sa.Column("revoke_reason", sa.String(length=300), nullable=True),
        *_sync_columns(),
        _key("signing_key"),
        sa.UniqueConstraint("clinic_id", "fingerprint",
                            name=op.f("uq_signing_key_clinic_id_fingerprint")),
        _parent("signing_key", "user_id", "staff_user"),
        _parent("signing_key", "approved_by", "staff_user"),
        _parent("signing_key", "revoked_by", "staff_user"),
        _check("signing_key", "status", "status IN ('pending', 'active', 'revoked')"),
        _check("signing_key", "approved", "status <> 'active' OR approved_at IS NOT NULL"),
        _check("signing_key", "revoked", "(status = 'revoked') = (revoked_at IS NOT NULL)"),
    )
    op.create_index("ix_signing_key_user", "signing_key", ["clinic_id", "user_id"])

    op.create_table(
        "prescription",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("prescriber_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        _time("signed_at", nullable=False),
        sa.Column("formulary_version", sa.String(length=20), nullable=False),
        sa.Column("notes", sa.String(length=1000), nullable=True),
        sa.Column("acknowledgements", postgresql.JSONB(), nullable=False),
        sa.Column("signing_key_id", sa.Uuid(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("pharmacy_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        _time("status_changed_at"),
        sa.Column("status_changed_by", sa.Uuid(), nullable=True),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        *_sync_columns(),
        _key("prescription"),
        _parent("prescription", "patient_id", "patient"),
        _parent("prescription", "prescriber_id", "staff_user"),
        _parent("prescription", "appointment_id", "appointment"),
        _parent("prescription", "signing_key_id", "signing_key"),
        _parent("prescription", "pharmacy_id", "pharmacy"),
        _parent("prescription", "status_changed_by", "staff_user"),
        _check("prescription", "status",
               "status IN ('signed', 'sent', 'received', 'dispensed', 'refused', 'cancelled')"),
        _check("prescription", "routed",
               "status NOT IN ('sent', 'received', 'dispensed', 'refused') OR "
               "pharmacy_id IS NOT NULL"),
    )
    op.create_index("ix_prescription_patient", "prescription", ["clinic_id", "patient_id"])
    op.create_index("ix_prescription_pharmacy", "prescription",
                    ["clinic_id", "pharmacy_id", "status"])

    op.create_table(
        "prescription_item",
        *_ids(),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("medicine_id", sa.String(length=80), nullable=False),
        sa.Column("medicine_name", sa.String(length=200), nullable=False),
        sa.Column("strength", sa.String(length=50), nullable=False),
        sa.Column("form", sa.String(length=30), nullable=False),
        sa.Column("dose", sa.String(length=100), nullable=False),
        sa.Column("route", sa.String(length=30), nullable=False),
        sa.Column("frequency", sa.String(length=100), nullable=False),
        sa.Column("duration_days", sa.SmallInteger(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("refills", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("instructions", sa.String(length=500), nullable=True),
        *_sync_columns(),
        _key("prescription_item"),
        sa.UniqueConstraint("clinic_id", "prescription_id", "position",
                            name=op.f("uq_prescription_item_clinic_id_prescription_id_position")),
        _parent("prescription_item", "prescription_id", "prescription"),
        _check("prescription_item", "quantity", "quantity > 0"),
        _check("prescription_item", "refills", "refills BETWEEN 0 AND 11"),
        _check("prescription_item", "duration",
               "duration_days IS NULL OR duration_days BETWEEN 1 AND 365"),
    )

    op.create_table(
        "lab_order",
        *_ids(),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("ordered_by", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("tests", postgresql.JSONB(), nullable=False),
        sa.Column("priority", sa.String(length=10), server_default="routine", nullable=False),
        sa.Column("clinical_info", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="ordered", nullable=False),
        _time("status_changed_at"),
        sa.Column("status_changed_by", sa.Uuid(), nullable=True),
        sa.Column("status_reason", sa.String(length=500), nullable=True),
        _time("completed_at"),
        *_sync_columns(),
        _key("lab_order"),
        _parent("lab_order", "patient_id", "patient"),
        _parent("lab_order", "ordered_by", "staff_user"),
        _parent("lab_order", "appointment_id", "appointment"),
        _parent("lab_order", "status_changed_by", "staff_user"),
        _check("lab_order", "priority", "priority IN ('routine', 'urgent')"),
        _check("lab_order", "status",
               "status IN ('ordered', 'sample_received', 'processing', 'completed', "
               "'cancelled')"),
        _check("lab_order", "completed", "(status = 'completed') = (completed_at IS NOT NULL)"),
    )
    op.create_index("ix_lab_order_patient", "lab_order", ["clinic_id", "patient_id"])
    op.create_index("ix_lab_order_status", "lab_order", ["clinic_id", "status"])

    op.create_table(
        "lab_result",
        *_ids(),
        sa.Column("lab_order_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("test_code", sa.String(length=32), nullable=False),
        sa.Column("analyte", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("value_numeric", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=30), nullable=True),
        sa.Column("ref_low", sa.Float(), nullable=True),
        sa.Column("ref_high", sa.Float(), nullable=True),
        sa.Column("ref_text", sa.String(length=100), nullable=True),
        sa.Column("flag", sa.String(length=16), server_default="normal", nullable=False),
        sa.Column("entered_by", sa.Uuid(), nullable=False),
        _time("entered_at", nullable=False),
        *_sync_columns(),
        _key("lab_result"),
        sa.UniqueConstraint("clinic_id", "lab_order_id", "test_code", "analyte",
                            name=op.f("uq_lab_result_clinic_id_lab_order_id_test_code_analyte")),
        _parent("lab_result", "lab_order_id", "lab_order"),
        _parent("lab_result", "patient_id", "patient"),
        _parent("lab_result", "entered_by", "staff_user"),
        _check("lab_result", "flag",
               "flag IN ('normal', 'low', 'high', 'critical_low', 'critical_high', "
               "'abnormal')"),
    )
    op.create_index("ix_lab_result_patient", "lab_result", ["clinic_id", "patient_id"])

    for table in TABLES:
        _synced(table)
    for rule in RULES:
        _create_rule(*rule)
    _create_lab_result_rule()


def downgrade() -> None:
    op.execute("DROP TRIGGER lab_result_order_is_open ON lab_result")
    op.execute("DROP FUNCTION lab_result_order_is_open()")
    for table, rule, *_ in reversed(RULES):
        op.execute(f"DROP TRIGGER {table}_{rule} ON {table}")
        op.execute(f"DROP FUNCTION {table}_{rule}()")
    op.drop_constraint(op.f("fk_staff_user_clinic_id_pharmacy_id_pharmacy"), "staff_user",
                       type_="foreignkey")
    for table in reversed(TABLES):
        # Dropping the table takes its indexes, policy, grants and triggers with it.
        op.drop_table(table)
    op.drop_column("staff_user", "pharmacy_id")
    op.drop_constraint(op.f("fk_clinical_note_clinic_id_addendum_to_clinical_note"),
                       "clinical_note", type_="foreignkey")
    op.drop_column("clinical_note", "addendum_to")
