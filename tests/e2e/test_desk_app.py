"""`consulta-desk` from a new computer against a real server: enrol with a one-time code,
unlock the store (a passphrase where there is no keyring), sign in, use the workspaces
of the role, lock the screen (the store closes) and sign in again. Offscreen Qt, with
the GUI-thread guard on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import keyring
import pytest
from keyring.backends.fail import Keyring as NoKeyring
from pytestqt.qtbot import QtBot
from sqlalchemy.engine import URL

from desktop.config import MachinePreset
from desktop.operations.appointments import book_offline
from desktop.ui.app import DeskApp, FirstRunDialog, PassphraseDialog
from desktop.ui.login import LoginDialog
from desktop.ui.main_window import MainWindow
from desktop.ui.qt import QLabel
from shared_models.enums import Role
from sync_server.core.config import Settings
from sync_server.main import create_app
from tests.conftest import LiveServer
from tests.desktop.test_keys import MemoryKeyring
from tests.desktop.ui.conftest import gui_thread_guard, on_db_worker, setup_io
from tests.factories import PASSWORD, ClinicData, Factory

__all__ = ["gui_thread_guard"]


@pytest.fixture
def clinic_and_code(live_server: LiveServer, factory: Factory) -> tuple[ClinicData, str]:
    clinic = factory.clinic(patients=2, providers=1, timezone="America/Mexico_City")
    with httpx.Client(base_url=live_server.url) as http, setup_io():
        code = http.post("/api/v1/devices", headers=factory.headers(clinic.users[Role.ADMIN]),
                         json={"name": "Recepción 1"}).json()["code"]
    return clinic, code


@pytest.fixture
def memory_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield
    keyring.set_keyring(previous)


def _dialog(app: DeskApp, kind: type) -> object:
    return app.dialog if isinstance(app.dialog, kind) else None


def _sign_in(qtbot: QtBot, app: DeskApp, email: str, password: str) -> LoginDialog:
    qtbot.waitUntil(lambda: _dialog(app, LoginDialog) is not None, timeout=20_000)
    login = app.dialog
    assert isinstance(login, LoginDialog)
    login.email.setText(email)
    login.password.setText(password)
    login.attempt()
    return login


def test_a_new_computer_enrols_signs_in_locks_and_unlocks(
    qtbot: QtBot, tmp_path: Path, live_server: LiveServer,
    clinic_and_code: tuple[ClinicData, str], memory_keyring: None
) -> None:
    clinic, code = clinic_and_code
    user = clinic.users[Role.RECEPTIONIST]
    app = DeskApp(folder=tmp_path / "desk", preset=MachinePreset(live_server.url, None))
    app.start()
    qtbot.waitUntil(lambda: _dialog(app, FirstRunDialog) is not None, timeout=10_000)
    first = app.dialog
    assert isinstance(first, FirstRunDialog)
    assert first.url.text() == live_server.url  # pre-set by IT
    first.code.setText("WRONG-CODE")
    first.attempt()
    qtbot.waitUntil(lambda: first.error.isVisibleTo(first), timeout=10_000)
    assert first.error.text()
    first.code.setText(code)
    first.attempt()

    login = _sign_in(qtbot, app, user.email, "not the password")
    qtbot.waitUntil(lambda: login.error.isVisibleTo(login), timeout=20_000)
    login.password.setText(PASSWORD)
    login.attempt()
    qtbot.waitUntil(lambda: app.window is not None and app.window.isVisible(), timeout=20_000)
    window = app.window
    assert isinstance(window, MainWindow)
    assert set(window.workspaces) == {"calendar", "patients", "attention"}
    # The clinic's settings were fetched at sign-in and are kept for offline use.
    assert str(window.desk.clinic.timezone) == "America/Mexico_City"
    assert (tmp_path / "desk" / "device.json").exists()
    assert "secret" not in (tmp_path / "desk" / "device.json").read_text()

    window.lock_requested.emit()
    qtbot.waitUntil(lambda: _dialog(app, LoginDialog) is not None
                    and app.dialog is not login, timeout=20_000)
    assert not window.isVisible()
    assert app.unlocked is not None  # the store was closed and opened again for sign-in
    locked = app.dialog
    assert isinstance(locked, LoginDialog)
    assert locked.email.text() == user.email
    locked.password.setText(PASSWORD)
    locked.attempt()
    qtbot.waitUntil(lambda: app.window is not None and app.window is not window
                    and app.window.isVisible(), timeout=20_000)
    app.window.shut()
    app.tasks.wait()


def test_a_computer_without_a_keyring_asks_for_a_passphrase_and_a_doctor_gets_no_front_desk(
    qtbot: QtBot, tmp_path: Path, live_server: LiveServer,
    clinic_and_code: tuple[ClinicData, str]
) -> None:
    clinic, code = clinic_and_code
    previous = keyring.get_keyring()
    keyring.set_keyring(NoKeyring())
    try:
        app = DeskApp(folder=tmp_path / "desk", preset=MachinePreset(live_server.url, code),
                      auto_enrol=True)
        app.start()
        qtbot.waitUntil(lambda: _dialog(app, PassphraseDialog) is not None, timeout=20_000)
        asked = app.dialog
        assert isinstance(asked, PassphraseDialog)
        asked.box.setText("una frase bastante larga")
        asked.accept()
        _sign_in(qtbot, app, clinic.users[Role.DOCTOR].email, PASSWORD)
        qtbot.waitUntil(lambda: app.window is not None, timeout=20_000)
        assert app.window is not None
        assert set(app.window.workspaces) == {"consultation", "calendar", "patients"}
        assert (tmp_path / "desk" / "consulta.db.key").exists()  # wrapped, never clear
        app.window.shut()
        app.tasks.wait()
    finally:
        keyring.set_keyring(previous)


def test_signing_in_while_the_server_is_down_works_offline_and_catches_up_by_itself(
    qtbot: QtBot, tmp_path: Path, factory: Factory, settings: Settings,
    db_urls: tuple[URL, URL], memory_keyring: None
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    factory.weekly_hours(clinic, clinic.provider_ids[0])
    server = LiveServer(create_app(settings, db_urls[1]))
    server.start()
    with httpx.Client(base_url=server.url) as http, setup_io():
        code = http.post("/api/v1/devices", headers=factory.headers(clinic.users[Role.ADMIN]),
                         json={"name": "Recepción 2"}).json()["code"]
    user = clinic.users[Role.RECEPTIONIST]
    app = DeskApp(folder=tmp_path / "desk", preset=MachinePreset(server.url, code),
                  auto_enrol=True, auto_sign_in=(user.email, PASSWORD))
    try:
        app.start()
        qtbot.waitUntil(lambda: app.window is not None
                        and app.window.controller.status.online is True, timeout=30_000)
        online_window = app.window
        assert online_window is not None
        with httpx.Client(base_url=server.url) as http, setup_io():
            start = datetime.fromisoformat(http.get(
                f"/api/v1/providers/{clinic.provider_ids[0]}/slots",
                headers=factory.headers(user), params={
                    "start": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
                    "end": (datetime.now(UTC) + timedelta(days=3)).isoformat()},
            ).json()["data"][0]["start"])
        first_login = app.dialog
        online_window.lock_requested.emit()
        server.stop()
        qtbot.waitUntil(lambda: isinstance(app.dialog, LoginDialog)
                        and app.dialog is not first_login, timeout=30_000)
        _sign_in(qtbot, app, user.email, PASSWORD)
        qtbot.waitUntil(lambda: app.window is not None and app.window is not online_window,
                        timeout=30_000)
        window = app.window
        assert window is not None
        assert not window.desk.session.online
        assert "Offline" in window.findChild(QLabel, "signed_in_as").text()
        qtbot.waitUntil(lambda: window.controller.status.online is False, timeout=30_000)

        desk = window.desk
        on_db_worker(qtbot, desk, lambda: book_offline(
            desk.engine, desk.clock, clinic_id=clinic.id, patient_id=clinic.patient_ids[0],
            provider_id=clinic.provider_ids[0], start=start, minutes=30, reason="Control"))
        desk.changed("appointment")
        qtbot.waitUntil(lambda: window.controller.status.pending == 1, timeout=10_000)

        # The server comes back: the next sync signs in by itself and sends the booking.
        server = LiveServer(create_app(settings, db_urls[1]), port=server.port)
        server.start()
        window.controller.sync_now()
        qtbot.waitUntil(lambda: window.controller.status.online is True
                        and window.controller.status.pending == 0, timeout=30_000)
        [booked] = factory.appointments(clinic).values()
        assert (booked.source, booked.status, booked.starts_at) == ("device", "booked", start)
        window.shut()
        app.tasks.wait()
    finally:
        server.stop()


def test_computers_given_one_rollout_code_by_it_each_enrol_on_first_run(
    qtbot: QtBot, tmp_path: Path, live_server: LiveServer, factory: Factory,
    memory_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clinic = factory.clinic(patients=0)
    admin = factory.headers(clinic.users[Role.ADMIN])
    with httpx.Client(base_url=live_server.url) as http, setup_io():
        code = http.post("/api/v1/devices/rollouts", headers=admin,
                         json={"name": "Recepción", "computers": 2}).json()["code"]
    for computer in ("PC-FRONT-01", "PC-FRONT-02"):
        monkeypatch.setattr("desktop.ui.app.platform.node", lambda name=computer: name)
        # what the MSI's SERVER_URL and ENROLMENT_CODE put in the machine-wide file
        app = DeskApp(folder=tmp_path / computer, preset=MachinePreset(live_server.url, code),
                      auto_enrol=True)
        app.start()
        qtbot.waitUntil(lambda app=app: _dialog(app, LoginDialog) is not None, timeout=20_000)
        assert (tmp_path / computer / "device.json").exists()
        app.dialog.reject()
        app.tasks.wait()
    with httpx.Client(base_url=live_server.url) as http, setup_io():
        devices = http.get("/api/v1/devices", headers=admin).json()["data"]
    assert [d["name"] for d in devices] == ["Recepción 1 (PC-FRONT-01)",
                                            "Recepción 2 (PC-FRONT-02)"]
