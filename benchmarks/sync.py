"""Desktop sync through a real uvicorn server, on one clinic of 100,000 patients and
200,000 appointments (50 providers, distinct 15-minute slots in the past and future):

(a) initial pull: a fresh SQLCipher store pulls everything through SyncClient (page 1000),
    in a child process so its peak RSS is the pull's own; beside the same rows bulk-inserted
    straight into another new SQLCipher file (executemany, one transaction per 10,000), in
    another child process;
(b) push: 10,000 local patient edits queued with edit_patient, then SyncClient.push();
(c) incremental: with the store in sync, 10 patients changed on the server over HTTP, then
    one SyncClient.sync() is timed (median of 5).

Runs with no arguments on an embedded PostgreSQL in a temporary folder (or DATABASE_URL),
with the harness of benchmarks/api_latency.py, and prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, create_engine, insert, select, text, update
from sqlalchemy.engine import URL

from shared_models.ids import uuid7
from shared_models.tables import appointment, clinic, patient, provider
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/sync.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.api_latency import (  # noqa: E402 - needs the repository root on sys.path
    Seeded,
    access_token,
    add_receptionist,
    api_server,
    background_load,
    fresh_database,
    machine_busy_seconds,
    postgres_cpu_seconds,
    process_cpu_seconds,
    progress,
    rounded,
)

PATIENTS = 100_000
PATIENT_BATCH = 5_000
PROVIDERS = 50
APPOINTMENTS = 200_000
APPOINTMENT_BATCH = 10_000
SLOT_MINUTES = 15
PAGE = 1_000  # the server's cap
PUSH_BATCH = 500
EDITS = 10_000
DIRECT_CHUNK = 10_000
SERVER_CHANGES = 10
INCREMENTAL_REPS = 5
GOAL_RATIO = 3.0
GOAL_RSS_MB = 300.0
GOAL_INCREMENTAL_MS = 200.0
CHILD_TIMEOUT_S = 540.0
# Time budgets that keep the whole run under 10 minutes; a step cut short says so.
PULL_BUDGET_S = 90.0
EDIT_BUDGET_S = 45.0
PUSH_BUDGET_S = 60.0
HTTP_TIMEOUT_S = 120.0
CHILD_FLAG = "--child"


# --- seeding (the owner engine, clinic-scoped) ----------------------------------------


@dataclass(frozen=True)
class SeedTimes:
    patients_s: float
    appointments_s: float
    vacuum_s: float


def add_providers(conn: Connection, clinic_id: uuid.UUID) -> list[uuid.UUID]:
    ids = [uuid7() for _ in range(PROVIDERS)]
    conn.execute(insert(provider), [
        {"clinic_id": clinic_id, "id": pid, "display_name": f"Dr. Benchmark {i + 1:02d}",
         "specialty": "Medicina familiar"} for i, pid in enumerate(ids)
    ])
    return ids


def add_patients(conn: Connection, clinic_id: uuid.UUID) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for start in range(0, PATIENTS, PATIENT_BATCH):
        rows = fake_patient_rows(clinic_id, min(PATIENT_BATCH, PATIENTS - start), seed=start,
                                 start_mrn=start + 1)
        conn.execute(insert(patient), rows)
        ids.extend(row["id"] for row in rows)  # type: ignore[misc]
    conn.execute(update(clinic).where(clinic.c.id == clinic_id).values(next_mrn=PATIENTS + 1))
    return ids


def add_appointments(conn: Connection, clinic_id: uuid.UUID, provider_ids: list[uuid.UUID],
                     patient_ids: list[uuid.UUID], user_id: uuid.UUID) -> None:
    """Slot k of every provider starts k quarter-hours after a start half the calendar in
    the past: no provider's appointments overlap. Past ones are completed (the overlap
    trigger returns at once), future ones booked (it locks and probes the index)."""
    per_provider = APPOINTMENTS // PROVIDERS
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    now -= timedelta(minutes=now.minute % SLOT_MINUTES)
    first = now - timedelta(minutes=SLOT_MINUTES * (per_provider // 2))
    slot = timedelta(minutes=SLOT_MINUTES)
    batch: list[dict[str, object]] = []
    n = 0
    for k in range(per_provider):
        starts = first + k * slot
        status = "completed" if starts < now else "booked"
        for provider_id in provider_ids:
            batch.append({
                "clinic_id": clinic_id, "id": uuid7(), "provider_id": provider_id,
                "patient_id": patient_ids[n % len(patient_ids)], "starts_at": starts,
                "ends_at": starts + slot, "status": status, "source": "desk",
                "created_by": user_id,
            })
            n += 1
            if len(batch) == APPOINTMENT_BATCH:
                conn.execute(insert(appointment), batch)
                batch = []
    if batch:
        conn.execute(insert(appointment), batch)


def seed(owner_url: URL) -> tuple[Seeded, SeedTimes]:
    engine = create_engine(owner_url)
    try:
        started = time.perf_counter()
        with engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug="bench-sync", name="Benchmark clinic",
                                         timezone="America/Mexico_City")
            scope(conn, clinic_id)
            user_id = add_receptionist(conn, clinic_id)
            provider_ids = add_providers(conn, clinic_id)
            patient_ids = add_patients(conn, clinic_id)
        patients_s = time.perf_counter() - started
        progress(f"  patients in {patients_s:.1f} s; {APPOINTMENTS:,} appointments")
        started = time.perf_counter()
        with engine.begin() as conn:
            scope(conn, clinic_id)
            add_appointments(conn, clinic_id, provider_ids, patient_ids, user_id)
        appointments_s = time.perf_counter() - started
        started = time.perf_counter()
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
        vacuum_s = time.perf_counter() - started
    finally:
        engine.dispose()
    return (Seeded(clinic_id=clinic_id, user_id=user_id, terms={}),
            SeedTimes(patients_s, appointments_s, vacuum_s))


# --- the desktop side, in child processes ---------------------------------------------


def max_rss_mb() -> float:
    """This process's peak RSS. VmHWM restarts at exec; ru_maxrss keeps the peak of the
    parent this child was forked from (the seeding benchmark), so it is only a fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def timed_calls(client: Any) -> dict[str, float]:
    """Wrap the client's HTTP call so the time spent waiting on the server (request,
    server work, reply, JSON decoding) can be told apart from applying it locally."""
    spent = {"http_s": 0.0, "calls": 0}
    real = client._call

    def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return real(*args, **kwargs)  # type: ignore[no-any-return]
        finally:
            spent["http_s"] += time.perf_counter() - started
            spent["calls"] += 1

    client._call = call
    return spent


