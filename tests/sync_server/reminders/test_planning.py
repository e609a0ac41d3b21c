"""When reminders go out, as pure functions: quiet hours (spanning midnight, none, and on
the days Santiago and Madrid change their clocks), the nearer of the two allowed times,
dropping and collapsing reminders, and the backoff before a retry. The clock moves only
through the `now` argument."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_server.reminders.planning import (
    MAX_RETRY_WAIT,
    MIN_GAP,
    MIN_LEAD,
    QuietHours,
    plan_reminders,
    reminder_due,
    retry_at,
)

SANTIAGO = ZoneInfo("America/Santiago")
MADRID = ZoneInfo("Europe/Madrid")
NIGHT = QuietHours(time(21, 0), time(8, 0))
NONE = QuietHours(time(0, 0), time(0, 0))


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    """Pure functions: no queue to empty and no database (overrides the package's)."""


def at(zone: ZoneInfo, day: date, wall: time, *, fold: int = 0) -> datetime:
    """The UTC instant the clock in `zone` shows `wall` on `day` (as stored)."""
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=fold).astimezone(UTC)


def wall(instant: datetime, zone: ZoneInfo) -> tuple[date, time, timedelta | None]:
    local = instant.astimezone(zone)
    return local.date(), local.time(), local.utcoffset()


# --- quiet hours ----------------------------------------------------------------------


@pytest.mark.parametrize(("local", "quiet"), [
    (time(21, 0), True), (time(23, 59), True), (time(0, 0), True), (time(7, 59), True),
    (time(8, 0), False), (time(12, 0), False), (time(20, 59), False),
])
def test_quiet_hours_spanning_midnight_cover_the_night_from_start_up_to_end(
    local: time, quiet: bool,
) -> None:
    assert NIGHT.contains(local) is quiet


@pytest.mark.parametrize(("local", "quiet"), [
    (time(12, 59), False), (time(13, 0), True), (time(13, 59), True), (time(14, 0), False),
])
def test_quiet_hours_within_one_day_cover_start_up_to_end(local: time, quiet: bool) -> None:
    assert QuietHours(time(13, 0), time(14, 0)).contains(local) is quiet


def test_equal_start_and_end_mean_no_quiet_hours_at_all() -> None:
    for quiet in (NONE, QuietHours(time(21, 0), time(21, 0))):
        assert not any(quiet.contains(time(h, m)) for h in range(24) for m in (0, 30, 59))
        night = at(SANTIAGO, date(2025, 6, 10), time(quiet.start.hour, 0))
        assert quiet.next_allowed(night, SANTIAGO) == night
        assert quiet.last_allowed(night, SANTIAGO) == night


def test_contains_reads_the_wall_clock_of_an_aware_time() -> None:
    assert NIGHT.contains(time(22, 0, tzinfo=UTC))
    assert not NIGHT.contains(time(12, 0, tzinfo=UTC))


@pytest.mark.parametrize(("local", "expected"), [
    # Evening: the next morning; small hours: the same morning; daytime: as is.
    ((date(2025, 6, 10), time(22, 30)), (date(2025, 6, 11), time(8, 0))),
    ((date(2025, 6, 10), time(21, 0)), (date(2025, 6, 11), time(8, 0))),
    ((date(2025, 6, 10), time(6, 0)), (date(2025, 6, 10), time(8, 0))),
    ((date(2025, 6, 10), time(12, 0)), (date(2025, 6, 10), time(12, 0))),
])
def test_next_allowed_is_the_moment_quiet_hours_end(
    local: tuple[date, time], expected: tuple[date, time],
) -> None:
    moment = at(SANTIAGO, *local)
    assert NIGHT.next_allowed(moment, SANTIAGO) == at(SANTIAGO, *expected)


@pytest.mark.parametrize(("local", "expected"), [
    # Evening: the same evening; small hours: the evening before; daytime: as is.
    ((date(2025, 6, 10), time(22, 30)), (date(2025, 6, 10), time(20, 59))),
    ((date(2025, 6, 10), time(21, 0)), (date(2025, 6, 10), time(20, 59))),
    ((date(2025, 6, 10), time(2, 0)), (date(2025, 6, 9), time(20, 59))),
    ((date(2025, 6, 10), time(12, 0)), (date(2025, 6, 10), time(12, 0))),
])
def test_last_allowed_is_the_minute_before_quiet_hours_began(
    local: tuple[date, time], expected: tuple[date, time],
) -> None:
    moment = at(SANTIAGO, *local)
    assert NIGHT.last_allowed(moment, SANTIAGO) == at(SANTIAGO, *expected)


