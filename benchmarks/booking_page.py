"""Latency of the patient booking page's slot page (`/book/{clinic}/{provider}/{day}`: one
day's free times, rendered as HTML) through a real uvicorn server under 50 concurrent
clients for 20 s, beside `/healthz` measured the same way in the same run, and the days
page (two weeks of free days) for context. The server keeps a rendered listing for
`CONSULTA_BOOKING_PAGE_CACHE_SECONDS` (2 s); the slot page is measured again on a second
server with that memory switched off, to show what each computation costs.

One clinic (America/Mexico_City) of 3 providers working 08:00-20:00 every day in
15-minute slots, a third of the next two weeks already booked, and 2,000 patients.
Runs with no arguments on an embedded PostgreSQL in a temporary folder (or DATABASE_URL),
with the harness of benchmarks/api_latency.py, and prints one JSON object as its last line
(`slots_p95_ms`, `healthz_p95_ms`, `ratio` and more).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import URL

from shared_models.ids import uuid7
from shared_models.scheduling import Interval, WeeklyRule, candidate_slots, local_instant
from shared_models.tables import appointment, availability_rule, patient, provider
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/booking_page.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.api_latency import (  # noqa: E402 - needs the repository root on sys.path
    CONCURRENCY,
    DURATION_S,
    WARMUP_S,
    HttpClient,
    Tally,
    api_server,
    background_load,
    fmt_ms,
    fresh_database,
    http_op,
    measure,
    progress,
    rounded,
    run_async,
    usage_probe,
)

SLUG = "bench-page"
TIMEZONE = "America/Mexico_City"
PROVIDERS = 3
PATIENTS = 2_000
SLOT_MINUTES = 15
BOOKED_SHARE = 1 / 3
BOOKED_DAYS = 14
GOAL_P95_MS = 100.0
CACHE_SETTING = "CONSULTA_BOOKING_PAGE_CACHE_SECONDS"


@dataclass(frozen=True)
class Seeded:
    provider_ids: list[uuid.UUID]
    day: date
    booked: int


def seed(owner_url: URL) -> Seeded:
    zone = ZoneInfo(TIMEZONE)
    rules = [WeeklyRule(weekday=d, start=wall_time(8), end=wall_time(20),
                        slot_minutes=SLOT_MINUTES) for d in range(7)]
    rng = random.Random(7)
    engine = create_engine(owner_url)
    try:
        with engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug=SLUG, name="Clínica Benchmark",
                                         timezone=TIMEZONE)
            scope(conn, clinic_id)
            patients = fake_patient_rows(clinic_id, PATIENTS, seed=11)
            conn.execute(insert(patient), patients)
            provider_ids = [uuid7() for _ in range(PROVIDERS)]
            conn.execute(insert(provider), [
                {"clinic_id": clinic_id, "id": pid, "display_name": f"Dra. Benchmark {i}",
                 "specialty": "Medicina general"} for i, pid in enumerate(provider_ids)])
            conn.execute(insert(availability_rule), [
                {"clinic_id": clinic_id, "id": uuid7(), "provider_id": pid,
                 "weekday": r.weekday, "start_time": r.start, "end_time": r.end,
                 "slot_minutes": r.slot_minutes}
                for pid in provider_ids for r in rules])
            today = datetime.now(zone).date()
            window = Interval(local_instant(today + timedelta(days=1), wall_time(0), zone),
                              local_instant(today + timedelta(days=1 + BOOKED_DAYS),
                                            wall_time(0), zone))
            slots = candidate_slots(rules=rules, extra=(), zone=zone, window=window)
            rows = [
                {"clinic_id": clinic_id, "id": uuid7(), "patient_id": rng.choice(patients)["id"],
                 "provider_id": pid, "starts_at": s.start, "ends_at": s.end,
                 "status": "booked", "source": "web"}
                for pid in provider_ids for s in slots if rng.random() < BOOKED_SHARE]
            conn.execute(insert(appointment), rows)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return Seeded(provider_ids, today + timedelta(days=1), len(rows))


def slot_pages(seeded: Seeded) -> list[str]:
    return [f"/book/{SLUG}/{pid}/{seeded.day.isoformat()}" for pid in seeded.provider_ids]


async def run(app_url: URL, base_url: str, server_pid: int, seeded: Seeded
              ) -> dict[str, Tally]:
    client = HttpClient(base_url, "none")
    day_pages = [f"/book/{SLUG}/{pid}" for pid in seeded.provider_ids]
    try:
        async with usage_probe(app_url, server_pid) as probe:
            progress("server: GET /book/{clinic}/{provider}/{day} (the slot page)")
            slots = await measure(http_op(client, slot_pages(seeded)), probe)
            progress("server: GET /healthz")
            healthz = await measure(http_op(client, ["/healthz"]), probe)
            progress("server: GET /book/{clinic}/{provider} (the days page)")
            days = await measure(http_op(client, day_pages), probe)
    finally:
        client.close()
    return {"slots": slots, "healthz": healthz, "days": days}


async def run_uncached(app_url: URL, base_url: str, server_pid: int, seeded: Seeded
                       ) -> Tally:
    client = HttpClient(base_url, "none")
    try:
        async with usage_probe(app_url, server_pid) as probe:
            progress("server without the page memory: the slot page")
            return await measure(http_op(client, slot_pages(seeded)), probe)
    finally:
        client.close()


def row(name: str, tally: Tally) -> str:
    errors = sum(tally.errors.values())
    cores = " / ".join(f"{k} {v:.2f}" for k, v in tally.cores.items())
    return (f"  {name:<34}{fmt_ms(tally.percentile(50)):>8}{fmt_ms(tally.percentile(95)):>9}"
            f"{fmt_ms(tally.percentile(99)):>9}{tally.rps:>8.0f}{errors:>7}   {cores}")


def main() -> None:
    secret = secrets.token_urlsafe(48)
    with tempfile.TemporaryDirectory(prefix="consulta-bench-page-") as tmp:
        workdir = Path(tmp)
        with fresh_database(workdir) as (owner_url, app_url):
            started = time.perf_counter()
            progress("seeding")
            seeded = seed(owner_url)
            seed_s = time.perf_counter() - started
            background = background_load()
            with api_server(app_url=app_url, secret=secret, data_dir=workdir) as (base, pid):
                results = run_async(run(app_url, base, pid, seeded))
            os.environ[CACHE_SETTING] = "0"
            try:
                with api_server(app_url=app_url, secret=secret, data_dir=workdir) as (base,
                                                                                       pid):
                    uncached = run_async(run_uncached(app_url, base, pid, seeded))
            finally:
                del os.environ[CACHE_SETTING]
    slots, healthz, days = results["slots"], results["healthz"], results["days"]
    slots_p95, healthz_p95 = slots.percentile(95), healthz.percentile(95)
    ratio = slots_p95 / healthz_p95 if slots_p95 and healthz_p95 else None
    print(f"Consulta booking page: {PROVIDERS} providers, 08:00-20:00 in {SLOT_MINUTES}-minute "
          f"slots, {seeded.booked:,} appointments over {BOOKED_DAYS} days, {PATIENTS:,} "
          f"patients; seeded in {seed_s:.1f} s")
    print(f"{CONCURRENCY} concurrent closed-loop clients, {DURATION_S:g} s per page after a "
          f"{WARMUP_S:g} s warm-up; uvicorn in its own process, 1 worker; machine: "
          f"{os.cpu_count()} CPUs, {background:.2f} cores busy before the run")
    print(f"  {'page':<34}{'p50 ms':>8}{'p95 ms':>9}{'p99 ms':>9}{'req/s':>8}{'errors':>7}"
          "   CPU cores used")
    print(row("slot page (one day's times)", slots))
    print(row("/healthz", healthz))
    print(row("days page (14 days of free days)", days))
    print(row("slot page, no page memory", uncached))
    verdict = "MET" if slots_p95 is not None and slots_p95 < GOAL_P95_MS else "MISSED"
    print(f"slot page p95 / healthz p95: {'n/a' if ratio is None else f'{ratio:.2f}x'}; "
          f"goal p95 < {GOAL_P95_MS:.0f} ms: {verdict}")
    summary: dict[str, Any] = {
        "slots_p50_ms": rounded(slots.percentile(50)), "slots_p95_ms": rounded(slots_p95),
        "healthz_p50_ms": rounded(healthz.percentile(50)),
        "healthz_p95_ms": rounded(healthz_p95), "ratio": rounded(ratio),
        "days_p95_ms": rounded(days.percentile(95)),
        "slots_uncached_p50_ms": rounded(uncached.percentile(50)),
        "slots_uncached_p95_ms": rounded(uncached.percentile(95)),
        "slots_uncached_rps": round(uncached.rps, 1), "slots_rps": round(slots.rps, 1),
        "healthz_rps": round(healthz.rps, 1),
        "errors": sum(sum(t.errors.values()) for t in (slots, healthz, days, uncached)),
        "concurrency": CONCURRENCY, "duration_s": DURATION_S, "goal_p95_ms": GOAL_P95_MS,
        "goal_met": verdict == "MET",
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
    sys.exit(0)
