"""Sync survives real crashes: processes killed with SIGKILL, real SQLCipher files, the real
server over real PostgreSQL.

- A desktop killed while applying a pulled page keeps only whole pages, and its saved cursor
  names exactly the last page it kept; pulling again completes the copy.
- A desktop killed after the server answered a push, while it was settling the answer,
  still holds the whole batch; sending it again gets the stored answers and changes nothing
  on the server.
- A server killed in the middle of a push batch committed all of it or none of it; after
  a restart the client's retries finish the push, and every mutation is applied once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, Table, func, select, text
from sqlalchemy.engine import URL

from desktop.operations.patients import edit_patient, register_patient
from desktop.store.database import open_store
from desktop.store.local import outbox, sync_state
from desktop.sync.client import CURSOR_KEY, Progress, SyncClient
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    patient,
    provider,
    sync_mutation,
)
from sync_server.actions.clinics import scope
from tests.conftest import TEST_SECRET, LiveServer, libpq
from tests.e2e.crashing_desktop import STORE_KEY_ENV, TOKEN_ENV
from tests.factories import ClinicData, Factory

PAGE = 10
NO_XID = -1  # how the pull cursor orders rows written before transaction ids
PULLED = (patient, provider, availability_rule, availability_exception, appointment)
COMPARED = (patient, provider, appointment)
SERVER_APP_NAME = "consulta-crash-server"


# --- the desktop side -------------------------------------------------------------------


@dataclass
class Desk:
    """A desktop store opened with a known key, so the file a killed process left behind
    can be opened again, with its sync client."""

    engine: Engine
    sync: SyncClient


@contextmanager
def open_desk(path: Path, key: bytes, url: str, token: str, *, page: int = PAGE,
              batch: int = 200, attempts: int = 4, backoff_s: float = 0.01) -> Iterator[Desk]:
    engine = open_store(path, key)
    http = httpx.Client(base_url=url, timeout=30)
    try:
        yield Desk(engine, SyncClient(engine, http, token=lambda: token, page=page,
                                      batch=batch, attempts=attempts, backoff_s=backoff_s))
    finally:
        http.close()
        engine.dispose()


def run_crashing_desktop(repo_root: Path, step: str, store: Path, url: str, *, key: bytes,
                         token: str, kill_before: str, kill_at: int,
                         batch: int = 200) -> subprocess.CompletedProcess[str]:
    """Run one sync step in a child process that SIGKILLs itself just before SQLite runs
    the `kill_at`-th statement starting with `kill_before`."""
    return subprocess.run(
        [sys.executable, "-m", "tests.e2e.crashing_desktop", step, str(store), url,
         "--kill-before", kill_before, "--kill-at", str(kill_at), "--page", str(PAGE),
         "--batch", str(batch)],
        cwd=repo_root, env={**os.environ, STORE_KEY_ENV: key.hex(), TOKEN_ENV: token},
        capture_output=True, text=True, timeout=60, check=False,
    )


def integrity(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("PRAGMA integrity_check")).scalar_one())


def local_versions(engine: Engine, table: Table) -> dict[uuid.UUID, int]:
    with engine.connect() as conn:
        return {r.id: r.server_version
                for r in conn.execute(select(table.c.id, table.c.server_version))}


def saved_cursor(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(sync_state.c.value)
                            .where(sync_state.c.key == CURSOR_KEY)).scalar_one_or_none()


def queued(engine: Engine) -> list[uuid.UUID]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox.c.mutation_id).order_by(outbox.c.seq)).scalars())


# --- the server side --------------------------------------------------------------------


def server_rows(factory: Factory, table: Table, clinic: ClinicData
                ) -> dict[uuid.UUID, tuple[int | None, int]]:
    """Every row of `table` of `clinic`: id -> (version_xid, server_version)."""
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        rows = conn.execute(select(table.c.id, table.c.version_xid, table.c.server_version)
                            .where(table.c.clinic_id == clinic.id))
        return {r.id: (r.version_xid, r.server_version) for r in rows}


def server_versions(factory: Factory, table: Table, clinic: ClinicData) -> dict[uuid.UUID, int]:
    return {row_id: version for row_id, (_xid, version)
            in server_rows(factory, table, clinic).items()}


def mutation_rows(factory: Factory, clinic: ClinicData, ids: list[uuid.UUID]
                  ) -> dict[uuid.UUID, int]:
    """How many `sync_mutation` rows each of `ids` has (absent ids: none)."""
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        rows = conn.execute(select(sync_mutation.c.mutation_id, func.count().label("n"))
                            .where(sync_mutation.c.mutation_id.in_(ids))
                            .group_by(sync_mutation.c.mutation_id))
        return {r.mutation_id: r.n for r in rows}


def audited(factory: Factory, clinic: ClinicData, action: str) -> dict[uuid.UUID, int]:
    """How many `action` audit events each record of `clinic` has."""
    counts: dict[uuid.UUID, int] = {}
    for event in factory.audit_events(clinic, action=action):
        counts[event.entity_id] = counts.get(event.entity_id, 0) + 1
    return counts


def queue_offline_work(desk: Desk, clinic: ClinicData, *, registrations: int,
                       edited: list[uuid.UUID]) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    """Register patients and change addresses with no server in reach, as the front desk
    does during an outage; the new patients' ids and the addresses typed."""
    clock = HybridClock("frontdesk")
    registered = [
        register_patient(desk.engine, clock, clinic_id=clinic.id, fields={
            "given_name": f"Sin Red {i}", "family_name": "Corte De Luz"})
        for i in range(registrations)
    ]
    addresses = {patient_id: f"Pasaje Apagón {i}" for i, patient_id in enumerate(edited)}
    for patient_id, address in addresses.items():
        edit_patient(desk.engine, clock, patient_id, {"address": address})
    return registered, addresses


