"""Free slots and the appointment state machine as pure functions: daylight-saving days in
Santiago and New York (and Mexico City, which stopped changing its clocks), breaks, buffers,
validity dates, extra hours, blocked time, notice and horizon, and who may move an
appointment from which state. The clock moves only through the `now` argument."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_models.enums import AppointmentStatus, Role
from shared_models.scheduling import (
    TRANSITIONS,
    BookingPolicy,
    ExtraHours,
    Interval,
    Slot,
    TransitionRefused,
    WeeklyRule,
    candidate_slots,
    check_transition,
    free_slots,
    local_instant,
)

SANTIAGO = ZoneInfo("America/Santiago")
NEW_YORK = ZoneInfo("America/New_York")
MEXICO_CITY = ZoneInfo("America/Mexico_City")
UTC_ZONE = ZoneInfo("UTC")

# A `now` long before every window below and a horizon that reaches past all of them, so
# that only the hours decide the slots unless a test says otherwise.
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
OPEN_POLICY = BookingPolicy(horizon_days=10_000, min_notice_minutes=0)


def every_day(start: time, end: time, *, slot_minutes: int = 30, **kw: Any
              ) -> list[WeeklyRule]:
    return [WeeklyRule(weekday=d, start=start, end=end, slot_minutes=slot_minutes, **kw)
            for d in range(7)]


def local_day(day: date, zone: ZoneInfo) -> Interval:
    """From local midnight of `day` to local midnight of the next day."""
    return Interval(local_instant(day, time(0), zone),
                    local_instant(day + timedelta(days=1), time(0), zone))


def local_days(first: date, last: date, zone: ZoneInfo) -> Interval:
    return Interval(local_day(first, zone).start, local_day(last, zone).end)


def walls(slots: list[Slot], zone: ZoneInfo) -> list[tuple[date, time, timedelta | None]]:
    """Each slot's local date, wall-clock start and UTC offset."""
    return [(s.start.astimezone(zone).date(), s.start.astimezone(zone).time(),
             s.start.astimezone(zone).utcoffset()) for s in slots]


def slots_of(rules: list[WeeklyRule], zone: ZoneInfo, window: Interval, *,
             extra: list[ExtraHours] | None = None) -> list[Slot]:
    return candidate_slots(rules=rules, extra=extra or [], zone=zone, window=window)


def assert_real_time_steps(slots: list[Slot], minutes: int) -> None:
    """Every slot lasts `minutes` of real time; instants are distinct and sorted."""
    assert all(s.end - s.start == timedelta(minutes=minutes) for s in slots), slots
    starts = [s.start for s in slots]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)


# --- finding the daylight-saving transitions with zoneinfo ---------------------------------


