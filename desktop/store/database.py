"""Opening the SQLCipher-encrypted SQLite file that holds the desktop's local copy.

The caller supplies the 256-bit key (from the OS keyring, or unwrapped with the user's
passphrase); it is handed to SQLCipher as a raw key, never written anywhere.
"""

from __future__ import annotations

from pathlib import Path

import sqlcipher3
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

from desktop.store.local import local_metadata
from shared_models.tables import SYNCED_TABLES, metadata

KEY_BYTES = 32


class StoreKeyError(Exception):
    """The key does not open this store (wrong key, or not a Consulta store)."""


def open_store(path: Path, key: bytes) -> Engine:
    """An engine on the encrypted file at `path`; creates the tables on first open."""
    if len(key) != KEY_BYTES:
        raise ValueError("the store key must be 32 bytes")
    hex_key = key.hex()

    def connect() -> sqlcipher3.Connection:
        conn = sqlcipher3.connect(str(path), check_same_thread=False)
        conn.execute(f"PRAGMA key = \"x'{hex_key}'\"")
        # Foreign keys stay off: the local copy is partial by design (a device holds only
        # what its user's role needs, not clinics or staff), and the server enforces them.
        conn.execute("PRAGMA foreign_keys = OFF")
        return conn

    engine = create_engine("sqlite://", creator=connect, poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _check(dbapi_conn: sqlcipher3.Connection, _record: object) -> None:
        try:
            dbapi_conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            raise StoreKeyError(f"{path} cannot be opened with this key") from exc

    with engine.begin() as conn:
        conn.execute(text("PRAGMA journal_mode = WAL"))
        metadata.create_all(conn)
        local_metadata.create_all(conn)
        # The shared keys start with clinic_id; this computer looks records up by id alone
        # (pulled rows, edits, push results), which without these would scan the table.
        for table in SYNCED_TABLES:
            conn.execute(text(f"CREATE UNIQUE INDEX IF NOT EXISTS ix_local_{table.name}_id "
                              f"ON {table.name} (id)"))
    return engine