def assert_applied_once(factory: Factory, clinic: ClinicData, mutation_ids: list[uuid.UUID],
                        registered: list[uuid.UUID], addresses: dict[uuid.UUID, str]) -> None:
    """Each mutation has one stored result, each new patient one creation and each edit
    one update on the server, and the server holds what was typed."""
    assert mutation_rows(factory, clinic, mutation_ids) == dict.fromkeys(mutation_ids, 1)
    created = audited(factory, clinic, "patient.create")
    assert {p: created.get(p) for p in registered} == dict.fromkeys(registered, 1)
    updated = audited(factory, clinic, "patient.update")
    assert {p: updated.get(p) for p in addresses} == dict.fromkeys(addresses, 1)
    for patient_id, address in addresses.items():
        assert factory.row(patient, clinic, patient_id)["address"] == address
    mrns = [factory.row(patient, clinic, p)["mrn"] for p in registered]
    assert all(m.startswith("P-") for m in mrns)
    assert len(set(mrns)) == len(registered)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_app_name(url: URL) -> URL:
    return url.update_query_dict({"application_name": SERVER_APP_NAME})


class ServerProcess:
    """`consulta-server serve` as its own process on a fixed loopback port, over the test
    session's database, accepting tokens signed with TEST_SECRET. Its request connections
    carry SERVER_APP_NAME, so the test can watch them in pg_stat_activity."""

    def __init__(self, db_urls: tuple[URL, URL], data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": libpq(db_urls[0]),
            "CONSULTA_APP_DATABASE_URL": libpq(with_app_name(db_urls[1])),
            "CONSULTA_SECRET_KEY": TEST_SECRET,
            "CONSULTA_ENV": "test",
            "CONSULTA_HOST": "127.0.0.1",
            "CONSULTA_PORT": str(self.port),
            "CONSULTA_DATA_DIR": str(data_dir),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "sync_server.cli", "serve"],
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def server_process(tmp_path: Path, db_urls: tuple[URL, URL]) -> Iterator[ServerProcess]:
    server = ServerProcess(db_urls, tmp_path / "server-data", tmp_path / "server.log")
    try:
        yield server
    finally:
        server.kill()


def server_backends(factory: Factory, *, writing: bool) -> int:
    """How many PostgreSQL sessions the server process holds (`writing`: only those inside
    a transaction that has written something, i.e. has a transaction id)."""
    condition = " AND backend_xid IS NOT NULL" if writing else ""
    with factory.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name" + condition
        ), {"name": SERVER_APP_NAME}).scalar_one())


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


# --- the tests --------------------------------------------------------------------------


def test_a_desktop_killed_while_applying_a_pulled_page_keeps_whole_pages_and_resumes(
    tmp_path: Path, live_server: LiveServer, factory: Factory, repo_root: Path
) -> None:
    clinic = factory.clinic(patients=60, providers=2)
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    for i in range(4):
        factory.appointment(clinic, clinic.provider_ids[i % 2], clinic.patient_ids[i],
                            starts_at=tomorrow + timedelta(hours=i))
    token = factory.token(clinic.users[Role.RECEPTIONIST])
    store, key = tmp_path / "desk.db", os.urandom(32)
    kill_at = 25  # the 25th patient row: page 3, with at least one page already committed

    died = run_crashing_desktop(repo_root, "pull", store, live_server.url, key=key,
                                token=token, kill_before="INSERT INTO patient",
                                kill_at=kill_at)
    assert died.returncode == -signal.SIGKILL, died.stderr

    with open_desk(store, key, live_server.url, token) as desk:
        assert integrity(desk.engine) == "ok"
        local = {t.name: local_versions(desk.engine, t) for t in PULLED}
        kept = [row_id for rows in local.values() for row_id in rows]
        # Whole pages only, at least one, and fewer patients than the dead process had
        # inserted: the page it was applying was rolled back.
        assert len(kept) >= PAGE
        assert len(kept) % PAGE == 0
        assert len(local["patient"]) < kill_at - 1
        # The cursor names the last kept record: exactly the server's records up to it.
        cursor = saved_cursor(desk.engine)
        assert cursor is not None
        _low, high, after_xid, after_version = (int(part) for part in cursor.split("."))
        expected = {
            row_id for table in PULLED
            for row_id, (xid, version) in server_rows(factory, table, clinic).items()
            if (xid or NO_XID) < high and (xid or NO_XID, version) <= (after_xid, after_version)
        }
        assert set(kept) == expected
        for table in PULLED:
            server = server_versions(factory, table, clinic)
            assert all(server[i] == v for i, v in local[table.name].items())

        progress = desk.sync.pull()
        assert progress.pulled == 60 + 2 + 4 - len(kept)
        for table in COMPARED:
            assert local_versions(desk.engine, table) == server_versions(factory, table, clinic)
        assert integrity(desk.engine) == "ok"


