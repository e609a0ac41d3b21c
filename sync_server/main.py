"""The ASGI application: routers under /api/v1, error handlers, the connection pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import URL

from sync_server.api.access_log import AccessLog
from sync_server.api.errors import install_error_handlers
from sync_server.api.routes import (
    appointments,
    auth,
    availability,
    chart,
    clinics,
    devices,
    health,
    lab_orders,
    patients,
    payments,
    pharmacies,
    prescriptions,
    providers,
    public,
    public_booking,
    reminders,
    reports,
    signing_keys,
    slots,
    sync,
)
from sync_server.core.config import Settings, get_settings
from sync_server.db.engine import create_app_engine
from sync_server.db.urls import as_psycopg
from sync_server.reminders.runner import ReminderRunner
from sync_server.web import pages

API_PREFIX = "/api/v1"


def create_app(settings: Settings, app_db_url: URL) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = create_app_engine(app_db_url, pool_size=settings.db_pool_size)
        runner = ReminderRunner(app_db_url, settings) if settings.reminders_dispatch else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await asyncio.to_thread(runner.stop)
            await app.state.engine.dispose()

    app = FastAPI(
        title="Consulta sync server",
        version="0.1.0",
        lifespan=lifespan,
        description="Clinic scheduling, records and sync. Errors share one JSON shape: "
        '`{"error": {"code", "message", "details"}}`.',
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(AccessLog)
    api = APIRouter(prefix=API_PREFIX)
    for module in (auth, providers, patients, appointments, availability, slots, reports,
                   public, public_booking, sync, devices, clinics, payments, reminders,
                   signing_keys, pharmacies, prescriptions, lab_orders, chart):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    return app


def create_worker_app() -> FastAPI:
    """The app of one of several server processes (`CONSULTA_WORKERS` > 1).

    uvicorn starts each worker as a fresh interpreter that calls this. The parent
    `consulta-server serve` has already provisioned and migrated the database, once, and
    put the app role's URL in CONSULTA_APP_DATABASE_URL, so a worker only connects.
    """
    settings = get_settings()
    if settings.app_database_url is None:
        raise RuntimeError(
            "CONSULTA_APP_DATABASE_URL is not set: start the server processes with "
            "`consulta-server serve --workers N`, which migrates the database and sets it"
        )
    return create_app(settings, as_psycopg(settings.app_database_url))
