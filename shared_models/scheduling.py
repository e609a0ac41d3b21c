"""Free-slot computation and the appointment state machine, as pure functions both the
server and the desktop call.

Working hours are wall-clock times in the clinic's IANA zone. Each rule's window is
turned into real instants first (`local_instant`) and slots are stepped through in real
time, so on a daylight-saving day a slot is neither missing, duplicated nor shifted: the
spring-forward gap simply has no instants, and the repeated fall-back hour has its own.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared_models.enums import AppointmentStatus, Role


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    """A provider works `start`-`end` (wall clock) on `weekday` (Monday = 0)."""

    weekday: int
    start: time
    end: time
    slot_minutes: int
    buffer_minutes: int = 0
    break_start: time | None = None
    break_end: time | None = None
    valid_from: date | None = None
    valid_until: date | None = None

    @classmethod
    def from_row(cls, row: Any) -> WeeklyRule:
        """From an `availability_rule` row, on either side."""
        return cls(weekday=row.weekday, start=row.start_time, end=row.end_time,
                   slot_minutes=row.slot_minutes, buffer_minutes=row.buffer_minutes,
                   break_start=row.break_start, break_end=row.break_end,
                   valid_from=row.valid_from, valid_until=row.valid_until)

    def applies_on(self, day: date) -> bool:
        return (
            day.weekday() == self.weekday
            and (self.valid_from is None or day >= self.valid_from)
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True, slots=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class ExtraHours:
    """Hours outside the weekly rules when the provider sees patients."""

    interval: Interval
    slot_minutes: int


@dataclass(frozen=True, slots=True)
class BookingPolicy:
    horizon_days: int = 60
    min_notice_minutes: int = 60
    cancel_cutoff_minutes: int = 120


@dataclass(frozen=True, slots=True)
class Slot:
    start: datetime
    end: datetime


def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time; a time inside a spring-forward gap maps to
    the first instant after it, one inside the repeated hour to its first occurrence."""
    naive = datetime.combine(day, wall)
    at = naive.replace(tzinfo=zone).astimezone(UTC)
    if at.astimezone(zone).replace(tzinfo=None) == naive:
        return at
    # A gap: fold=0 read `wall` with the offset from before the jump, which lands as far
    # past the gap's end as `wall` is into the gap (02:30 -> 03:30), dropping the slots in
    # between. The jump lies between the fold=1 and fold=0 readings: find its second.
    before = int(naive.replace(tzinfo=zone, fold=1).astimezone(UTC).timestamp())
    after = int(at.timestamp())
    offset_after = at.astimezone(zone).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