def transitions(zone: ZoneInfo, year: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """Every change of UTC offset in `year`, found by scanning: (instant, before, after)."""

    def offset(at: datetime) -> timedelta:
        found = at.astimezone(zone).utcoffset()
        assert found is not None
        return found

    found: list[tuple[datetime, timedelta, timedelta]] = []
    at = datetime(year, 1, 1, tzinfo=UTC)
    while at.year == year:
        following = at + timedelta(hours=1)
        if offset(at) != offset(following):
            low, high = at, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                low, high = (low, middle) if offset(middle) == offset(following) else (middle,
                                                                                       high)
            found.append((high, offset(at), offset(following)))
        at = following
    return found


def transition(zone: ZoneInfo, kind: str) -> tuple[datetime, timedelta, timedelta]:
    """The 2026 spring-forward (offset grows) or fall-back (offset shrinks) of `zone`."""
    changes = transitions(zone, 2026)
    assert len(changes) == 2, changes
    return next(c for c in changes if (c[2] > c[1]) == (kind == "spring"))


def test_the_scan_finds_the_2026_transitions_of_the_zones_used_here() -> None:
    # Pins the premises of the tests below, as zoneinfo reports them.
    spring, before, after = transition(SANTIAGO, "spring")
    assert spring.astimezone(SANTIAGO).isoformat() == "2026-09-06T01:00:00-03:00"
    assert (before, after) == (timedelta(hours=-4), timedelta(hours=-3))
    fall, before, after = transition(SANTIAGO, "fall")
    assert fall.astimezone(SANTIAGO).isoformat() == "2026-04-04T23:00:00-04:00"
    assert (before, after) == (timedelta(hours=-3), timedelta(hours=-4))
    assert transition(NEW_YORK, "spring")[0] == datetime(2026, 3, 8, 7, tzinfo=UTC)
    assert transition(NEW_YORK, "fall")[0] == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert transitions(MEXICO_CITY, 2026) == []


# --- daylight saving: ordinary hours keep their wall-clock times ---------------------------


@pytest.mark.parametrize(("zone", "kind"), [
    (SANTIAGO, "spring"), (SANTIAGO, "fall"), (NEW_YORK, "spring"), (NEW_YORK, "fall"),
])
def test_ordinary_hours_keep_their_wall_clock_times_on_and_around_a_transition(
    zone: ZoneInfo, kind: str
) -> None:
    at, before, after = transition(zone, kind)
    middle = at.astimezone(zone).date()
    first, last = middle - timedelta(days=3), middle + timedelta(days=3)
    slots = slots_of(every_day(time(9), time(13)), zone, local_days(first, last, zone))

    expected_times = [time(9 + m // 60, m % 60) for m in range(0, 240, 30)]
    days = [first + timedelta(days=i) for i in range(7)]
    assert [(d, t) for d, t, _ in walls(slots, zone)] == [
        (d, t) for d in days for t in expected_times
    ]
    assert_real_time_steps(slots, 30)
    assert all(s.start.astimezone(zone).utcoffset() == s.end.astimezone(zone).utcoffset()
               for s in slots)
    # The window really straddles the change: the offset before it and after it both show.
    offsets = [o for _, _, o in walls(slots, zone)]
    assert offsets[0] == before
    assert offsets[-1] == after


# --- daylight saving: hours that span the transition are stepped in real time -------------


def test_new_york_spring_forward_night_hours_skip_the_missing_hour() -> None:
    spring, _, _ = transition(NEW_YORK, "spring")
    day = spring.astimezone(NEW_YORK).date()
    slots = slots_of(every_day(time(0), time(3)), NEW_YORK, local_day(day, NEW_YORK))
    est = timedelta(hours=-5)
    # 00:00 to 03:00 on the wall is two real hours: four slots, none in 02:00-03:00.
    assert walls(slots, NEW_YORK) == [
        (day, time(0), est), (day, time(0, 30), est), (day, time(1), est),
        (day, time(1, 30), est),
    ]
    assert slots[-1].end == spring
    assert not any(time(2) <= s.start.astimezone(NEW_YORK).time() < time(3) for s in slots)
    assert_real_time_steps(slots, 30)


def test_new_york_fall_back_night_hours_offer_the_repeated_hour_twice_at_distinct_instants(
) -> None:
    fall, _, _ = transition(NEW_YORK, "fall")
    day = fall.astimezone(NEW_YORK).date()
    slots = slots_of(every_day(time(0), time(3)), NEW_YORK, local_day(day, NEW_YORK))
    edt, est = timedelta(hours=-4), timedelta(hours=-5)
    # 00:00 to 03:00 on the wall is four real hours: 01:00 and 01:30 come twice.
    assert walls(slots, NEW_YORK) == [
        (day, time(0), edt), (day, time(0, 30), edt), (day, time(1), edt),
        (day, time(1, 30), edt), (day, time(1), est), (day, time(1, 30), est),
        (day, time(2), est), (day, time(2, 30), est),
    ]
    assert slots[4].start - slots[2].start == timedelta(hours=1)
    assert_real_time_steps(slots, 30)


@pytest.mark.parametrize("start", [time(0), time(0, 30)])
def test_santiago_hours_starting_inside_the_spring_forward_gap_begin_when_it_ends(
    start: time,
) -> None:
    spring, _, after = transition(SANTIAGO, "spring")
    day = spring.astimezone(SANTIAGO).date()  # Sunday: 00:00-01:00 does not exist
    slots = slots_of(every_day(start, time(3)), SANTIAGO, local_day(day, SANTIAGO))
    assert slots[0].start == spring
    assert walls(slots, SANTIAGO) == [
        (day, time(1), after), (day, time(1, 30), after), (day, time(2), after),
        (day, time(2, 30), after),
    ]
    assert_real_time_steps(slots, 30)


def test_new_york_hours_starting_inside_the_gap_keep_the_first_existing_wall_time() -> None:
    spring, _, _ = transition(NEW_YORK, "spring")
    day = spring.astimezone(NEW_YORK).date()
    rules = every_day(time(2, 30), time(5))
    slots = slots_of(rules, NEW_YORK, local_day(day, NEW_YORK))
    # 02:30 does not exist that day; 03:00 does and must not be lost.
    assert [t for _, t, _ in walls(slots, NEW_YORK)] == [
        time(3), time(3, 30), time(4), time(4, 30)]
    normal = slots_of(rules, NEW_YORK, local_day(day + timedelta(days=1), NEW_YORK))
    assert walls(normal, NEW_YORK)[0][1] == time(2, 30)


def test_local_instant_maps_gap_times_past_the_gap_and_repeated_times_to_the_first() -> None:
    spring, _, _ = transition(NEW_YORK, "spring")
    fall, _, _ = transition(NEW_YORK, "fall")
    for wall in (time(2), time(2, 30), time(2, 59, 59)):
        assert local_instant(date(2026, 3, 8), wall, NEW_YORK) == spring
    assert local_instant(date(2026, 3, 8), time(3), NEW_YORK) == spring
    assert local_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == fall - timedelta(
        minutes=30)
    assert local_instant(date(2026, 11, 1), time(3), NEW_YORK) == fall + timedelta(hours=2)


def test_santiago_extra_hours_over_the_repeated_hour_step_through_both_occurrences() -> None:
    fall, before, after = transition(SANTIAGO, "fall")
    day = fall.astimezone(SANTIAGO).date()
    extra = ExtraHours(Interval(fall - timedelta(hours=2), fall + timedelta(hours=1)), 30)
    slots = slots_of([], SANTIAGO, local_days(day, day + timedelta(days=1), SANTIAGO),
                     extra=[extra])
    assert walls(slots, SANTIAGO) == [
        (day, time(22), before), (day, time(22, 30), before), (day, time(23), before),
        (day, time(23, 30), before), (day, time(23), after), (day, time(23, 30), after),
    ]
    assert_real_time_steps(slots, 30)


@pytest.mark.parametrize("day", [
    date(2026, 1, 15), date(2026, 4, 5), date(2026, 7, 15), date(2026, 10, 25),
    date(2026, 11, 1),
])
def test_mexico_city_slots_are_at_utc_minus_six_all_year(day: date) -> None:
    # 2026-04-05 and 2026-10-25 are the days Mexico used to change its clocks.
    slots = slots_of(every_day(time(9), time(10)), MEXICO_CITY,
                     local_day(day, MEXICO_CITY))
    assert [s.start.astimezone(MEXICO_CITY).isoformat() for s in slots] == [
        f"{day.isoformat()}T09:00:00-06:00", f"{day.isoformat()}T09:30:00-06:00"]
    assert slots[0].start == datetime.combine(day, time(15), tzinfo=UTC)


# --- breaks, buffers, validity, extra hours ------------------------------------------------

MONDAY = date(2026, 3, 2)


def monday_times(slots: list[Slot], zone: ZoneInfo = SANTIAGO) -> list[str]:
    return [s.start.astimezone(zone).strftime("%H:%M") for s in slots]


def test_a_break_removes_every_slot_overlapping_it_and_keeps_the_grid() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(13), slot_minutes=30,
                      break_start=time(11), break_end=time(11, 45))
    slots = slots_of([rule], SANTIAGO, local_day(MONDAY, SANTIAGO))
    # 11:30-12:00 overlaps the break's last quarter hour; 12:00 is the next slot on the grid.
    assert monday_times(slots) == ["09:00", "09:30", "10:00", "10:30", "12:00", "12:30"]


def test_a_slot_ending_when_the_break_starts_is_kept() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(11), slot_minutes=30,
                      break_start=time(10), break_end=time(10, 30))
    slots = slots_of([rule], SANTIAGO, local_day(MONDAY, SANTIAGO))
    assert monday_times(slots) == ["09:00", "09:30", "10:30"]


def test_buffer_minutes_separate_consecutive_slots() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(11), slot_minutes=30,
                      buffer_minutes=10)
    slots = slots_of([rule], SANTIAGO, local_day(MONDAY, SANTIAGO))
    assert monday_times(slots) == ["09:00", "09:40", "10:20"]
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)


