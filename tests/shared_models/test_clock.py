from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared_models.clock import ClockDriftError, Hlc, HybridClock


class FakeWall:
    """A wall clock the test sets by hand (it may jump backwards, as real ones do)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_stamps_follow_the_wall_clock_when_it_moves_forward() -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = HybridClock("dev1", wall_ms=wall)
    first = clock.now()
    wall.ms += 5
    assert clock.now() == Hlc(1_700_000_000_005, 0, "dev1")
    assert first == Hlc(1_700_000_000_000, 0, "dev1")


def test_stamps_keep_rising_when_the_wall_clock_goes_backwards() -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = HybridClock("dev1", wall_ms=wall)
    first = clock.now()
    wall.ms -= 60_000  # NTP correction
    second = clock.now()
    assert second > first
    assert second == Hlc(first.wall_ms, first.counter + 1, "dev1")


def test_observing_a_remote_stamp_moves_past_it() -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = HybridClock("dev1", wall_ms=wall)
    remote = Hlc(1_700_000_000_900, 7, "server")
    seen = clock.observe(remote)
    assert seen > remote
    assert clock.now() > seen


def test_a_remote_stamp_far_in_the_future_is_refused_clearly() -> None:
    clock = HybridClock("dev1", wall_ms=FakeWall(1_700_000_000_000))
    with pytest.raises(ClockDriftError, match="check the date and time"):
        clock.observe(Hlc(1_700_000_000_000 + 2 * 3_600_000, 0, "server"))


def test_packed_stamps_round_trip_and_sort_like_the_clock() -> None:
    stamps = [Hlc(1_700_000_000_000, 2, "b"), Hlc(1_700_000_000_000, 10, "a"),
              Hlc(1_600_000_000_000, 999_999, "z")]
    for stamp in stamps:
        assert Hlc.parse(stamp.pack()) == stamp
    assert sorted(s.pack() for s in stamps) == [s.pack() for s in sorted(stamps)]


@pytest.mark.parametrize("bad", ["", "17-1-x", "1700000000000-000001-UPPER",
                                 "1700000000000-1-node"])
def test_malformed_stamps_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="hybrid logical clock"):
        Hlc.parse(bad)


def test_a_node_name_must_fit_the_packed_form() -> None:
    with pytest.raises(ValueError, match="lower-case letters or digits"):
        HybridClock("Front Desk")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(-5_000, 5_000), st.booleans(),
                          st.integers(-5_000, 5_000), st.integers(0, 50)), max_size=60))
def test_stamps_are_strictly_increasing_whatever_the_wall_clock_and_messages_do(
    events: list[tuple[int, bool, int, int]],
) -> None:
    wall = FakeWall(1_700_000_000_000)
    clock = HybridClock("dev1", wall_ms=wall)
    last = clock.now()
    for jump, receive, remote_offset, remote_counter in events:
        wall.ms += jump
        if receive:
            remote = Hlc(wall.ms + remote_offset, remote_counter, "server")
            stamp = clock.observe(remote)
            assert stamp > remote
        else:
            stamp = clock.now()
        assert stamp > last
        assert stamp.pack() > last.pack()
        last = stamp
