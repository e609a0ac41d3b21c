"""The reminder dispatcher as separate OS processes (`consulta-server dispatch --until-idle`,
configured through the environment) over one PostgreSQL queue, a real SMTP server and a
Twilio-style provider on loopback.

- Three processes started at the same moment over 2,000 due reminders of two clinics,
  half e-mail and half SMS: each process claims part of the work, and every reminder
  reaches its patient exactly once.
- A process killed with SIGKILL while the provider holds an SMS it has taken but not yet
  answered: after the lease runs out another process finishes the queue; the SMS in
  flight is sent again with the same idempotency key, which the provider answers with
  the first message instead of delivering a second, and nothing reaches a patient twice.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import URL

from shared_models.tables import reminder, reminder_attempt
from sync_server.actions.clinics import scope
from tests.conftest import TEST_SECRET
from tests.e2e.dispatchers import (
    Channels,
    Dispatchers,
    message_id,
    sessions_of,
    wait_for,
)
from tests.factories import Factory
from tests.fakes.smtp import SmtpServer
from tests.fakes.text_provider import ACCOUNT, TOKEN, TextProvider
from tests.reminder_queue import add_patient, no_quiet_hours, queue_due

PROCESSES = 3
PER_CLINIC_AND_CHANNEL = 500  # two clinics, e-mail and SMS: 2,000 reminders
RUN_TIMEOUT_S = 120.0
LEASE_S = 2
SMS_HELD_S = 1.0  # the provider holds each answer this long while the first process runs


@pytest.fixture(autouse=True)
def empty_queue(empty_reminder_queue: None) -> None:
    """Each test starts with nothing due (tests/conftest.py)."""


@pytest.fixture
def dispatchers(tmp_path: Path, db_urls: tuple[URL, URL], smtp: SmtpServer,
                provider: TextProvider, repo_root: Path) -> Iterator[Dispatchers]:
    channels = Channels(smtp_port=smtp.port, provider_url=provider.url,
                        provider_account=ACCOUNT, provider_token=TOKEN)
    processes = Dispatchers(db_urls[0], tmp_path, TEST_SECRET, channels, repo_root)
    try:
        yield processes
    finally:
        processes.close()


@dataclass
class Queued:
    """Reminders of one clinic, by channel."""

    clinic_id: uuid.UUID
    email: list[uuid.UUID]
    sms: list[uuid.UUID]

    @property
    def ids(self) -> list[uuid.UUID]:
        return self.email + self.sms


def queue_clinic(factory: Factory, *, emails: int, texts: int) -> Queued:
    """A clinic without quiet hours, an e-mail patient and an SMS patient, and that many
    due reminders for each (appointments days ahead, none overlapping)."""
    data = factory.clinic(patients=0, providers=2)
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        no_quiet_hours(conn, data.id)
        by_mail = add_patient(conn, data.id, channels=["email"], email="ana@example.test")
        by_text = add_patient(conn, data.id, channels=["sms"], phone="+56987654321")
        email = queue_due(conn, clinic_id=data.id, provider_ids=data.provider_ids,
                          patient_id=by_mail, count=emails, start=first)
        later = first + timedelta(days=30)
        sms = queue_due(conn, clinic_id=data.id, provider_ids=data.provider_ids,
                        patient_id=by_text, count=texts, start=later)
    return Queued(data.id, email, sms)


def rows_of(factory: Factory, queued: Queued) -> dict[uuid.UUID, Any]:
    with factory.engine.begin() as conn:
        scope(conn, queued.clinic_id)
        rows = conn.execute(select(reminder).where(reminder.c.id.in_(queued.ids)))
        return {r.id: r for r in rows}


def attempts_of(factory: Factory, queued: Queued) -> dict[uuid.UUID, list[str]]:
    """Each reminder's recorded attempts, by outcome."""
    found: dict[uuid.UUID, list[str]] = {}
    with factory.engine.begin() as conn:
        scope(conn, queued.clinic_id)
        for row in conn.execute(select(reminder_attempt.c.reminder_id,
                                       reminder_attempt.c.outcome)
                                .where(reminder_attempt.c.reminder_id.in_(queued.ids))):
            found.setdefault(row.reminder_id, []).append(row.outcome)
    return found


def received_ids(smtp: SmtpServer) -> Counter[str]:
    """How many times the SMTP server accepted each Message-ID (headers only: parsing a
    thousand whole messages takes longer than sending them)."""
    parser = BytesHeaderParser(policy=default)
    return Counter(str(parser.parsebytes(m.raw)["Message-ID"])
                   for m in smtp.mailbox.messages())


def assert_each_delivered_once(factory: Factory, queues: list[Queued], smtp: SmtpServer,
                               provider: TextProvider) -> None:
    """At the servers: each e-mail's Message-ID once and each SMS key delivered once, and
    nothing else. In the database: every row sent on its channel, one delivered attempt."""
    emails = [i for q in queues for i in q.email]
    texts = [i for q in queues for i in q.sms]
    assert smtp.mailbox.count() == len(emails)
    assert received_ids(smtp) == Counter(message_id(i) for i in emails)
    assert sorted(provider.delivered) == sorted(f"{i}-sms" for i in texts)
    for queued in queues:
        rows = rows_of(factory, queued)
        assert len(rows) == len(queued.ids)
        assert Counter((rows[i].status, rows[i].channel) for i in queued.email) == {
            ("sent", "email"): len(queued.email)}
        assert Counter((rows[i].status, rows[i].channel) for i in queued.sms) == {
            ("sent", "sms"): len(queued.sms)}
        assert all(r.leased_by is None and r.lease_until is None for r in rows.values())
        assert attempts_of(factory, queued) == {i: ["delivered"] for i in queued.ids}