def test_quiet_hours_are_read_in_the_zone_given() -> None:
    # 16:00 in Santiago (winter, -04) is 22:00 in Madrid (summer, +02).
    moment = at(SANTIAGO, date(2025, 6, 10), time(16, 0))
    assert NIGHT.next_allowed(moment, SANTIAGO) == moment
    assert NIGHT.next_allowed(moment, MADRID) == at(MADRID, date(2025, 6, 11), time(8, 0))


# --- days the clocks change -----------------------------------------------------------


@pytest.mark.parametrize(("zone", "evening", "morning_offset"), [
    # Santiago: 2025-04-06 00:00 -03 became 2025-04-05 23:00 -04; 2025-09-07 00:00 -04
    # became 01:00 -03. Madrid: 2025-03-30 02:00 CET became 03:00 CEST; 2025-10-26 03:00
    # CEST became 02:00 CET.
    (SANTIAGO, date(2025, 4, 5), timedelta(hours=-4)),
    (SANTIAGO, date(2025, 9, 6), timedelta(hours=-3)),
    (MADRID, date(2025, 3, 29), timedelta(hours=2)),
    (MADRID, date(2025, 10, 25), timedelta(hours=1)),
])
def test_quiet_hours_across_a_clock_change_end_at_eight_on_the_new_clock(
    zone: ZoneInfo, evening: date, morning_offset: timedelta,
) -> None:
    moment = at(zone, evening, time(22, 0))
    morning = NIGHT.next_allowed(moment, zone)
    assert wall(morning, zone) == (evening + timedelta(days=1), time(8, 0), morning_offset)
    dawn = at(zone, evening + timedelta(days=1), time(6, 0))
    assert wall(NIGHT.last_allowed(dawn, zone), zone)[:2] == (evening, time(20, 59))


@pytest.mark.parametrize(("zone", "day", "quiet", "inside", "expected"), [
    # Quiet hours that begin as the clock jumps forward: the minute before them is the
    # last minute of the old clock (01:59 CET; 23:59 -04), not a minute of the new one.
    (MADRID, date(2025, 3, 30), QuietHours(time(3, 0), time(8, 0)), time(4, 0),
     (date(2025, 3, 30), time(1, 59), timedelta(hours=1))),
    (SANTIAGO, date(2025, 9, 7), QuietHours(time(1, 0), time(7, 0)), time(2, 0),
     (date(2025, 9, 6), time(23, 59), timedelta(hours=-4))),
])
def test_last_allowed_before_quiet_hours_starting_after_a_jump_forward_is_on_the_old_clock(
    zone: ZoneInfo, day: date, quiet: QuietHours, inside: time,
    expected: tuple[date, time, timedelta],
) -> None:
    moment = at(zone, day, inside)
    assert quiet.contains(moment.astimezone(zone).time())
    before = quiet.last_allowed(moment, zone)
    assert wall(before, zone) == expected
    assert not quiet.contains(before.astimezone(zone).time())


def test_quiet_hours_ending_at_a_time_the_clock_skips_end_when_it_jumps() -> None:
    # 2025-03-30 in Madrid has no 02:30: the night ends at 03:00 CEST, the jump.
    quiet = QuietHours(time(22, 0), time(2, 30))
    moment = at(MADRID, date(2025, 3, 30), time(1, 0))
    assert quiet.next_allowed(moment, MADRID) == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_quiet_hours_ending_in_the_repeated_hour_end_after_its_second_pass() -> None:
    # 2025-04-05 in Santiago shows 23:00-23:59 twice (-03, then -04). At 23:15 the second
    # time round the quiet hours end at 23:30 -04, never at the 23:30 -03 already past.
    quiet = QuietHours(time(22, 0), time(23, 30))
    second_pass = at(SANTIAGO, date(2025, 4, 5), time(23, 15), fold=1)
    assert second_pass.astimezone(SANTIAGO).utcoffset() == timedelta(hours=-4)
    assert quiet.contains(second_pass.astimezone(SANTIAGO).time())
    assert quiet.next_allowed(second_pass, SANTIAGO) == datetime(2025, 4, 6, 3, 30, tzinfo=UTC)


