"""When each message goes out: offsets before the appointment, quiet hours in the
patient's zone, and the wait before a retry. Pure functions of their arguments."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared_models.scheduling import local_instant

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
        return min(t for day in _days(local.date(), 0, 1, 2)
                   for t in _occurrences(day, self.end, zone)
                   if t > at and not self.contains(t.astimezone(zone).timetz()))

    def last_allowed(self, at: datetime, zone: ZoneInfo) -> datetime:
        """`at` itself if it is outside quiet hours, else the last minute before they
        began."""
        local = at.astimezone(zone)
        if not self.contains(local.timetz()):
            return at
        # The start the clock showed on the way into these quiet hours (in a repeated
        # hour it shows twice, and only the first time was the minute before allowed).
        began = max(t for day in _days(local.date(), -2, -1, 0)
                    for t in _occurrences(day, self.start, zone)
                    if t <= at and not self.contains((t - _MINUTE).astimezone(zone).timetz()))
        return began - _MINUTE


_MINUTE = timedelta(minutes=1)


def _days(day: date, *deltas: int) -> list[date]:
    # Two days either way: an allowed time inside the hour a clock change skips does not
    # come at all that day.
    return [day + timedelta(days=d) for d in deltas]


def _occurrences(day: date, wall: time, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants the clock in `zone` shows `wall` on `day`: usually one, two in
    the hour repeated when clocks go back, and the jump itself for a time the clock skips.
    In UTC, because arithmetic and comparison of two times in one zone ignore offsets."""
    first = local_instant(day, wall, zone)
    second = datetime.combine(day, wall, tzinfo=zone).replace(fold=1).astimezone(UTC)
    repeated = second != first and second.astimezone(zone).time() == wall
    return [first, second] if repeated else [first]


def reminder_due(starts_at: datetime, offset: timedelta, *, quiet: QuietHours, zone: ZoneInfo,
                 now: datetime) -> datetime | None:
    """When the reminder `offset` before `starts_at` goes out, or None if it should not.

    A time in quiet hours moves to the nearer of their end (if that is still ahead of the
    appointment) and the last minute before they began (if that is not past): a day-before
    reminder at 22:00 goes at 20:59, a two-hours-before one at 06:30 goes at 08:00. A
    time already past when the appointment is booked is dropped, even one that quiet
    hours would move ahead: the patient has just booked.
    """
    due = starts_at - offset
    if due < now:
        return None
    if quiet.contains(due.astimezone(zone).timetz()):
        later, earlier = quiet.next_allowed(due, zone), quiet.last_allowed(due, zone)
        choices = [t for t in (later, earlier) if now <= t <= starts_at - MIN_LEAD]
        if not choices:
            return None
        due = min(choices, key=lambda t: abs(t - due))
    if due > starts_at - MIN_LEAD:
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