def test_the_last_slot_must_end_by_the_end_of_the_hours() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(10, 15), slot_minutes=30)
    slots = slots_of([rule], SANTIAGO, local_day(MONDAY, SANTIAGO))
    assert monday_times(slots) == ["09:00", "09:30"]


def test_a_rule_applies_only_on_its_weekday() -> None:
    rule = WeeklyRule(weekday=2, start=time(9), end=time(10), slot_minutes=30)
    slots = slots_of([rule], SANTIAGO, local_days(MONDAY, MONDAY + timedelta(days=6),
                                                  SANTIAGO))
    assert {s.start.astimezone(SANTIAGO).date() for s in slots} == {date(2026, 3, 4)}


def test_valid_from_and_valid_until_bound_the_days_a_rule_applies_inclusively() -> None:
    rules = every_day(time(9), time(9, 30), valid_from=date(2026, 3, 4),
                      valid_until=date(2026, 3, 6))
    slots = slots_of(rules, SANTIAGO, local_days(MONDAY, MONDAY + timedelta(days=13),
                                                 SANTIAGO))
    assert [s.start.astimezone(SANTIAGO).date() for s in slots] == [
        date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6)]


def test_extra_hours_add_slots_of_their_own_length_on_a_day_without_hours() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(10), slot_minutes=30)
    sunday = MONDAY + timedelta(days=6)
    extra = ExtraHours(Interval(local_instant(sunday, time(10), SANTIAGO),
                                local_instant(sunday, time(11), SANTIAGO)), 20)
    slots = slots_of([rule], SANTIAGO, local_days(MONDAY, sunday, SANTIAGO), extra=[extra])
    assert [(s.start.astimezone(SANTIAGO).strftime("%a %H:%M"), s.end - s.start)
            for s in slots] == [
        ("Mon 09:00", timedelta(minutes=30)), ("Mon 09:30", timedelta(minutes=30)),
        ("Sun 10:00", timedelta(minutes=20)), ("Sun 10:20", timedelta(minutes=20)),
        ("Sun 10:40", timedelta(minutes=20)),
    ]


