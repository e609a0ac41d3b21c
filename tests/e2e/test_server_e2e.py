"""End to end over real HTTP: the README's demo command as a user runs it, and the API on
a real uvicorn server over the real database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared_models.enums import Role
from tests.conftest import LiveServer
from tests.factories import PASSWORD, Factory

SEARCHED_NAME = "zuleyma"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], Path]]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(CONSULTA_DATA_DIR=str(tmp_path / "data"), CONSULTA_PORT=str(port))
    log_path = tmp_path / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sync_server.cli", "demo"], env=env, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"demo server did not start:\n{log_path.read_text()}")
            time.sleep(0.25)
        try:
            yield url, proc, log_path
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)


def test_demo_command_serves_the_seeded_clinic_to_a_receptionist(
    demo_server: tuple[str, subprocess.Popen[str], Path],
) -> None:
    url, proc, log_path = demo_server
    with httpx.Client(base_url=url, timeout=10) as http:
        token = http.post("/api/v1/auth/token", data={
            "username": "receptionist1@demo.consulta.local", "password": "consulta-demo"})
        assert token.status_code == 200, token.text
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}

        providers = http.get("/api/v1/providers", headers=auth).json()["data"]
        assert len(providers) == 3
        everyone = http.get("/api/v1/patients", headers=auth, params={"limit": 100})
        assert everyone.json()["has_more"] is True

        created = http.post("/api/v1/patients", headers=auth, json={
            "given_name": "Zuleyma", "family_name": "Quiñónez", "phone": "55 1234 5678"})
        assert created.status_code == 201, created.text
        assert created.json()["phone"] == "+525512345678"  # the demo clinic is in Mexico
        found = http.get("/api/v1/patients", headers=auth, params={"q": SEARCHED_NAME})
        assert [p["id"] for p in found.json()["data"]] == [created.json()["id"]]

    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    log = log_path.read_text().lower()
    assert "get /api/v1/patients 200" in log
    # Names typed into search or registered never reach the log.
    assert SEARCHED_NAME not in log
    assert "quiñónez" not in log


def test_api_over_real_http_signs_in_refreshes_and_registers(
    live_server: LiveServer, factory: Factory
) -> None:
    clinic = factory.clinic(patients=5)
    user = clinic.users[Role.RECEPTIONIST]
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        pair = http.post("/api/v1/auth/token", data={"username": user.email,
                                                      "password": PASSWORD}).json()
        rotated = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert rotated.status_code == 200
        auth = {"Authorization": f"Bearer {rotated.json()['access_token']}"}

        created = http.post("/api/v1/patients", headers=auth, json={
            "given_name": "Tomás", "family_name": "Ibáñez", "date_of_birth": "1985-06-01"})
        assert created.status_code == 201
        patient_id = created.json()["id"]
        changed = http.patch(f"/api/v1/patients/{patient_id}", headers=auth, json={
            "phone": "+56 9 6123 4567", "expected_version": created.json()["server_version"]})
        assert changed.status_code == 200
        assert changed.json()["server_version"] > created.json()["server_version"]
        read = http.get(f"/api/v1/patients/{patient_id}", headers=auth)
        assert read.json()["phone"] == "+56961234567"

        replay = http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
        assert replay.status_code == 401
        assert replay.json()["error"]["code"] == "refresh_reused"
