"""Dropped database connections, an unreachable database and concurrent registrations."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import URL

from shared_models.enums import Role
from sync_server.core.config import APP_DB_ROLE, Settings
from sync_server.main import create_app
from tests.conftest import libpq, make_client
from tests.factories import Factory, expect_error


def _terminate_app_connections(owner_url: URL) -> int:
    with psycopg.connect(libpq(owner_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE usename = %s AND datname = current_database()",
            (APP_DB_ROLE,),
        ).fetchall()
    return len(rows)


async def test_requests_succeed_after_the_database_drops_every_pooled_connection(
    client: httpx.AsyncClient, factory: Factory, db_urls: tuple[URL, URL]
) -> None:
    clinic = factory.clinic(patients=3)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    warm = await asyncio.gather(*(client.get("/api/v1/patients", headers=headers)
                                  for _ in range(5)))
    assert all(r.status_code == 200 for r in warm)

    assert _terminate_app_connections(db_urls[0]) >= 1

    after = await asyncio.gather(*(client.get("/api/v1/patients", headers=headers)
                                   for _ in range(5)))
    assert [r.status_code for r in after] == [200] * 5
    assert all(len(r.json()["data"]) == 3 for r in after)


async def test_unreachable_database_answers_503_with_a_clear_message(
    settings: Settings, factory: Factory
) -> None:
    nowhere = URL.create("postgresql+psycopg", username=APP_DB_ROLE, host="127.0.0.1",
                         port=1, database="consulta")
    app: FastAPI = create_app(settings.model_copy(update={"db_pool_size": 1}), nowhere)
    clinic = factory.clinic(patients=0)
    async with app.router.lifespan_context(app), make_client(app) as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        response = await http.get("/api/v1/providers",
                                  headers=factory.headers(clinic.users[Role.ADMIN]))
        error = expect_error(response, 503, "database_unavailable")
        assert "try again" in error["message"].lower()


@pytest.mark.parametrize("concurrency", [20])
async def test_concurrent_registrations_get_distinct_record_numbers(
    client: httpx.AsyncClient, factory: Factory, concurrency: int
) -> None:
    clinic = factory.clinic(patients=0)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    responses = await asyncio.gather(*(
        client.post("/api/v1/patients", headers=headers,
                    json={"given_name": f"Paciente{i}", "family_name": "Concurrente"})
        for i in range(concurrency)
    ))
    assert [r.status_code for r in responses] == [201] * concurrency
    mrns = sorted(r.json()["mrn"] for r in responses)
    assert mrns == [f"P-{n:06d}" for n in range(1, concurrency + 1)]
