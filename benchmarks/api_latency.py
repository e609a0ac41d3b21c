"""Latency of patient search and the provider list through a real uvicorn server under 50
concurrent clients on 100,000 patients, against the same SQL run directly through psycopg.

Runs with no arguments on an embedded PostgreSQL in a temporary folder (or DATABASE_URL)
and prints one JSON object as its last line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlencode

import httptools
import httpx
import psycopg
from fastapi import FastAPI
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, create_engine, insert, text, update
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.search import query_terms
from shared_models.tables import clinic, patient, provider, staff_user
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows
from sync_server.core.config import Settings
from sync_server.core.security import encode_token, hash_password
from sync_server.db import bootstrap
from sync_server.db.embedded import embedded_url, start_embedded
from sync_server.db.migrate import upgrade
from sync_server.db.urls import app_role_url, as_psycopg
from sync_server.lib.patients import search_statement
from sync_server.main import create_app

PATIENTS = 100_000
BATCH = 5_000
PROVIDERS = 3
CONCURRENCY = 50
DURATION_S = 20.0
WARMUP_S = 3.0
GOAL_P95_MS = 50.0
PAGE = 25  # the endpoint's default page size; the query asks for one more to see has_more
TOKEN_LIFETIME = timedelta(hours=2)
SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 60.0
BACKGROUND_SAMPLE_S = 2.0
REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_FACTORY = "benchmarks.api_latency:server_app"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# What a receptionist types: name prefixes, two surnames, phone digits. The phone tail
# and the full name are taken from the seeded rows so they are known to exist.
FIXED_TERMS = {
    "given-name prefix": "maria",
    "surname prefix": "gonz",
    "two surnames": "nunez perez",
    "phone prefix": "5512",
}

# The statements the server sends for one search and one provider list. The search is the
# server's own statement (sync_server.lib.patients.search_statement) compiled for psycopg.
PROVIDER_COLUMNS = ", ".join(f"provider.{c.name}" for c in provider.columns)
SET_CLINIC_SQL = "SELECT set_config('app.clinic_id', %s, true)"
AUDIT_SQL = (
    "INSERT INTO audit_event (clinic_id, id, actor_user_id, actor_device_id, client_addr, "
    "action, entity, entity_id, detail) VALUES (%s::UUID, %s::UUID, %s::UUID, %s::UUID, "
    "%s::VARCHAR, %s::VARCHAR, %s::VARCHAR, %s::UUID, %s::JSONB)"
)
PROVIDERS_SQL = (
    f"SELECT {PROVIDER_COLUMNS} FROM provider WHERE provider.deleted_at IS NULL "
    "ORDER BY provider.display_name, provider.id"
)
T = TypeVar("T")
# One request or transaction by worker n, its i-th; None on success, else an error label.
Operation = Callable[[int, int], Awaitable[str | None]]
Probe = Callable[[], Awaitable["Usage"]]


@dataclass(frozen=True)
class Seeded:
    clinic_id: uuid.UUID
    user_id: uuid.UUID
    terms: dict[str, str]


def percentile(values: list[float], pct: int) -> float | None:
    if len(values) < 2:
        return None
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


@dataclass
class Tally:
    """What one scenario measured. Request i of any worker is of kind labels[i % len]."""

    labels: tuple[str, ...] = ()
    latencies_ms: list[float] = field(default_factory=list)
    by_label: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)
    new_db_sessions: int = 0

    def add(self, i: int, ms: float) -> None:
        self.latencies_ms.append(ms)
        if self.labels:
            self.by_label.setdefault(self.labels[i % len(self.labels)], []).append(ms)

    def percentile(self, pct: int) -> float | None:
        return percentile(self.latencies_ms, pct)

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# --- database -------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_cluster(workdir: Path) -> Iterator[URL]:
    """A maintenance URL: DATABASE_URL if set, else an embedded server stopped afterwards."""
    if os.environ.get("DATABASE_URL"):
        yield as_psycopg(os.environ["DATABASE_URL"])
        return
    server = start_embedded(workdir)
    try:
        yield embedded_url(server, "postgres")
    finally:
        server.cleanup()


def drop_database(cluster: URL, name: str) -> None:
    try:
        with psycopg.connect(libpq(cluster.set(database="postgres")), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        progress(f"could not drop the benchmark database {name}: {exc}")


@contextlib.contextmanager
def fresh_database(workdir: Path) -> Iterator[tuple[URL, URL]]:
    """A new, migrated database: (owner URL, app-role URL); dropped afterwards."""
    app_password = os.environ.get("CONSULTA_APP_DB_PASSWORD")
    name = f"consulta_bench_{uuid.uuid4().hex[:8]}"
    with postgres_cluster(workdir) as cluster:
        owner = cluster.set(database=name)
        try:
            bootstrap.ensure_database(owner)
            bootstrap.ensure_app_role(owner, password=app_password)
            upgrade(owner)
            yield owner, app_role_url(owner, app_password)
        finally:
            drop_database(cluster, name)


# --- seeding --------------------------------------------------------------------------


def add_receptionist(conn: Connection, clinic_id: uuid.UUID) -> uuid.UUID:
    user_id = uuid7()
    conn.execute(insert(staff_user).values(
        clinic_id=clinic_id, id=user_id, email="receptionist@bench.example.test",
        full_name="Benchmark receptionist", role=Role.RECEPTIONIST.value,
        password_hash=hash_password(secrets.token_urlsafe(24)),
    ))
    return user_id


def add_providers(conn: Connection, clinic_id: uuid.UUID) -> None:
    conn.execute(insert(provider), [
        {"clinic_id": clinic_id, "id": uuid7(), "display_name": f"Dr. Benchmark {i + 1}",
         "specialty": "Medicina familiar"}
        for i in range(PROVIDERS)
    ])


def add_patients(conn: Connection, clinic_id: uuid.UUID) -> dict[str, object]:
    """Insert the patients in batches; return one row to derive search terms from."""
    sample: dict[str, object] = {}
    for start in range(0, PATIENTS, BATCH):
        rows = fake_patient_rows(clinic_id, min(BATCH, PATIENTS - start), seed=start,
                                 start_mrn=start + 1)
        conn.execute(insert(patient), rows)
        sample = sample or rows[0]
    conn.execute(update(clinic).where(clinic.c.id == clinic_id).values(next_mrn=PATIENTS + 1))
    return sample


def search_terms(sample: dict[str, object]) -> dict[str, str]:
    return {
        **FIXED_TERMS,
        "phone tail": str(sample["phone"])[-4:],
        "full name": f"{sample['given_name']} {sample['family_name']}",
    }


def seed(owner_url: URL) -> Seeded:
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug="bench", name="Benchmark clinic",
                                         timezone="America/Mexico_City")
            scope(conn, clinic_id)
            user_id = add_receptionist(conn, clinic_id)
            add_providers(conn, clinic_id)
            sample = add_patients(conn, clinic_id)
        # Fresh statistics and visibility map, as autovacuum would leave a live database.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return Seeded(clinic_id=clinic_id, user_id=user_id, terms=search_terms(sample))


# --- the server process ---------------------------------------------------------------


def server_app() -> FastAPI:
    """The app as the server builds it, configured from the environment (uvicorn --factory)."""
    settings = Settings()
    if settings.app_database_url is None:
        raise RuntimeError("CONSULTA_APP_DATABASE_URL is not set")
    return create_app(settings, as_psycopg(settings.app_database_url))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_ready(proc: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready in time")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def api_server(*, app_url: URL, secret: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """uvicorn in its own process (one worker, its default uvloop/httptools): (URL, pid)."""
    port = free_port()
    env = {
        **os.environ,
        "CONSULTA_ENV": "test",
        "CONSULTA_SECRET_KEY": secret,
        "CONSULTA_DATA_DIR": str(data_dir),
        "CONSULTA_APP_DATABASE_URL": app_url.render_as_string(hide_password=False),
    }
    command = [
        sys.executable, "-m", "uvicorn", "--factory", SERVER_FACTORY,
        "--app-dir", str(REPO_ROOT), "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]
    proc = subprocess.Popen(command, env=env, stdout=sys.stderr)  # noqa: S603 - our own argv
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_until_ready(proc, base_url)
        yield base_url, proc.pid
    finally:
        stop_process(proc)


def access_token(secret: str, seeded: Seeded) -> str:
    return encode_token(
        key=secret, kind="access", user_id=seeded.user_id, clinic_id=seeded.clinic_id,
        role=Role.RECEPTIONIST, token_id=uuid7(), lifetime=TOKEN_LIFETIME,
        now=datetime.now(UTC),
    )


# --- CPU and session accounting ------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """CPU seconds so far (this process, the server, each local postgres process, the
    whole machine) and the sessions the benchmark database has opened."""

    bench: float
    server: float | None
    postgres: dict[int, float]
    machine: float
    db_sessions: int


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on, so field k is at index k - 3."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def process_cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if fields else 0.0


def postgres_cpu_seconds() -> dict[int, float]:
    """CPU seconds of each local postgres process; a postmaster's include the backends and
    parallel workers it has reaped (cutime + cstime), so ended processes still count."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    stats[int(entry.name)] = proc_stat(int(entry.name))
    seconds = {}
    for pid, fields in stats.items():
        if len(fields) < 15:
            continue
        ticks = int(fields[11]) + int(fields[12])
        if int(fields[1]) not in stats:  # a postmaster: its parent is not postgres
            ticks += int(fields[13]) + int(fields[14])
        seconds[pid] = ticks / CLOCK_TICKS
    return seconds


