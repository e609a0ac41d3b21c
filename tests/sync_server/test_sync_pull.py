"""GET /api/v1/sync/pull: exact paging, incremental pulls, role filtering, and no row
skipped when transactions commit out of version order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.tables import patient
from tests.conftest import libpq
from tests.factories import ClinicData, Factory, expect_error

PULL = "/api/v1/sync/pull"


async def pull_all(client: httpx.AsyncClient, headers: dict[str, str], since: str | None,
                   *, limit: int = 500) -> tuple[list[dict[str, Any]], str]:
    changes: list[dict[str, Any]] = []
    cursor = since
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["since"] = cursor
        response = await client.get(PULL, headers=headers, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["changes"]) <= limit
        changes.extend(body["changes"])
        cursor = body["next_cursor"]
        if not body["has_more"]:
            return changes, cursor


def _clinic(factory: Factory) -> ClinicData:
    clinic = factory.clinic(patients=7, providers=2)
    factory.weekly_hours(clinic, clinic.provider_ids[0], weekdays=(0, 2))
    factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[0],
                        starts_at=datetime.now(UTC) + timedelta(days=2))
    return clinic


async def test_a_full_pull_in_small_pages_delivers_every_record_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = _clinic(factory)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    changes, _cursor = await pull_all(client, headers, None, limit=3)
    ids = [c["id"] for c in changes]
    assert len(ids) == len(set(ids))
    by_entity: dict[str, int] = {}
    for change in changes:
        by_entity[change["entity"]] = by_entity.get(change["entity"], 0) + 1
    assert by_entity == {"patient": 7, "provider": 2, "availability_rule": 2, "appointment": 1}
    versions = [c["server_version"] for c in changes]
    assert all(v > 0 for v in versions)
    patient_record = next(c["record"] for c in changes if c["entity"] == "patient")
    assert "search_text" not in patient_record
    assert "version_xid" not in patient_record


async def test_the_next_pull_brings_only_what_changed_including_tombstones(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = _clinic(factory)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    _changes, cursor = await pull_all(client, headers, None)
    nothing, same = await pull_all(client, headers, cursor)
    assert nothing == []

    renamed = await client.patch(f"/api/v1/patients/{clinic.patient_ids[1]}", headers=headers,
                                 json={"given_name": "Renombrada"})
    assert renamed.status_code == 200
    factory.tombstone(patient, clinic, clinic.patient_ids[2])
    changes, _next = await pull_all(client, headers, same)
    assert [(c["id"], c["deleted"]) for c in changes] == [
        (str(clinic.patient_ids[1]), False), (str(clinic.patient_ids[2]), True)]
    assert changes[0]["record"]["given_name"] == "Renombrada"
    assert set(changes[1]["record"]) == {"id", "deleted_at"}


async def test_a_version_committed_after_a_later_one_is_not_skipped(
    client: httpx.AsyncClient, factory: Factory, db_urls: tuple[URL, URL]
) -> None:
    clinic = _clinic(factory)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    _changes, cursor = await pull_all(client, headers, None)

    slow = psycopg.connect(libpq(db_urls[1]))
    try:
        # A slow transaction draws its version first and commits last.
        slow.execute("SELECT set_config('app.clinic_id', %s, true)", (str(clinic.id),))
        slow.execute("UPDATE patient SET given_name = 'Lenta' WHERE id = %s",
                     (clinic.patient_ids[3],))
        fast = await client.patch(f"/api/v1/patients/{clinic.patient_ids[4]}", headers=headers,
                                  json={"given_name": "Rapida"})
        assert fast.status_code == 200
        seen, cursor = await pull_all(client, headers, cursor)
        assert str(clinic.patient_ids[3]) not in [c["id"] for c in seen]
        slow.commit()
    finally:
        slow.close()
    later, _cursor = await pull_all(client, headers, cursor)
    slow_change = [c for c in later if c["id"] == str(clinic.patient_ids[3])]
    assert len(slow_change) == 1
    assert slow_change[0]["record"]["given_name"] == "Lenta"
    fast_versions = [c["server_version"] for c in [*seen, *later]
                     if c["id"] == str(clinic.patient_ids[4])]
    assert fast_versions
    assert slow_change[0]["server_version"] < max(fast_versions)


async def test_roles_pull_only_what_they_need(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = _clinic(factory)
    lab, _ = await pull_all(client, factory.headers(clinic.users[Role.LAB_TECH]), None)
    assert {c["entity"] for c in lab} == {"provider"}
    desk, _ = await pull_all(client, factory.headers(clinic.users[Role.RECEPTIONIST]), None)
    assert {"patient", "appointment"} <= {c["entity"] for c in desk}


async def test_pulls_are_audited_with_counts_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = _clinic(factory)
    await pull_all(client, factory.headers(clinic.users[Role.RECEPTIONIST]), None)
    [event] = factory.audit_events(clinic, action="sync.pull")
    assert event.detail["counts"]["patient"] == 7
    assert event.actor_user_id == clinic.users[Role.RECEPTIONIST].id


async def test_a_cursor_the_server_did_not_issue_is_refused_clearly(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    for bad in ("abc", "1.2", "1.2.3.x"):
        error = expect_error(await client.get(PULL, headers=headers, params={"since": bad}),
                             422, "invalid_cursor")
        assert "leaving `since` empty" in error["message"]
    expect_error(await client.get(PULL, headers=headers, params={"limit": 0}),
                 422, "invalid_input")
