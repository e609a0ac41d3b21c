"""The prescriber's key dialog: making a key behind the sign-in password, setting up the
authenticator app with a code, registering with the real server (or waiting to, offline,
with a retry), the fingerprint to read to the admin, and the key active once the admin's
approval comes down by sync."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from pytestqt.qtbot import QtBot

from desktop.server_link import ServerLink
from desktop.sync.client import SyncClient
from desktop.ui.desk import Desk
from desktop.ui.qt import Qt
from desktop.ui.signing_key import SigningKeyDialog, fingerprint_text
from desktop.ui.step_up import forget_signer
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import SANTIAGO, on_db_worker
from tests.e2e.computers import enrolled_desk
from tests.factories import PASSWORD, ClinicData, Factory

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(autouse=True)
def no_open_key() -> Iterator[None]:
    yield
    forget_signer()


def _dialog(qtbot: QtBot, desk: Desk) -> SigningKeyDialog:
    dialog = SigningKeyDialog(desk)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.state != "", timeout=10_000)
    return dialog


def _make_key(qtbot: QtBot, dialog: SigningKeyDialog, password: str) -> pyotp.TOTP:
    """Create a key in the dialog and confirm it with the app's code."""
    qtbot.mouseClick(dialog.create_button, LEFT)
    assert dialog.pages.currentIndex() == 1
    qtbot.mouseClick(dialog.create_confirm, LEFT)
    assert dialog.create_error.text() == "Type your password: it protects the key."
    dialog.password.setText(password)
    with qtbot.waitSignal(dialog.state_shown, timeout=10_000) as shown:
        qtbot.mouseClick(dialog.create_confirm, LEFT)
    assert shown.args == ["setup"]
    uri = dialog.totp_uri.text()
    assert uri.startswith("otpauth://totp/Consulta:")
    secret = parse_qs(urlparse(uri).query)["secret"][0]
    assert dialog.totp_secret.text().replace(" ", "") == secret
    assert dialog.totp_secret.isReadOnly()
    totp = pyotp.TOTP(secret)
    qtbot.keyClicks(dialog.code, "000000" if totp.now() != "000000" else "111111")
    qtbot.mouseClick(dialog.confirm_button, LEFT)
    qtbot.waitUntil(lambda: dialog.confirm_error.isVisibleTo(dialog), timeout=10_000)
    assert dialog.confirm_error.text().startswith("That code does not match.")
    assert dialog.pages.currentIndex() == 2
    qtbot.keyClicks(dialog.code, totp.now())
    qtbot.mouseClick(dialog.confirm_button, LEFT)
    return totp


def test_with_no_server_the_key_is_made_and_waits_to_register(
    qtbot: QtBot, desk: Desk
) -> None:
    doctor = dataclasses.replace(desk.session, role="doctor")
    desk = Desk(tasks=desk.tasks, engine=desk.engine, clock=desk.clock, clinic=desk.clinic,
                session=doctor)
    dialog = _dialog(qtbot, desk)
    assert dialog.state == "none"
    assert dialog.title.text() == "No prescribing key"
    assert dialog.create_button.isVisibleTo(dialog)
    assert not dialog.register_button.isVisibleTo(dialog)
    _make_key(qtbot, dialog, "clave-de-la-doctora")
    qtbot.waitUntil(lambda: dialog.note.text() != "", timeout=10_000)
    assert dialog.state == "unregistered"
    assert dialog.note.text() == ("Will register when online. This computer cannot reach the "
                                  "server now.")
    assert dialog.register_button.isVisibleTo(dialog)
    assert not dialog.create_button.isVisibleTo(dialog)
    assert dialog.totp_secret.text() == ""  # shown once, then gone from the screen


@pytest.fixture
def doctor(tmp_path: Path, tasks: Tasks, live_server: LiveServer, factory: Factory
           ) -> Iterator[tuple[ClinicData, Desk, ServerLink, httpx.Client]]:
    clinic = factory.clinic(patients=1, providers=1)
    http = httpx.Client(base_url=live_server.url, timeout=30)
    engine, session, link = enrolled_desk(http, factory, clinic, tmp_path / "doctora.db",
                                          role=Role.DOCTOR)
    yield clinic, Desk(tasks=tasks, engine=engine, session=session,
                       clock=HybridClock("doctora"), clinic=SANTIAGO, server=link), link, http
    tasks.wait(10_000)
    http.close()
    engine.dispose()


def test_a_key_registers_when_the_server_is_back_and_is_active_once_approved(
    qtbot: QtBot, doctor: tuple[ClinicData, Desk, ServerLink, httpx.Client], factory: Factory
) -> None:
    clinic, desk, link, http = doctor
    unreachable = httpx.Client(base_url="http://127.0.0.1:9", timeout=2)
    link.http = unreachable
    dialog = _dialog(qtbot, desk)
    _make_key(qtbot, dialog, PASSWORD)
    qtbot.waitUntil(lambda: dialog.note.text().startswith("Will register when online"),
                    timeout=10_000)
    assert dialog.register_button.isEnabled()

    link.http = http  # back online: the doctor retries
    with qtbot.waitSignal(dialog.state_shown, timeout=10_000,
                          check_params_cb=lambda state: state == "pending"):
        qtbot.mouseClick(dialog.register_button, LEFT)
    assert dialog.title.text() == "Waiting for the admin's approval"
    admin = factory.headers(clinic.users[Role.ADMIN])
    [key] = http.get("/api/v1/signing-keys", headers=admin).json()["data"]
    assert key["status"] == "pending"
    assert key["user_id"] == str(clinic.users[Role.DOCTOR].id)
    assert dialog.fingerprint.text() == f"Fingerprint:\n{fingerprint_text(key['fingerprint'])}"
    assert dialog.info is not None
    assert str(dialog.info.key_id) == key["id"]
    unreachable.close()

    approved = http.post(f"/api/v1/signing-keys/{key['id']}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    client = SyncClient(desk.engine, http, token=link.token,
                        cursor_key=f"pull_cursor:{desk.session.role}")
    on_db_worker(qtbot, desk, client.sync)
    again = _dialog(qtbot, desk)
    assert again.state == "active"
    assert again.title.text() == "Active"
    assert not again.create_button.isVisibleTo(again)
