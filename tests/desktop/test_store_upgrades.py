"""Opening a store written by an older (or newer) release: the outbox of changes no server
has seen yet must survive every upgrade, a crash included."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlcipher3
from sqlalchemy import Connection, insert, select

from desktop.store import search, upgrades
from desktop.store.database import (
    StoreError,
    StoreKeyError,
    StoreUpgradeError,
    StoreVersionError,
    open_store,
)
from desktop.store.local import outbox, sync_state
from shared_models.ids import uuid7
from shared_models.tables import clinical_note

V1_SCHEMA = Path(__file__).with_name("store_v1_schema.sql")
REPO_ROOT = Path(__file__).resolve().parents[2]
PATIENT_NAME = "Xochiquetzal"
OUTBOX_ENTRIES = 50
CURSOR = "184467"
OUTBOX_AS_STORED = ("SELECT seq, mutation_id, entity, op, record_id, base_version, changes, "
                    "base, hlc, created_at FROM outbox ORDER BY seq")


@contextmanager
def _raw(path: Path, key: bytes) -> Iterator[sqlcipher3.Connection]:
    """A connection below the product's code, to build and inspect files as they are."""
    conn = sqlcipher3.connect(str(path))
    try:
        conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
        yield conn
    finally:
        conn.close()


def _make_v1_store(path: Path, key: bytes, *, user_version: int = 0) -> None:
    """A store as a release before versioning left it: version-1 tables (user_version 0
    unless told), patients, a pull cursor and changes typed offline waiting in the outbox."""
    clinic_id = uuid7().hex
    patients = [uuid7().hex for _ in range(5)]
    with _raw(path, key) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(V1_SCHEMA.read_text())
        conn.execute("INSERT INTO clinic (id, slug, name, timezone) "
                     "VALUES (?, 'centro', 'Clínica Centro', 'America/Mexico_City')",
                     (clinic_id,))
        conn.executemany(
            "INSERT INTO patient (clinic_id, id, mrn, given_name, family_name, "
            "preferred_channels, server_version) VALUES (?, ?, ?, ?, 'Núñez', '[\"sms\"]', 3)",
            [(clinic_id, pid, f"MRN-{n}", f"{PATIENT_NAME}{n}") for n, pid in enumerate(patients)])
        conn.executemany(
            "INSERT INTO outbox (mutation_id, entity, op, record_id, base_version, changes, "
            "base, hlc, created_at) VALUES (?, 'patient', 'update', ?, 3, ?, ?, ?, ?)",
            [_outbox_values(n, patients[n % len(patients)]) for n in range(OUTBOX_ENTRIES)])
        conn.execute("INSERT INTO sync_state (key, value) VALUES ('pull_cursor', ?)", (CURSOR,))
        conn.execute(f"PRAGMA user_version = {user_version}")
        conn.commit()


def _outbox_values(n: int, patient_id: str) -> tuple[str, str, str, str, str, str]:
    changes = json.dumps({"phone": f"+52 55 1234 {n:04d}", "address": f"Calle Ñandú {n}"},
                         ensure_ascii=False)
    base = json.dumps({"phone": None, "address": "Av. Juárez 1"}, ensure_ascii=False)
    return (uuid7().hex, patient_id, changes, base, f"0001741000000{n:03d}-0000-dev1",
            f"2025-03-0{1 + n % 9} 10:{n % 60:02d}:00.000000")


def _outbox_rows(path: Path, key: bytes) -> list[tuple[Any, ...]]:
    with _raw(path, key) as conn:
        return conn.execute(OUTBOX_AS_STORED).fetchall()


def _user_version(path: Path, key: bytes) -> int:
    with _raw(path, key) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _columns(path: Path, key: bytes, table: str) -> list[str]:
    with _raw(path, key) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _backups(directory: Path) -> list[str]:
    return sorted(file.name for file in directory.iterdir() if file.name.endswith(".bak"))