def timed_page_waits() -> dict[str, float]:
    """Time how long the pull's applying thread waits for its next page. The client
    fetches pages ahead on another thread, so HTTP time overlaps the local work: the
    pull's own time less these waits is what applying the pages took."""
    from desktop.sync import client as module
    spent = {"wait_s": 0.0}
    enter = module._Prefetch.__enter__

    def timed_enter(self: Any) -> Any:
        pages = enter(self)

        def waited() -> Any:
            while True:
                started = time.perf_counter()
                page = next(pages, None)
                spent["wait_s"] += time.perf_counter() - started
                if page is None:
                    return
                yield page

        return waited()

    module._Prefetch.__enter__ = timed_enter  # type: ignore[method-assign]
    return spent


class OutOfTime(Exception):
    """A step ran past its time budget: what was done so far is reported."""


def sync_client(engine: Engine, http: httpx.Client, token: str, *,
                deadline: float | None = None) -> Any:
    """A SyncClient that stops (raising OutOfTime) after the page or batch that crosses
    `deadline` (a time.perf_counter() value)."""
    from desktop.sync.client import Progress, SyncClient

    def check(_p: Progress) -> None:
        if deadline is not None and time.perf_counter() > deadline:
            raise OutOfTime

    return SyncClient(engine, http, token=lambda: token, page=PAGE, batch=PUSH_BATCH,
                      on_progress=check)


def child_pull(args: dict[str, Any]) -> dict[str, Any]:
    from desktop.store.database import open_store
    from desktop.sync.client import Progress
    rss_before = max_rss_mb()
    engine = open_store(Path(args["store"]), bytes.fromhex(args["key"]))
    started = time.perf_counter()
    with httpx.Client(base_url=args["base_url"], timeout=HTTP_TIMEOUT_S) as http:
        client = sync_client(engine, http, args["token"], deadline=started + PULL_BUDGET_S)
        spent = timed_calls(client)
        waits = timed_page_waits()
        cpu = own_cpu_s()
        done = Progress()
        complete = True
        try:
            client.pull(done)
        except OutOfTime:
            complete = False
        seconds = time.perf_counter() - started
    engine.dispose()
    return {"seconds": seconds, "rows": done.pulled, "complete": complete,
            "http_s": spent["http_s"], "wait_s": waits["wait_s"], "pages": spent["calls"],
            "cpu_s": own_cpu_s() - cpu, "rss_before_mb": rss_before, "peak_rss_mb": max_rss_mb()}


