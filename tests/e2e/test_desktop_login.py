"""Signing in on an enrolled computer online, then offline against the cached verifier."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from desktop.session import OfflineLoginError, sign_in_offline, sign_in_online
from desktop.store.database import open_store
from desktop.store.local import login_cache
from desktop.sync.errors import SyncAuthError
from shared_models.enums import Role
from tests.conftest import LiveServer
from tests.factories import PASSWORD, Factory


def test_staff_sign_in_online_once_then_offline_with_the_same_password(
    tmp_path: Path, live_server: LiveServer, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    admin = factory.headers(clinic.users[Role.ADMIN])
    user = clinic.users[Role.RECEPTIONIST]
    engine = open_store(tmp_path / "local.db", os.urandom(32))
    with httpx.Client(base_url=live_server.url, timeout=20) as http:
        code = http.post("/api/v1/devices", headers=admin, json={"name": "Recepción"}).json()
        creds = http.post("/api/v1/devices/enrol", json={"code": code["code"]}).json()
        with pytest.raises(OfflineLoginError, match="has not signed in on this computer"):
            sign_in_offline(engine, email=user.email, password=PASSWORD)
        with pytest.raises(SyncAuthError, match="wrong"):
            sign_in_online(engine, http, email=user.email, password="wrong password!",
                           device_id=creds["device_id"], device_secret=creds["device_secret"])
        online = sign_in_online(engine, http, email=user.email, password=PASSWORD,
                                device_id=creds["device_id"],
                                device_secret=creds["device_secret"])
    assert online.online
    assert online.role == "receptionist"

    offline = sign_in_offline(engine, email=user.email.upper(), password=PASSWORD)
    assert (offline.user_id, offline.clinic_id, offline.online) == (user.id, clinic.id, False)
    with pytest.raises(OfflineLoginError, match="wrong"):
        sign_in_offline(engine, email=user.email, password="not the password")
    with pytest.raises(OfflineLoginError, match="over 14 days"):
        sign_in_offline(engine, email=user.email, password=PASSWORD,
                        now=datetime.now(UTC) + timedelta(days=15))
    with engine.connect() as conn:
        verifier = conn.execute(select(login_cache.c.verifier)).scalar_one()
    assert verifier.startswith("$argon2id$")
    assert PASSWORD not in verifier
    engine.dispose()