def test_extra_hours_matching_the_weekly_hours_do_not_duplicate_slots() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(10), slot_minutes=30)
    extra = ExtraHours(Interval(local_instant(MONDAY, time(9), SANTIAGO),
                                local_instant(MONDAY, time(11), SANTIAGO)), 30)
    slots = slots_of([rule], SANTIAGO, local_day(MONDAY, SANTIAGO), extra=[extra])
    assert monday_times(slots) == ["09:00", "09:30", "10:00", "10:30"]


def test_only_slots_wholly_inside_the_window_are_returned() -> None:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(12), slot_minutes=30)
    window = Interval(local_instant(MONDAY, time(9, 15), SANTIAGO),
                      local_instant(MONDAY, time(10, 45), SANTIAGO))
    assert monday_times(slots_of([rule], SANTIAGO, window)) == ["09:30", "10:00"]


# --- blocked time, notice and horizon ------------------------------------------------------


def monday_free(*, blocked: list[Interval] | None = None, now: datetime = LONG_AGO,
                policy: BookingPolicy = OPEN_POLICY) -> list[str]:
    rule = WeeklyRule(weekday=0, start=time(9), end=time(12), slot_minutes=30)
    return monday_times(free_slots(rules=[rule], extra=[], blocked=blocked or [],
                                   zone=SANTIAGO, window=local_day(MONDAY, SANTIAGO),
                                   now=now, policy=policy))