@pytest.mark.parametrize("user_version", [0, 1], ids=["unversioned", "stamped-1"])
def test_a_version_1_store_is_upgraded_with_its_outbox_intact(
        tmp_path: Path, user_version: int) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key, user_version=user_version)
    before = _outbox_rows(path, key)
    assert len(before) == OUTBOX_ENTRIES

    engine = open_store(path, key)
    with engine.connect() as conn:
        assert upgrades.stored_version(conn) == upgrades.LATEST_VERSION
        assert conn.exec_driver_sql(OUTBOX_AS_STORED).all() == before
        pending = conn.execute(select(outbox).order_by(outbox.c.seq)).all()
        assert {(row.attempts, row.last_error) for row in pending} == {(0, None)}
        assert pending[0].changes["address"] == "Calle Ñandú 0"
        assert conn.execute(select(sync_state.c.value)).scalar_one() == CURSOR
        assert conn.exec_driver_sql("SELECT count(*) FROM patient").scalar_one() == 5
    engine.dispose()

    backup = tmp_path / f"local.db.v{upgrades.FIRST_VERSION}.bak"
    assert _backups(tmp_path) == [backup.name]
    _assert_encrypted(backup)
    with _raw(backup, key) as conn:  # the store as it was: version 1, written as 0 or 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == user_version
        assert conn.execute(OUTBOX_AS_STORED).fetchall() == before
    assert "attempts" not in _columns(backup, key, "outbox")


def _assert_encrypted(path: Path) -> None:
    assert PATIENT_NAME.encode() not in path.read_bytes()
    plain = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="not a database"):
            plain.execute("SELECT count(*) FROM sqlite_master").fetchone()
    finally:
        plain.close()


def test_changes_queued_after_an_upgrade_get_the_new_columns(tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key)
    engine = open_store(path, key)
    with engine.begin() as conn:
        conn.execute(insert(outbox).values(
            mutation_id=uuid7(), entity="patient", op="update", record_id=uuid7(),
            base_version=None, changes={"phone": "+52 55 0000 0000"}, base={},
            hlc="0001741000001000-0000-dev1", created_at=datetime.now(UTC)))
        last = conn.execute(select(outbox).order_by(outbox.c.seq.desc()).limit(1)).one()
    engine.dispose()
    assert (last.seq, last.attempts, last.last_error) == (OUTBOX_ENTRIES + 1, 0, None)


def test_an_upgraded_store_has_exactly_the_schema_of_a_new_one(tmp_path: Path) -> None:
    """Fails when an existing local table changes without an upgrade step."""
    key = os.urandom(32)
    _make_v1_store(tmp_path / "old.db", key)
    open_store(tmp_path / "old.db", key).dispose()
    open_store(tmp_path / "new.db", key).dispose()
    assert _schema(tmp_path / "old.db", key) == _schema(tmp_path / "new.db", key)


def _schema(path: Path, key: bytes) -> dict[str, Any]:
    with _raw(path, key) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: {
            "columns": conn.execute(f"PRAGMA table_info({table})").fetchall(),
            "foreign_keys": conn.execute(f"PRAGMA foreign_key_list({table})").fetchall(),
            "indexes": sorted(
                (name, unique, origin, partial,
                 tuple(conn.execute(f"PRAGMA index_xinfo({name})").fetchall()))
                for _seq, name, unique, origin, partial
                in conn.execute(f"PRAGMA index_list({table})")),
        } for table in tables}


def _fail_after(step: upgrades.Step) -> upgrades.Step:
    def failing(conn: Connection) -> None:
        step(conn)
        raise RuntimeError("disk went away")
    return failing


def test_a_failing_step_leaves_the_store_at_its_old_version(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key)
    before = _outbox_rows(path, key)
    monkeypatch.setattr(upgrades, "STEPS", tuple(_fail_after(s) for s in upgrades.STEPS))

    with pytest.raises(StoreUpgradeError, match="left unchanged at version 1"):
        open_store(path, key)

    _assert_untouched_version_1(path, key, before)
    monkeypatch.undo()
    _assert_upgrades_now(path, key, before)


def _assert_untouched_version_1(path: Path, key: bytes, outbox_before: list[Any]) -> None:
    assert _user_version(path, key) == 0
    assert "attempts" not in _columns(path, key, "outbox")
    assert _outbox_rows(path, key) == outbox_before


def _assert_upgrades_now(path: Path, key: bytes, outbox_before: list[Any]) -> None:
    open_store(path, key).dispose()
    assert _user_version(path, key) == upgrades.LATEST_VERSION
    assert _columns(path, key, "outbox")[-2:] == ["attempts", "last_error"]
    assert _outbox_rows(path, key) == outbox_before