def _days(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[date]:
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        yield day
        day += timedelta(days=1)


def _step(window: Interval, *, slot: timedelta, stride: timedelta) -> Iterator[Slot]:
    at = window.start
    while at + slot <= window.end:
        yield Slot(at, at + slot)
        at += stride


def candidate_slots(
    *,
    rules: Iterable[WeeklyRule],
    extra: Iterable[ExtraHours],
    zone: ZoneInfo,
    window: Interval,
) -> list[Slot]:
    """Every slot the provider's hours offer inside `window`, before removing what is taken."""
    found: set[Slot] = set()
    rules = list(rules)
    for day in _days(window.start, window.end, zone):
        for rule in rules:
            if not rule.applies_on(day):
                continue
            length = timedelta(minutes=rule.slot_minutes)
            stride = length + timedelta(minutes=rule.buffer_minutes)
            hours = Interval(local_instant(day, rule.start, zone),
                             local_instant(day, rule.end, zone))
            pause = (
                Interval(local_instant(day, rule.break_start, zone),
                         local_instant(day, rule.break_end, zone))
                if rule.break_start and rule.break_end else None
            )
            for slot in _step(hours, slot=length, stride=stride):
                if pause is None or not Interval(slot.start, slot.end).overlaps(pause):
                    found.add(slot)
    for more in extra:
        length = timedelta(minutes=more.slot_minutes)
        found.update(_step(more.interval, slot=length, stride=length))
    # By start, then end: a weekly slot and extra hours starting together order the same
    # way every time, so the shorter one is the one offered and booked.
    return sorted(
        (s for s in found if window.start <= s.start and s.end <= window.end),
        key=lambda s: (s.start, s.end),
    )


def free_slots(
    *,
    rules: Iterable[WeeklyRule],
    extra: Iterable[ExtraHours],
    blocked: Sequence[Interval],
    zone: ZoneInfo,
    window: Interval,
    now: datetime,
    policy: BookingPolicy,
) -> list[Slot]:
    """Slots inside `window` that are offered, not blocked (time off, closures, booked
    appointments) and bookable now under the clinic's notice and horizon."""
    earliest = now + timedelta(minutes=policy.min_notice_minutes)
    latest = now + timedelta(days=policy.horizon_days)
    busy = _merged(blocked)
    busy_starts = [b.start for b in busy]
    result = []
    for slot in candidate_slots(rules=rules, extra=extra, zone=zone, window=window):
        if slot.start < earliest or slot.start > latest:
            continue
        # The merged intervals are disjoint and sorted: only the last one starting before
        # the slot ends can overlap it.
        last = bisect_left(busy_starts, slot.end) - 1
        if last >= 0 and busy[last].end > slot.start:
            continue
        result.append(slot)
    return result


def _merged(intervals: Sequence[Interval]) -> list[Interval]:
    """Overlapping or touching intervals joined, sorted by start."""
    merged: list[Interval] = []
    for interval in sorted(intervals, key=lambda i: i.start):
        if merged and interval.start <= merged[-1].end:
            if interval.end > merged[-1].end:
                merged[-1] = Interval(merged[-1].start, interval.end)
        else:
            merged.append(interval)
    return merged


# --- the appointment state machine ---------------------------------------------------

S = AppointmentStatus
FRONT_DESK = frozenset({Role.ADMIN, Role.RECEPTIONIST})
CLINICAL = frozenset({Role.ADMIN, Role.DOCTOR})


@dataclass(frozen=True, slots=True)
class Transition:
    command: str
    sources: frozenset[AppointmentStatus]
    target: AppointmentStatus
    roles: frozenset[Role]
    # The states from which a patient may issue it through the booking page's manage link.
    patient_sources: frozenset[AppointmentStatus] = frozenset()


TRANSITIONS: dict[str, Transition] = {
    t.command: t
    for t in (
        Transition("reschedule", frozenset({S.PENDING, S.BOOKED}), S.BOOKED,
                   FRONT_DESK | {Role.DOCTOR}, patient_sources=frozenset({S.PENDING, S.BOOKED})),
        Transition("cancel", frozenset({S.PENDING, S.BOOKED, S.CHECKED_IN}), S.CANCELLED,
                   FRONT_DESK | {Role.DOCTOR}, patient_sources=frozenset({S.PENDING, S.BOOKED})),
        Transition("check_in", frozenset({S.BOOKED}), S.CHECKED_IN, FRONT_DESK),
        Transition("start", frozenset({S.CHECKED_IN}), S.IN_PROGRESS, CLINICAL),
        Transition("complete", frozenset({S.IN_PROGRESS}), S.COMPLETED, CLINICAL),
        Transition("no_show", frozenset({S.BOOKED}), S.NO_SHOW, FRONT_DESK),
    )
}
BOOKING_ROLES = FRONT_DESK | {Role.DOCTOR}


class TransitionRefused(Exception):
    """A command that the appointment's state or the caller's role does not allow."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "state" or "role"


def check_transition(
    command: str, *, current: AppointmentStatus, role: Role | None
) -> Transition:
    """The transition `command` makes from `current`; `role` None is a patient acting
    through the booking page, who may only reschedule or cancel an appointment that is
    still ahead of them (pending or booked)."""
    transition = TRANSITIONS[command]
    if role is None and transition.patient_sources:
        if current not in transition.patient_sources:
            raise TransitionRefused(
                f"This appointment is {current.value}; it can be {_DONE[command]} online only "
                f"when it is {', '.join(sorted(s.value for s in transition.patient_sources))}.",
                reason="state",
            )
        return transition
    if role not in transition.roles:
        allowed = ", ".join(sorted(r.value for r in transition.roles))
        who = f"Your role ({role.value})" if role else "A patient"
        raise TransitionRefused(
            f"{who} cannot {command.replace('_', ' ')} an appointment; "
            f"it needs one of: {allowed}.",
            reason="role",
        )
    if current not in transition.sources:
        allowed_from = ", ".join(sorted(s.value for s in transition.sources))
        raise TransitionRefused(
            f"This appointment is {current.value}; it can be {_DONE[command]} only when it "
            f"is {allowed_from}.",
            reason="state",
        )
    return transition


_DONE = {
    "reschedule": "rescheduled",
    "cancel": "cancelled",
    "check_in": "checked in",
    "start": "started",
    "complete": "completed",
    "no_show": "marked as a no-show",
}
