"""The booking page's short memory of rendered listings: one computation for a crowd,
nothing kept past its seconds, errors not kept, and a clinic forgotten after a change."""

from __future__ import annotations

import asyncio

import pytest

from sync_server.web.cache import MAX_PAGES, PageCache


class Renderer:
    def __init__(self, body: str = "<html>") -> None:
        self.calls = 0
        self.body = body

    async def __call__(self) -> str:
        self.calls += 1
        await asyncio.sleep(0.01)
        return f"{self.body}{self.calls}"


async def test_a_crowd_asking_at_once_costs_one_computation() -> None:
    cache, render = PageCache(), Renderer()
    bodies = await asyncio.gather(*(cache.get(("c", "times"), 2, render) for _ in range(50)))
    assert render.calls == 1
    assert set(bodies) == {"<html>1"}


async def test_a_page_is_reused_only_for_its_seconds() -> None:
    now = [100.0]
    cache, render = PageCache(clock=lambda: now[0]), Renderer()
    assert await cache.get(("c", "days"), 2, render) == "<html>1"
    now[0] += 1.5
    assert await cache.get(("c", "days"), 2, render) == "<html>1"
    now[0] += 1
    assert await cache.get(("c", "days"), 2, render) == "<html>2"
    assert await cache.get(("c", "days"), 0, render) == "<html>3"  # 0: never kept


async def test_errors_reach_every_waiter_and_are_not_kept() -> None:
    cache = PageCache()
    calls = 0

    async def failing() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise LookupError("no such clinic")

    results = await asyncio.gather(*(cache.get(("x", "p"), 2, failing) for _ in range(3)),
                                   return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert calls == 1
    with pytest.raises(LookupError):
        await cache.get(("x", "p"), 2, failing)
    assert calls == 2


async def test_forgetting_a_clinic_drops_its_pages_only() -> None:
    cache, mine, theirs = PageCache(), Renderer("a"), Renderer("b")
    await cache.get(("clinic-a", "times", "p1"), 60, mine)
    await cache.get(("clinic-b", "times", "p1"), 60, theirs)
    cache.forget("clinic-a")
    assert await cache.get(("clinic-a", "times", "p1"), 60, mine) == "a2"
    assert await cache.get(("clinic-b", "times", "p1"), 60, theirs) == "b1"


async def test_memory_stays_bounded_whatever_is_asked() -> None:
    cache = PageCache()

    async def page() -> str:
        return "x"

    for n in range(MAX_PAGES + 10):
        await cache.get(("c", str(n)), 60, page)
    assert len(cache._pages) <= MAX_PAGES