def machine_busy_seconds() -> float:
    ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS  # all but idle and iowait


async def usage(stats: psycopg.AsyncConnection[Any], server_pid: int | None) -> Usage:
    cursor = await stats.execute(
        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    )
    row = await cursor.fetchone()
    own = os.times()
    return Usage(
        bench=own.user + own.system,
        server=None if server_pid is None else process_cpu_seconds(server_pid),
        postgres=postgres_cpu_seconds(),
        machine=machine_busy_seconds(),
        db_sessions=int(row[0]) if row else 0,
    )


def cores_used(before: Usage, after: Usage, seconds: float) -> dict[str, float]:
    """CPU cores used per process group; "other" is everything else on the machine."""
    postgres = sum(t - before.postgres.get(pid, 0.0) for pid, t in after.postgres.items())
    postgres -= sum(t for pid, t in before.postgres.items() if pid not in after.postgres)
    cores = {"bench": (after.bench - before.bench) / seconds}
    if after.server is not None and before.server is not None:
        cores["uvicorn"] = (after.server - before.server) / seconds
    cores["postgres"] = postgres / seconds
    machine = (after.machine - before.machine) / seconds
    cores["other"] = max(0.0, machine - sum(cores.values()))
    return cores


def background_load(seconds: float = BACKGROUND_SAMPLE_S) -> float:
    """Cores busy before the benchmark starts: work it will compete with."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


# --- load -----------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection whose replies httptools (uvicorn's C parser) reads.

    httpx.AsyncClient spent about 4.6 ms of CPU per request at 50 connections on the
    2-core machine this was written on, taking the cores the server needs; this spends
    under 0.1 ms.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.reply: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"unreadable reply: {exc}"))

    def on_message_complete(self) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("the server closed the connection"))

    def _fail(self, exc: Exception) -> None:
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(exc)
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.reply


class HttpClient:
    """One connection per worker, opened on first use and again after any failure."""

    def __init__(self, base_url: str, token: str) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.headers = f"Host: {url.netloc.decode()}\r\nAuthorization: Bearer {token}\r\n"
        self.connections: dict[int, HttpConnection] = {}

    def request(self, path: str) -> bytes:
        return f"GET {path} HTTP/1.1\r\n{self.headers}\r\n".encode()

    async def get(self, worker: int, request: bytes) -> int:
        conn = self.connections.get(worker)
        if conn is None or not conn.usable:
            _, conn = await asyncio.get_running_loop().create_connection(
                HttpConnection, self.host, self.port
            )
            self.connections[worker] = conn
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                return await conn.send(request)
        except BaseException:
            # A reply still on its way would be taken for the next request's.
            self.close_one(worker)
            raise

    def close_one(self, worker: int) -> None:
        conn = self.connections.pop(worker, None)
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    def close(self) -> None:
        for worker in list(self.connections):
            self.close_one(worker)


async def worker(op: Operation, n: int, deadline: float, tally: Tally) -> None:
    i = n
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            error = await op(n, i)
        except (psycopg.Error, OSError) as exc:
            error = type(exc).__name__
        if error is None:
            tally.add(i, (time.perf_counter() - started) * 1000)
        else:
            tally.errors[error] += 1
        i += 1


async def run_workers(op: Operation, duration_s: float, tally: Tally, *,
                      concurrency: int = CONCURRENCY) -> None:
    deadline = time.perf_counter() + duration_s
    async with asyncio.TaskGroup() as group:
        for n in range(concurrency):
            group.create_task(worker(op, n, deadline, tally))


async def measure(op: Operation, probe: Probe, labels: tuple[str, ...] = (), *,
                  concurrency: int = CONCURRENCY) -> Tally:
    """Warm up (discarded), then run `concurrency` closed-loop workers for DURATION_S."""
    await run_workers(op, WARMUP_S, Tally(), concurrency=concurrency)
    tally = Tally(labels=labels)
    before = await probe()
    started = time.perf_counter()
    await run_workers(op, DURATION_S, tally, concurrency=concurrency)
    tally.elapsed_s = time.perf_counter() - started
    after = await probe()
    tally.cores = cores_used(before, after, tally.elapsed_s)
    tally.new_db_sessions = after.db_sessions - before.db_sessions
    return tally


def http_op(client: HttpClient, paths: list[str]) -> Operation:
    requests = [client.request(path) for path in paths]

    async def op(n: int, i: int) -> str | None:
        status = await client.get(n, requests[i % len(requests)])
        return None if status == 200 else f"HTTP {status}"

    return op


def compiled_search(q: str, *, limit: int) -> tuple[str, dict[str, Any]]:
    """The server's search statement for `q`, as SQL text and parameters for psycopg."""
    compiled = search_statement(query_terms(q), limit=limit, offset=0).compile(
        dialect=psycopg_dialect()
    )
    return str(compiled), dict(compiled.params)


