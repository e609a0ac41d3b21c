"""Fixtures over real parts: a real PostgreSQL (the embedded server, or DATABASE_URL), the
real migrations, the ASGI app in-process, and a real uvicorn server for end-to-end tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from sync_server.core.config import Settings
from sync_server.db import bootstrap
from sync_server.db.embedded import embedded_url, start_embedded
from sync_server.db.migrate import upgrade
from sync_server.db.urls import app_role_url, as_psycopg
from sync_server.main import create_app
from tests.factories import Factory
from tests.fakes.smtp import SmtpServer
from tests.fakes.text_provider import TextProvider
from tests.reminder_queue import cancel_pending

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[URL]:
    """A maintenance URL on a real PostgreSQL: DATABASE_URL if set, else the embedded one."""
    if os.environ.get("DATABASE_URL"):
        yield as_psycopg(os.environ["DATABASE_URL"])
        return
    server = start_embedded(tmp_path_factory.mktemp("pg"))
    yield embedded_url(server, "postgres")
    server.cleanup()


@pytest.fixture(scope="session")
def db_urls(pg_cluster: URL) -> tuple[URL, URL]:
    """A fresh, migrated database for this test session: (owner URL, app-role URL)."""
    name = f"consulta_test_{uuid.uuid4().hex[:8]}"
    owner = pg_cluster.set(database=name)
    bootstrap.ensure_database(owner)
    bootstrap.ensure_app_role(owner, password=os.environ.get("CONSULTA_APP_DB_PASSWORD"))
    upgrade(owner)
    app = app_role_url(owner, os.environ.get("CONSULTA_APP_DB_PASSWORD"))
    return owner, app


@pytest.fixture(scope="session")
def owner_engine(db_urls: tuple[URL, URL]) -> Iterator[Engine]:
    engine = create_engine(db_urls[0])
    yield engine
    engine.dispose()


def libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def app_conn(db_urls: tuple[URL, URL]) -> Iterator[psycopg.Connection]:
    """A raw connection as the app role, for checks below the HTTP layer."""
    with psycopg.connect(libpq(db_urls[1])) as conn:
        yield conn


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path_factory.mktemp("data"),
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
        login_delay_base_seconds=0.01,
        login_delay_cap_seconds=0.05,
        # Tests that compare response times set their own floor (test_public_booking.py).
        booking_min_response_seconds=0.0,
        db_pool_size=10,
        # Reminder tests run the dispatcher themselves (tests/sync_server/reminders).
        reminders_dispatch=False,
    )


@pytest.fixture(scope="session")
def factory(owner_engine: Engine, settings: Settings) -> Factory:
    return Factory(owner_engine, settings)


@pytest.fixture(scope="session")
async def app(settings: Settings, db_urls: tuple[URL, URL]) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db_urls[1])
    async with application.router.lifespan_context(application):
        yield application


def make_client(app: FastAPI, *, client_addr: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(client_addr, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn serving the app on a loopback port in a background thread."""

    def __init__(self, app: FastAPI, *, port: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(settings: Settings, db_urls: tuple[URL, URL]) -> Iterator[LiveServer]:
    server = LiveServer(create_app(settings, db_urls[1]))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def empty_reminder_queue(owner_engine: Engine) -> None:
    """Nothing due when the test starts: the reminder queue is shared by every clinic, and
    a dispatcher claims from all of them."""
    cancel_pending(owner_engine)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback that keeps what it accepts."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def provider() -> Iterator[TextProvider]:
    """A Twilio-style SMS/WhatsApp provider on loopback."""
    with TextProvider() as fake:
        yield fake


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


__all__ = ["LiveServer", "asyncio", "libpq", "make_client", "make_url"]