def test_three_processes_deliver_two_thousand_reminders_each_exactly_once(
    factory: Factory, dispatchers: Dispatchers, smtp: SmtpServer, provider: TextProvider,
) -> None:
    queues = [queue_clinic(factory, emails=PER_CLINIC_AND_CHANNEL, texts=PER_CLINIC_AND_CHANNEL)
              for _ in range(2)]
    total = sum(len(q.ids) for q in queues)
    assert total == 2000

    processes = dispatchers.start_together([f"dispatch-{n}" for n in range(PROCESSES)])
    finished = [p.wait(RUN_TIMEOUT_S) for p in processes]

    assert [f.returncode for f in finished] == [0] * PROCESSES, [f.output for f in finished]
    claims = [f.claimed() for f in finished]
    # Each process took part of the queue, and together they claimed each reminder once.
    assert all(claimed > 0 for claimed, _ in claims), claims
    assert sum(claimed for claimed, _ in claims) == total
    assert all(set(outcomes) == {"sent"} for _, outcomes in claims), claims
    assert sum(outcomes["sent"] for _, outcomes in claims) == total
    # No SMS was even asked for twice.
    assert sum(provider.requests.values()) == sum(len(q.sms) for q in queues)
    assert_each_delivered_once(factory, queues, smtp, provider)
    for queued in queues:
        assert {r.attempts for r in rows_of(factory, queued).values()} == {1}


def held_sms(provider: TextProvider) -> set[str]:
    """Keys of SMS the provider has taken but not yet answered."""
    with provider.lock:
        answered = {key for key, _ in provider.statuses}
        return set(provider.delivered) - answered


def pending_leases(engine: Engine) -> int:
    """Pending reminders still leased to a process (by the database's clock)."""
    with engine.begin() as conn:
        return int(conn.execute(
            select(func.count()).select_from(reminder)
            .where(reminder.c.status == "pending", reminder.c.lease_until > text("now()"))
        ).scalar_one())


def test_a_process_killed_mid_send_is_finished_by_another_and_nothing_goes_twice(
    factory: Factory, dispatchers: Dispatchers, smtp: SmtpServer, provider: TextProvider,
    owner_engine: Engine, db_urls: tuple[URL, URL],
) -> None:
    queued = queue_clinic(factory, emails=6, texts=10)
    provider.delay = SMS_HELD_S
    first = dispatchers.start("dispatch-killed", lease_seconds=LEASE_S)

    # Kill it once one SMS has been answered and the next is held at the provider: taken
    # there, but not yet recorded in the database.
    wait_for(lambda: len(provider.delivered) >= 2 and bool(held_sms(provider)),
             timeout=60, what="an SMS in flight after a delivered one")
    assert sessions_of(db_urls[0], first.name) > 0  # its transaction holds the row
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(10).returncode == -signal.SIGKILL
    wait_for(lambda: sessions_of(db_urls[0], first.name) == 0, timeout=10,
             what="PostgreSQL to end the killed process's sessions", interval=0.02)

    rows = rows_of(factory, queued)
    sent_before = {i for i, r in rows.items() if r.status == "sent"}
    in_flight = {key for key in provider.delivered
                 if rows[uuid.UUID(key.removesuffix("-sms"))].status == "pending"}
    assert len(in_flight) == 1, in_flight  # the killed transaction rolled back
    (key,) = in_flight
    assert sent_before  # some went out before the kill
    assert len(sent_before) == smtp.mailbox.count() + len(provider.delivered) - 1
    assert all(r.attempts == 1 for r in rows.values())  # one batch claimed them all

    provider.delay = 0.0
    wait_for(lambda: pending_leases(owner_engine) == 0, timeout=LEASE_S + 10,
             what="the killed process's lease to run out", interval=0.05)
    second = dispatchers.start("dispatch-after", lease_seconds=LEASE_S).wait(RUN_TIMEOUT_S)

    assert second.returncode == 0, second.output
    assert second.claimed() == (len(queued.ids) - len(sent_before),
                                {"sent": len(queued.ids) - len(sent_before)})
    assert_each_delivered_once(factory, [queued], smtp, provider)
    # The SMS in flight was asked for again with its key and answered with the first
    # message; every other key was asked for once.
    assert provider.requests[key] == 2
    assert {k: n for k, n in provider.requests.items() if k != key} == {
        f"{i}-sms": 1 for i in queued.sms if f"{i}-sms" != key}
    rows = rows_of(factory, queued)
    assert rows[uuid.UUID(key.removesuffix("-sms"))].provider_message_id == (
        provider.delivered[key].sid)
    assert {i: r.attempts for i, r in rows.items()} == {
        i: 1 if i in sent_before else 2 for i in queued.ids}