def psycopg_search_op(pool: AsyncConnectionPool[Any], seeded: Seeded) -> Operation:
    """One search transaction as the server runs it: clinic scope, query, audit insert."""
    searches = [compiled_search(q, limit=PAGE) for q in seeded.terms.values()]
    clinic_id = str(seeded.clinic_id)

    async def op(n: int, i: int) -> str | None:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(SET_CLINIC_SQL, (clinic_id,))
            statement, params = searches[i % len(searches)]
            cursor = await conn.execute(statement, params)
            page = (await cursor.fetchall())[:PAGE]
            detail = {"returned": [str(row[1]) for row in page], "offset": 0}
            await conn.execute(AUDIT_SQL, (
                seeded.clinic_id, uuid7(), seeded.user_id, None, "127.0.0.1",
                "patient.search", "patient", None, Jsonb(detail),
            ))
        return None

    return op


def psycopg_providers_op(pool: AsyncConnectionPool[Any], seeded: Seeded) -> Operation:
    clinic_id = str(seeded.clinic_id)

    async def op(n: int, i: int) -> str | None:
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(SET_CLINIC_SQL, (clinic_id,))
            await (await conn.execute(PROVIDERS_SQL)).fetchall()
        return None

    return op


async def match_counts(pool: AsyncConnectionPool[Any], seeded: Seeded) -> dict[str, int]:
    counts = {}
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(SET_CLINIC_SQL, (str(seeded.clinic_id),))
        for label, q in seeded.terms.items():
            statement, params = compiled_search(q, limit=PATIENTS)
            counts[label] = len(await (await conn.execute(statement, params)).fetchall())
    return counts


