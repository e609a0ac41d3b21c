"""Hybrid logical clocks (Kulkarni et al.): timestamps that follow wall time but never go
backwards and order every edit made on any device.

A timestamp packs to a string that sorts like the clock itself,
`<13-digit unix ms>-<6-digit counter>-<node>`, so both databases can compare them as text.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# A remote clock further ahead than this is refused rather than dragging ours along.
MAX_DRIFT_MS = 60 * 60 * 1000
_COUNTER_LIMIT = 999_999
_PACKED = re.compile(r"^(\d{13})-(\d{6})-([0-9a-z]{1,32})$")


class ClockDriftError(Exception):
    """A remote timestamp lies too far in the future: one of the clocks is wrong."""


@dataclass(frozen=True, order=True, slots=True)
class Hlc:
    wall_ms: int
    counter: int
    node: str

    def pack(self) -> str:
        return f"{self.wall_ms:013d}-{self.counter:06d}-{self.node}"

    @classmethod
    def parse(cls, packed: str) -> Hlc:
        match = _PACKED.match(packed)
        if match is None:
            raise ValueError(f"not a hybrid logical clock timestamp: {packed!r}")
        return cls(int(match[1]), int(match[2]), match[3])


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class HybridClock:
    """One node's clock. `now()` stamps a local edit; `observe()` merges a received stamp."""

    def __init__(self, node: str, *, wall_ms: Callable[[], int] = _wall_ms,
                 max_drift_ms: int = MAX_DRIFT_MS) -> None:
        if not re.fullmatch(r"[0-9a-z]{1,32}", node):
            raise ValueError("a clock node is 1-32 lower-case letters or digits")
        self.node = node
        self._wall_ms = wall_ms
        self._max_drift_ms = max_drift_ms
        self._last = Hlc(0, 0, node)
        self._lock = threading.Lock()

    def _advance(self, wall: int, counter_from: int) -> Hlc:
        if counter_from >= _COUNTER_LIMIT:
            # More than a million stamps in one millisecond: borrow the next one.
            return Hlc(wall + 1, 0, self.node)
        return Hlc(wall, counter_from + 1, self.node)

    def now(self) -> Hlc:
        with self._lock:
            wall = self._wall_ms()
            if wall > self._last.wall_ms:
                self._last = Hlc(wall, 0, self.node)
            else:
                self._last = self._advance(self._last.wall_ms, self._last.counter)
            return self._last

    def observe(self, remote: Hlc) -> Hlc:
        """Move past `remote` (and past our own last stamp) and return the new stamp."""
        with self._lock:
            wall = self._wall_ms()
            if remote.wall_ms - wall > self._max_drift_ms:
                raise ClockDriftError(
                    f"a timestamp from {remote.node} is {(remote.wall_ms - wall) // 1000} s "
                    "ahead of this clock; check the date and time on both machines")
            top = max(wall, self._last.wall_ms, remote.wall_ms)
            if top == self._last.wall_ms == remote.wall_ms:
                counter = max(self._last.counter, remote.counter)
            elif top == self._last.wall_ms:
                counter = self._last.counter
            elif top == remote.wall_ms:
                counter = remote.counter
            else:
                self._last = Hlc(top, 0, self.node)
                return self._last
            self._last = self._advance(top, counter)
            return self._last
