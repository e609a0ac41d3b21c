"""Request logging without patient data: method, path, status and duration.

Query strings (a name typed into search) never reach the log; paths hold only opaque ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

log = logging.getLogger("consulta.access")


def install_access_log(app: FastAPI) -> None:
    @app.middleware("http")
    async def access_log(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        log.info(
            "%s %s %d %.1fms", request.method, request.url.path, response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response