@contextlib.asynccontextmanager
async def usage_probe(app_url: URL, server_pid: int | None) -> AsyncIterator[Probe]:
    async with await psycopg.AsyncConnection.connect(libpq(app_url), autocommit=True) as stats:
        async def probe() -> Usage:
            return await usage(stats, server_pid)

        yield probe


async def measure_psycopg(
    app_url: URL, seeded: Seeded
) -> tuple[dict[str, int], Tally, Tally]:
    async with (
        AsyncConnectionPool(libpq(app_url), min_size=CONCURRENCY, max_size=CONCURRENCY,
                            open=False) as pool,
        usage_probe(app_url, None) as probe,
    ):
        await pool.wait()
        counts = await match_counts(pool, seeded)
        progress("psycopg baseline: search")
        search = await measure(psycopg_search_op(pool, seeded), probe, tuple(seeded.terms))
        progress("psycopg baseline: providers")
        providers = await measure(psycopg_providers_op(pool, seeded), probe)
    return counts, search, providers


async def measure_server(
    app_url: URL, base_url: str, server_pid: int, token: str, seeded: Seeded
) -> tuple[Tally, Tally]:
    client = HttpClient(base_url, token)
    search_paths = [f"/api/v1/patients?{urlencode({'q': q})}" for q in seeded.terms.values()]
    try:
        async with usage_probe(app_url, server_pid) as probe:
            progress("server: GET /api/v1/patients?q=")
            search = await measure(http_op(client, search_paths), probe, tuple(seeded.terms))
            progress("server: GET /api/v1/providers")
            providers = await measure(http_op(client, ["/api/v1/providers"]), probe)
    finally:
        client.close()
    return search, providers


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when present (uvicorn[standard] installs it), the cheaper client loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# --- report ---------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def print_setup(*, seed_s: float, background: float) -> None:
    print(f"Consulta API latency: {PATIENTS:,} patients, {PROVIDERS} providers, "
          f"{CONCURRENCY} concurrent closed-loop clients, {DURATION_S:g} s per scenario "
          f"after a {WARMUP_S:g} s warm-up; seeded in {seed_s:.1f} s")
    print(f"machine: {os.cpu_count()} CPUs, {background:.2f} cores busy with other work just "
          "before the run")
    print("server: uvicorn in its own process, 1 worker, "
          f"a fixed DB pool of {Settings.model_fields['db_pool_size'].default} connections "
          f"as the app role; client: {CONCURRENCY} keep-alive HTTP/1.1 connections on uvloop, "
          "replies parsed by httptools")
    print(f"baseline: psycopg AsyncConnectionPool of {CONCURRENCY}, {CONCURRENCY} workers, "
          "as the app role; each search is one transaction of set_config + the search + "
          "the audit_event insert (as the server); the server also pre-pings and re-checks "
          "the account")


