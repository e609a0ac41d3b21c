"""Booking through a real uvicorn server, on one clinic (America/Santiago) of 20 providers
working 07:00-21:00 every day in 15-minute slots, with 2,000 patients:

(a) contention: 200 clients POST /api/v1/appointments for ONE slot at the same moment;
    exactly one must get 201 and the rest 409, and SQL afterwards must find one active
    appointment in that slot and no overlapping active appointments anywhere;
(b) throughput: 20 concurrent clients book distinct free slots for a fixed time, beside
    the same number of appointments inserted directly through psycopg (20 connections as
    the app role, one set_config + INSERT transaction each, through the same overlap
    trigger) in the same run;
(c) slot computation: GET /api/v1/slots for 30 days of all 20 providers, on the empty
    calendar and again after (a) and (b), beside shared_models.scheduling.free_slots
    computed in-process on the same rules and bookings.

Runs with no arguments on an embedded PostgreSQL in a temporary folder (or DATABASE_URL),
with the harness of benchmarks/api_latency.py, and prints one JSON object as its last line.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import httpx
import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, create_engine, insert, select, text
from sqlalchemy.engine import URL

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, AppointmentStatus, Role
from shared_models.ids import uuid7
from shared_models.scheduling import (
    BookingPolicy,
    Interval,
    Slot,
    WeeklyRule,
    candidate_slots,
    free_slots,
    local_instant,
)
from shared_models.tables import availability_rule, clinic, patient, provider
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows
from sync_server.core.config import Settings
from sync_server.core.security import encode_token

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/booking.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.api_latency import (  # noqa: E402 - needs the repository root on sys.path
    DURATION_S,
    SET_CLINIC_SQL,
    TOKEN_LIFETIME,
    WARMUP_S,
    HttpClient,
    Operation,
    Probe,
    Tally,
    add_receptionist,
    api_server,
    background_load,
    cores_used,
    fmt_ms,
    fresh_database,
    libpq,
    measure,
    percentile,
    progress,
    rounded,
    run_async,
    usage_probe,
)

TIMEZONE = "America/Santiago"
PROVIDERS = 20
PATIENTS = 2_000
DAY_START, DAY_END = wall_time(7), wall_time(21)
SLOT_MINUTES = 15
CONTENDERS = 200
CONTESTED_AT = wall_time(10)  # tomorrow, first provider
CLIENTS = 20
BOOKABLE_DAYS = 56  # from tomorrow on: well inside the 60-day horizon
RAW_WARMUP = 200  # psycopg inserts before the timed ones (discarded)
SLOT_DAYS = 30
SLOT_CALLS = 20
ACTIVE = tuple(sorted(s.value for s in ACTIVE_APPOINTMENT_STATUSES))
BOOKINGS_PATH = "/api/v1/appointments"
INSERT_SQL = (
    "INSERT INTO appointment (clinic_id, id, patient_id, provider_id, starts_at, ends_at, "
    "status, source, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, 'desk', %s)"
)
IN_SLOT_SQL = (
    "SELECT count(*) FROM appointment WHERE provider_id = %s AND starts_at < %s "
    "AND ends_at > %s AND status = ANY(%s) AND deleted_at IS NULL"
)
OVERLAPS_SQL = (
    "SELECT count(*) FROM appointment a JOIN appointment b ON b.clinic_id = a.clinic_id "
    "AND b.provider_id = a.provider_id AND a.id < b.id AND a.starts_at < b.ends_at "
    "AND b.starts_at < a.ends_at WHERE a.status = ANY(%s) AND b.status = ANY(%s) "
    "AND a.deleted_at IS NULL AND b.deleted_at IS NULL"
)
ACTIVE_SQL = "SELECT count(*) FROM appointment WHERE status = ANY(%s) AND deleted_at IS NULL"
BUSY_SQL = (
    "SELECT provider_id, starts_at, ends_at FROM appointment WHERE status = ANY(%s) "
    "AND deleted_at IS NULL AND starts_at < %s AND ends_at > %s"
)
T = TypeVar("T")
Booking = tuple[uuid.UUID, Slot]  # (provider, slot)


@dataclass(frozen=True)
class Clinic:
    id: uuid.UUID
    user_id: uuid.UUID
    provider_ids: list[uuid.UUID]
    patient_ids: list[uuid.UUID]
    rules: list[WeeklyRule]
    zone: ZoneInfo
    policy: BookingPolicy


@dataclass
class Contention:
    statuses: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    burst_s: float = 0.0
    calendar: int = 0  # active appointments in the clinic before the burst
    in_slot: int = 0
    overlaps: int = 0


@dataclass
class SlotTiming:
    label: str
    latencies_ms: list[float]
    slots: int
    booked_in_window: int
    reply_bytes: int = 0  # the server's JSON reply; 0 in-process


@dataclass
class Integrity:
    overlaps: int
    active: int
    expected: int


@dataclass
class Results:
    contention: Contention
    api: Tally
    raw: Tally
    slots: list[SlotTiming]
    integrity: Integrity


@dataclass(frozen=True)
class Run:
    owner_url: URL
    app_url: URL
    base_url: str
    server_pid: int
    token: str
    clinic: Clinic


# --- seeding --------------------------------------------------------------------------


def weekly_rules() -> list[WeeklyRule]:
    return [WeeklyRule(weekday=day, start=DAY_START, end=DAY_END, slot_minutes=SLOT_MINUTES)
            for day in range(7)]


def add_providers(conn: Connection, clinic_id: uuid.UUID, rules: list[WeeklyRule]
                  ) -> list[uuid.UUID]:
    """The providers and their weekly hours (availability_rule rows, as tests' weekly_hours)."""
    ids = [uuid7() for _ in range(PROVIDERS)]
    conn.execute(insert(provider), [
        {"clinic_id": clinic_id, "id": pid, "display_name": f"Dr. Benchmark {i + 1:02d}",
         "specialty": "Medicina familiar"} for i, pid in enumerate(ids)
    ])
    conn.execute(insert(availability_rule), [
        {"clinic_id": clinic_id, "id": uuid7(), "provider_id": pid, "weekday": r.weekday,
         "start_time": r.start, "end_time": r.end, "slot_minutes": r.slot_minutes}
        for pid in ids for r in rules
    ])
    return ids


def add_patients(conn: Connection, clinic_id: uuid.UUID) -> list[uuid.UUID]:
    rows = fake_patient_rows(clinic_id, PATIENTS, seed=0)
    conn.execute(insert(patient), rows)
    return [cast(uuid.UUID, row["id"]) for row in rows]


def booking_policy(conn: Connection, clinic_id: uuid.UUID) -> BookingPolicy:
    row = conn.execute(select(clinic.c.booking_horizon_days, clinic.c.min_notice_minutes,
                              clinic.c.cancel_cutoff_minutes)
                       .where(clinic.c.id == clinic_id)).one()
    return BookingPolicy(horizon_days=row.booking_horizon_days,
                         min_notice_minutes=row.min_notice_minutes,
                         cancel_cutoff_minutes=row.cancel_cutoff_minutes)


def seed(owner_url: URL) -> Clinic:
    rules = weekly_rules()
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug="bench-booking", name="Benchmark clinic",
                                         timezone=TIMEZONE, country="CL")
            scope(conn, clinic_id)
            user_id = add_receptionist(conn, clinic_id)
            provider_ids = add_providers(conn, clinic_id, rules)
            patient_ids = add_patients(conn, clinic_id)
            policy = booking_policy(conn, clinic_id)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return Clinic(id=clinic_id, user_id=user_id, provider_ids=provider_ids,
                  patient_ids=patient_ids, rules=rules, zone=ZoneInfo(TIMEZONE), policy=policy)