def at(wall: time) -> datetime:
    return local_instant(MONDAY, wall, SANTIAGO)


def test_blocked_time_removes_every_slot_it_overlaps() -> None:
    # Time off 10:15-11:00 touches both 10:00-10:30 and 10:30-11:00.
    assert monday_free(blocked=[Interval(at(time(10, 15)), at(time(11)))]) == [
        "09:00", "09:30", "11:00", "11:30"]


def test_blocked_time_touching_a_slot_only_at_its_edges_leaves_it_free() -> None:
    booked = Interval(at(time(10)), at(time(10, 30)))
    assert monday_free(blocked=[booked]) == ["09:00", "09:30", "10:30", "11:00", "11:30"]


def test_several_blocked_intervals_in_any_order_all_apply() -> None:
    closure = Interval(at(time(11)), at(time(23)))
    booking = Interval(at(time(9)), at(time(9, 30)))
    time_off = Interval(at(time(9, 45)), at(time(10, 5)))
    assert monday_free(blocked=[closure, booking, time_off]) == ["10:30"]


def test_a_longer_appointment_blocks_every_slot_it_covers() -> None:
    assert monday_free(blocked=[Interval(at(time(9)), at(time(10, 30)))]) == [
        "10:30", "11:00", "11:30"]


def test_min_notice_hides_slots_starting_too_soon_and_keeps_one_exactly_at_the_limit() -> None:
    policy = BookingPolicy(horizon_days=60, min_notice_minutes=60)
    assert monday_free(now=at(time(9)), policy=policy) == ["10:00", "10:30", "11:00", "11:30"]
    assert monday_free(now=at(time(9, 1)), policy=policy) == ["10:30", "11:00", "11:30"]


def test_past_slots_are_not_free_even_without_notice() -> None:
    policy = BookingPolicy(horizon_days=60, min_notice_minutes=0)
    assert monday_free(now=at(time(10, 10)), policy=policy) == ["10:30", "11:00", "11:30"]


def test_horizon_hides_slots_further_ahead_than_the_policy_allows() -> None:
    policy = BookingPolicy(horizon_days=2, min_notice_minutes=0)
    # Two days before 10:00 on Monday: 10:00 is exactly at the horizon, 10:30 is past it.
    assert monday_free(now=at(time(10)) - timedelta(days=2), policy=policy) == [
        "09:00", "09:30", "10:00"]


# --- properties over random hours and windows ---------------------------------------------

ZONES = st.sampled_from([SANTIAGO, NEW_YORK, MEXICO_CITY, UTC_ZONE])


def quarter(index: int) -> time:
    """The `index`th quarter hour of the day (0 = 00:00, 95 = 23:45)."""
    return time(index // 4, index % 4 * 15)


@st.composite
def one_rule_per_weekday(draw: st.DrawFn) -> list[WeeklyRule]:
    rules = []
    for weekday in draw(st.sets(st.integers(0, 6), min_size=1)):
        first, last = sorted(draw(st.lists(st.integers(0, 95), min_size=2, max_size=2,
                                           unique=True)))
        breaks: dict[str, time | None] = {"break_start": None, "break_end": None}
        if draw(st.booleans()):
            pause = sorted(draw(st.lists(st.integers(first, last), min_size=2, max_size=2,
                                         unique=True)))
            breaks = {"break_start": quarter(pause[0]), "break_end": quarter(pause[1])}
        valid_from = draw(st.none() | st.dates(date(2026, 1, 1), date(2026, 12, 31)))
        rules.append(WeeklyRule(
            weekday=weekday, start=quarter(first), end=quarter(last),
            slot_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60, 90])),
            buffer_minutes=draw(st.sampled_from([0, 0, 5, 10, 15])),
            valid_from=valid_from,
            valid_until=draw(st.none() | st.dates(valid_from or date(2026, 1, 1),
                                                  date(2027, 1, 31))),
            **breaks,
        ))
    return rules


