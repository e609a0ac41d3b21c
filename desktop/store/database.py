"""Opening the SQLCipher-encrypted SQLite file that holds the desktop's local copy.

The caller supplies the 256-bit key (from the OS keyring, or unwrapped with the user's
passphrase); it is handed to SQLCipher as a raw key, never written anywhere. Opening also
brings a store written by an older release up to this one's schema without losing the
changes still waiting in its outbox (see `upgrades`), and refuses to touch a store written
by a newer release.

    StoreError
    ├── StoreKeyError        (keys.py adds WrongPassphrase and KeyUnavailable)
    ├── StoreVersionError
    └── StoreUpgradeError
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlcipher3
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import QueuePool

from desktop.store import search, upgrades
from desktop.store.local import local_metadata
from desktop.threads import check_not_gui_thread
from shared_models.tables import (
    allergy,
    appointment,
    availability_exception,
    availability_rule,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    metadata,
    patient,
    payment,
    pharmacy,
    prescription,
    prescription_item,
    provider,
    signing_key,
    vital_signs,
)

KEY_BYTES = 32
# The shared tables a computer keeps a copy of (what its users' roles pull and edit).
LOCAL_COPIES = (patient, provider, availability_rule, availability_exception, appointment,
                clinical_note, payment, allergy, condition, medication, vital_signs, pharmacy,
                signing_key, prescription, prescription_item, lab_order, lab_result)
# Opening a chart reads each of these by patient (or by parent), newest first. The shared
# indexes start with clinic_id, which the chart's queries do not name.
CHART_INDEXES = {
    "clinical_note": ("patient_id", "created_at"),
    "allergy": ("patient_id",),
    "condition": ("patient_id",),
    "medication": ("patient_id",),
    "vital_signs": ("patient_id", "measured_at"),
    "prescription": ("patient_id", "signed_at"),
    "prescription_item": ("prescription_id", "position"),
    "lab_order": ("patient_id", "created_at"),
    "lab_result": ("patient_id", "lab_order_id"),
    # Whether the server refused a prescription shown in the chart.
    "attention": ("record_id",),
}


class StoreError(Exception):
    """The local store cannot be opened as it is."""


class StoreKeyError(StoreError):
    """The key does not open this store (wrong key, or not a Consulta store)."""


class StoreVersionError(StoreError):
    """The store was written by a newer Consulta; this one leaves it untouched."""


class StoreUpgradeError(StoreError):
    """Bringing an older store up to date failed; the store was left as it was."""


def open_store(path: Path, key: bytes) -> Engine:
    """An engine on the encrypted file at `path`: created on first open, upgraded when an
    older release wrote it."""
    if len(key) != KEY_BYTES:
        raise ValueError("the store key must be 32 bytes")
    engine = _engine(path, key)
    try:
        with engine.connect() as conn:
            _prepare(conn, path)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _engine(path: Path, key: bytes) -> Engine:
    hex_key = key.hex()

    def connect() -> sqlcipher3.Connection:
        conn = sqlcipher3.connect(str(path), check_same_thread=False)
        conn.execute(f"PRAGMA key = \"x'{hex_key}'\"")
        # Foreign keys stay off: the local copy is partial by design (a device holds only
        # what its user's role needs, not clinics or staff), and the server enforces them.
        conn.execute("PRAGMA foreign_keys = OFF")
        # The patient search index's triggers compute each document with this.
        conn.create_function("consulta_search_document", 4, search.document,
                             deterministic=True)
        return conn

    # Connections are kept: opening one costs a key setup and, when the last one closes, a
    # WAL checkpoint. Each worker thread (store, network, page fetcher) holds its own.
    engine = create_engine("sqlite://", creator=connect, poolclass=QueuePool, pool_size=4)

    @event.listens_for(engine, "connect")
    def _check(dbapi_conn: sqlcipher3.Connection, _record: object) -> None:
        try:
            dbapi_conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            raise StoreKeyError(f"{path} cannot be opened with this key") from exc

    @event.listens_for(engine, "before_cursor_execute")
    def _off_the_gui_thread(*_args: object) -> None:
        check_not_gui_thread("a query on the local store")

    return engine


def _prepare(conn: Connection, path: Path) -> None:
    # Nothing is written before the version is known to be one this release understands.
    version = _known_version(conn, path)
    conn.exec_driver_sql("PRAGMA journal_mode = WAL")
    if version is not None and version < upgrades.LATEST_VERSION:
        upgrades.back_up(conn, path, version)
    with _write_transaction(conn):
        # Read again under the write lock: another program may have opened it meanwhile.
        version = _known_version(conn, path)
        if version is not None and version < upgrades.LATEST_VERSION:
            _upgrade(conn, path, version)
        _create_missing(conn)
        if version is None:
            upgrades.stamp(conn, upgrades.LATEST_VERSION)


def _known_version(conn: Connection, path: Path) -> int | None:
    version = upgrades.stored_version(conn)
    if version is not None and version > upgrades.LATEST_VERSION:
        raise StoreVersionError(
            f"{path} was written by a newer version of Consulta (store version {version}; "
            f"this one knows up to {upgrades.LATEST_VERSION}). Install the latest Consulta "
            "to open it; it has not been changed.")
    return version


def _upgrade(conn: Connection, path: Path, version: int) -> None:
    try:
        upgrades.apply_steps(conn, version)
    except Exception as exc:
        raise StoreUpgradeError(
            f"{path} could not be upgraded from store version {version} to "
            f"{upgrades.LATEST_VERSION}; it was left unchanged at version {version}") from exc


@contextmanager
def _write_transaction(conn: Connection) -> Iterator[None]:
    """One SQLite transaction that includes schema changes.

    The driver opens transactions by itself only before INSERT/UPDATE/DELETE, so without
    an explicit BEGIN each CREATE or ALTER would commit on its own.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.rollback()
        raise
    conn.commit()


def _create_missing(conn: Connection) -> None:
    """Tables and indexes a store lacks because they are newer than it; changes to the
    columns or data of tables it already has are upgrade steps, never this. (An index
    holds nothing of its own, so one can be added here to any table.)"""
    metadata.create_all(conn, tables=LOCAL_COPIES)
    local_metadata.create_all(conn)
    # The shared keys start with clinic_id; this computer looks records up by id alone
    # (pulled rows, edits, push results), which without these would scan the table.
    for table in LOCAL_COPIES:
        conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS ix_local_{table.name}_id "
                          f"ON {table.name} (id)"))
    for name, columns in CHART_INDEXES.items():
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS ix_local_{name}_chart "
                          f"ON {name} ({', '.join(columns)})"))
    search.create_index(conn)
