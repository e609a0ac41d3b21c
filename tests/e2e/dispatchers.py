"""`consulta-server dispatch --until-idle` as separate OS processes over a test or benchmark
database, configured only through the environment as in production.

Each process's database sessions carry its name as `application_name` (set on the owner
URL, which provision() turns into the app role's), so a test can watch them in
pg_stat_activity. `start_together` lines the processes up behind one lock so that they
begin claiming at the same moment, whatever their interpreter start-up took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL

SMTP_SENDER = "recordatorios@clinica.example.test"
SMTP_DOMAIN = SMTP_SENDER.rpartition("@")[2]
PUBLIC_URL = "https://turnos.example.test"
SMS_SENDER = "+15005550006"
START_TIMEOUT_S = 60.0
CLAIMED_LINE = re.compile(r"^Claimed (\d+) reminders: (\{.*\})$", re.MULTILINE)
# Settings a developer's shell may hold that would change where messages go.
KEPT_SETTINGS = {"CONSULTA_APP_DB_PASSWORD"}


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def message_id(reminder_id: object, channel: str = "email") -> str:
    """The Message-ID the dispatcher gives a reminder's e-mail (its idempotency key)."""
    return f"<{reminder_id}-{channel}@{SMTP_DOMAIN}>"


@dataclass
class Channels:
    """Where the processes send: an SMTP port and a Twilio-style provider's address."""

    smtp_port: int | None = None
    provider_url: str | None = None
    provider_account: str = ""
    provider_token: str = ""


def dispatch_env(owner: URL, *, name: str, data_dir: Path, secret_key: str,
                 channels: Channels, lease_seconds: int | None = None) -> dict[str, str]:
    """The environment of one dispatcher process: this machine's, without any CONSULTA_
    setting of the caller's shell, plus the database, channels and lease given."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CONSULTA_") or k in KEPT_SETTINGS}
    env.update({
        "DATABASE_URL": libpq(owner.update_query_dict({"application_name": name})),
        "CONSULTA_ENV": "test",
        "CONSULTA_SECRET_KEY": secret_key,
        "CONSULTA_DATA_DIR": str(data_dir),
        "CONSULTA_PUBLIC_URL": PUBLIC_URL,
    })
    if channels.smtp_port is not None:
        env.update({"CONSULTA_SMTP_HOST": "127.0.0.1",
                    "CONSULTA_SMTP_PORT": str(channels.smtp_port),
                    "CONSULTA_SMTP_TLS": "none", "CONSULTA_SMTP_SENDER": SMTP_SENDER})
    if channels.provider_url is not None:
        env.update({"CONSULTA_SMS_BASE_URL": channels.provider_url,
                    "CONSULTA_SMS_ACCOUNT": channels.provider_account,
                    "CONSULTA_SMS_TOKEN": channels.provider_token,
                    "CONSULTA_SMS_SENDER": SMS_SENDER})
    if lease_seconds is not None:
        env["CONSULTA_REMINDER_LEASE_SECONDS"] = str(lease_seconds)
    return env


@dataclass
class Finished:
    returncode: int
    output: str

    def claimed(self) -> tuple[int, dict[str, int]]:
        """What the process printed on leaving: how many it claimed, and the outcomes."""
        match = CLAIMED_LINE.search(self.output)
        assert match is not None, f"no summary line in the output:\n{self.output}"
        outcomes = {k: int(v) for k, v in
                    re.findall(r"'(\w+)': (\d+)", match.group(2))}
        return int(match.group(1)), outcomes


@dataclass
class DispatchProcess:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> Finished:
        try:
            returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not finish in {timeout:g} s:\n"
                                 f"{self.output()}") from None
        return Finished(returncode, self.output())

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class Dispatchers:
    """Starts dispatcher processes and kills whichever still runs at `close`."""

    owner: URL
    workdir: Path
    secret_key: str
    channels: Channels
    cwd: Path
    started: list[DispatchProcess] = field(default_factory=list)

    def start(self, name: str, *, lease_seconds: int | None = None) -> DispatchProcess:
        env = dispatch_env(self.owner, name=name, data_dir=self.workdir / name,
                           secret_key=self.secret_key, channels=self.channels,
                           lease_seconds=lease_seconds)
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "sync_server.cli", "dispatch", "--until-idle"],
                cwd=self.cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        process = DispatchProcess(name, proc, log_path)
        self.started.append(process)
        return process

    def start_together(self, names: list[str], *, lease_seconds: int | None = None
                       ) -> list[DispatchProcess]:
        with held_migrations(self.owner) as waiting:
            processes = [self.start(n, lease_seconds=lease_seconds) for n in names]
            wait_for(lambda: _all_waiting(waiting, processes), timeout=START_TIMEOUT_S,
                     what="the dispatchers to reach their start-up migration check")
        return processes

    def close(self) -> None:
        for process in self.started:
            process.kill()


def _all_waiting(waiting: Callable[[], int], processes: list[DispatchProcess]) -> bool:
    for process in processes:
        if process.proc.poll() is not None:
            raise AssertionError(f"{process.name} ended early:\n{process.output()}")
    return waiting() >= len(processes)


@contextmanager
def held_migrations(owner: URL) -> Iterator[Callable[[], int]]:
    """Hold the migrations table until the block ends. Every process checks the schema
    version on start, so each waits there; the block gets a function counting the sessions
    that wait for a lock in this database."""
    with psycopg.connect(libpq(owner)) as holder, \
            psycopg.connect(libpq(owner), autocommit=True) as watcher:
        holder.execute("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")

        def waiting() -> int:
            row = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'").fetchone()
            return int(row[0]) if row else 0

        yield waiting
        holder.commit()


def sessions_of(owner: URL, name: str) -> int:
    """How many database sessions a process named `name` still holds."""
    with psycopg.connect(libpq(owner), autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                           (name,)).fetchone()
        return int(row[0]) if row else 0


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str,
             interval: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
