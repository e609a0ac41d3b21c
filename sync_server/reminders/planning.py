"""When each message goes out: offsets before the appointment, quiet hours in the
patient's zone, and the wait before a retry. Pure functions of their arguments."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

# A reminder that can only arrive this close to the appointment is not worth sending.
MIN_LEAD = timedelta(minutes=15)
# Two reminders this close together (after quiet hours moved one) would read as one
# message sent twice; the earlier one is enough.
MIN_GAP = timedelta(hours=1)
MAX_RETRY_WAIT = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local times no message is sent between; `start` after `end` spans midnight and
    equal times mean no quiet hours."""

    start: time
    end: time

    def contains(self, local: time) -> bool:
        local = local.replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, at: datetime, zone: ZoneInfo) -> datetime:
        """`at` itself if it is outside quiet hours, else the moment they end."""
        local = at.astimezone(zone)
        if not self.contains(local.timetz()):
            return at
        end = datetime.combine(local.date(), self.end, tzinfo=zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=zone)
        return end.astimezone(UTC)

    def last_allowed(self, at: datetime, zone: ZoneInfo) -> datetime:
        """`at` itself if it is outside quiet hours, else the last minute before they
        began."""
        local = at.astimezone(zone)
        if not self.contains(local.timetz()):
            return at
        start = datetime.combine(local.date(), self.start, tzinfo=zone)
        if start > local:
            start = datetime.combine(local.date() - timedelta(days=1), self.start, tzinfo=zone)
        return (start - timedelta(minutes=1)).astimezone(UTC)


def reminder_due(starts_at: datetime, offset: timedelta, *, quiet: QuietHours, zone: ZoneInfo,
                 now: datetime) -> datetime | None:
    """When the reminder `offset` before `starts_at` goes out, or None if it should not.

    A time in quiet hours moves to the nearer of their end (if that is still ahead of the
    appointment) and the last minute before they began (if that is not past): a day-before
    reminder at 22:00 goes at 20:59, a two-hours-before one at 06:30 goes at 08:00. A
    time already past when the appointment is booked is dropped: the patient has just
    booked.
    """
    due = starts_at - offset
    if quiet.contains(due.astimezone(zone).timetz()):
        later, earlier = quiet.next_allowed(due, zone), quiet.last_allowed(due, zone)
        choices = [t for t in (later, earlier) if now <= t <= starts_at - MIN_LEAD]
        if not choices:
            return None
        due = min(choices, key=lambda t: abs(t - due))
    if due < now or due > starts_at - MIN_LEAD:
        return None
    return due


def plan_reminders(starts_at: datetime, offsets_minutes: list[int], *, quiet: QuietHours,
                   zone: ZoneInfo, now: datetime) -> list[tuple[int, datetime]]:
    """(offset, due time) of each reminder an appointment gets, earliest first."""
    planned: list[tuple[int, datetime]] = []
    for offset in sorted(offsets_minutes, reverse=True):
        due = reminder_due(starts_at, timedelta(minutes=offset), quiet=quiet, zone=zone,
                           now=now)
        if due is None or any(abs(due - other) < MIN_GAP for _, other in planned):
            continue
        planned.append((offset, due))
    return planned


def retry_at(now: datetime, attempts: int, *, base: timedelta, quiet: QuietHours,
             zone: ZoneInfo, rng: random.Random | None = None) -> datetime:
    """When to try again after `attempts` failed tries: exponential backoff (base, 2 x
    base, 4 x base ... up to an hour) with equal jitter, so processes that failed
    together do not retry together; then out of quiet hours."""
    wait = min(base * (2 ** max(attempts - 1, 0)), MAX_RETRY_WAIT)
    jitter = (rng or random).uniform(0.5, 1.0)
    return quiet.next_allowed(now + wait * jitter, zone)
