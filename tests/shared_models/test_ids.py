from __future__ import annotations

import threading
import time

import pytest

from shared_models import ids
from shared_models.ids import uuid7


def test_uuid7_has_version_7_and_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == "specified in RFC 4122"


def test_uuid7_embeds_the_current_unix_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    # Ids never go back in time: after a test that moved the clock forward, this process
    # keeps issuing ids from that later time. Start from a generator that has not.
    monkeypatch.setattr(ids, "_last_ms", 0)
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after + 1


def test_uuid7_made_in_a_tight_loop_sort_in_creation_order() -> None:
    ids = [uuid7() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_uuid7_from_many_threads_are_unique() -> None:
    seen: list[list[object]] = []

    def make() -> None:
        seen.append([uuid7() for _ in range(5_000)])

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [i for chunk in seen for i in chunk]
    assert len(set(flat)) == 20_000
