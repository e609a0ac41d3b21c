"""The encrypted local store as an outsider sees the file."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import insert

from desktop.store.database import open_store
from shared_models.ids import uuid7
from shared_models.tables import provider


def test_plain_sqlite_cannot_read_the_store(tmp_path: Path) -> None:
    path = tmp_path / "local.db"
    engine = open_store(path, os.urandom(32))
    with engine.begin() as conn:
        conn.execute(insert(provider).values(clinic_id=uuid7(), id=uuid7(),
                                             display_name="Dra. Secreta"))
    engine.dispose()
    plain = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        plain.close()