# Run in a child process: the store's last step is replaced by one that does the real work,
# dirties every outbox page (a tiny page cache pushes them into the WAL uncommitted), then
# kills the process before the transaction can commit.
_KILLED_IN_STEP = """
import os, signal, sys
from pathlib import Path
from desktop.store import search, upgrades
from desktop.store.database import open_store

*earlier, last = upgrades.STEPS

def killed_half_way(conn):
    last(conn)
    conn.exec_driver_sql("PRAGMA cache_size = 1")
    conn.exec_driver_sql("UPDATE outbox SET last_error = hex(randomblob(300)), attempts = 9")
    os.kill(os.getpid(), signal.SIGKILL)

upgrades.STEPS = (*earlier, killed_half_way)
open_store(Path(sys.argv[1]), bytes.fromhex(os.environ["STORE_KEY"]))
"""


def test_a_process_killed_inside_a_step_leaves_the_store_at_its_old_version(
        tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key)
    before = _outbox_rows(path, key)

    child = subprocess.run(
        [sys.executable, "-c", _KILLED_IN_STEP, str(path)], cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "STORE_KEY": key.hex()},
        capture_output=True, timeout=60, check=False)

    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert Path(f"{path}-wal").stat().st_size > 0  # uncommitted pages did reach the disk
    _assert_untouched_version_1(path, key, before)
    _assert_upgrades_now(path, key, before)


def test_a_store_from_a_newer_release_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    open_store(path, key).dispose()
    with _raw(path, key) as conn:
        # Not in WAL mode either, so even switching the journal mode would change the bytes.
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute(f"PRAGMA user_version = {upgrades.LATEST_VERSION + 1}")
    before = path.read_bytes()

    with pytest.raises(StoreVersionError, match="newer version of Consulta") as refused:
        open_store(path, key)

    assert isinstance(refused.value, StoreError)
    assert "Install the latest Consulta" in str(refused.value)
    assert path.read_bytes() == before
    assert _backups(tmp_path) == []


