"""Versions of the local store's schema, and the steps that carry an older store forward.

A store can hold changes typed offline that no server has seen yet, so it is never rebuilt
from the server: a release that changes an existing local table (a column, an index, a
data move) appends one step here, and `open_store` runs the pending steps and records the
new version (SQLite's `user_version`) in a single transaction, after copying the file
aside. A brand-new table needs no step: `open_store` creates missing tables on every open.

Version 1 is the schema of the stores created before versioning; their `user_version` is
still 0. A released step is never edited or reordered, only followed by the next one. To
restore a backup, rename `<store>.v<N>.bak` over the store: it opens with the same key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection

from desktop.store import search

Step = Callable[[Connection], None]

FIRST_VERSION = 1


def _outbox_attempts_and_last_error(conn: Connection) -> None:
    """Version 2: how often pushing a change failed, and why, kept on the change itself."""
    conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN last_error TEXT")


# Tables the first stores created from the shared metadata although only the server uses
# them (accounts, devices, audit, sync bookkeeping). They were always empty here.
_SERVER_ONLY = ("sync_conflict", "sync_mutation", "login_throttle", "audit_event",
                "refresh_token", "patient_search_token", "device", "staff_user", "clinic")


def _drop_server_only_tables(conn: Connection) -> None:
    """Version 3: the store holds only what the device uses; a server table changing no
    longer needs a step here."""
    for table in _SERVER_ONLY:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")


def _patient_search_index(conn: Connection) -> None:
    """Version 4: patients found as you type, through a full-text index."""
    search.create_index(conn)
    search.rebuild_index(conn)


def _reminder_fields(conn: Connection) -> None:
    """Version 5: the patient's own time zone (reminders keep quiet hours in it) and when
    a patient confirmed an appointment by replying to a reminder."""
    conn.exec_driver_sql("ALTER TABLE patient ADD COLUMN timezone VARCHAR(64)")
    conn.exec_driver_sql("ALTER TABLE appointment ADD COLUMN confirmed_at DATETIME")


# clinical_note as version 6 has it, written out: a released step must keep building the
# same table whatever the shared definition becomes later.
_CLINICAL_NOTE_V6 = """
CREATE TABLE clinical_note_v6 (
    clinic_id CHAR(32) NOT NULL,
    id CHAR(32) NOT NULL,
    patient_id CHAR(32) NOT NULL,
    author_id CHAR(32) NOT NULL,
    appointment_id CHAR(32),
    status VARCHAR(10) DEFAULT 'draft' NOT NULL,
    body TEXT DEFAULT '' NOT NULL,
    conflict_of CHAR(32),
    signed_at DATETIME,
    server_version BIGINT DEFAULT '0' NOT NULL,
    version_xid BIGINT,
    updated_hlc VARCHAR(40),
    field_stamps JSON,
    updated_by_device CHAR(32),
    deleted_at DATETIME,
    created_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    updated_at DATETIME DEFAULT CURRENT_TIMESTAMP NOT NULL,
    addendum_to CHAR(32),
    CONSTRAINT pk_clinical_note PRIMARY KEY (clinic_id, id),
    CONSTRAINT fk_clinical_note_clinic_id_patient_id_patient FOREIGN KEY(clinic_id, patient_id)
        REFERENCES patient (clinic_id, id) ON DELETE RESTRICT,
    CONSTRAINT fk_clinical_note_clinic_id_author_id_staff_user FOREIGN KEY(clinic_id, author_id)
        REFERENCES staff_user (clinic_id, id) ON DELETE RESTRICT,
    CONSTRAINT fk_clinical_note_clinic_id_appointment_id_appointment
        FOREIGN KEY(clinic_id, appointment_id)
        REFERENCES appointment (clinic_id, id) ON DELETE RESTRICT,
    CONSTRAINT fk_clinical_note_clinic_id_conflict_of_clinical_note
        FOREIGN KEY(clinic_id, conflict_of)
        REFERENCES clinical_note (clinic_id, id) ON DELETE RESTRICT,
    CONSTRAINT fk_clinical_note_clinic_id_addendum_to_clinical_note
        FOREIGN KEY(clinic_id, addendum_to)
        REFERENCES clinical_note (clinic_id, id) ON DELETE RESTRICT,
    CONSTRAINT ck_clinical_note_status CHECK (status IN ('draft', 'signed')),
    CONSTRAINT ck_clinical_note_signed CHECK ((status = 'signed') = (signed_at IS NOT NULL))
)"""
_COPY_V5_NOTES = (
    "INSERT INTO clinical_note_v6 (clinic_id, id, patient_id, author_id, appointment_id, "
    "status, body, conflict_of, signed_at, server_version, version_xid, updated_hlc, "
    "field_stamps, updated_by_device, deleted_at, created_at, updated_at) "
    "SELECT clinic_id, id, patient_id, author_id, appointment_id, status, body, conflict_of, "
    "signed_at, server_version, version_xid, updated_hlc, field_stamps, updated_by_device, "
    "deleted_at, created_at, updated_at FROM clinical_note")
_CLINICAL_NOTE_V6_INDEXES = (
    "CREATE INDEX ix_clinical_note_clinic_id_version_xid "
    "ON clinical_note (clinic_id, version_xid, server_version)",
    "CREATE INDEX ix_clinical_note_patient ON clinical_note (clinic_id, patient_id)",
    "CREATE UNIQUE INDEX ix_local_clinical_note_id ON clinical_note (id)",
)


def _note_addenda(conn: Connection) -> None:
    """Version 6: a note can be an addendum to a signed note (`addendum_to`).

    ALTER TABLE can add the column but not its foreign key, and a store that was upgraded
    must not differ from a new one; so the table is rebuilt the way SQLite documents
    (new table, copy, drop, rename), with its indexes. Foreign keys are off on the store's
    connections, so dropping the old table touches no other row. A store older than notes
    has no such table yet; opening it creates the table as it is now.
    """
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                            "AND name = 'clinical_note'").first() is None:
        return
    conn.exec_driver_sql(_CLINICAL_NOTE_V6)
    conn.exec_driver_sql(_COPY_V5_NOTES)
    conn.exec_driver_sql("DROP TABLE clinical_note")
    conn.exec_driver_sql("ALTER TABLE clinical_note_v6 RENAME TO clinical_note")
    for statement in _CLINICAL_NOTE_V6_INDEXES:
        conn.exec_driver_sql(statement)


# STEPS[n] takes a store from version FIRST_VERSION + n to the version after it.
STEPS: tuple[Step, ...] = (
    _outbox_attempts_and_last_error,
    _drop_server_only_tables,
    _patient_search_index,
    _reminder_fields,
    _note_addenda,
)
LATEST_VERSION = FIRST_VERSION + len(STEPS)


def stored_version(conn: Connection) -> int | None:
    """The schema version of the open store, or None for a file with no tables yet."""
    version = int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())
    if version:
        return version
    has_tables = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").first() is not None
    return FIRST_VERSION if has_tables else None


def stamp(conn: Connection, version: int) -> None:
    """Record `version` in the file header; part of the caller's transaction."""
    # PRAGMA takes no bound parameters; the int() keeps the statement a plain number.
    conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")