def print_row(name: str, tally: Tally) -> None:
    errors = sum(tally.errors.values())
    kinds = ", ".join(f"{k} x{v}" for k, v in tally.errors.most_common())
    cores = " / ".join(f"{k} {v:.2f}" for k, v in tally.cores.items())
    print(f"  {name:<31}{fmt_ms(tally.percentile(50)):>8}{fmt_ms(tally.percentile(95)):>9}"
          f"{fmt_ms(tally.percentile(99)):>9}{tally.rps:>8.0f}{errors:>7}"
          f"{tally.new_db_sessions:>9}   {cores}" + (f"   ({kinds})" if kinds else ""))


def print_table(results: dict[str, Tally]) -> None:
    print(f"  {'scenario':<31}{'p50 ms':>8}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}"
          f"{'errors':>7}{'new conn':>9}   CPU cores used")
    print_row("server GET /patients?q=", results["search"])
    print_row("server GET /providers", results["providers"])
    print_row("psycopg search + audit insert", results["psycopg_search"])
    print_row("psycopg providers", results["psycopg_providers"])
    print("  (latencies of successful requests; new conn = database sessions opened during "
          "the run, from pg_stat_database; CPU cores = CPU seconds / wall seconds)")


def by_term(tally: Tally, label: str) -> str:
    values = tally.by_label.get(label, [])
    return (f"{fmt_ms(percentile(values, 50)):>8}{fmt_ms(percentile(values, 95)):>9}"
            f"{len(values):>7}")


def print_terms(search: Tally, pg_search: Tally, counts: dict[str, int]) -> None:
    print(f"  {'search term kind (matches)':<31}{'server p50 / p95 ms, n':>24}"
          f"{'psycopg p50 / p95 ms, n':>28}")
    for label in search.labels:
        name = f"{label} ({counts.get(label, 0):,})"
        print(f"  {name:<31}{by_term(search, label):>24}{by_term(pg_search, label):>28}")