def child_direct(args: dict[str, Any]) -> dict[str, Any]:
    """Every row exactly as the pull returns it (paged from /api/v1/sync/pull, converted
    with the client's to_row; neither timed), bulk-inserted into a new store in one
    transaction per DIRECT_CHUNK rows of a table (timed). The final cursor is saved too,
    which leaves an in-sync store for the push and incremental steps."""
    from desktop.store.database import open_store
    from desktop.store.local import sync_state
    from desktop.store.records import to_row
    from desktop.sync.client import CURSOR_KEY, TABLES
    engine = open_store(Path(args["target"]), bytes.fromhex(args["key"]))
    buffers: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    seconds = fetch_s = 0.0
    rows = 0

    def flush(name: str) -> None:
        nonlocal seconds, rows
        chunk = buffers[name]
        if chunk:
            started = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(insert(TABLES[name]), chunk)
            seconds += time.perf_counter() - started
            rows += len(chunk)
            buffers[name] = []

    cursor: str | None = None
    headers = {"Authorization": f"Bearer {args['token']}"}
    with httpx.Client(base_url=args["base_url"], timeout=HTTP_TIMEOUT_S) as http:
        while True:
            started = time.perf_counter()
            params: dict[str, Any] = {"limit": PAGE, **({"since": cursor} if cursor else {})}
            response = http.get("/api/v1/sync/pull", params=params, headers=headers)
            response.raise_for_status()
            body = response.json()
            for change in body["changes"]:
                if not change["deleted"]:
                    name = change["entity"]
                    buffers[name].append(to_row(TABLES[name], {
                        **change["record"], "server_version": change["server_version"]}))
            cursor = body["next_cursor"]
            fetch_s += time.perf_counter() - started
            for name, chunk in buffers.items():
                if len(chunk) >= DIRECT_CHUNK:
                    flush(name)
            if not body["has_more"]:
                break
    for name in buffers:
        flush(name)
    with engine.begin() as conn:
        conn.execute(insert(sync_state).values(key=CURSOR_KEY, value=cursor))
    engine.dispose()
    return {"seconds": seconds, "rows": rows, "fetch_s": fetch_s, "peak_rss_mb": max_rss_mb()}


def patch_on_server(http: httpx.Client, token: str, ids: list[uuid.UUID], tag: int) -> None:
    for n, patient_id in enumerate(ids):
        response = http.patch(f"/api/v1/patients/{patient_id}",
                              headers={"Authorization": f"Bearer {token}"},
                              json={"phone": f"+5256{tag:04d}{n:04d}"})
        if response.status_code != 200:
            raise RuntimeError(f"PATCH {patient_id}: {response.status_code} "
                               f"{response.text[:200]}")


def child_push(args: dict[str, Any]) -> dict[str, Any]:
    """On the in-sync store: first the incremental syncs (so no pushed versions are still
    to come back), then EDITS local edits and one push, each within its time budget."""
    from desktop.operations.patients import edit_patient
    from desktop.store.database import open_store
    from desktop.sync.client import Progress
    from shared_models.clock import HybridClock
    engine = open_store(Path(args["target"]), bytes.fromhex(args["key"]))
    clock = HybridClock("benchdesk")
    token = args["token"]
    with engine.connect() as conn:
        ids = list(conn.execute(select(patient.c.id).order_by(patient.c.mrn)
                                .limit(EDITS + SERVER_CHANGES * INCREMENTAL_REPS)).scalars())
    server_ids, edit_ids = ids[:SERVER_CHANGES * INCREMENTAL_REPS], ids[-EDITS:]
    runs: list[dict[str, float]] = []
    with httpx.Client(base_url=args["base_url"], timeout=HTTP_TIMEOUT_S) as http:
        client = sync_client(engine, http, token)
        spent = timed_calls(client)
        for rep in range(INCREMENTAL_REPS):
            patch_on_server(http, token, server_ids[rep * SERVER_CHANGES:
                                                    (rep + 1) * SERVER_CHANGES], rep)
            spent["http_s"], spent["calls"] = 0.0, 0
            started = time.perf_counter()
            got = client.sync()
            runs.append({"ms": (time.perf_counter() - started) * 1000,
                         "http_ms": spent["http_s"] * 1000, "calls": spent["calls"],
                         "pulled": got.pulled, "pushed": got.pushed})
        started = time.perf_counter()
        queued = 0
        for n, patient_id in enumerate(edit_ids):
            if time.perf_counter() - started > EDIT_BUDGET_S:
                break
            edit_patient(engine, clock, patient_id, {"phone": f"+5255{n:08d}"})
            queued += 1
        queue_s = time.perf_counter() - started
        started = time.perf_counter()
        client = sync_client(engine, http, token, deadline=started + PUSH_BUDGET_S)
        spent = timed_calls(client)
        result = Progress()
        complete = True
        try:
            client.push(result)
        except OutOfTime:
            complete = False
        push_s = time.perf_counter() - started
    engine.dispose()
    return {"queued": queued, "queue_s": queue_s, "push_s": push_s,
            "push_http_s": spent["http_s"], "pushed": result.pushed,
            "rejected": result.rejected, "push_complete": complete, "incremental": runs}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "pull": child_pull, "direct": child_direct, "push": child_push,
}


