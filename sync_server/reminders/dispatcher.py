"""Sending due reminders: PostgreSQL is the queue, any number of processes take from it.

`Dispatcher.run_once` claims a batch of due reminders of any clinic with
`claim_due_reminders` (FOR UPDATE SKIP LOCKED, so processes never claim the same row, and
a lease, so a row whose process died goes back to the queue when the lease runs out),
then delivers them one at a time. Each delivery is one transaction scoped to the
reminder's clinic that locks the row, checks again that it is still ours and still
wanted, sends through the channel adapter with the reminder's idempotency key, and
records the outcome. Holding the row lock while sending is what makes a reschedule or
cancellation safe: it cancels queued reminders in its own transaction, so it either
waits for a send in progress (which went out before the change committed) or commits
first (and the send, finding the row cancelled, sends nothing).

A claim counts as an attempt, so a message whose sending crashes its process every time
still ends in the dead-letter list after the configured attempts.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import OperationalError

from shared_models.enums import ACTIVE_APPOINTMENT_STATUSES, Channel
from shared_models.ids import uuid7
from shared_models.tables import (
    appointment,
    clinic,
    patient,
    pharmacy,
    prescription,
    provider,
    reminder,
    reminder_attempt,
    reminder_policy,
)
from sync_server.core.config import Settings
from sync_server.core.signed import issue_manage_token, keyed_hash
from sync_server.reminders.channels import Adapter, DeliveryError, Recipient
from sync_server.reminders.messages import Appointment, Message, render
from sync_server.reminders.notices import NOTICE_KINDS, Notice, render_notice
from sync_server.reminders.planning import MIN_LEAD, retry_at
from sync_server.reminders.policy import policy_of, quiet_hours

log = logging.getLogger("consulta.reminders")

REPLY_PURPOSE = "reminder-reply/v1"
MANAGE_LINK_GRACE = timedelta(days=1)
UNFINISHED_ATTEMPTS = "the last attempt ended without an outcome; sending may stop the dispatcher"
_ACTIVE = [s.value for s in ACTIVE_APPOINTMENT_STATUSES]


def worker_name() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def reply_key(settings: Settings, phone: str) -> str:
    return keyed_hash(settings, REPLY_PURPOSE, phone)


@dataclass
class DispatchResult:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class Dispatcher:
    def __init__(self, engine: Engine, adapters: dict[Channel, Adapter], settings: Settings,
                 *, worker: str | None = None, rng: random.Random | None = None) -> None:
        self.engine = engine
        self.adapters = adapters
        self.settings = settings
        self.worker = worker or worker_name()
        self.rng = rng or random.Random()  # noqa: S311 - retry jitter

    def claim(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        with self.engine.begin() as conn:
            rows = conn.execute(
                text("SELECT clinic_id, id FROM claim_due_reminders(:worker, :now, :lease, "
                     ":limit)"),
                {"worker": self.worker, "now": now,
                 "lease": self.settings.reminder_lease_seconds,
                 "limit": self.settings.reminder_batch}).all()
        return [(r.clinic_id, r.id) for r in rows]

    def renew(self) -> int:
        """Extend the lease of every row this process still holds."""
        with self.engine.begin() as conn:
            return int(conn.execute(
                text("SELECT renew_reminder_leases(:worker, :now, :lease)"),
                {"worker": self.worker, "now": datetime.now(UTC),
                 "lease": self.settings.reminder_lease_seconds}).scalar_one())

    def run_once(self, now: datetime | None = None) -> DispatchResult:
        """Claim one batch of due reminders and deliver each. A batch that takes longer
        than a third of the lease (slow or timing-out sends) renews the lease of the rows
        it has not reached, so no other process claims them meanwhile."""
        result = DispatchResult()
        claimed = self.claim(now or datetime.now(UTC))
        result.claimed = len(claimed)
        renewed = time.monotonic()
        for clinic_id, reminder_id in claimed:
            if time.monotonic() - renewed > self.settings.reminder_lease_seconds / 3:
                self.renew()
                renewed = time.monotonic()
            try:
                result.count(self.deliver(clinic_id, reminder_id))
            except OperationalError as exc:
                # Locked by a booking change, or the database went away: the lease
                # returns the reminder to the queue.
                log.warning("reminder %s left for later: %s", reminder_id,
                            type(exc.orig).__name__ if exc.orig else "database error")
                result.count("deferred")
        return result

    def drain(self, *, max_batches: int = 1_000_000,
              should_stop: Any = lambda: False) -> DispatchResult:
        """Batches until nothing is due (or `should_stop()`)."""
        total = DispatchResult()
        for _ in range(max_batches):
            if should_stop():
                break
            batch = self.run_once()
            total.claimed += batch.claimed
            for outcome, n in batch.outcomes.items():
                total.outcomes[outcome] = total.outcomes.get(outcome, 0) + n
            if batch.claimed < self.settings.reminder_batch:
                break
        return total

    def close(self) -> None:
        for adapter in self.adapters.values():
            adapter.close()

    # --- one reminder ------------------------------------------------------------------

    def deliver(self, clinic_id: uuid.UUID, reminder_id: uuid.UUID) -> str:
        with self.engine.begin() as conn:
            conn.execute(text("SELECT set_config('app.clinic_id', :cid, true)"),
                         {"cid": str(clinic_id)})
            row = conn.execute(
                select(reminder).where(reminder.c.id == reminder_id,
                                       reminder.c.leased_by == self.worker,
                                       reminder.c.status == "pending")
                .with_for_update()).first()
            if row is None:
                return "gone"  # cancelled meanwhile, or another process took it over
            return _Delivery(self, conn, row, datetime.now(UTC)).run()


class _Delivery:
    """One reminder inside its locked transaction."""

    def __init__(self, dispatcher: Dispatcher, conn: Connection, row: Any, now: datetime
                 ) -> None:
        self.d, self.conn, self.row, self.now = dispatcher, conn, row, now
        self.settings = dispatcher.settings

    def _finish(self, status: str, outcome: str, **values: Any) -> str:
        self.conn.execute(update(reminder).where(reminder.c.id == self.row.id).values(
            status=status, lease_until=None, leased_by=None, updated_at=func.now(), **values))
        return outcome

    def _attempt(self, channel: Channel, outcome: str, *, error: str | None = None,
                 provider_id: str | None = None) -> None:
        self.conn.execute(insert(reminder_attempt).values(
            clinic_id=self.row.clinic_id, id=uuid7(), reminder_id=self.row.id,
            channel=channel.value, attempted_at=self.now, outcome=outcome, error=error,
            provider_message_id=provider_id))

    def _context(self) -> Any:
        return self.conn.execute(
            select(appointment.c.id, appointment.c.status, appointment.c.starts_at,
                   appointment.c.ends_at, appointment.c.deleted_at,
                   patient.c.given_name, patient.c.email, patient.c.phone,
                   patient.c.preferred_language, patient.c.preferred_channels,
                   func.coalesce(patient.c.timezone, clinic.c.timezone).label("patient_zone"),
                   clinic.c.name.label("clinic_name"), clinic.c.slug,
                   clinic.c.timezone.label("clinic_zone"),
                   provider.c.display_name.label("provider_name"),
                   reminder_policy.c.offsets_minutes, reminder_policy.c.quiet_start,
                   reminder_policy.c.quiet_end, reminder_policy.c.templates)
            .select_from(
                appointment.join(patient, patient.c.id == appointment.c.patient_id)
                .join(provider, provider.c.id == appointment.c.provider_id)
                .join(clinic, clinic.c.id == appointment.c.clinic_id)
                .outerjoin(reminder_policy,
                           reminder_policy.c.clinic_id == appointment.c.clinic_id))
            .where(appointment.c.id == self.row.appointment_id)).one()

    def _unwanted(self, info: Any) -> tuple[str, str] | None:
        """The status to record and the reason, if this message should no longer go out."""
        row = self.row
        if row.kind == "cancelled":
            return None
        if (info.deleted_at is not None or info.status not in _ACTIVE
                or info.starts_at != row.appointment_starts_at):
            return "cancelled", "the appointment changed"
        if row.kind == "reminder" and self.now > row.appointment_starts_at - MIN_LEAD:
            return "skipped", "too late to remind"
        return None

    def _notice_context(self) -> Any:
        subject = self.row.prescription_id
        return self.conn.execute(
            select(patient.c.given_name, patient.c.email, patient.c.phone,
                   patient.c.preferred_language, patient.c.preferred_channels,
                   patient.c.deleted_at,
                   func.coalesce(patient.c.timezone, clinic.c.timezone).label("patient_zone"),
                   clinic.c.name.label("clinic_name"),
                   pharmacy.c.name.label("pharmacy_name"),
                   pharmacy.c.address.label("pharmacy_address"),
                   reminder_policy.c.offsets_minutes, reminder_policy.c.quiet_start,
                   reminder_policy.c.quiet_end, reminder_policy.c.templates)
            .select_from(
                patient.join(clinic, clinic.c.id == patient.c.clinic_id)
                .outerjoin(prescription, prescription.c.id == subject)
                .outerjoin(pharmacy, pharmacy.c.id == prescription.c.pharmacy_id)
                .outerjoin(reminder_policy,
                           reminder_policy.c.clinic_id == patient.c.clinic_id))
            .where(patient.c.id == self.row.patient_id)).one()

    def run(self) -> str:
        row = self.row
        if row.kind in NOTICE_KINDS:
            return self._run_notice()
        info = self._context()
        unwanted = self._unwanted(info)
        if unwanted is not None:
            status, reason = unwanted
            return self._finish(status, "cancelled", last_error=reason)
        appt = Appointment(
            id=info.id, clinic_name=info.clinic_name, clinic_slug=info.slug,
            provider_name=info.provider_name, patient_name=info.given_name,
            starts_at=info.starts_at, ends_at=info.ends_at, zone=ZoneInfo(info.clinic_zone),
            language=info.preferred_language)
        base = self.settings.link_base()
        if row.kind == "cancelled":
            link = f"{base}/book/{info.slug}"
        else:
            token = issue_manage_token(self.settings, clinic_id=row.clinic_id,
                                       appointment_id=info.id,
                                       expires_at=info.ends_at + MANAGE_LINK_GRACE)
            link = f"{base}/book/{info.slug}/manage?token={token}"
        policy = policy_of(info)

        def compose(channel: Channel) -> Message:
            return render(appt, key=f"{row.id}-{channel.value}", kind=row.kind,
                          sequence=row.calendar_sequence, link=link,
                          organizer=self.settings.smtp_sender, templates=policy.templates,
                          now=self.now)

        return self._send(info, compose, deadline=row.appointment_starts_at - MIN_LEAD
                          if row.kind == "reminder" else None)

    def _run_notice(self) -> str:
        row, info = self.row, self._notice_context()
        if info.deleted_at is not None:
            return self._finish("cancelled", "cancelled", last_error="the patient was removed")
        notice = Notice(kind=row.kind, clinic_name=info.clinic_name,
                        patient_name=info.given_name, language=info.preferred_language,
                        pharmacy_name=info.pharmacy_name, pharmacy_address=info.pharmacy_address)
        return self._send(info, lambda channel: render_notice(
            notice, key=f"{row.id}-{channel.value}"), deadline=None)

    def _send(self, info: Any, compose: Callable[[Channel], Message], *,
              deadline: datetime | None) -> str:
        """Send through the patient's channels in order of preference, once quiet hours
        allow; `deadline` is when the message stops being worth sending."""
        row = self.row
        policy = policy_of(info)
        quiet, zone = quiet_hours(policy), ZoneInfo(info.patient_zone)
        allowed = quiet.next_allowed(self.now, zone)
        if allowed > self.now:
            # Caught up during the patient's night: wait for the morning, if that is still
            # in time. Waiting is not a failed attempt.
            if deadline is not None and allowed > deadline:
                return self._finish("skipped", "skipped",
                                    last_error="quiet hours last until the appointment")
            self.conn.execute(update(reminder).where(reminder.c.id == row.id).values(
                next_attempt_at=allowed, attempts=row.attempts - 1, lease_until=None,
                leased_by=None, updated_at=func.now()))
            return "waiting"
        if row.attempts > self.settings.reminder_max_attempts:
            # Claimed once more than the attempts allow: the claim that used the last one
            # ended without an outcome (a failure then buries the message), as when sending
            # it stops the process. Sending it again could stop this one too.
            log.warning("reminder %s dead-lettered: claimed %d times, the last without an "
                        "outcome", row.id, row.attempts - 1)
            return self._finish("dead", "dead", last_error=UNFINISHED_ATTEMPTS)

        to = Recipient(email=info.email, phone=info.phone)
        refused = set(row.refused_channels or [])
        candidates = [a for ch in info.preferred_channels or []
                      if ch not in refused and (a := self.d.adapters.get(Channel(ch)))
                      and a.reaches(to)]
        if not candidates:
            if refused:
                return self._finish("dead", "dead",
                                    last_error="every channel refused the patient's address")
            why = ("the patient chose no reminder channel" if not info.preferred_channels
                   else "no configured channel reaches the patient")
            return self._finish("skipped", "skipped", last_error=why)
        for adapter in candidates:
            message = compose(adapter.channel)
            try:
                provider_id = adapter.send(message, to)
            except DeliveryError as exc:
                if exc.permanent:
                    self._attempt(adapter.channel, "permanent_failure", error=exc.reason)
                    refused.add(adapter.channel.value)
                    continue
                self._attempt(adapter.channel, "temporary_failure", error=exc.reason)
                return self._retry_or_bury(adapter.channel, exc.reason, refused, quiet, zone)
            self._attempt(adapter.channel, "delivered", provider_id=provider_id)
            # Only appointment messages invite a reply (confirm or cancel).
            replies = (adapter.channel is not Channel.EMAIL and to.phone
                       and row.kind not in NOTICE_KINDS)
            return self._finish(
                "sent", "sent", channel=adapter.channel.value, sent_at=self.now,
                provider_message_id=provider_id, last_error=None,
                refused_channels=sorted(refused),
                reply_key=reply_key(self.settings, to.phone) if replies and to.phone
                else None)
        return self._finish("dead", "dead", refused_channels=sorted(refused),
                            channel=candidates[-1].channel.value,
                            last_error="every channel refused the patient's address")

    def _retry_or_bury(self, channel: Channel, reason: str, refused: set[str], quiet: Any,
                       zone: ZoneInfo) -> str:
        row = self.row
        if row.attempts >= self.settings.reminder_max_attempts:
            log.warning("reminder %s dead-lettered after %d attempts", row.id, row.attempts)
            return self._finish("dead", "dead", last_error=reason, channel=channel.value,
                                refused_channels=sorted(refused))
        when = retry_at(self.now, row.attempts,
                        base=timedelta(seconds=self.settings.reminder_retry_base_seconds),
                        quiet=quiet, zone=zone, rng=self.d.rng)
        return self._finish("pending", "retry", last_error=reason, next_attempt_at=when,
                            refused_channels=sorted(refused))