def desk_token(secret: str, c: Clinic) -> str:
    return encode_token(
        key=secret, kind="access", user_id=c.user_id, clinic_id=c.id,
        role=Role.RECEPTIONIST, token_id=uuid7(), lifetime=TOKEN_LIFETIME,
        now=datetime.now(UTC),
    )


# --- the slots to book ----------------------------------------------------------------


def interleave(lists: Sequence[Sequence[T]]) -> list[T]:
    """Round robin: the first of each list, then the second of each, and so on."""
    return [x for group in itertools.zip_longest(*lists) for x in group if x is not None]


def tomorrow(c: Clinic, now: datetime) -> date:
    return now.astimezone(c.zone).date() + timedelta(days=1)


def contested(c: Clinic, now: datetime) -> Booking:
    start = local_instant(tomorrow(c, now), CONTESTED_AT, c.zone)
    return c.provider_ids[0], Slot(start, start + timedelta(minutes=SLOT_MINUTES))


def booking_queue(c: Clinic, now: datetime, skip: Booking) -> list[Booking]:
    """Every offered slot from tomorrow on for BOOKABLE_DAYS days, ordered so that
    consecutive bookings go to different providers and each provider's to different days:
    concurrent clients taking them in turn never ask for the same slot."""
    first = tomorrow(c, now)
    window = Interval(local_instant(first, wall_time(0), c.zone),
                      local_instant(first + timedelta(days=BOOKABLE_DAYS), wall_time(0), c.zone))
    slots = candidate_slots(rules=c.rules, extra=(), zone=c.zone, window=window)
    per_provider = []
    for p, provider_id in enumerate(c.provider_ids):
        by_day: dict[date, list[Booking]] = {}
        for slot in slots:
            if (provider_id, slot) != skip:
                by_day.setdefault(slot.start.astimezone(c.zone).date(), []).append(
                    (provider_id, slot))
        days = list(by_day.values())
        per_provider.append(interleave(days[p:] + days[:p]))
    return interleave(per_provider)


