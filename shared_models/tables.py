"""Table definitions shared by the server (PostgreSQL) and the desktop store (SQLCipher).

Every tenant table carries `clinic_id`, has it first in its primary key and in every
unique constraint, and points at its parents through `(clinic_id, parent_id)`, so no row
can reference another clinic's row and a duplicate-key error never crosses clinics.
Synced tables also carry `server_version`, `updated_hlc`, `updated_by_device` and
`deleted_at` (DESIGN section 4).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared_models.types import UTCDateTime

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONDoc = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sync_columns() -> list[Column[object]]:
    return [
        Column("server_version", BigInteger, nullable=False, server_default="0"),
        # Server only: the id of the transaction that wrote this version (the pull cursor
        # works on these, because sequence order is not commit order).
        Column("version_xid", BigInteger, nullable=True),
        Column("updated_hlc", String(40), nullable=True),
        # The hybrid-clock stamp of the last write of each field: field-level merges.
        Column("field_stamps", JSONDoc, nullable=True),
        Column("updated_by_device", Uuid, nullable=True),
        Column("deleted_at", UTCDateTime, nullable=True),
        Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
        Column("updated_at", UTCDateTime, nullable=False, server_default=func.now()),
    ]


def _parent(column: str, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["clinic_id", column], [f"{table}.clinic_id", f"{table}.id"], ondelete="RESTRICT"
    )


clinic = Table(
    "clinic",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("default_locale", String(10), nullable=False, server_default="es"),
    # ISO 3166 country whose numbering plan applies to phone numbers typed without "+".
    Column("country", String(2), nullable=False, server_default="MX"),
    Column("next_mrn", Integer, nullable=False, server_default="1"),
    # ISO 4217 code of the money the front desk takes (schemas/payments.py lists them).
    Column("currency", String(3), nullable=False, server_default="MXN"),
    # The next receipt number; drawn in the transaction that takes the payment, so the
    # numbering has no gaps.
    Column("next_receipt", Integer, nullable=False, server_default="1"),
    # Booking policy: how far ahead, how soon, and until when a patient may cancel.
    Column("booking_horizon_days", Integer, nullable=False, server_default="60"),
    Column("min_notice_minutes", Integer, nullable=False, server_default="60"),
    Column("cancel_cutoff_minutes", Integer, nullable=False, server_default="120"),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
)

staff_user = Table(
    "staff_user",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("email", String(320), nullable=False),
    Column("full_name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    *_sync_columns(),
    # A pharmacist's pharmacy: they see the prescriptions routed to it and no others.
    Column("pharmacy_id", Uuid, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "email"),
    ForeignKeyConstraint(["clinic_id", "pharmacy_id"], ["pharmacy.clinic_id", "pharmacy.id"],
                         ondelete="RESTRICT", use_alter=True),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
    CheckConstraint(
        "role IN ('admin', 'receptionist', 'doctor', 'lab_tech', 'pharmacist')", name="role"
    ),
    CheckConstraint("email = lower(email)", name="email_lower"),
)
Index("ix_staff_user_email", staff_user.c.email)

device = Table(
    "device",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("enrolled_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_seen_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    # Enrolment: the SHA-256 of a one-time code an admin hands out, until it is used; then
    # the SHA-256 of the device's own secret, which it presents when staff sign in on it.
    Column("code_hash", String(64), nullable=True),
    Column("code_expires_at", UTCDateTime, nullable=True),
    Column("secret_hash", String(64), nullable=True),
    Column("enrolled_by", Uuid, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)
# Not unique: unique keys carry clinic_id, and enrolment refuses a code that matches twice.
Index("ix_device_code_hash", device.c.code_hash,
      postgresql_where=device.c.code_hash.isnot(None),
      sqlite_where=device.c.code_hash.isnot(None))

# A rollout: one code that enrols up to `computers` computers (clinic IT installs the app
# on many at once, e.g. the MSI's ENROLMENT_CODE through group policy). Each computer that
# uses it becomes its own device, named after the rollout, and can be revoked alone.
device_rollout = Table(
    "device_rollout",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("code_hash", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("computers", Integer, nullable=False),
    Column("enrolled", Integer, nullable=False, server_default="0"),
    Column("created_by", Uuid, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("revoked_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
    CheckConstraint("computers BETWEEN 1 AND 500", name="computers_range"),
    CheckConstraint("enrolled BETWEEN 0 AND computers", name="enrolled_within"),
)
Index("ix_device_rollout_code_hash", device_rollout.c.code_hash)

patient = Table(
    "patient",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("mrn", String(32), nullable=False),
    Column("given_name", String(100), nullable=False),
    Column("family_name", String(100), nullable=False),
    Column("date_of_birth", Date, nullable=True),
    Column("sex", String(10), nullable=False, server_default="unknown"),
    Column("phone", String(20), nullable=True),
    Column("email", String(320), nullable=True),
    Column("preferred_language", String(10), nullable=False, server_default="es"),
    Column("preferred_channels", JSONDoc, nullable=False),
    Column("address", String(300), nullable=True),
    Column("needs_review", Boolean, nullable=False, server_default="false"),
    Column("search_text", Text, nullable=False, server_default=""),
    *_sync_columns(),
    # Columns added after the first release come last, where ALTER TABLE puts them.
    # IANA zone the patient lives in, when it is not the clinic's: reminders keep quiet
    # hours in it.
    Column("timezone", String(64), nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "mrn"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
    CheckConstraint("sex IN ('female', 'male', 'other', 'unknown')", name="sex"),
)
Index("ix_patient_clinic_id_family_name", patient.c.clinic_id, patient.c.family_name,
      patient.c.given_name, patient.c.id)

# The words a patient is found by (folded names, phone digits, record number), one row
# each. Search compares tokens by plain ranges (`token >= 'gonz' AND token < 'gona'`):
# those operators are leakproof, so PostgreSQL can use this index under row-level
# security, which full-text matching (`@@`) cannot. On the server a trigger, its only
# writer, keeps it in step with patient.search_text.
patient_search_token = Table(
    "patient_search_token",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("token", String(64).with_variant(String(64, collation="C"), "postgresql"),
           nullable=False),
    Column("patient_id", Uuid, nullable=False),
    # Copied from the patient so one index scan yields a page already in name order.
    Column("family_name", String(100), nullable=False),
    Column("given_name", String(100), nullable=False),
    PrimaryKeyConstraint("clinic_id", "token", "patient_id"),
)
# Rewriting one patient's tokens (on every rename or phone change) finds them by patient.
Index("ix_patient_search_token_patient", patient_search_token.c.clinic_id,
      patient_search_token.c.patient_id)
Index(
    "ix_patient_search_token_lookup",
    patient_search_token.c.clinic_id,
    patient_search_token.c.token,
    postgresql_include=["family_name", "given_name", "patient_id"],
)

provider = Table(
    "provider",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("display_name", String(200), nullable=False),
    Column("specialty", String(100), nullable=True),
    Column("user_id", Uuid, nullable=True),
    Column("color", String(7), nullable=True),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("user_id", "staff_user"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)

availability_rule = Table(
    "availability_rule",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("provider_id", Uuid, nullable=False),
    Column("weekday", SmallInteger, nullable=False),
    Column("start_time", Time, nullable=False),
    Column("end_time", Time, nullable=False),
    Column("slot_minutes", SmallInteger, nullable=False),
    Column("buffer_minutes", SmallInteger, nullable=False, server_default="0"),
    Column("break_start", Time, nullable=True),
    Column("break_end", Time, nullable=True),
    Column("valid_from", Date, nullable=True),
    Column("valid_until", Date, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("provider_id", "provider"),
    CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
    CheckConstraint("start_time < end_time", name="hours"),
    CheckConstraint("slot_minutes BETWEEN 5 AND 480", name="slot_minutes"),
    CheckConstraint("buffer_minutes BETWEEN 0 AND 240", name="buffer_minutes"),
    CheckConstraint(
        "(break_start IS NULL) = (break_end IS NULL) AND "
        "(break_start IS NULL OR (start_time <= break_start AND break_start < break_end "
        "AND break_end <= end_time))",
        name="break",
    ),
)

availability_exception = Table(
    "availability_exception",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("provider_id", Uuid, nullable=True),
    Column("kind", String(20), nullable=False),
    # For extra hours: the length of the slots offered in them.
    Column("slot_minutes", SmallInteger, nullable=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("reason", String(200), nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("provider_id", "provider"),
    CheckConstraint("kind IN ('time_off', 'extra_hours')", name="kind"),
    CheckConstraint(
        "kind = 'time_off' OR (provider_id IS NOT NULL AND slot_minutes BETWEEN 5 AND 480)",
        name="extra_hours",
    ),
    CheckConstraint("starts_at < ends_at", name="period"),
)

appointment = Table(
    "appointment",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("provider_id", Uuid, nullable=False),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("cancel_reason", String(500), nullable=True),
    Column("source", String(20), nullable=False, server_default="desk"),
    Column("created_by", Uuid, nullable=True),
    *_sync_columns(),
    # When the patient confirmed by answering a reminder; cleared by a reschedule.
    Column("confirmed_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("provider_id", "provider"),
    CheckConstraint("starts_at < ends_at", name="period"),
    CheckConstraint(
        "status IN ('pending', 'booked', 'checked_in', 'in_progress', 'completed', "
        "'cancelled', 'no_show', 'rejected')",
        name="status",
    ),
)
Index("ix_appointment_provider_starts", appointment.c.clinic_id, appointment.c.provider_id,
      appointment.c.starts_at)
Index("ix_appointment_patient", appointment.c.clinic_id, appointment.c.patient_id)
_ACTIVE_APPOINTMENT = text(
    "status IN ('pending', 'booked', 'checked_in', 'in_progress') AND deleted_at IS NULL"
)
Index("ix_appointment_active_provider", appointment.c.clinic_id, appointment.c.provider_id,
      appointment.c.starts_at, postgresql_where=_ACTIVE_APPOINTMENT,
      sqlite_where=_ACTIVE_APPOINTMENT)

# A clinical note: a draft while the doctor writes it, then signed and immutable (changes
# go in an addendum, with the clinical records). When two computers edited one draft
# offline, the text that lost is kept as a draft of its own pointing at the note
# (`conflict_of`), so both texts survive for the doctor to reconcile.
clinical_note = Table(
    "clinical_note",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("author_id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=True),
    Column("status", String(10), nullable=False, server_default="draft"),
    Column("body", Text, nullable=False, server_default=""),
    Column("conflict_of", Uuid, nullable=True),
    Column("signed_at", UTCDateTime, nullable=True),
    *_sync_columns(),
    # An addendum: a note of its own, added to a signed note that can no longer change.
    Column("addendum_to", Uuid, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("author_id", "staff_user"),
    _parent("appointment_id", "appointment"),
    _parent("conflict_of", "clinical_note"),
    _parent("addendum_to", "clinical_note"),
    CheckConstraint("status IN ('draft', 'signed')", name="status"),
    CheckConstraint("(status = 'signed') = (signed_at IS NOT NULL)", name="signed"),
)
Index("ix_clinical_note_patient", clinical_note.c.clinic_id, clinical_note.c.patient_id)

# --- the chart: what a doctor records about a patient -----------------------------------
# Each is a plain synced record, merged field by field like demographics; an entry made
# in error is tombstoned, never erased.

allergy = Table(
    "allergy",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    # What the patient reacts to, as the doctor wrote it.
    Column("substance", String(200), nullable=False),
    # The formulary entry it matches (a medicine id or "class:<slug>"), when there is one:
    # what the prescribing check compares against.
    Column("formulary_ref", String(80), nullable=True),
    Column("reaction", String(300), nullable=True),
    Column("severity", String(10), nullable=False, server_default="unknown"),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("recorded_by", Uuid, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("recorded_by", "staff_user"),
    CheckConstraint("severity IN ('mild', 'moderate', 'severe', 'unknown')", name="severity"),
    CheckConstraint("status IN ('active', 'resolved')", name="status"),
)
Index("ix_allergy_patient", allergy.c.clinic_id, allergy.c.patient_id)

condition = Table(
    "condition",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("description", String(300), nullable=False),
    # ICD-10 code, when the doctor gives one.
    Column("code", String(10), nullable=True),
    Column("onset_date", Date, nullable=True),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("recorded_by", Uuid, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("recorded_by", "staff_user"),
    CheckConstraint("status IN ('active', 'resolved')", name="status"),
)
Index("ix_condition_patient", condition.c.clinic_id, condition.c.patient_id)

# What the patient takes, whoever prescribed it (an entry may come from a prescription).
medication = Table(
    "medication",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("medicine_id", String(80), nullable=True),
    Column("name", String(200), nullable=False),
    Column("dose", String(200), nullable=True),
    Column("status", String(10), nullable=False, server_default="active"),
    Column("started_on", Date, nullable=True),
    Column("stopped_on", Date, nullable=True),
    Column("prescription_id", Uuid, nullable=True),
    Column("recorded_by", Uuid, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("recorded_by", "staff_user"),
    CheckConstraint("status IN ('active', 'stopped')", name="status"),
    CheckConstraint("stopped_on IS NULL OR started_on IS NULL OR started_on <= stopped_on",
                    name="period"),
)
Index("ix_medication_patient", medication.c.clinic_id, medication.c.patient_id)

vital_signs = Table(
    "vital_signs",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=True),
    Column("measured_at", UTCDateTime, nullable=False),
    Column("systolic_mmhg", SmallInteger, nullable=True),
    Column("diastolic_mmhg", SmallInteger, nullable=True),
    Column("heart_rate_bpm", SmallInteger, nullable=True),
    Column("respiratory_rate", SmallInteger, nullable=True),
    Column("temperature_c", Float, nullable=True),
    Column("spo2_pct", SmallInteger, nullable=True),
    Column("weight_kg", Float, nullable=True),
    Column("height_cm", Float, nullable=True),
    Column("recorded_by", Uuid, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("appointment_id", "appointment"),
    _parent("recorded_by", "staff_user"),
)
Index("ix_vital_signs_patient", vital_signs.c.clinic_id, vital_signs.c.patient_id,
      vital_signs.c.measured_at)

# The clinic's directory of pharmacies a prescription can be sent to.
pharmacy = Table(
    "pharmacy",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("name", String(200), nullable=False),
    Column("address", String(300), nullable=False),
    # The health authority's licence number of the establishment.
    Column("registry_number", String(50), nullable=False),
    Column("phone", String(20), nullable=True),
    Column("is_active", Boolean, nullable=False, server_default="true"),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "registry_number"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)

# A prescriber's public key. The private half never leaves the doctor's computer; a key
# signs nothing the server accepts until an admin approves it, and none once revoked.
signing_key = Table(
    "signing_key",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("device_id", Uuid, nullable=True),
    # SubjectPublicKeyInfo, PEM; ECDSA P-256.
    Column("public_key", Text, nullable=False),
    # SHA-256 of the DER public key, hex: what staff compare when approving.
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(10), nullable=False, server_default="pending"),
    Column("approved_at", UTCDateTime, nullable=True),
    Column("approved_by", Uuid, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("revoked_by", Uuid, nullable=True),
    Column("revoke_reason", String(300), nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "fingerprint"),
    _parent("user_id", "staff_user"),
    _parent("approved_by", "staff_user"),
    _parent("revoked_by", "staff_user"),
    CheckConstraint("status IN ('pending', 'active', 'revoked')", name="status"),
    CheckConstraint("status <> 'active' OR approved_at IS NOT NULL", name="approved"),
    CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revoked"),
)
Index("ix_signing_key_user", signing_key.c.clinic_id, signing_key.c.user_id)

# A signed prescription. Its clinical content (this row's signed columns and its items)
# is what the prescriber's key signed, canonically encoded (shared_models/signing.py);
# the database refuses any change to it. Only the status moves, and only forward.
prescription = Table(
    "prescription",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("prescriber_id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=True),
    Column("signed_at", UTCDateTime, nullable=False),
    Column("formulary_version", String(20), nullable=False),
    Column("notes", String(1000), nullable=True),
    # The warnings the prescriber acknowledged, each with the reason given.
    Column("acknowledgements", JSONDoc, nullable=False),
    Column("signing_key_id", Uuid, nullable=False),
    # ECDSA P-256 over SHA-256, DER, base64.
    Column("signature", String(200), nullable=False),
    # Routing and status: outside the signature; a patient may take it elsewhere.
    Column("pharmacy_id", Uuid, nullable=True),
    Column("status", String(12), nullable=False),
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("status_changed_by", Uuid, nullable=True),
    # Why a pharmacist refused it or the prescriber cancelled it.
    Column("status_reason", String(500), nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("prescriber_id", "staff_user"),
    _parent("appointment_id", "appointment"),
    _parent("signing_key_id", "signing_key"),
    _parent("pharmacy_id", "pharmacy"),
    _parent("status_changed_by", "staff_user"),
    CheckConstraint("status IN ('signed', 'sent', 'received', 'dispensed', 'refused', "
                    "'cancelled')", name="status"),
    CheckConstraint("status NOT IN ('sent', 'received', 'dispensed', 'refused') OR "
                    "pharmacy_id IS NOT NULL", name="routed"),
)
Index("ix_prescription_patient", prescription.c.clinic_id, prescription.c.patient_id)
Index("ix_prescription_pharmacy", prescription.c.clinic_id, prescription.c.pharmacy_id,
      prescription.c.status)

prescription_item = Table(
    "prescription_item",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("prescription_id", Uuid, nullable=False),
    Column("position", SmallInteger, nullable=False),
    Column("medicine_id", String(80), nullable=False),
    Column("medicine_name", String(200), nullable=False),
    Column("strength", String(50), nullable=False),
    Column("form", String(30), nullable=False),
    Column("dose", String(100), nullable=False),
    Column("route", String(30), nullable=False),
    Column("frequency", String(100), nullable=False),
    Column("duration_days", SmallInteger, nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("refills", SmallInteger, nullable=False, server_default="0"),
    Column("instructions", String(500), nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "prescription_id", "position"),
    _parent("prescription_id", "prescription"),
    CheckConstraint("quantity > 0", name="quantity"),
    CheckConstraint("refills BETWEEN 0 AND 11", name="refills"),
    CheckConstraint("duration_days IS NULL OR duration_days BETWEEN 1 AND 365",
                    name="duration"),
)

lab_order = Table(
    "lab_order",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("ordered_by", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=True),
    # Codes of the lab catalogue (shared_models/lab_tests.py), in the order requested.
    Column("tests", JSONDoc, nullable=False),
    Column("priority", String(10), nullable=False, server_default="routine"),
    Column("clinical_info", String(500), nullable=True),
    Column("status", String(16), nullable=False, server_default="ordered"),
    Column("status_changed_at", UTCDateTime, nullable=True),
    Column("status_changed_by", Uuid, nullable=True),
    Column("status_reason", String(500), nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("patient_id", "patient"),
    _parent("ordered_by", "staff_user"),
    _parent("appointment_id", "appointment"),
    _parent("status_changed_by", "staff_user"),
    CheckConstraint("priority IN ('routine', 'urgent')", name="priority"),
    CheckConstraint("status IN ('ordered', 'sample_received', 'processing', 'completed', "
                    "'cancelled')", name="status"),
    CheckConstraint("(status = 'completed') = (completed_at IS NOT NULL)", name="completed"),
)
Index("ix_lab_order_patient", lab_order.c.clinic_id, lab_order.c.patient_id)
Index("ix_lab_order_status", lab_order.c.clinic_id, lab_order.c.status)

# One measured value of an order. The flag is worked out from the value and the range
# (shared_models/lab_tests.py) when the result is entered.
lab_result = Table(
    "lab_result",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("lab_order_id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("test_code", String(32), nullable=False),
    Column("analyte", String(32), nullable=False),
    Column("value", String(100), nullable=False),
    Column("value_numeric", Float, nullable=True),
    Column("unit", String(30), nullable=True),
    Column("ref_low", Float, nullable=True),
    Column("ref_high", Float, nullable=True),
    Column("ref_text", String(100), nullable=True),
    Column("flag", String(16), nullable=False, server_default="normal"),
    Column("entered_by", Uuid, nullable=False),
    Column("entered_at", UTCDateTime, nullable=False),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "lab_order_id", "test_code", "analyte"),
    _parent("lab_order_id", "lab_order"),
    _parent("patient_id", "patient"),
    _parent("entered_by", "staff_user"),
    CheckConstraint("flag IN ('normal', 'low', 'high', 'critical_low', 'critical_high', "
                    "'abnormal')", name="flag"),
)
Index("ix_lab_result_patient", lab_result.c.clinic_id, lab_result.c.patient_id)

# Money taken at the front desk for a visit. Never edited or deleted once taken: a
# mistake is voided (voided_at, voided_by and void_reason, set once) and taken again, so
# the record of what was received stays whole. The database refuses any other change
# (migration 0010). The amount is an integer of minor units beside its currency.
payment = Table(
    "payment",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=False),
    Column("patient_id", Uuid, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("method", String(10), nullable=False),
    # Card voucher or transfer number.
    Column("reference", String(100), nullable=True),
    Column("received_by", Uuid, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # Numbered by the server; a computer that took it offline shows a placeholder until then.
    Column("receipt_number", String(40), nullable=False),
    Column("voided_at", UTCDateTime, nullable=True),
    Column("voided_by", Uuid, nullable=True),
    Column("void_reason", String(500), nullable=True),
    *_sync_columns(),
    PrimaryKeyConstraint("clinic_id", "id"),
    UniqueConstraint("clinic_id", "receipt_number"),
    _parent("appointment_id", "appointment"),
    _parent("patient_id", "patient"),
    _parent("received_by", "staff_user"),
    _parent("voided_by", "staff_user"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("length(currency) = 3 AND upper(currency) = currency", name="currency"),
    CheckConstraint("method IN ('cash', 'card', 'transfer')", name="method"),
    CheckConstraint("(voided_at IS NULL) = (void_reason IS NULL) AND "
                    "(voided_at IS NULL) = (voided_by IS NULL)", name="void"),
)
Index("ix_payment_appointment", payment.c.clinic_id, payment.c.appointment_id)
Index("ix_payment_patient", payment.c.clinic_id, payment.c.patient_id)
Index("ix_payment_received_at", payment.c.clinic_id, payment.c.received_at)

refresh_token = Table(
    "refresh_token",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("family_id", Uuid, nullable=False),
    Column("user_id", Uuid, nullable=False),
    Column("device_id", Uuid, nullable=True),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("user_id", "staff_user"),
)
Index("ix_refresh_token_family", refresh_token.c.clinic_id, refresh_token.c.family_id)

audit_event = Table(
    "audit_event",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("actor_user_id", Uuid, nullable=True),
    Column("actor_device_id", Uuid, nullable=True),
    Column("client_addr", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("entity_id", Uuid, nullable=True),
    Column("detail", JSONDoc, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)
Index("ix_audit_event_entity", audit_event.c.clinic_id, audit_event.c.entity,
      audit_event.c.entity_id)

# Not tenant data: counters of failed logins keyed by a hashed account or a client address.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime, nullable=True),
)

# Server only: an appointment a patient booked on the booking page. `phone_key` is a keyed
# hash of the phone typed (caps one phone's upcoming web bookings without storing the
# number again); `request_id` is the form's one-time id, so a form sent twice books once.
web_booking = Table(
    "web_booking",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=False),
    Column("phone_key", String(64), nullable=False),
    Column("request_id", Uuid, nullable=True),
    Column("reminders", Boolean, nullable=False, server_default="false"),
    Column("language", String(10), nullable=False, server_default="es"),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("clinic_id", "appointment_id"),
    UniqueConstraint("clinic_id", "request_id"),
    _parent("appointment_id", "appointment"),
)
Index("ix_web_booking_phone", web_booking.c.clinic_id, web_booking.c.phone_key)

# Not tenant data: booking-page submissions counted per hashed key (client address or
# phone, with the clinic) inside a window, shared by every server process.
booking_throttle = Table(
    "booking_throttle",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("hits", Integer, nullable=False),
    Column("window_started_at", UTCDateTime, nullable=False),
)
Index("ix_booking_throttle_window", booking_throttle.c.window_started_at)

# Server only: a clinic's reminder policy. No row: the defaults below.
reminder_policy = Table(
    "reminder_policy",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    # Minutes before the appointment, e.g. [1440, 120] for a day and two hours before.
    Column("offsets_minutes", JSONDoc, nullable=False),
    # No message reaches a patient between these local times (patient's zone).
    Column("quiet_start", Time, nullable=False),
    Column("quiet_end", Time, nullable=False),
    # The clinic's own wording of the short (SMS/WhatsApp) messages, by kind and language.
    Column("templates", JSONDoc, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("updated_by", Uuid, nullable=True),
    PrimaryKeyConstraint("clinic_id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)

# Server only: one message to a patient, and the queue the dispatchers share
# (sync_server/reminders/dispatcher.py). About an appointment: `kind` reminder is sent
# `offset_minutes` before `appointment_starts_at`; rescheduled and cancelled are notices
# sent when that happens; `calendar_sequence` is the SEQUENCE of the .ics it carries.
# About the patient's care: prescription_ready (a pharmacy has it ready) and
# results_ready (lab results are in), which name no appointment.
reminder = Table(
    "reminder",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("appointment_id", Uuid, nullable=True),
    Column("patient_id", Uuid, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("offset_minutes", Integer, nullable=True),
    Column("appointment_starts_at", UTCDateTime, nullable=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", UTCDateTime, nullable=True),
    Column("leased_by", String(100), nullable=True),
    Column("calendar_sequence", Integer, nullable=False, server_default="0"),
    # Channels that refused this patient's address for good (an invalid number).
    Column("refused_channels", JSONDoc, nullable=False),
    Column("channel", String(20), nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("provider_message_id", String(100), nullable=True),
    # An error code and a short reason from the channel; never message text or addresses.
    Column("last_error", String(300), nullable=True),
    # Keyed hash of the phone a text message went to, to match the patient's reply.
    Column("reply_key", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("updated_at", UTCDateTime, nullable=False, server_default=func.now()),
    # What a care notice is about (added with them, hence last).
    Column("prescription_id", Uuid, nullable=True),
    Column("lab_order_id", Uuid, nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("appointment_id", "appointment"),
    _parent("patient_id", "patient"),
    _parent("prescription_id", "prescription"),
    _parent("lab_order_id", "lab_order"),
    CheckConstraint("kind IN ('reminder', 'rescheduled', 'cancelled', 'prescription_ready', "
                    "'results_ready')", name="kind"),
    CheckConstraint("(kind IN ('reminder', 'rescheduled', 'cancelled')) = "
                    "(appointment_id IS NOT NULL AND appointment_starts_at IS NOT NULL)",
                    name="subject_appointment"),
    CheckConstraint("(kind = 'prescription_ready') = (prescription_id IS NOT NULL)",
                    name="subject_prescription"),
    CheckConstraint("(kind = 'results_ready') = (lab_order_id IS NOT NULL)",
                    name="subject_lab_order"),
    CheckConstraint("status IN ('pending', 'sent', 'dead', 'cancelled', 'skipped')",
                    name="status"),
    CheckConstraint("(kind = 'reminder') = (offset_minutes IS NOT NULL)", name="offset"),
)
_PENDING = text("status = 'pending'")
# The queue: every clinic's due rows in one index (dispatchers claim across clinics).
Index("ix_reminder_queue", reminder.c.next_attempt_at, postgresql_where=_PENDING,
      sqlite_where=_PENDING)
Index("ix_reminder_appointment", reminder.c.clinic_id, reminder.c.appointment_id)
Index("ix_reminder_dead", reminder.c.clinic_id, reminder.c.updated_at,
      postgresql_where=text("status = 'dead'"), sqlite_where=text("status = 'dead'"))
Index("ix_reminder_due_at", reminder.c.clinic_id, reminder.c.due_at)
Index("ix_reminder_reply_key", reminder.c.clinic_id, reminder.c.reply_key, reminder.c.sent_at,
      postgresql_where=text("reply_key IS NOT NULL"), sqlite_where=text("reply_key IS NOT NULL"))

# Server only: each try of a reminder on one channel, and what came of it.
reminder_attempt = Table(
    "reminder_attempt",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("reminder_id", Uuid, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("error", String(300), nullable=True),
    Column("provider_message_id", String(100), nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    _parent("reminder_id", "reminder"),
    CheckConstraint("outcome IN ('delivered', 'temporary_failure', 'permanent_failure')",
                    name="outcome"),
)
Index("ix_reminder_attempt_reminder", reminder_attempt.c.clinic_id,
      reminder_attempt.c.reminder_id, reminder_attempt.c.attempted_at)

# Sync bookkeeping (server): each pushed mutation and the result it got, so a replayed
# batch is answered from here and changes nothing.
sync_mutation = Table(
    "sync_mutation",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("mutation_id", Uuid, nullable=False),
    Column("device_id", Uuid, nullable=True),
    Column("user_id", Uuid, nullable=True),
    Column("received_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("result", JSONDoc, nullable=True),
    PrimaryKeyConstraint("clinic_id", "mutation_id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
)

# A value that lost a field-level merge, kept for staff to review and restore.
sync_conflict = Table(
    "sync_conflict",
    metadata,
    Column("clinic_id", Uuid, nullable=False),
    Column("id", Uuid, nullable=False),
    Column("entity", String(40), nullable=False),
    Column("record_id", Uuid, nullable=False),
    Column("field", String(64), nullable=False),
    Column("kept", JSONDoc, nullable=True),
    Column("lost", JSONDoc, nullable=True),
    Column("winner", String(10), nullable=False),
    Column("mutation_id", Uuid, nullable=True),
    Column("device_id", Uuid, nullable=True),
    Column("user_id", Uuid, nullable=True),
    Column("created_at", UTCDateTime, nullable=False, server_default=func.now()),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", Uuid, nullable=True),
    # What the reviewer chose: keep the record as it is, or restore the lost value.
    Column("resolution", String(10), nullable=True),
    PrimaryKeyConstraint("clinic_id", "id"),
    ForeignKeyConstraint(["clinic_id"], ["clinic.id"], ondelete="RESTRICT"),
    CheckConstraint("winner IN ('device', 'server')", name="winner"),
    CheckConstraint("(resolved_at IS NULL) = (resolution IS NULL) AND "
                    "(resolution IS NULL OR resolution IN ('current', 'lost'))",
                    name="resolution"),
)
Index("ix_sync_conflict_open", sync_conflict.c.clinic_id, sync_conflict.c.resolved_at,
      sync_conflict.c.created_at)

SYNCED_TABLES = (
    staff_user,
    patient,
    provider,
    availability_rule,
    availability_exception,
    appointment,
    clinical_note,
    payment,
    allergy,
    condition,
    medication,
    vital_signs,
    pharmacy,
    signing_key,
    prescription,
    prescription_item,
    lab_order,
    lab_result,
)

for _table in SYNCED_TABLES:
    Index(f"ix_{_table.name}_clinic_id_version_xid", _table.c.clinic_id, _table.c.version_xid,
          _table.c.server_version)