def test_a_day_before_reminder_across_a_clock_change_is_24_hours_before() -> None:
    # Sunday 2025-09-07 10:00 -03 in Santiago; the Saturday had one hour more (-04).
    start = at(SANTIAGO, date(2025, 9, 7), time(10, 0))
    now = start - timedelta(days=5)
    due = reminder_due(start, timedelta(days=1), quiet=NIGHT, zone=SANTIAGO, now=now)
    assert due == start - timedelta(hours=24)
    assert wall(due, SANTIAGO) == (date(2025, 9, 6), time(9, 0), timedelta(hours=-4))


# --- planning -------------------------------------------------------------------------


DAY = date(2025, 6, 10)  # no clock change near it in either zone


def test_an_appointment_far_ahead_gets_each_reminder_at_its_offset_earliest_first() -> None:
    start = at(SANTIAGO, DAY, time(10, 0))
    planned = plan_reminders(start, [120, 2880, 1440], quiet=NIGHT, zone=SANTIAGO,
                             now=start - timedelta(days=7))
    assert planned == [(2880, start - timedelta(days=2)), (1440, start - timedelta(days=1)),
                       (120, start - timedelta(hours=2))]


def test_reminders_already_past_at_booking_are_dropped() -> None:
    start = at(SANTIAGO, DAY, time(10, 0))
    planned = plan_reminders(start, [1440, 120], quiet=NIGHT, zone=SANTIAGO,
                             now=start - timedelta(hours=3))
    assert planned == [(120, start - timedelta(hours=2))]
    assert plan_reminders(start, [1440, 120], quiet=NIGHT, zone=SANTIAGO,
                          now=start - timedelta(minutes=90)) == []


def test_a_reminder_already_past_in_quiet_hours_is_dropped_not_moved_to_the_morning() -> None:
    # Booked at 23:30 for 22:30 the next evening (the patient's zone): the day-before
    # reminder was due at 22:30, before the booking; the patient has just booked.
    start = at(MADRID, DAY + timedelta(days=1), time(22, 30))
    now = at(MADRID, DAY, time(23, 30))
    assert reminder_due(start, timedelta(days=1), quiet=NIGHT, zone=MADRID, now=now) is None
    planned = plan_reminders(start, [1440, 120], quiet=NIGHT, zone=MADRID, now=now)
    assert planned == [(120, start - timedelta(hours=2))]


def test_the_nearer_of_the_two_allowed_times_is_taken() -> None:
    now = at(SANTIAGO, DAY - timedelta(days=5), time(12, 0))
    # A day before a 22:00 appointment is 22:00: 20:59 is 61 minutes away, 08:00 ten hours.
    late = at(SANTIAGO, DAY, time(22, 0))
    assert reminder_due(late, timedelta(days=1), quiet=NIGHT, zone=SANTIAGO, now=now) == (
        at(SANTIAGO, DAY - timedelta(days=1), time(20, 59)))
    # Two hours before 08:30 is 06:30: 08:00 is 90 minutes away, 20:59 nearly ten hours.
    early = at(SANTIAGO, DAY, time(8, 30))
    assert reminder_due(early, timedelta(hours=2), quiet=NIGHT, zone=SANTIAGO, now=now) == (
        at(SANTIAGO, DAY, time(8, 0)))


def test_the_end_of_quiet_hours_is_not_taken_when_it_is_too_close_to_the_appointment() -> None:
    # An hour before 08:10 is 07:10; 08:00 is inside the last 15 minutes, so the evening
    # before it is, however far; unless that is past too.
    start = at(SANTIAGO, DAY, time(8, 10))
    evening = at(SANTIAGO, DAY - timedelta(days=1), time(20, 59))
    assert reminder_due(start, timedelta(hours=1), quiet=NIGHT, zone=SANTIAGO,
                        now=evening - timedelta(hours=5)) == evening
    assert reminder_due(start, timedelta(hours=1), quiet=NIGHT, zone=SANTIAGO,
                        now=evening + timedelta(minutes=1)) is None