def test_a_desktop_killed_while_settling_a_push_answer_sends_it_again_and_it_applies_once(
    tmp_path: Path, live_server: LiveServer, factory: Factory, repo_root: Path
) -> None:
    clinic = factory.clinic(patients=5, providers=1)
    token = factory.token(clinic.users[Role.RECEPTIONIST])
    store, key = tmp_path / "desk.db", os.urandom(32)
    with open_desk(store, key, live_server.url, token) as desk:
        desk.sync.pull()
        registered, addresses = queue_offline_work(desk, clinic, registrations=5,
                                                   edited=clinic.patient_ids[:3])
        batch = queued(desk.engine)
    assert len(batch) == 8

    # The server applies the batch and answers; the desktop dies while settling the
    # answer, after two of the eight outbox rows were deleted in that transaction.
    died = run_crashing_desktop(repo_root, "push", store, live_server.url, key=key,
                                token=token, kill_before="DELETE FROM outbox", kill_at=3)
    assert died.returncode == -signal.SIGKILL, died.stderr
    assert_applied_once(factory, clinic, batch, registered, addresses)
    assert factory.count(patient, clinic) == 5 + 5
    versions_after_first_push = server_versions(factory, patient, clinic)

    with open_desk(store, key, live_server.url, token) as desk:
        assert integrity(desk.engine) == "ok"
        assert queued(desk.engine) == batch
        with desk.engine.connect() as conn:
            local_mrns = conn.execute(select(patient.c.mrn)
                                      .where(patient.c.id.in_(registered))).scalars().all()
        assert all(m.startswith("LOCAL-") for m in local_mrns)  # the answer was not kept

        progress = desk.sync.push()
        assert (progress.pushed, progress.rejected) == (8, 0)
        assert queued(desk.engine) == []
        desk.sync.pull()
        assert local_versions(desk.engine, patient) == server_versions(factory, patient, clinic)

    assert server_versions(factory, patient, clinic) == versions_after_first_push
    assert factory.count(patient, clinic) == 5 + 5
    assert_applied_once(factory, clinic, batch, registered, addresses)


def test_a_server_killed_in_the_middle_of_a_push_batch_commits_all_or_nothing_and_recovers(
    tmp_path: Path, server_process: ServerProcess, factory: Factory
) -> None:
    clinic = factory.clinic(patients=100, providers=1)
    token = factory.token(clinic.users[Role.RECEPTIONIST])
    server_process.start()
    # Retries 0.2 s, 0.4 s, ... up to 12.8 s apart: long enough for the server to restart.
    with open_desk(tmp_path / "desk.db", os.urandom(32), server_process.url, token,
                   page=500, batch=300, attempts=8, backoff_s=0.2) as desk:
        desk.sync.pull()
        registered, addresses = queue_offline_work(desk, clinic, registrations=200,
                                                   edited=clinic.patient_ids)
        batch = queued(desk.engine)
        assert len(batch) == 300

        outcome: dict[str, Progress | BaseException] = {}

        def push() -> None:
            try:
                outcome["progress"] = desk.sync.push()
            except BaseException as exc:  # reported by the test thread
                outcome["error"] = exc

        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        try:
            # Kill the server once the batch's transaction has written something.
            assert wait_until(lambda: server_backends(factory, writing=True) > 0, timeout=10), (
                "the server's write transaction never showed in pg_stat_activity")
            server_process.kill()
            assert wait_until(lambda: server_backends(factory, writing=False) == 0,
                              timeout=10, interval=0.05), "PostgreSQL kept the dead sessions"
            committed = len(mutation_rows(factory, clinic, batch))
            assert committed in (0, len(batch))  # never part of a batch
            assert factory.count(patient, clinic) == 100 + (200 if committed else 0)

            server_process.start()
        finally:
            pusher.join(timeout=60)
        assert not pusher.is_alive()
        assert "error" not in outcome, repr(outcome.get("error"))
        progress = outcome["progress"]
        assert isinstance(progress, Progress)
        assert (progress.pushed, progress.rejected) == (300, 0)
        assert queued(desk.engine) == []

        desk.sync.pull()
        assert local_versions(desk.engine, patient) == server_versions(factory, patient, clinic)

    assert factory.count(patient, clinic) == 100 + 200
    assert_applied_once(factory, clinic, batch, registered, addresses)