# --- HTTP requests --------------------------------------------------------------------


def post_request(client: HttpClient, path: str, payload: dict[str, str]) -> bytes:
    """A keep-alive JSON POST for HttpClient.get, which sends any prepared request."""
    body = json.dumps(payload).encode()
    head = (f"POST {path} HTTP/1.1\r\n{client.headers}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


def booking_request(client: HttpClient, c: Clinic, patient_id: uuid.UUID,
                    booking: Booking) -> bytes:
    provider_id, slot = booking
    return post_request(client, BOOKINGS_PATH, {
        "patient_id": str(patient_id), "provider_id": str(provider_id),
        "start": slot.start.astimezone(c.zone).isoformat(),
    })


def slots_path(start: datetime, end: datetime) -> str:
    query = httpx.QueryParams({"start": start.isoformat(), "end": end.isoformat()})
    return f"/api/v1/slots?{query}"


# --- checks in SQL --------------------------------------------------------------------


def scoped(owner_url: URL, c: Clinic) -> psycopg.Connection[Any]:
    conn = psycopg.connect(libpq(owner_url))
    conn.execute(SET_CLINIC_SQL, (str(c.id),))
    return conn


def sql_count(owner_url: URL, c: Clinic, query: str, params: tuple[Any, ...]) -> int:
    with scoped(owner_url, c) as conn:
        row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


def active_in_slot(owner_url: URL, c: Clinic, booking: Booking) -> int:
    provider_id, slot = booking
    return sql_count(owner_url, c, IN_SLOT_SQL, (provider_id, slot.end, slot.start, list(ACTIVE)))


def overlapping_pairs(owner_url: URL, c: Clinic) -> int:
    return sql_count(owner_url, c, OVERLAPS_SQL, (list(ACTIVE), list(ACTIVE)))


def active_appointments(owner_url: URL, c: Clinic) -> int:
    return sql_count(owner_url, c, ACTIVE_SQL, (list(ACTIVE),))


def busy_intervals(owner_url: URL, c: Clinic, window: Interval
                   ) -> dict[uuid.UUID, list[Interval]]:
    busy: dict[uuid.UUID, list[Interval]] = {pid: [] for pid in c.provider_ids}
    with scoped(owner_url, c) as conn:
        for pid, start, end in conn.execute(BUSY_SQL, (list(ACTIVE), window.end, window.start)):
            # In UTC as the server's UTCDateTime reads them: comparing datetimes of two
            # different tzinfo objects is several times slower.
            busy[pid].append(Interval(start.astimezone(UTC), end.astimezone(UTC)))
    return busy


# --- (a) contention -------------------------------------------------------------------


async def open_connections(client: HttpClient, count: int) -> None:
    """Open and warm `count` keep-alive connections (GET /healthz touches no database)."""
    healthz = client.request("/healthz")
    await asyncio.gather(*(client.get(n, healthz) for n in range(count)))


async def attempt(client: HttpClient, n: int, request: bytes, go: asyncio.Event
                  ) -> tuple[str, float]:
    await go.wait()
    started = time.perf_counter()
    try:
        status = str(await client.get(n, request))
    except OSError as exc:
        status = type(exc).__name__
    return status, (time.perf_counter() - started) * 1000


async def contend(base_url: str, token: str, c: Clinic, target: Booking) -> Contention:
    """CONTENDERS different patients ask for `target` at once, each on its own connection."""
    client = HttpClient(base_url, token)
    try:
        await open_connections(client, CONTENDERS)
        requests = [booking_request(client, c, c.patient_ids[n], target)
                    for n in range(CONTENDERS)]
        go = asyncio.Event()
        tasks = [asyncio.create_task(attempt(client, n, requests[n], go))
                 for n in range(CONTENDERS)]
        await asyncio.sleep(0.2)  # every task is waiting on the barrier
        started = time.perf_counter()
        go.set()
        outcomes = await asyncio.gather(*tasks)
        burst_s = time.perf_counter() - started
    finally:
        client.close()
    result = Contention(burst_s=burst_s)
    for status, ms in outcomes:
        result.statuses[status] += 1
        result.latencies_ms.append(ms)
    return result


# --- (b) throughput -------------------------------------------------------------------


def api_booking_op(client: HttpClient, c: Clinic, queue: Iterator[Booking],
                   booked: Counter[str]) -> Operation:
    async def op(n: int, i: int) -> str | None:
        request = booking_request(client, c, c.patient_ids[i % len(c.patient_ids)],
                                  next(queue))
        status = await client.get(n, request)
        if status != 201:
            return f"HTTP {status}"
        booked["api"] += 1
        return None

    return op


def raw_insert_op(pool: AsyncConnectionPool[Any], c: Clinic, queue: Iterator[Booking],
                  booked: Counter[str]) -> Operation:
    """One transaction as the app role: clinic scope, then the INSERT (and its trigger)."""
    clinic_id = str(c.id)

    async def op(n: int, i: int) -> str | None:
        provider_id, slot = next(queue)
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(SET_CLINIC_SQL, (clinic_id,))
            await conn.execute(INSERT_SQL, (
                c.id, uuid7(), c.patient_ids[i % len(c.patient_ids)], provider_id, slot.start,
                slot.end, AppointmentStatus.BOOKED.value, c.user_id,
            ))
        booked["raw"] += 1
        return None

    return op


async def count_worker(op: Operation, n: int, indices: Iterator[int], tally: Tally) -> None:
    for i in indices:  # shared by all workers: each index is taken once
        started = time.perf_counter()
        try:
            error = await op(n, i)
        except psycopg.Error as exc:
            error = type(exc).__name__
        if error is None:
            tally.add(i, (time.perf_counter() - started) * 1000)
        else:
            tally.errors[error] += 1


async def run_count(op: Operation, count: int, probe: Probe | None = None) -> Tally:
    """CLIENTS closed-loop workers until `count` operations are done."""
    tally = Tally()
    indices = iter(range(count))
    before = await probe() if probe else None
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for n in range(CLIENTS):
            group.create_task(count_worker(op, n, indices, tally))
    tally.elapsed_s = time.perf_counter() - started
    if probe is not None and before is not None:
        tally.cores = cores_used(before, await probe(), tally.elapsed_s)
    return tally


async def api_throughput(run: Run, queue: Iterator[Booking], booked: Counter[str]) -> Tally:
    progress(f"server: POST {BOOKINGS_PATH} x {CLIENTS} clients, {WARMUP_S:g} s warm-up "
             f"+ {DURATION_S:g} s")
    client = HttpClient(run.base_url, run.token)
    try:
        async with usage_probe(run.app_url, run.server_pid) as probe:
            op = api_booking_op(client, run.clinic, queue, booked)
            return await measure(op, probe, concurrency=CLIENTS)
    finally:
        client.close()


async def raw_throughput(app_url: URL, c: Clinic, queue: Iterator[Booking], count: int,
                         booked: Counter[str]) -> Tally:
    async with (
        AsyncConnectionPool(libpq(app_url), min_size=CLIENTS, max_size=CLIENTS,
                            open=False) as pool,
        usage_probe(app_url, None) as probe,
    ):
        await pool.wait()
        op = raw_insert_op(pool, c, queue, booked)
        await run_count(op, RAW_WARMUP)
        return await run_count(op, count, probe)


# --- (c) slot computation -------------------------------------------------------------


def slot_window(now: datetime) -> Interval:
    return Interval(now, now + timedelta(days=SLOT_DAYS))


async def slots_returned(base_url: str, token: str, path: str) -> tuple[int, int]:
    """How many slots one reply holds, and its size in bytes (an untimed call)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as http:
        reply = await http.get(path, headers={"Authorization": f"Bearer {token}"})
    reply.raise_for_status()
    return sum(len(p["data"]) for p in reply.json()["providers"]), len(reply.content)


async def time_slot_calls(base_url: str, token: str, path: str) -> list[float]:
    """One untimed call, then SLOT_CALLS sequential ones on one new keep-alive connection
    (one left idle past uvicorn's keep-alive timeout may be closing as it is reused)."""
    client = HttpClient(base_url, token)
    request = client.request(path)
    timings = []
    try:
        for i in range(SLOT_CALLS + 1):
            started = time.perf_counter()
            status = await client.get(0, request)
            if status != 200:
                raise RuntimeError(f"GET /api/v1/slots answered {status}")
            if i:
                timings.append((time.perf_counter() - started) * 1000)
    finally:
        client.close()
    return timings


def pure_slots(c: Clinic, window: Interval, busy: dict[uuid.UUID, list[Interval]],
               now: datetime) -> int:
    return sum(
        len(free_slots(rules=c.rules, extra=(), blocked=busy[pid], zone=c.zone,
                       window=window, now=now, policy=c.policy))
        for pid in c.provider_ids
    )


def time_pure_slots(owner_url: URL, c: Clinic, label: str) -> SlotTiming:
    """The same computation in-process: the rules and the bookings, no HTTP or SQL."""
    now = datetime.now(UTC)
    window = slot_window(now)
    busy = busy_intervals(owner_url, c, window)
    timings, count = [], 0
    for _ in range(SLOT_CALLS):
        started = time.perf_counter()
        count = pure_slots(c, window, busy, now)
        timings.append((time.perf_counter() - started) * 1000)
    return SlotTiming(label, timings, count, sum(len(v) for v in busy.values()))


async def time_api_slots(base_url: str, token: str, owner_url: URL, c: Clinic, label: str
                         ) -> SlotTiming:
    now = datetime.now(UTC)
    window = slot_window(now)
    path = slots_path(window.start, window.end)
    timings = await time_slot_calls(base_url, token, path)
    count, size = await slots_returned(base_url, token, path)
    booked = sum(len(v) for v in busy_intervals(owner_url, c, window).values())
    return SlotTiming(label, timings, count, booked, size)


async def slot_scenarios(run: Run, state: str) -> list[SlotTiming]:
    progress(f"slots: GET /api/v1/slots, {SLOT_DAYS} days x {PROVIDERS} providers ({state})")
    api = await time_api_slots(run.base_url, run.token, run.owner_url, run.clinic,
                               f"server ({state})")
    pure = time_pure_slots(run.owner_url, run.clinic, f"free_slots ({state})")
    return [api, pure]


# --- the run --------------------------------------------------------------------------


async def run_contention(run: Run, target: Booking) -> Contention:
    progress(f"contention: {CONTENDERS} simultaneous bookings of one slot")
    calendar = active_appointments(run.owner_url, run.clinic)
    result = await contend(run.base_url, run.token, run.clinic, target)
    result.calendar = calendar
    result.in_slot = active_in_slot(run.owner_url, run.clinic, target)
    result.overlaps = overlapping_pairs(run.owner_url, run.clinic)
    return result


async def run_all(run: Run) -> Results:
    c = run.clinic
    now = datetime.now(UTC)
    target = contested(c, now)
    queue = iter(booking_queue(c, now, target))
    booked: Counter[str] = Counter()
    slots = await slot_scenarios(run, "empty calendar")
    api = await api_throughput(run, queue, booked)
    progress(f"psycopg: {RAW_WARMUP} warm-up + {len(api.latencies_ms)} INSERTs")
    raw = await raw_throughput(run.app_url, c, queue, len(api.latencies_ms), booked)
    contention = await run_contention(run, target)
    slots += await slot_scenarios(run, "after bookings")
    winners = contention.statuses.get("201", 0)
    integrity = Integrity(overlaps=overlapping_pairs(run.owner_url, c),
                          active=active_appointments(run.owner_url, c),
                          expected=winners + booked["api"] + booked["raw"])
    return Results(contention, api, raw, slots, integrity)


# --- report ---------------------------------------------------------------------------


def print_setup(*, seed_s: float, background: float, c: Clinic) -> None:
    print(f"Consulta booking: 1 clinic ({TIMEZONE}), {PROVIDERS} providers with "
          f"{DAY_START:%H:%M}-{DAY_END:%H:%M} {SLOT_MINUTES}-minute slots every day, "
          f"{PATIENTS:,} patients; min notice {c.policy.min_notice_minutes} min, horizon "
          f"{c.policy.horizon_days} days; seeded in {seed_s:.1f} s")
    print(f"machine: {os.cpu_count()} CPUs, {background:.2f} cores busy with other work just "
          "before the run")
    print("server: uvicorn in its own process, 1 worker, a fixed DB pool of "
          f"{Settings.model_fields['db_pool_size'].default} connections as the app role; "
          "client: keep-alive HTTP/1.1 connections on uvloop, replies parsed by httptools")


def print_contention(r: Contention) -> None:
    lat = r.latencies_ms
    others = {k: v for k, v in r.statuses.items() if k not in ("201", "409")}
    print(f"(a) contention: {CONTENDERS} clients POST {BOOKINGS_PATH} for one slot at once "
          f"(tomorrow {CONTESTED_AT:%H:%M}, one provider, {CONTENDERS} different patients); "
          f"run after (b), on a calendar of {r.calendar:,} active appointments")
    print(f"  201 created {r.statuses.get('201', 0)}   409 conflict {r.statuses.get('409', 0)}"
          f"   other {sum(others.values())}" + (f" {others}" if others else ""))
    print(f"  latency ms (all attempts): p50 {fmt_ms(percentile(lat, 50))}  p95 "
          f"{fmt_ms(percentile(lat, 95))}  p99 {fmt_ms(percentile(lat, 99))}  max "
          f"{fmt_ms(max(lat, default=None))}; the burst took {r.burst_s * 1000:.0f} ms")
    verdict = "OK" if r.in_slot == 1 and r.overlaps == 0 else "FAILED"
    print(f"  SQL check: {r.in_slot} active appointment(s) in the slot, {r.overlaps} "
          f"overlapping active pair(s) in the clinic: {verdict}")


def throughput_row(name: str, t: Tally) -> str:
    errors = sum(t.errors.values())
    kinds = ", ".join(f"{k} x{v}" for k, v in t.errors.most_common())
    cores = " / ".join(f"{k} {v:.2f}" for k, v in t.cores.items())
    return (f"  {name:<34}{len(t.latencies_ms):>7}{t.rps:>9.1f}"
            f"{fmt_ms(t.percentile(50)):>8}{fmt_ms(t.percentile(95)):>8}"
            f"{fmt_ms(t.percentile(99)):>8}{errors:>7}   {cores}"
            + (f"   ({kinds})" if kinds else ""))


def print_throughput(api: Tally, raw: Tally, ratio: float | None) -> None:
    print(f"(b) throughput: {CLIENTS} concurrent closed-loop clients booking distinct free "
          f"slots; server for {DURATION_S:g} s after a {WARMUP_S:g} s warm-up, psycopg for "
          f"the same count after {RAW_WARMUP} warm-up inserts")
    print(f"  {'':<34}{'done':>7}{'per s':>9}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}"
          f"{'errors':>7}   CPU cores used")
    print(throughput_row(f"server POST {BOOKINGS_PATH}", api))
    print(throughput_row("psycopg set_config + INSERT", raw))
    print(f"  throughput ratio (server bookings/s / psycopg inserts/s): "
          f"{'n/a' if ratio is None else f'{ratio:.3f}'}")


def print_slots(slots: list[SlotTiming]) -> None:
    print(f"(c) slot computation: {SLOT_DAYS} days x {PROVIDERS} providers, {SLOT_CALLS} "
          "sequential calls each")
    print(f"  {'':<34}{'p50 ms':>9}{'p95 ms':>9}{'slots':>8}{'booked in window':>18}"
          f"{'reply MB':>10}")
    for s in slots:
        size = f"{s.reply_bytes / 1e6:.2f}" if s.reply_bytes else "-"
        print(f"  {s.label:<34}{fmt_ms(percentile(s.latencies_ms, 50)):>9}"
              f"{fmt_ms(percentile(s.latencies_ms, 95)):>9}{s.slots:>8}{s.booked_in_window:>18}"
              f"{size:>10}")
    print("  (server: token, account, clinic, providers, rules, exceptions and bookings "
          "queries, free_slots, the reply's models and JSON over loopback; free_slots: the "
          "pure function alone on the same rules and bookings)")


def print_integrity(i: Integrity) -> None:
    verdict = "OK" if i.overlaps == 0 and i.active == i.expected else "FAILED"
    print(f"final SQL check: {i.overlaps} overlapping active pair(s); {i.active} active "
          f"appointments for {i.expected} successful bookings and inserts: {verdict}")


def summary(r: Results, *, background: float) -> dict[str, Any]:
    lat = r.contention.latencies_ms
    api_rps, raw_rps = r.api.rps, r.raw.rps
    empty_slots, empty_pure, after_slots, after_pure = r.slots
    return {
        "contention_successes": r.contention.statuses.get("201", 0),
        "contention_conflicts": r.contention.statuses.get("409", 0),
        "contention_other": CONTENDERS - r.contention.statuses.get("201", 0)
        - r.contention.statuses.get("409", 0),
        "contention_p50_ms": rounded(percentile(lat, 50)),
        "contention_p95_ms": rounded(percentile(lat, 95)),
        "contention_p99_ms": rounded(percentile(lat, 99)),
        "contention_slot_active": r.contention.in_slot,
        "api_bookings": len(r.api.latencies_ms),
        "api_bookings_per_s": rounded(api_rps),
        "api_booking_p50_ms": rounded(r.api.percentile(50)),
        "api_booking_p95_ms": rounded(r.api.percentile(95)),
        "api_booking_p99_ms": rounded(r.api.percentile(99)),
        "api_booking_errors": sum(r.api.errors.values()),
        "raw_inserts": len(r.raw.latencies_ms),
        "raw_inserts_per_s": rounded(raw_rps),
        "raw_insert_p50_ms": rounded(r.raw.percentile(50)),
        "raw_insert_p95_ms": rounded(r.raw.percentile(95)),
        "raw_insert_errors": sum(r.raw.errors.values()),
        "throughput_ratio": round(api_rps / raw_rps, 4) if raw_rps else None,
        "slots_30d_20p_ms_p50": rounded(percentile(after_slots.latencies_ms, 50)),
        "slots_30d_20p_ms_p95": rounded(percentile(after_slots.latencies_ms, 95)),
        "slots_returned": after_slots.slots,
        "slots_booked_in_window": after_slots.booked_in_window,
        "free_slots_inprocess_ms_p50": rounded(percentile(after_pure.latencies_ms, 50)),
        "free_slots_inprocess_returned": after_pure.slots,
        "slots_empty_30d_20p_ms_p50": rounded(percentile(empty_slots.latencies_ms, 50)),
        "slots_empty_30d_20p_ms_p95": rounded(percentile(empty_slots.latencies_ms, 95)),
        "slots_empty_returned": empty_slots.slots,
        "free_slots_inprocess_empty_ms_p50": rounded(percentile(empty_pure.latencies_ms, 50)),
        "overlaps_found": r.integrity.overlaps,
        "active_appointments": r.integrity.active,
        "expected_active_appointments": r.integrity.expected,
        "background_cores": round(background, 2),
        "providers": PROVIDERS,
        "patients": PATIENTS,
        "contenders": CONTENDERS,
        "clients": CLIENTS,
        "duration_s": DURATION_S,
    }


def report(r: Results, *, seed_s: float, background: float, c: Clinic) -> None:
    """The readable figures, then the summary as one JSON object on the last line."""
    data = summary(r, background=background)
    print_setup(seed_s=seed_s, background=background, c=c)
    print()
    print_contention(r.contention)
    print()
    print_throughput(r.api, r.raw, data["throughput_ratio"])
    print()
    print_slots(r.slots)
    print()
    print_integrity(r.integrity)
    print(json.dumps(data))


def main() -> int:
    secret = secrets.token_urlsafe(48)
    background = background_load()
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database(workdir / "pg") as (owner_url, app_url):
            progress(f"seeding {PROVIDERS} providers' weekly hours and {PATIENTS:,} patients")
            started = time.perf_counter()
            c = seed(owner_url)
            seed_s = time.perf_counter() - started
            with api_server(app_url=app_url, secret=secret, data_dir=workdir / "data") as (
                base_url, pid
            ):
                run = Run(owner_url, app_url, base_url, pid, desk_token(secret, c), c)
                results = run_async(run_all(run))
    report(results, seed_s=seed_s, background=background, c=c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