WINDOW_STARTS = st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31),  # noqa: DTZ001
                             timezones=st.just(UTC))
WINDOW_LENGTHS = st.integers(min_value=1, max_value=10 * 24 * 60).map(
    lambda m: timedelta(minutes=m))


@settings(max_examples=150, deadline=None)
@given(rules=one_rule_per_weekday(), zone=ZONES, start=WINDOW_STARTS, length=WINDOW_LENGTHS)
def test_slots_of_one_rule_per_day_lie_in_the_window_last_slot_minutes_and_never_overlap(
    rules: list[WeeklyRule], zone: ZoneInfo, start: datetime, length: timedelta
) -> None:
    window = Interval(start, start + length)
    slots = slots_of(rules, zone, window)
    by_weekday = {r.weekday: r for r in rules}
    for slot in slots:
        assert window.start <= slot.start < slot.end <= window.end
        day = slot.start.astimezone(zone).date()
        rule = by_weekday[day.weekday()]
        assert rule.applies_on(day)
        assert slot.end - slot.start == timedelta(minutes=rule.slot_minutes)
        assert local_instant(day, rule.start, zone) <= slot.start
        assert slot.end <= local_instant(day, rule.end, zone)
        if rule.break_start is not None and rule.break_end is not None:
            pause = Interval(local_instant(day, rule.break_start, zone),
                             local_instant(day, rule.break_end, zone))
            assert not pause.overlaps(Interval(slot.start, slot.end))
    for earlier, later in pairwise(slots):
        assert earlier.end <= later.start


@settings(max_examples=100, deadline=None)
@given(rules=one_rule_per_weekday(), zone=ZONES, start=WINDOW_STARTS, length=WINDOW_LENGTHS,
       blocked=st.lists(st.tuples(st.integers(0, 10 * 24 * 60), st.integers(1, 600)),
                        max_size=6),
       now_offset=st.integers(-3 * 24 * 60, 3 * 24 * 60),
       policy=st.builds(BookingPolicy, horizon_days=st.integers(1, 10),
                        min_notice_minutes=st.integers(0, 600)))
def test_free_slots_are_the_offered_ones_that_are_bookable_and_not_blocked(
    rules: list[WeeklyRule], zone: ZoneInfo, start: datetime, length: timedelta,
    blocked: list[tuple[int, int]], now_offset: int, policy: BookingPolicy,
) -> None:
    window = Interval(start, start + length)
    spans = [Interval(start + timedelta(minutes=a), start + timedelta(minutes=a + n))
             for a, n in blocked]
    now = start + timedelta(minutes=now_offset)
    free = free_slots(rules=rules, extra=[], blocked=spans, zone=zone, window=window, now=now,
                      policy=policy)
    offered = slots_of(rules, zone, window)
    earliest = now + timedelta(minutes=policy.min_notice_minutes)
    latest = now + timedelta(days=policy.horizon_days)
    assert free == [
        s for s in offered
        if earliest <= s.start <= latest
        and not any(b.overlaps(Interval(s.start, s.end)) for b in spans)
    ]


# --- the appointment state machine ---------------------------------------------------------