def print_verdict(search_p95: float | None, providers_p95: float | None,
                  ratio: float | None) -> None:
    print(f"overhead ratio (server search p95 / psycopg search p95): "
          f"{'n/a' if ratio is None else f'{ratio:.2f}x'}")
    print(f"goal: p95 < {GOAL_P95_MS:.0f} ms for both at {CONCURRENCY} concurrent clients")
    for name, p95 in (("search", search_p95), ("providers", providers_p95)):
        verdict = "MET" if p95 is not None and p95 < GOAL_P95_MS else "MISSED"
        print(f"  {name:<10} p95 {fmt_ms(p95):>9} ms  {verdict}")


def summary(results: dict[str, Tally], *, background: float) -> dict[str, Any]:
    search, providers = results["search"], results["providers"]
    pg_search, pg_providers = results["psycopg_search"], results["psycopg_providers"]
    s95, pg95, p95 = search.percentile(95), pg_search.percentile(95), providers.percentile(95)
    return {
        "search_p95_ms": rounded(s95),
        "providers_p95_ms": rounded(p95),
        "psycopg_search_p95_ms": rounded(pg95),
        "overhead_ratio": rounded(s95 / pg95) if s95 is not None and pg95 else None,
        "search_p50_ms": rounded(search.percentile(50)),
        "search_p99_ms": rounded(search.percentile(99)),
        "search_rps": rounded(search.rps),
        "search_errors": sum(search.errors.values()),
        "providers_p50_ms": rounded(providers.percentile(50)),
        "providers_p99_ms": rounded(providers.percentile(99)),
        "providers_rps": rounded(providers.rps),
        "providers_errors": sum(providers.errors.values()),
        "psycopg_search_p50_ms": rounded(pg_search.percentile(50)),
        "psycopg_search_rps": rounded(pg_search.rps),
        "psycopg_providers_p95_ms": rounded(pg_providers.percentile(95)),
        "psycopg_providers_rps": rounded(pg_providers.rps),
        "search_p95_ms_by_term": {
            label: rounded(percentile(v, 95)) for label, v in search.by_label.items()
        },
        "psycopg_search_p95_ms_by_term": {
            label: rounded(percentile(v, 95)) for label, v in pg_search.by_label.items()
        },
        "server_db_sessions_opened": search.new_db_sessions + providers.new_db_sessions,
        "goal_p95_ms": GOAL_P95_MS,
        "search_goal_met": s95 is not None and s95 < GOAL_P95_MS,
        "providers_goal_met": p95 is not None and p95 < GOAL_P95_MS,
        "background_cores": round(background, 2),
        "patients": PATIENTS,
        "concurrency": CONCURRENCY,
        "duration_s": DURATION_S,
    }


def report(*, seed_s: float, background: float, counts: dict[str, int],
           results: dict[str, Tally]) -> None:
    """The readable figures, then the summary as one JSON object on the last line."""
    data = summary(results, background=background)
    print_setup(seed_s=seed_s, background=background)
    print()
    print_table(results)
    print()
    print_terms(results["search"], results["psycopg_search"], counts)
    print()
    print_verdict(data["search_p95_ms"], data["providers_p95_ms"], data["overhead_ratio"])
    print(json.dumps(data))


def main() -> int:
    secret = secrets.token_urlsafe(48)
    background = background_load()
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database(workdir / "pg") as (owner_url, app_url):
            progress(f"seeding {PATIENTS:,} patients")
            started = time.perf_counter()
            seeded = seed(owner_url)
            seed_s = time.perf_counter() - started
            counts, pg_search, pg_providers = run_async(measure_psycopg(app_url, seeded))
            with api_server(app_url=app_url, secret=secret, data_dir=workdir / "data") as (
                base_url, pid
            ):
                token = access_token(secret, seeded)
                search, providers = run_async(
                    measure_server(app_url, base_url, pid, token, seeded)
                )
    results = {"search": search, "providers": providers, "psycopg_search": pg_search,
               "psycopg_providers": pg_providers}
    report(seed_s=seed_s, background=background, counts=counts, results=results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