def run_child(kind: str, args: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Run a desktop step in a new interpreter: (its JSON answer, its CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, str(Path(__file__).resolve()), CHILD_FLAG, kind],
        input=json.dumps(args).encode(), stdout=subprocess.PIPE, timeout=CHILD_TIMEOUT_S,
        check=True, cwd=REPO_ROOT,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return json.loads(done.stdout.decode().strip().splitlines()[-1]), cpu


# --- CPU of the server side -----------------------------------------------------------


@dataclass
class ServerCpu:
    server_pid: int
    server: float = 0.0
    postgres: float = 0.0
    machine: float = 0.0
    wall: float = 0.0

    def start(self) -> None:
        self._before = (process_cpu_seconds(self.server_pid), postgres_cpu_seconds(),
                        machine_busy_seconds(), time.perf_counter())

    def stop(self) -> None:
        server, pg, machine, wall = self._before
        after_pg = postgres_cpu_seconds()
        self.server = process_cpu_seconds(self.server_pid) - server
        self.postgres = sum(t - pg.get(pid, 0.0) for pid, t in after_pg.items()) - sum(
            t for pid, t in pg.items() if pid not in after_pg)
        self.machine = machine_busy_seconds() - machine
        self.wall = time.perf_counter() - wall


# --- report ---------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def summary(*, background: float, seed_times: SeedTimes, pull: dict[str, Any],
            pull_cpu: ServerCpu, pull_child_cpu: float, direct: dict[str, Any],
            push: dict[str, Any]) -> dict[str, Any]:
    """Steps cut short by their budget report what they did; full-size figures are then
    null and a linear estimate (a lower bound when the cost grows with the store) is added."""
    complete = bool(pull["complete"])
    rate = pull["rows"] / pull["seconds"] if pull["seconds"] else 0.0
    pull_linear = direct["rows"] / rate if rate else None
    ratio = pull["seconds"] / direct["seconds"] if complete and direct["seconds"] else None
    ratio_low = (pull_linear / direct["seconds"]
                 if not complete and pull_linear and direct["seconds"] else None)
    push_full = push["push_complete"] and push["queued"] == EDITS
    push_linear = (push["push_s"] * EDITS / push["pushed"]) if push["pushed"] else None
    queue_linear = push["queue_s"] * EDITS / push["queued"] if push["queued"] else None
    inc = [r["ms"] for r in push["incremental"]]
    inc_ms = statistics.median(inc)
    return {
        "initial_pull_s": rounded(pull["seconds"]) if complete else None,
        "initial_pull_complete": complete,
        "initial_pull_elapsed_s": rounded(pull["seconds"]),
        "initial_rows": pull["rows"],
        "initial_rows_per_s": rounded(rate),
        "initial_pull_linear_estimate_s": None if complete else rounded(pull_linear),
        "initial_pages": pull["pages"],
        "initial_http_s": rounded(pull["http_s"]),
        "initial_page_wait_s": rounded(pull["wait_s"]),
        "initial_apply_s": rounded(pull["seconds"] - pull["wait_s"]),
        "initial_desktop_cpu_s": rounded(pull_child_cpu),
        "initial_server_cpu_s": rounded(pull_cpu.server),
        "initial_postgres_cpu_s": rounded(pull_cpu.postgres),
        "direct_insert_s": rounded(direct["seconds"]),
        "direct_rows": direct["rows"],
        "direct_fetch_s": rounded(direct["fetch_s"]),
        "direct_peak_rss_mb": rounded(direct["peak_rss_mb"]),
        "initial_ratio": rounded(ratio),
        "initial_ratio_lower_bound": rounded(ratio_low),
        "peak_rss_mb": rounded(pull["peak_rss_mb"]),
        "pull_process_rss_before_mb": rounded(pull["rss_before_mb"]),
        "edits_queued": push["queued"],
        "queue_edits_s": rounded(push["queue_s"]),
        "queue_10k_edits_linear_estimate_s": rounded(queue_linear),
        "push_10k_s": rounded(push["push_s"]) if push_full else None,
        "push_elapsed_s": rounded(push["push_s"]),
        "push_linear_estimate_10k_s": None if push_full else rounded(push_linear),
        "push_http_s": rounded(push["push_http_s"]),
        "pushed": push["pushed"],
        "push_rejected": push["rejected"],
        "push_complete": push["push_complete"],
        "incremental_ms": rounded(inc_ms),
        "incremental_runs_ms": [rounded(v) for v in inc],
        "incremental_http_ms_median": rounded(
            statistics.median(r["http_ms"] for r in push["incremental"])),
        "incremental_pulled": [r["pulled"] for r in push["incremental"]],
        "ratio_goal_met": ratio is not None and ratio <= GOAL_RATIO,
        "rss_goal_met": complete and pull["peak_rss_mb"] < GOAL_RSS_MB,
        "incremental_goal_met": inc_ms < GOAL_INCREMENTAL_MS,
        "seed_patients_s": rounded(seed_times.patients_s),
        "seed_appointments_s": rounded(seed_times.appointments_s),
        "seed_vacuum_s": rounded(seed_times.vacuum_s),
        "background_cores": round(background, 2),
        "patients": PATIENTS,
        "appointments": APPOINTMENTS,
        "providers": PROVIDERS,
        "page": PAGE,
        "budgets_s": {"pull": PULL_BUDGET_S, "edits": EDIT_BUDGET_S, "push": PUSH_BUDGET_S},
    }


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "n/a" if value is None else format(value, spec)