S = AppointmentStatus
DESK_AND_DOCTOR = {Role.ADMIN, Role.RECEPTIONIST, Role.DOCTOR}
# command: (states it may leave, state it reaches, roles that may issue it)
EXPECTED_TRANSITIONS = {
    "reschedule": ({S.PENDING, S.BOOKED}, S.BOOKED, DESK_AND_DOCTOR),
    "cancel": ({S.PENDING, S.BOOKED, S.CHECKED_IN}, S.CANCELLED, DESK_AND_DOCTOR),
    "check_in": ({S.BOOKED}, S.CHECKED_IN, {Role.ADMIN, Role.RECEPTIONIST}),
    "start": ({S.CHECKED_IN}, S.IN_PROGRESS, {Role.ADMIN, Role.DOCTOR}),
    "complete": ({S.IN_PROGRESS}, S.COMPLETED, {Role.ADMIN, Role.DOCTOR}),
    "no_show": ({S.BOOKED}, S.NO_SHOW, {Role.ADMIN, Role.RECEPTIONIST}),
}


def test_the_state_machine_has_exactly_the_expected_commands() -> None:
    assert set(TRANSITIONS) == set(EXPECTED_TRANSITIONS)


@pytest.mark.parametrize("command", sorted(EXPECTED_TRANSITIONS))
def test_check_transition_allows_and_refuses_by_state_and_role(command: str) -> None:
    sources, target, roles = EXPECTED_TRANSITIONS[command]
    words = command.replace("_", " ")
    for role in Role:
        for status in S:
            if role not in roles:
                with pytest.raises(TransitionRefused) as refused:
                    check_transition(command, current=status, role=role)
                assert refused.value.reason == "role"
                message = str(refused.value)
                assert f"({role.value}) cannot {words}" in message
                assert message.endswith(", ".join(sorted(r.value for r in roles)) + ".")
            elif status not in sources:
                with pytest.raises(TransitionRefused) as refused:
                    check_transition(command, current=status, role=role)
                assert refused.value.reason == "state"
                message = str(refused.value)
                assert message.startswith(f"This appointment is {status.value};")
                assert message.endswith(", ".join(sorted(s.value for s in sources)) + ".")
            else:
                allowed = check_transition(command, current=status, role=role)
                assert (allowed.command, allowed.target) == (command, target)


def test_a_refused_role_is_reported_before_a_refused_state() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_transition("start", current=S.COMPLETED, role=Role.RECEPTIONIST)
    assert refused.value.reason == "role"
    assert str(refused.value) == ("Your role (receptionist) cannot start an appointment; it "
                                  "needs one of: admin, doctor.")


def test_state_refusals_read_naturally() -> None:
    with pytest.raises(TransitionRefused) as refused:
        check_transition("no_show", current=S.CANCELLED, role=Role.RECEPTIONIST)
    assert str(refused.value) == ("This appointment is cancelled; it can be marked as a "
                                  "no-show only when it is booked.")


_BASE = datetime(2026, 6, 1, 12, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7 * 24 * 4), st.integers(1, 16)), max_size=40))
def test_blocked_time_removes_exactly_the_slots_it_overlaps(
    blocks: list[tuple[int, int]],
) -> None:
    zone = ZoneInfo("America/Santiago")
    window = Interval(_BASE, _BASE + timedelta(days=7))
    rules = [WeeklyRule(weekday=d, start=time(8), end=time(20), slot_minutes=30)
             for d in range(7)]
    blocked = [Interval(_BASE + timedelta(minutes=15 * q), _BASE + timedelta(minutes=15 * (q + n)))
               for q, n in blocks]
    policy = BookingPolicy(min_notice_minutes=0, horizon_days=30)
    got = free_slots(rules=rules, extra=[], blocked=blocked, zone=zone, window=window,
                     now=_BASE, policy=policy)
    expected = [
        s for s in candidate_slots(rules=rules, extra=[], zone=zone, window=window)
        if s.start >= _BASE and not any(b.overlaps(Interval(s.start, s.end)) for b in blocked)
    ]
    assert got == expected