def test_a_new_store_is_at_the_latest_version_and_reopens_without_any_step(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    open_store(path, key).dispose()
    assert _user_version(path, key) == upgrades.LATEST_VERSION

    def must_not_run(conn: Connection) -> None:
        raise AssertionError("an up-to-date store ran an upgrade step")

    monkeypatch.setattr(upgrades, "STEPS", (must_not_run,) * len(upgrades.STEPS))
    open_store(path, key).dispose()
    assert _user_version(path, key) == upgrades.LATEST_VERSION
    assert _backups(tmp_path) == []


def test_an_upgrade_keeps_only_the_newest_backup_of_that_store(tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key)
    (tmp_path / "local.db.v0.bak").write_bytes(b"an older copy")
    (tmp_path / "local.db.v1.bak").write_bytes(b"a stale copy")
    (tmp_path / "other.db.v1.bak").write_bytes(b"another store's copy")

    open_store(path, key).dispose()

    assert _backups(tmp_path) == ["local.db.v1.bak", "other.db.v1.bak"]
    with _raw(tmp_path / "local.db.v1.bak", key) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == OUTBOX_ENTRIES
    assert (tmp_path / "other.db.v1.bak").read_bytes() == b"another store's copy"


def test_an_old_store_opened_with_the_wrong_key_is_refused_before_any_upgrade(
        tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    _make_v1_store(path, key)
    before = path.read_bytes()

    with pytest.raises(StoreKeyError, match="cannot be opened with this key"):
        open_store(path, os.urandom(32))

    assert path.read_bytes() == before
    assert _backups(tmp_path) == []
    assert _user_version(path, key) == 0


V5_SCHEMA = Path(__file__).with_name("store_v5_schema.sql")
NOTE_TEXT = "Dolor torácico atípico; ECG normal."


def _make_v5_store(path: Path, key: bytes) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A store as the release before addenda left it: a patient with a signed note, a draft
    and a conflict copy, and the draft's save still waiting in the outbox. Returns the
    notes' ids and the notes as stored."""
    clinic_id, patient_id, author = uuid7().hex, uuid7().hex, uuid7().hex
    signed, draft, copy = uuid7().hex, uuid7().hex, uuid7().hex
    with _raw(path, key) as conn:
        conn.create_function("consulta_search_document", 4, search.document,
                             deterministic=True)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(V5_SCHEMA.read_text())
        conn.execute("INSERT INTO patient (clinic_id, id, mrn, given_name, family_name, "
                     "preferred_channels, server_version) "
                     "VALUES (?, ?, 'MRN-1', ?, 'Núñez', '[]', 3)",
                     (clinic_id, patient_id, PATIENT_NAME))
        conn.executemany(
            "INSERT INTO clinical_note (clinic_id, id, patient_id, author_id, status, body, "
            "conflict_of, signed_at, server_version, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '2025-03-01 10:00:00.000000', "
            "'2025-03-01 10:00:00.000000')",
            [(clinic_id, signed, patient_id, author, "signed", NOTE_TEXT, None,
              "2025-03-01 10:05:00.000000", 7),
             (clinic_id, draft, patient_id, author, "draft", "Control en 2 semanas", None,
              None, 8),
             (clinic_id, copy, patient_id, author, "draft", "Control en 3 semanas", draft,
              None, 9)])
        conn.execute(
            "INSERT INTO outbox (mutation_id, entity, op, record_id, base_version, changes, "
            "base, hlc, created_at) VALUES (?, 'clinical_note', 'upsert', ?, 8, ?, ?, ?, ?)",
            (uuid7().hex, draft, json.dumps({"body": "Control en 2 semanas, ayunas"}),
             json.dumps({"body": "Control en 2 semanas"}), "0001741000000001-000000-dev1",
             "2025-03-01 10:06:00.000000"))
        conn.execute("PRAGMA user_version = 5")
        conn.commit()
        notes = conn.execute(f"{NOTES_AS_STORED} ORDER BY id").fetchall()
    return [signed, draft, copy], notes


NOTES_AS_STORED = ("SELECT clinic_id, id, patient_id, author_id, appointment_id, status, body, "
                   "conflict_of, signed_at, server_version, created_at, updated_at "
                   "FROM clinical_note")


def test_a_version_5_store_gets_addenda_with_its_notes_and_outbox_intact(
        tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    (signed, _draft, copy), notes_before = _make_v5_store(path, key)
    outbox_before = _outbox_rows(path, key)
    assert "addendum_to" not in _columns(path, key, "clinical_note")

    engine = open_store(path, key)
    with engine.connect() as conn:
        assert upgrades.stored_version(conn) == upgrades.LATEST_VERSION == 6
        assert conn.exec_driver_sql(OUTBOX_AS_STORED).all() == outbox_before
        assert conn.exec_driver_sql(f"{NOTES_AS_STORED} ORDER BY id").all() == notes_before
        kept = {row.id.hex: row for row in conn.execute(select(clinical_note))}
        assert kept[signed].body == NOTE_TEXT
        assert kept[copy].conflict_of.hex == _draft
        assert {row.addendum_to for row in kept.values()} == {None}
    engine.dispose()

    assert _columns(path, key, "clinical_note")[-1] == "addendum_to"
    assert _backups(tmp_path) == ["local.db.v5.bak"]
    with _raw(tmp_path / "local.db.v5.bak", key) as conn:
        assert conn.execute(OUTBOX_AS_STORED).fetchall() == outbox_before


def test_a_version_5_store_upgraded_has_exactly_the_schema_of_a_new_one(
        tmp_path: Path) -> None:
    key = os.urandom(32)
    _make_v5_store(tmp_path / "old.db", key)
    open_store(tmp_path / "old.db", key).dispose()
    open_store(tmp_path / "new.db", key).dispose()
    old, new = _schema(tmp_path / "old.db", key), _schema(tmp_path / "new.db", key)
    assert old["clinical_note"] == new["clinical_note"]
    assert old == new


def test_a_store_upgraded_to_version_6_takes_addenda(tmp_path: Path) -> None:
    path, key = tmp_path / "local.db", os.urandom(32)
    (signed, _draft, _copy), _ = _make_v5_store(path, key)
    engine = open_store(path, key)
    with engine.begin() as conn:
        target = conn.execute(select(clinical_note).where(
            clinical_note.c.id == uuid.UUID(signed))).one()
        addendum = uuid7()
        conn.execute(insert(clinical_note).values(
            clinic_id=target.clinic_id, id=addendum, patient_id=target.patient_id,
            author_id=target.author_id, addendum_to=target.id, body="Troponina negativa."))
        stored = conn.execute(select(clinical_note.c.addendum_to).where(
            clinical_note.c.id == addendum)).scalar_one()
    engine.dispose()
    assert stored == target.id