def report(data: dict[str, Any], pull_cpu: ServerCpu, push: dict[str, Any]) -> None:
    print(f"Consulta desktop sync: {PATIENTS:,} patients, {APPOINTMENTS:,} appointments over "
          f"{PROVIDERS} providers (15-minute slots), one clinic")
    print(f"machine: {os.cpu_count()} CPUs, {data['background_cores']:.2f} cores busy with "
          "other work just before the run")
    print(f"seeding (owner engine, executemany): patients {data['seed_patients_s']:.1f} s, "
          f"appointments {data['seed_appointments_s']:.1f} s (overlap trigger per row), "
          f"VACUUM ANALYZE {data['seed_vacuum_s']:.1f} s")
    print("server: uvicorn in its own process, 1 worker; desktop: SyncClient on a new "
          "SQLCipher store in a child process, httpx")
    print()
    state = "complete" if data["initial_pull_complete"] else (
        f"STOPPED at its {PULL_BUDGET_S:g} s budget")
    print(f"initial pull (page {PAGE}), {state}: {data['initial_rows']:,} rows in "
          f"{data['initial_pull_elapsed_s']:.1f} s = {data['initial_rows_per_s']:,.0f} rows/s, "
          f"{data['initial_pages']} requests")
    if not data["initial_pull_complete"]:
        print(f"  all {data['direct_rows']:,} rows at that rate would take "
              f"{fmt(data['initial_pull_linear_estimate_s'])} s; a lower bound, as each row "
              "costs more the more rows the store holds")
    print(f"  HTTP (server + transfer + JSON decode, on the thread that fetches pages ahead) "
          f"{data['initial_http_s']:.1f} s; the applying thread waited for pages "
          f"{data['initial_page_wait_s']:.1f} s and applied them in "
          f"{data['initial_apply_s']:.1f} s")
    wall = pull_cpu.wall or 1.0
    print(f"  CPU: desktop process {data['initial_desktop_cpu_s']:.1f} s, uvicorn "
          f"{pull_cpu.server:.1f} s, postgres {pull_cpu.postgres:.1f} s, machine "
          f"{pull_cpu.machine / wall:.2f} cores busy on average")
    print(f"  peak RSS of the pull process {data['peak_rss_mb']:.0f} MB "
          f"({data['pull_process_rss_before_mb']:.0f} MB before opening the store)")
    print(f"direct bulk insert of all {data['direct_rows']:,} rows as the pull returns them "
          f"into a new SQLCipher file: {data['direct_insert_s']:.1f} s (executemany, one "
          f"transaction per {DIRECT_CHUNK:,}; fetching the pages, untimed, took "
          f"{data['direct_fetch_s']:.1f} s; peak RSS {data['direct_peak_rss_mb']:.0f} MB)")
    if data["initial_ratio"] is not None:
        print(f"ratio pull / direct insert: {data['initial_ratio']:.2f}x")
    else:
        low = fmt(data["initial_ratio_lower_bound"], ".0f")
        print(f"ratio pull / direct insert: at least {low}x (pull incomplete)")
    print()
    print(f"incremental (on the in-sync store from the direct insert, {data['direct_rows']:,} "
          f"rows): {SERVER_CHANGES} PATCHes on the server, then one sync() "
          f"({INCREMENTAL_REPS} repetitions)")
    for n, r in enumerate(push["incremental"], 1):
        print(f"  run {n}: {r['ms']:8.1f} ms (HTTP {r['http_ms']:.1f} ms in {r['calls']} "
              f"requests), pulled {r['pulled']}, pushed {r['pushed']}")
    print(f"push: {data['edits_queued']:,} of {EDITS:,} edit_patient calls queued in "
          f"{data['queue_edits_s']:.1f} s (all {EDITS:,}: ~"
          f"{fmt(data['queue_10k_edits_linear_estimate_s'])} s); SyncClient.push() "
          f"(batch {PUSH_BATCH}) {'complete' if data['push_complete'] else 'STOPPED'} after "
          f"{data['push_elapsed_s']:.1f} s, of which HTTP {data['push_http_s']:.1f} s; "
          f"{data['pushed']:,} pushed, {data['push_rejected']} rejected")
    if data["push_10k_s"] is None:
        print(f"  push of {EDITS:,} not measured in full; linear estimate "
              f"{fmt(data['push_linear_estimate_10k_s'])} s")
    print()
    print("goals:")
    ratio = (f"{data['initial_ratio']:.2f}x" if data["initial_ratio"] is not None
             else f">= {fmt(data['initial_ratio_lower_bound'], '.0f')}x")
    print(f"  initial pull / direct insert <= {GOAL_RATIO:g}x: {ratio}  "
          f"{verdict(data['ratio_goal_met'])}")
    rss_note = "" if data["initial_pull_complete"] else " (pull incomplete: not shown for all rows)"
    print(f"  peak RSS of the pull < {GOAL_RSS_MB:.0f} MB: {data['peak_rss_mb']:.0f} MB  "
          f"{verdict(data['rss_goal_met'])}{rss_note}")
    print(f"  incremental sync median < {GOAL_INCREMENTAL_MS:.0f} ms: "
          f"{data['incremental_ms']:.1f} ms  {verdict(data['incremental_goal_met'])}")
    print(json.dumps(data))