def apply_steps(conn: Connection, from_version: int) -> None:
    """Run every step after `from_version` and stamp the latest version.

    The caller owns the transaction: it commits only when this returns, so a failure or a
    crash half-way leaves the store at `from_version`.
    """
    for step in STEPS[from_version - FIRST_VERSION:]:
        step(conn)
    stamp(conn, LATEST_VERSION)


def backup_path(store: Path, version: int) -> Path:
    return store.with_name(f"{store.name}.v{version}.bak")


def back_up(conn: Connection, store: Path, version: int) -> Path:
    """Copy the store, as it is at `version`, next to it; older copies are removed.

    `VACUUM INTO` runs on the store's own SQLCipher connection, which encrypts the copy
    with the store's key: the backup is no easier to read than the store. It must run
    outside a transaction.
    """
    target = backup_path(store, version)
    # The copy is written under another name first, so a crash mid-copy never leaves a
    # truncated file that looks like a backup.
    partial = target.with_name(f"{target.name}.partial")
    partial.unlink(missing_ok=True)
    conn.exec_driver_sql("VACUUM INTO ?", (str(partial),))
    partial.replace(target)
    for old in _backups(store):
        if old != target:
            old.unlink()
    return target


def _backups(store: Path) -> list[Path]:
    pattern = re.compile(re.escape(store.name) + r"\.v\d+\.bak")
    return [file for file in store.parent.iterdir() if pattern.fullmatch(file.name)]
