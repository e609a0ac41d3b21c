"""The production run: the real `consulta-server` with several worker processes, and the
client address it sees behind a TLS terminator (X-Forwarded-For)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from shared_models.enums import Role
from sync_server.actions.clinics import scope
from tests.conftest import TEST_SECRET, _free_port
from tests.factories import Factory

SERVER = Path(sys.executable).with_name("consulta-server")
WORKER_STARTED = re.compile(r"Started server process \[(\d+)\]")
PROXY_CLIENT = "203.0.113.7"  # what the TLS terminator says the patient's address is
PROXY_ADDRESS = "127.0.0.2"  # where the TLS terminator connects from


class Server:
    def __init__(self, url: str, proc: subprocess.Popen[str], log_path: Path) -> None:
        self.url, self.proc, self.log_path = url, proc, log_path

    def log(self) -> str:
        return self.log_path.read_text()

    def worker_pids(self) -> list[int]:
        return [int(pid) for pid in WORKER_STARTED.findall(self.log())]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


@contextmanager
def running_server(tmp_path: Path, env: dict[str, str], *args: str, workers: int
                   ) -> Iterator[Server]:
    """`consulta-server` as a deployment runs it, until /readyz answers and every worker
    has started (the same wait as tests/e2e/test_server_e2e.py's demo_server)."""
    port = _free_port()
    env = {**env, "CONSULTA_DATA_DIR": str(tmp_path / "data"), "CONSULTA_PORT": str(port)}
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([str(SERVER), *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, text=True)
    server = Server(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                ready = httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and server.log().count("Application startup complete") >= workers:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"consulta-server did not start:\n{server.log()}")
            time.sleep(0.25)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _parent_of(pid: int) -> int:
    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces, so split after ")".
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_two_workers_on_the_embedded_postgres_serve_migrate_once_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CONSULTA_WORKERS"] = "1"  # the command line wins over the environment
    with running_server(tmp_path, env, "serve", "--workers", "2", workers=2) as server:
        pids = server.worker_pids()
        assert len(pids) == 2
        assert len(set(pids)) == 2
        assert all(_parent_of(pid) == server.proc.pid for pid in pids)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for _ in range(6):
                assert http.get("/healthz").json() == {"status": "ok"}
                # each worker reaches the embedded PostgreSQL the parent started
                fresh = httpx.get(f"{server.url}/readyz", timeout=10)
                assert fresh.json() == {"status": "ready"}
            assert http.get("/static/booking.css").status_code == 200
            assert http.get("/book/no-such-clinic").status_code == 404
        pgdata = tmp_path / "data" / "pgdata"
        assert (pgdata / "postmaster.pid").exists()

        assert server.stop() == 0
    log = server.log()
    # The parent migrated, once, before the workers started; no worker migrated again.
    assert log.count("Running upgrade  -> 0001") == 1
    assert log.index("Running upgrade") < log.index("Started server process")
    assert "2 server processes" in log
    assert not any(_alive(pid) for pid in pids)
    assert log.count("Finished server process") == 2
    # The parent owned the embedded server: it stopped with it.
    assert not (pgdata / "postmaster.pid").exists()


def _audited_addresses(owner_engine: Engine, clinic_id: object) -> list[str]:
    with owner_engine.begin() as conn:
        scope(conn, clinic_id)  # type: ignore[arg-type]
        rows = conn.execute(text(
            "SELECT client_addr FROM audit_event WHERE clinic_id = :c "
            "AND action = 'patient.appointments' ORDER BY id"), {"c": clinic_id})
        return [r.client_addr for r in rows]


@pytest.fixture
def behind_proxy(tmp_path: Path, db_urls: tuple[URL, URL]) -> Iterator[Server]:
    """Two workers on the test database, believing X-Forwarded-For from 127.0.0.2 only
    (not uvicorn's default, so the setting is what decides)."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=db_urls[0].render_as_string(hide_password=False),
        CONSULTA_SECRET_KEY=TEST_SECRET,
        CONSULTA_WORKERS="2",
        CONSULTA_FORWARDED_ALLOW_IPS=PROXY_ADDRESS,
        # The reminder queue is shared with the other tests; this server leaves it alone.
        CONSULTA_REMINDERS_DISPATCH="false",
    )
    with running_server(tmp_path, env, workers=2) as server:
        yield server
        assert server.stop() == 0


def test_the_client_address_is_the_forwarded_one_only_from_an_allowed_proxy(
    behind_proxy: Server, factory: Factory, owner_engine: Engine
) -> None:
    clinic = factory.clinic(patients=1)
    auth = factory.headers(clinic.users[Role.RECEPTIONIST])
    forwarded = {**auth, "X-Forwarded-For": PROXY_CLIENT, "X-Forwarded-Proto": "https"}
    through_proxy = httpx.HTTPTransport(local_address=PROXY_ADDRESS)
    with httpx.Client(base_url=behind_proxy.url, timeout=10, transport=through_proxy) as proxy:
        patient_id = proxy.get("/api/v1/patients", headers=auth).json()["data"][0]["id"]
        assert proxy.get(f"/api/v1/patients/{patient_id}/appointments",
                         headers=forwarded).status_code == 200
    # 127.0.0.1 is not the allowed proxy here: its header is not believed.
    with httpx.Client(base_url=behind_proxy.url, timeout=10) as direct:
        assert direct.get(f"/api/v1/patients/{patient_id}/appointments",
                          headers=forwarded).status_code == 200

    assert _audited_addresses(owner_engine, clinic.id) == [PROXY_CLIENT, "127.0.0.1"]


@pytest.mark.parametrize(("args", "env", "named"), [
    (["serve", "--workers", "0"], {}, "argument --workers: must be 1 or more, not 0"),
    (["serve"], {"CONSULTA_WORKERS": "0"}, "CONSULTA_WORKERS: Input should be greater than"),
])
def test_a_worker_count_below_one_is_refused_naming_the_setting(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    result = subprocess.run([str(SERVER), *args],
                            env={**os.environ, "CONSULTA_DATA_DIR": str(tmp_path), **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert named in result.stderr
    assert not (tmp_path / "pgdata").exists()  # refused before any database was touched