def test_the_earlier_time_is_not_taken_when_it_is_already_past() -> None:
    # A day before 22:00 tomorrow is 22:00 tonight: 20:59 while that is ahead, else 08:00.
    start = at(SANTIAGO, DAY + timedelta(days=1), time(22, 0))
    before = at(SANTIAGO, DAY, time(20, 30))
    assert reminder_due(start, timedelta(days=1), quiet=NIGHT, zone=SANTIAGO,
                        now=before) == at(SANTIAGO, DAY, time(20, 59))
    after = at(SANTIAGO, DAY, time(21, 30))
    assert reminder_due(start, timedelta(days=1), quiet=NIGHT, zone=SANTIAGO,
                        now=after) == at(SANTIAGO, DAY + timedelta(days=1), time(8, 0))


def test_reminders_moved_together_by_quiet_hours_collapse_into_the_earlier_one() -> None:
    # 25 and 24 hours before 22:30 are 21:30 and 22:30: both move to 20:59.
    start = at(SANTIAGO, DAY, time(22, 30))
    planned = plan_reminders(start, [1440, 1500], quiet=NIGHT, zone=SANTIAGO,
                             now=start - timedelta(days=3))
    assert planned == [(1500, at(SANTIAGO, DAY - timedelta(days=1), time(20, 59)))]


def test_reminders_closer_than_the_minimum_gap_collapse_and_ones_a_gap_apart_do_not() -> None:
    start = at(SANTIAGO, DAY, time(15, 0))
    now = start - timedelta(days=3)
    close = plan_reminders(start, [1440, 1440 - 59], quiet=NONE, zone=SANTIAGO, now=now)
    assert close == [(1440, start - timedelta(days=1))]
    gap = int(MIN_GAP.total_seconds() // 60)
    apart = plan_reminders(start, [1440, 1440 - gap], quiet=NONE, zone=SANTIAGO, now=now)
    assert apart == [(1440, start - timedelta(days=1)),
                     (1440 - gap, start - timedelta(days=1) + MIN_GAP)]


def test_a_reminder_inside_the_minimum_lead_is_never_planned() -> None:
    start = at(SANTIAGO, DAY, time(15, 0))
    lead = int(MIN_LEAD.total_seconds() // 60)
    now = start - timedelta(days=1)
    assert plan_reminders(start, [lead], quiet=NONE, zone=SANTIAGO, now=now) == [
        (lead, start - MIN_LEAD)]
    assert plan_reminders(start, [lead - 1], quiet=NONE, zone=SANTIAGO, now=now) == []


# --- retries --------------------------------------------------------------------------


class Jitter(random.Random):
    """Always draws the low or the high end of the range it is asked for."""

    def __init__(self, end: str) -> None:
        super().__init__(0)
        self.end = end

    def uniform(self, a: float, b: float) -> float:
        return a if self.end == "low" else b


NOON = at(SANTIAGO, DAY, time(12, 0))
BASE = timedelta(seconds=30)


@pytest.mark.parametrize(("attempts", "full"), [
    (1, timedelta(seconds=30)), (2, timedelta(seconds=60)), (3, timedelta(seconds=120)),
    (4, timedelta(seconds=240)), (7, timedelta(seconds=1920)),
    (8, MAX_RETRY_WAIT), (30, MAX_RETRY_WAIT),
])
def test_retry_waits_double_with_each_attempt_up_to_an_hour_with_jitter_down_to_half(
    attempts: int, full: timedelta,
) -> None:
    longest = retry_at(NOON, attempts, base=BASE, quiet=NIGHT, zone=SANTIAGO, rng=Jitter("high"))
    shortest = retry_at(NOON, attempts, base=BASE, quiet=NIGHT, zone=SANTIAGO, rng=Jitter("low"))
    assert longest - NOON == full
    assert shortest - NOON == full / 2


def test_retry_jitter_spreads_processes_that_failed_together() -> None:
    waits = [retry_at(NOON, 3, base=BASE, quiet=NIGHT, zone=SANTIAGO,
                      rng=random.Random(seed)) - NOON for seed in range(200)]
    assert all(timedelta(seconds=60) <= w <= timedelta(seconds=120) for w in waits)
    assert len(set(waits)) > 150
    assert min(waits) < timedelta(seconds=70)
    assert max(waits) > timedelta(seconds=110)


@pytest.mark.parametrize("end", ["low", "high"])
def test_a_retry_that_would_fall_in_quiet_hours_waits_for_the_morning(end: str) -> None:
    # 20:59:30 plus 30-60 s is 21:00:00-21:00:30: quiet, so 08:00 the next day.
    now = at(SANTIAGO, DAY, time(20, 59, 30))
    when = retry_at(now, 2, base=BASE, quiet=NIGHT, zone=SANTIAGO, rng=Jitter(end))
    assert when == at(SANTIAGO, DAY + timedelta(days=1), time(8, 0))
    assert retry_at(now, 2, base=BASE, quiet=NONE, zone=SANTIAGO, rng=Jitter(end)) < (
        now + timedelta(minutes=2))


# --- properties -----------------------------------------------------------------------

ZONES = st.sampled_from([SANTIAGO, MADRID, ZoneInfo("America/New_York"),
                         ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"),
                         ZoneInfo("UTC")])
# The days around every clock change of these zones in 2025, and any day.
CHANGE_DAYS = [date(2025, 3, 9), date(2025, 3, 30), date(2025, 4, 5), date(2025, 4, 6),
               date(2025, 9, 6), date(2025, 9, 7), date(2025, 10, 5), date(2025, 10, 26),
               date(2025, 11, 2)]
DAYS = (st.sampled_from(CHANGE_DAYS) | st.dates(date(2025, 1, 1), date(2026, 12, 31)))
# Times around the clock changes are the ones that go wrong; any minute also.
WALLS = (st.sampled_from([time(0, 0), time(0, 30), time(1, 0), time(1, 59), time(2, 0),
                          time(2, 30), time(3, 0), time(8, 0), time(21, 0), time(23, 0),
                          time(23, 30)])
         | st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60)))