def main() -> int:
    secret = secrets.token_urlsafe(48)
    background = background_load()
    with tempfile.TemporaryDirectory(prefix="consulta-bench-") as tmp:
        workdir = Path(tmp)
        with fresh_database(workdir / "pg") as (owner_url, app_url):
            progress(f"seeding {PATIENTS:,} patients, {PROVIDERS} providers")
            seeded, seed_times = seed(owner_url)
            with api_server(app_url=app_url, secret=secret, data_dir=workdir / "data") as (
                base_url, pid
            ):
                token = access_token(secret, seeded)
                store = {"store": str(workdir / "desk.db"), "key": os.urandom(32).hex(),
                         "base_url": base_url, "token": token}
                progress("initial pull")
                pull_cpu = ServerCpu(pid)
                pull_cpu.start()
                pull, pull_child_cpu = run_child("pull", store)
                pull_cpu.stop()
                progress(f"  {pull['rows']:,} rows in {pull['seconds']:.1f} s "
                         f"(complete: {pull['complete']}); direct insert")
                store["target"] = str(workdir / "direct.db")
                direct, _ = run_child("direct", store)
                progress(f"  {direct['rows']:,} rows in {direct['seconds']:.1f} s; "
                         "incremental sync, then the push of 10,000 edits")
                push, _ = run_child("push", store)
    data = summary(background=background, seed_times=seed_times, pull=pull, pull_cpu=pull_cpu,
                   pull_child_cpu=pull_child_cpu, direct=direct, push=push)
    report(data, pull_cpu, push)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:  # the token comes on stdin
        print(json.dumps(CHILDREN[sys.argv[2]](json.loads(sys.stdin.read()))))
        raise SystemExit(0)
    raise SystemExit(main())
