"""Desktop computers for end-to-end tests: a real SQLCipher store, its own hybrid clock
and a SyncClient talking to the live server; and a front-desk store enrolled and signed
in the way the app does it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from desktop.server_link import ServerLink
from desktop.session import Session, sign_in_online
from desktop.store.database import open_store
from desktop.store.local import attention, outbox
from desktop.sync.client import SyncClient
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.tables import appointment, patient
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import setup_io
from tests.factories import PASSWORD, ClinicData, Factory


class Computer:
    """One computer: its store, clock and sync client (page size 4, fast retries)."""

    def __init__(self, path: Path, name: str, live: LiveServer, token: str) -> None:
        self.engine: Engine = open_store(path, os.urandom(32))
        self.clock = HybridClock(name)
        self.http = httpx.Client(base_url=live.url, timeout=30)
        self.sync = SyncClient(self.engine, self.http, token=lambda: token, page=4,
                               backoff_s=0.01)

    def patient(self, patient_id: uuid.UUID) -> dict[str, object]:
        with self.engine.connect() as conn:
            row = conn.execute(select(patient).where(patient.c.id == patient_id)).one()
        return dict(row._mapping)

    def appointment(self, appointment_id: uuid.UUID) -> dict[str, object]:
        with self.engine.connect() as conn:
            row = conn.execute(select(appointment).where(appointment.c.id == appointment_id)
                               ).one()
        return dict(row._mapping)

    def attention(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(attention))]

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(outbox.c.seq)).all())

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def enrolled_desk(http: httpx.Client, factory: Factory, clinic: ClinicData, store: Path,
                  *, role: Role = Role.RECEPTIONIST) -> tuple[Engine, Session, ServerLink]:
    """A computer an admin enrolled, with a new encrypted store at `store`, signed in
    online as the clinic's `role` user."""
    user = clinic.users[role]
    with setup_io():
        code = http.post("/api/v1/devices", headers=factory.headers(clinic.users[Role.ADMIN]),
                         json={"name": "Recepción"}).json()["code"]
        creds = http.post("/api/v1/devices/enrol", json={"code": code}).json()
        engine = open_store(store, os.urandom(32))
        session = sign_in_online(engine, http, email=user.email, password=PASSWORD,
                                 device_id=creds["device_id"],
                                 device_secret=creds["device_secret"])
    link = ServerLink(engine, http, device_id=uuid.UUID(creds["device_id"]),
                      device_secret=creds["device_secret"], session=session)
    return engine, session, link
