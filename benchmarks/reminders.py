"""Reminder dispatch: 10,000 due e-mail reminders of two clinics sent by three
`consulta-server dispatch --until-idle` processes (configured through the environment, as
in production) to an aiosmtpd server on loopback, beside the same 10,000 messages rendered
the same way (sync_server.reminders.messages.render and channels.email_message, with the
same signed manage link) and sent in a plain loop over one SMTP connection by one process,
to the same server in the same run. dispatch_s / plain_loop_s is what the queue costs:
claiming, one locked transaction per message, reading its context, recording the attempt.

The three processes are held at their start-up schema check until all have started, so
the dispatch time runs from the moment they can claim to the moment the last one exited,
not from their interpreter start-up; the plain loop likewise times only its loop.
Duplicates are Message-IDs the server accepted more than once; lost are reminders whose
message never reached it.

Runs with no arguments on an embedded PostgreSQL in a temporary folder (or DATABASE_URL),
with the harness of benchmarks/api_latency.py, and prints one JSON object as its last line.
`--profile` instead runs one dispatcher under cProfile over 2,000 reminders and prints
where its time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import resource
import secrets
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, create_engine, func, insert, select, text
from sqlalchemy.engine import URL

from shared_models.ids import uuid7
from shared_models.schemas.reminders import ReminderPolicy
from shared_models.tables import appointment, clinic, patient, provider, reminder
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.core.config import Settings
from sync_server.core.signed import issue_manage_token
from sync_server.db.urls import as_psycopg
from sync_server.reminders.channels import email_message
from sync_server.reminders.dispatcher import MANAGE_LINK_GRACE
from sync_server.reminders.messages import Appointment, render

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/reminders.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.api_latency import (  # noqa: E402 - needs the repository root on sys.path
    background_load,
    fresh_database,
    postgres_cpu_seconds,
    process_cpu_seconds,
    progress,
    rounded,
)
from tests.e2e.dispatchers import (  # noqa: E402
    PUBLIC_URL,
    SMTP_SENDER,
    Channels,
    Dispatchers,
    DispatchProcess,
    dispatch_env,
    message_id,
)
from tests.fakes.smtp import SmtpServer  # noqa: E402
from tests.reminder_queue import add_patient, no_quiet_hours, queue_due  # noqa: E402

REMINDERS = 10_000
CLINICS = 2
PROVIDERS = 8
PROCESSES = 3
PROFILE_REMINDERS = 2_000
PROFILE_LINES = 30
RUN_TIMEOUT_S = 420.0
PLAIN_LOOP_TIMEOUT_S = 300.0
PLAIN_LOOP_FLAG = "--plain-loop"
PORT_ENV = "CONSULTA_BENCH_SMTP_PORT"


# --- seeding (the owner engine, clinic-scoped) ----------------------------------------


def add_providers(conn: Any, clinic_id: uuid.UUID) -> list[uuid.UUID]:
    ids = [uuid7() for _ in range(PROVIDERS)]
    conn.execute(insert(provider), [
        {"clinic_id": clinic_id, "id": pid, "display_name": f"Dra. Benchmark {i + 1}",
         "specialty": "Medicina familiar"} for i, pid in enumerate(ids)])
    return ids


def seed(owner: URL, count: int) -> list[uuid.UUID]:
    """`count` due e-mail reminders spread over the clinics, one e-mail patient each, no
    quiet hours; their ids."""
    engine = create_engine(owner)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    ids: list[uuid.UUID] = []
    try:
        for n in range(CLINICS):
            with engine.begin() as conn:
                clinic_id = do_create_clinic(conn, slug=f"bench-reminders-{n + 1}",
                                             name=f"Clínica Benchmark {n + 1}",
                                             timezone="America/Santiago", country="CL")
                no_quiet_hours(conn, clinic_id)
                patient_id = add_patient(conn, clinic_id, channels=["email"],
                                         email=f"paciente{n + 1}@example.test")
                ids += queue_due(conn, clinic_id=clinic_id,
                                 provider_ids=add_providers(conn, clinic_id),
                                 patient_id=patient_id, count=count // CLINICS, start=first)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return ids


# --- the dispatchers ------------------------------------------------------------------


@dataclass
class DispatchRun:
    seconds: float
    claimed: list[int]
    outcomes: Counter[str]
    dispatcher_cpu_s: float
    postgres_cpu_s: float
    smtp_server_cpu_s: float


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def total_postgres_cpu() -> float:
    return sum(postgres_cpu_seconds().values())


def dispatch(owner: URL, workdir: Path, secret: str, smtp: SmtpServer) -> DispatchRun:
    processes = Dispatchers(owner, workdir, secret, Channels(smtp_port=smtp.port), REPO_ROOT)
    try:
        children = children_cpu_seconds()  # counts the processes only once they exit
        started_processes = processes.start_together(
            [f"dispatch-{n + 1}" for n in range(PROCESSES)])
        postgres, own = total_postgres_cpu(), own_cpu_seconds()
        start_up = sum(process_cpu_seconds(p.pid) for p in started_processes)
        started = time.perf_counter()
        finished = [p.wait(RUN_TIMEOUT_S) for p in started_processes]
        seconds = time.perf_counter() - started
        postgres = total_postgres_cpu() - postgres
        children = children_cpu_seconds() - children - start_up
        own = own_cpu_seconds() - own
    finally:
        processes.close()
    outcomes: Counter[str] = Counter()
    claimed = []
    for process, done in zip(started_processes, finished, strict=True):
        if done.returncode != 0:
            raise RuntimeError(f"{process.name} failed:\n{done.output}")
        n, by_outcome = done.claimed()
        claimed.append(n)
        outcomes.update(by_outcome)
    return DispatchRun(seconds, claimed, outcomes, children, postgres, own)


@dataclass(frozen=True)
class Delivery:
    duplicates: int
    lost: int
    unexpected: int
    received: int


def delivery(smtp: SmtpServer, keys: set[str]) -> Delivery:
    """What the SMTP server holds against the Message-IDs expected, then empties it."""
    parser = BytesHeaderParser(policy=default)
    with smtp.mailbox.lock:
        raw = [m.raw for m in smtp.mailbox.received]
        smtp.mailbox.received.clear()
    seen = Counter(str(parser.parsebytes(r)["Message-ID"]) for r in raw)
    return Delivery(duplicates=sum(n - 1 for n in seen.values()),
                    lost=len(keys - set(seen)), unexpected=len(set(seen) - keys),
                    received=len(raw))


def queue_state(owner: URL) -> dict[str, int]:
    """Reminder rows by status, plus those claimed more than once (the owner sees the
    whole queue)."""
    engine = create_engine(owner)
    try:
        with engine.begin() as conn:
            state = {row.status: int(row.n) for row in conn.execute(
                select(reminder.c.status, func.count().label("n")).group_by(reminder.c.status))}
            state["attempts>1"] = int(conn.execute(
                select(func.count()).select_from(reminder).where(reminder.c.attempts > 1)
            ).scalar_one())
    finally:
        engine.dispose()
    return state


# --- the plain loop, in a child process -----------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """What one message needs, read before the loop starts."""

    reminder_id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    appt: Appointment


def outgoing(owner: URL) -> list[Outgoing]:
    engine = create_engine(owner)
    found: list[Outgoing] = []
    try:
        with engine.begin() as conn:
            clinic_ids = list(conn.execute(select(reminder.c.clinic_id).distinct()).scalars())
            for clinic_id in clinic_ids:
                scope(conn, clinic_id)
                rows = conn.execute(
                    select(reminder.c.id, appointment.c.id.label("appointment_id"),
                           appointment.c.starts_at, appointment.c.ends_at,
                           patient.c.given_name, patient.c.email, patient.c.preferred_language,
                           clinic.c.name, clinic.c.slug, clinic.c.timezone,
                           provider.c.display_name)
                    .select_from(reminder.join(appointment, and_(
                        appointment.c.clinic_id == reminder.c.clinic_id,
                        appointment.c.id == reminder.c.appointment_id))
                        .join(patient, and_(patient.c.clinic_id == appointment.c.clinic_id,
                                            patient.c.id == appointment.c.patient_id))
                        .join(provider, and_(provider.c.clinic_id == appointment.c.clinic_id,
                                             provider.c.id == appointment.c.provider_id))
                        .join(clinic, clinic.c.id == appointment.c.clinic_id))
                    # The owner may be a superuser, whom row-level security does not hold.
                    .where(reminder.c.clinic_id == clinic_id)
                    .order_by(reminder.c.id))
                found += [Outgoing(r.id, clinic_id, r.email, Appointment(
                    id=r.appointment_id, clinic_name=r.name, clinic_slug=r.slug,
                    provider_name=r.display_name, patient_name=r.given_name,
                    starts_at=r.starts_at, ends_at=r.ends_at, zone=ZoneInfo(r.timezone),
                    language=r.preferred_language)) for r in rows]
    finally:
        engine.dispose()
    return found


def plain_loop_child() -> None:
    """Render and send every queued reminder over one SMTP connection; print the loop's
    seconds and CPU seconds as JSON."""
    settings = Settings(public_url=PUBLIC_URL, smtp_sender=SMTP_SENDER)
    messages = outgoing(as_psycopg(os.environ["DATABASE_URL"]))
    templates = ReminderPolicy().templates
    base = settings.link_base()
    started, cpu = time.perf_counter(), time.process_time()
    smtp = smtplib.SMTP("127.0.0.1", int(os.environ[PORT_ENV]), timeout=30)
    for item in messages:
        token = issue_manage_token(settings, clinic_id=item.clinic_id,
                                   appointment_id=item.appt.id,
                                   expires_at=item.appt.ends_at + MANAGE_LINK_GRACE)
        message = render(item.appt, key=f"{item.reminder_id}-email", kind="reminder",
                         sequence=0, link=f"{base}/book/{item.appt.clinic_slug}/manage?"
                         f"token={token}", organizer=SMTP_SENDER, templates=templates,
                         now=datetime.now(UTC))
        smtp.send_message(email_message(message, sender=SMTP_SENDER, to=item.email))
    smtp.quit()
    print(json.dumps({"seconds": time.perf_counter() - started,
                      "cpu_s": time.process_time() - cpu, "sent": len(messages)}))


@dataclass(frozen=True)
class PlainLoop:
    seconds: float
    cpu_s: float


def plain_loop(owner: URL, workdir: Path, secret: str, smtp: SmtpServer) -> PlainLoop:
    env = dispatch_env(owner, name="plain-loop", data_dir=workdir / "plain-loop",
                       secret_key=secret, channels=Channels())
    env[PORT_ENV] = str(smtp.port)
    done = subprocess.run(  # noqa: S603 - our own argv
        [sys.executable, str(Path(__file__).resolve()), PLAIN_LOOP_FLAG], env=env,
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=PLAIN_LOOP_TIMEOUT_S,
        check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the plain loop failed:\n{done.stderr}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return PlainLoop(float(answer["seconds"]), float(answer["cpu_s"]))


# --- profile --------------------------------------------------------------------------


def profile(owner: URL, workdir: Path, secret: str, smtp: SmtpServer) -> None:
    """One dispatcher under cProfile; the functions where its time goes."""
    out = workdir / "dispatch.prof"
    env = dispatch_env(owner, name="profiled", data_dir=workdir / "profiled",
                       secret_key=secret, channels=Channels(smtp_port=smtp.port))
    with (workdir / "profiled.log").open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own argv
            [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "sync_server.cli",
             "dispatch", "--until-idle"], env=env, cwd=REPO_ROOT, stdout=log,
            stderr=subprocess.STDOUT)
    finished = DispatchProcess("profiled", proc, workdir / "profiled.log").wait(RUN_TIMEOUT_S)
    print(finished.output.strip().splitlines()[-1])
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    # One delivery, step by step: its transaction, then what happens inside it.
    stats.print_callees(r"dispatcher.py:\d+\(deliver\)")
    stats.print_callees(r"dispatcher.py:\d+\(run\)")
    stats.print_callees(r"channels.py:\d+\(send\)")


# --- report ---------------------------------------------------------------------------


def print_figures(run: DispatchRun, plain: PlainLoop, *, seed_s: float,
                  background: float) -> None:
    per_ms = 1000 / REMINDERS
    queue_ms = (run.dispatcher_cpu_s - plain.cpu_s + run.postgres_cpu_s) * per_ms
    print(f"Consulta reminders: {REMINDERS:,} due e-mail reminders of {CLINICS} clinics; "
          f"seeded in {seed_s:.1f} s; machine: {os.cpu_count()} CPUs, {background:.2f} cores "
          "busy before the run")
    print("SMTP: aiosmtpd on loopback in the benchmark process; database: PostgreSQL "
          f"{'at DATABASE_URL' if os.environ.get('DATABASE_URL') else 'embedded'}")
    print(f"  dispatch, {PROCESSES} processes:  {run.seconds:7.2f} s  "
          f"{REMINDERS / run.seconds:7.1f} reminders/s   claimed per process: "
          f"{', '.join(f'{n:,}' for n in run.claimed)}")
    print(f"  plain loop, 1 process:  {plain.seconds:7.2f} s  "
          f"{REMINDERS / plain.seconds:7.1f} messages/s   (render + manage link + "
          "email_message + one SMTP connection)")
    print(f"  ratio dispatch / plain loop: {run.seconds / plain.seconds:.2f}x  "
          f"({PROCESSES} processes against 1)")
    print(f"  CPU per message: dispatchers {run.dispatcher_cpu_s * per_ms:.2f} ms + "
          f"PostgreSQL {run.postgres_cpu_s * per_ms:.2f} ms, against the plain loop's "
          f"{plain.cpu_s * per_ms:.2f} ms: the queue costs {queue_ms:.2f} ms of CPU a "
          f"message; the SMTP server took {run.smtp_server_cpu_s * per_ms:.2f} ms")


def print_checks(run: DispatchRun, sent: Delivery, state: dict[str, int],
                 plain: Delivery) -> None:
    print(f"  duplicates: {sent.duplicates}   lost: {sent.lost}   unexpected: "
          f"{sent.unexpected}   rows not sent: {REMINDERS - state.get('sent', 0)}   rows "
          f"claimed more than once: {state['attempts>1']}   outcomes: {dict(run.outcomes)}")
    print(f"  plain loop: {plain.received:,} messages received (duplicates "
          f"{plain.duplicates}, lost {plain.lost})")


def summary(run: DispatchRun, sent: Delivery, state: dict[str, int], plain: PlainLoop,
            *, background: float) -> dict[str, Any]:
    return {
        "reminders": REMINDERS, "processes": PROCESSES, "dispatch_s": rounded(run.seconds),
        "reminders_per_s": round(REMINDERS / run.seconds, 1),
        "duplicates": sent.duplicates, "lost": sent.lost,
        "rows_not_sent": REMINDERS - state.get("sent", 0), "claimed": run.claimed,
        "plain_loop_s": rounded(plain.seconds),
        "plain_loop_per_s": round(REMINDERS / plain.seconds, 1),
        "ratio": rounded(run.seconds / plain.seconds),
        "dispatcher_cpu_s": rounded(run.dispatcher_cpu_s),
        "plain_loop_cpu_s": rounded(plain.cpu_s),
        "postgres_cpu_s": rounded(run.postgres_cpu_s),
        "smtp_server_cpu_s": rounded(run.smtp_server_cpu_s),
        "background_cores": rounded(background),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true",
                        help=f"profile one dispatcher over {PROFILE_REMINDERS:,} reminders")
    args = parser.parse_args()
    secret = secrets.token_urlsafe(48)
    with tempfile.TemporaryDirectory(prefix="consulta-bench-reminders-") as tmp:
        workdir = Path(tmp)
        with fresh_database(workdir) as (owner, _app), SmtpServer() as smtp:
            started = time.perf_counter()
            progress("seeding")
            ids = seed(owner, PROFILE_REMINDERS if args.profile else REMINDERS)
            seed_s = time.perf_counter() - started
            if args.profile:
                profile(owner, workdir, secret, smtp)
                return
            background = background_load()
            progress(f"dispatching with {PROCESSES} processes")
            run = dispatch(owner, workdir, secret, smtp)
            sent = delivery(smtp, {message_id(i) for i in ids})
            state = queue_state(owner)
            progress("the plain loop")
            plain = plain_loop(owner, workdir, secret, smtp)
            plain_sent = delivery(smtp, {message_id(i) for i in ids})
    print_figures(run, plain, seed_s=seed_s, background=background)
    print_checks(run, sent, state, plain_sent)
    print(json.dumps(summary(run, sent, state, plain, background=background)))


if __name__ == "__main__":
    if sys.argv[1:] == [PLAIN_LOOP_FLAG]:
        plain_loop_child()
    else:
        main()
    sys.exit(0)