QUIET = st.builds(QuietHours, WALLS, WALLS)
OFFSETS = st.lists(st.sampled_from([15, 60, 120, 180, 1440, 2880])
                   | st.integers(15, 14 * 24 * 60), max_size=4, unique=True)


@st.composite
def moments(draw: st.DrawFn) -> datetime:
    """An instant near a local wall time of a day, in UTC."""
    day, clock = draw(DAYS), draw(WALLS)
    return (datetime.combine(day, clock, tzinfo=UTC)
            + timedelta(minutes=draw(st.integers(-15 * 60, 15 * 60))))


@settings(max_examples=400, deadline=None)
@given(moment=moments(), zone=ZONES, quiet=QUIET)
def test_next_and_last_allowed_are_outside_quiet_hours_and_on_the_right_side(
    moment: datetime, zone: ZoneInfo, quiet: QuietHours,
) -> None:
    later, earlier = quiet.next_allowed(moment, zone), quiet.last_allowed(moment, zone)
    assert not quiet.contains(later.astimezone(zone).time())
    assert not quiet.contains(earlier.astimezone(zone).time())
    assert earlier <= moment <= later
    assert later - moment <= timedelta(days=2)
    assert moment - earlier <= timedelta(days=2)
    if not quiet.contains(moment.astimezone(zone).time()):
        assert later == earlier == moment


@settings(max_examples=400, deadline=None)
@given(start=moments(), ahead=st.integers(0, 15 * 24 * 60), offsets=OFFSETS, zone=ZONES,
       quiet=QUIET)
def test_a_planned_reminder_is_never_in_quiet_hours_past_or_inside_the_last_minutes(
    start: datetime, ahead: int, offsets: list[int], zone: ZoneInfo, quiet: QuietHours,
) -> None:
    now = start - timedelta(minutes=ahead)
    planned = plan_reminders(start, offsets, quiet=quiet, zone=zone, now=now)
    for offset, due in planned:
        assert offset in offsets
        assert not quiet.contains(due.astimezone(zone).time()), (offset, due)
        assert now <= due <= start - MIN_LEAD
        assert start - timedelta(minutes=offset) >= now  # never one already past
    dues = [due for _, due in planned]
    assert dues == sorted(dues)
    assert all(b - a >= MIN_GAP for a, b in pairwise(dues))
