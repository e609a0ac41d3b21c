"""A moment's memory of the booking page's public listings (providers, days, times), so a
crowd opening the same page costs one computation per moment rather than one each.

Per server process, for `booking_page_cache_seconds`. Requests that arrive while a page
is being computed wait for that one computation instead of starting their own. A
booking, cancel or reschedule made through this process forgets its clinic's pages at
once; a change made elsewhere shows here within that many seconds. Nothing is booked from
what is remembered: every booking is checked against the database, and a time that went
meanwhile is answered with the free times as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# Past this many pages, expired ones are dropped (and all, if none has expired): memory
# stays bounded whatever links are requested.
MAX_PAGES = 2_000

Key = tuple[str, ...]


class PageCache:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._pages: dict[Key, tuple[float, str]] = {}
        self._pending: dict[Key, asyncio.Future[str]] = {}

    async def get(self, key: Key, seconds: float, render: Callable[[], Awaitable[str]]
                  ) -> str:
        """The page under `key` rendered at most `seconds` ago, else rendered now."""
        if seconds <= 0:
            return await render()
        now = self._clock()
        kept = self._pages.get(key)
        if kept is not None and kept[0] > now:
            return kept[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            body = await render()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._pending[key]
        future.set_result(body)
        self._pages[key] = (now + seconds, body)
        if len(self._pages) > MAX_PAGES:
            self._prune(now)
        return body

    def forget(self, clinic_slug: str) -> None:
        """Drop a clinic's pages (the first part of every key is its slug)."""
        for key in [k for k in self._pages if k[0] == clinic_slug]:
            del self._pages[key]

    def _prune(self, now: float) -> None:
        for key in [k for k, (until, _) in self._pages.items() if until <= now]:
            del self._pages[key]
        if len(self._pages) > MAX_PAGES:
            self._pages.clear()
