"""`consulta-desk`: first run (enrol this computer), unlocking the local store, signing
in, the main window, and locking the screen after inactivity.

Every step that touches the disk, the keyring or the network runs on a worker; this
module only moves between dialogs as their answers arrive.
"""

from __future__ import annotations

import argparse
import platform
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, insert, select

from desktop.config import (
    ConfigError,
    Enrolment,
    MachinePreset,
    check_server_url,
    data_dir,
    machine_preset,
)
from desktop.server_link import ServerLink, cached_clinic
from desktop.session import Session, sign_in_offline, sign_in_online
from desktop.store.database import open_store
from desktop.store.keys import load_or_create_key
from desktop.store.local import sync_state
from desktop.sync.client import SyncClient
from desktop.sync.errors import SyncNetworkError
from desktop.threads import mark_gui_thread
from desktop.ui import i18n
from desktop.ui.desk import ClinicInfo, Desk
from desktop.ui.i18n import tr
from desktop.ui.login import LoginDialog
from desktop.ui.main_window import DEFAULT_LOCK_MINUTES, MainWindow
from desktop.ui.qt import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSettings,
    QVBoxLayout,
)
from desktop.ui.sync_status import SyncController
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock

STORE_FILE = "consulta.db"
SECRET_ENTRY = "device_secret"  # noqa: S105 - a row name; the secret lives in the encrypted store
HTTP_TIMEOUT_S = 20.0


class NeedPassphrase(Exception):
    """No usable keyring: the person must type the passphrase that protects the store."""

    def __init__(self, creating: bool) -> None:
        super().__init__("passphrase needed")
        self.creating = creating


@dataclass
class Unlocked:
    engine: Engine
    device_secret: str
    clinic: ClinicInfo | None


def computer_name() -> str | None:
    """This computer's network name, which tells apart the devices of one rollout."""
    name = "".join(c for c in platform.node() if c.isprintable()).strip()[:63]
    return name or None


def enrol(server_url: str, code: str) -> tuple[Enrolment, str]:
    """Trade the enrolment code (one-time or a rollout's) for this computer's credentials."""
    url = check_server_url(server_url)
    body = {"code": code.strip(), "computer_name": computer_name()}
    try:
        response = httpx.post(f"{url}/api/v1/devices/enrol", json=body,
                              timeout=HTTP_TIMEOUT_S)
    except httpx.TransportError as exc:
        raise ConfigError(f"The server at {url} cannot be reached. Check the address and "
                          "the network.") from exc
    if response.status_code != 200:
        message = response.json().get("error", {}).get("message", response.text[:200]) \
            if response.headers.get("content-type", "").startswith("application/json") \
            else f"The server answered {response.status_code}."
        raise ConfigError(message)
    creds = response.json()
    device_id = uuid.UUID(creds["device_id"])
    return (Enrolment(server_url=url, device_id=device_id,
                      clinic_id=uuid.UUID(creds["clinic_id"]), store_id=str(device_id)),
            str(creds["device_secret"]))


def unlock(folder: Path, enrolment: Enrolment, *, passphrase: str | None,
           new_secret: str | None = None) -> Unlocked:
    """Open the encrypted store (made on first use) and read what this computer keeps."""
    store_path = folder / STORE_FILE

    def ask(creating: bool) -> str | None:
        if passphrase is None:
            raise NeedPassphrase(creating)
        return passphrase

    key = load_or_create_key(store_path, store_id=enrolment.store_id, ask_passphrase=ask)
    engine = open_store(store_path, key.key)
    with engine.begin() as conn:
        if new_secret is not None:
            conn.execute(sync_state.delete().where(sync_state.c.key == SECRET_ENTRY))
            conn.execute(insert(sync_state).values(key=SECRET_ENTRY, value=new_secret))
        secret = conn.execute(select(sync_state.c.value).where(
            sync_state.c.key == SECRET_ENTRY)).scalar_one_or_none()
    if secret is None:
        engine.dispose()
        raise ConfigError("This computer's credentials are missing; enrol it again.")
    found = cached_clinic(engine)
    clinic = ClinicInfo(*found) if found else None
    return Unlocked(engine, secret, clinic)


class FirstRunDialog(QDialog):
    def __init__(self, tasks: Tasks, folder: Path, preset: MachinePreset) -> None:
        super().__init__()
        self.tasks = tasks
        self.folder = folder
        self.result_value: tuple[Enrolment, str] | None = None
        self.setObjectName("first_run")
        self.setWindowTitle(tr("Enrol this computer"))
        self.url = QLineEdit(preset.server_url or "")
        self.url.setObjectName("server_url")
        self.url.setPlaceholderText("https://consulta.miclinica.cl")
        self.code = QLineEdit(preset.enrolment_code or "")
        self.code.setObjectName("enrolment_code")
        self.error = QLabel()
        self.error.setObjectName("enrol_error")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        form = QFormLayout()
        form.addRow(tr("Server address"), self.url)
        form.addRow(tr("Enrolment code"), self.code)
        buttons = QDialogButtonBox()
        self.submit = buttons.addButton(tr("Enrol this computer"),
                                        QDialogButtonBox.ButtonRole.AcceptRole)
        self.submit.setObjectName("enrol_submit")
        buttons.accepted.connect(self.attempt)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def attempt(self) -> None:
        url, code, folder = self.url.text(), self.code.text(), self.folder
        if not url.strip() or not code.strip():
            self.error.setText(tr("Required."))
            self.error.setVisible(True)
            return
        self.submit.setEnabled(False)

        def work() -> tuple[Enrolment, str]:
            enrolment, secret = enrol(url, code)
            enrolment.save(folder)
            return enrolment, secret
        self.tasks.net.run(work, on_done=self._enrolled, on_error=self._refused)

    def _enrolled(self, value: tuple[Enrolment, str]) -> None:
        self.result_value = value
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.submit.setEnabled(True)
        self.error.setText(str(exc))
        self.error.setVisible(True)


class PassphraseDialog(QDialog):
    def __init__(self, creating: bool) -> None:
        super().__init__()
        self.setObjectName("passphrase_dialog")
        self.setWindowTitle("Consulta")
        self.box = QLineEdit()
        self.box.setObjectName("passphrase")
        self.box.setEchoMode(QLineEdit.EchoMode.Password)
        text = ("This computer has no keyring. Choose a passphrase (at least 10 characters) "
                "to protect the clinic's data on it." if creating else
                "Type the passphrase that protects the clinic's data on this computer.")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr(text)))
        layout.addWidget(self.box)
        layout.addWidget(buttons)


class DeskApp:
    """Moves between first run, unlock, sign-in, the main window and the lock."""

    def __init__(self, *, folder: Path, preset: MachinePreset,
                 lock_minutes: float = DEFAULT_LOCK_MINUTES,
                 auto_sign_in: tuple[str, str] | None = None, auto_enrol: bool = False) -> None:
        self.folder = folder
        self.auto_enrol = auto_enrol
        self.preset = preset
        self.lock_minutes = lock_minutes
        self.auto_sign_in = auto_sign_in
        self.tasks = Tasks()
        self.enrolment: Enrolment | None = None
        self.unlocked: Unlocked | None = None
        self.passphrase: str | None = None
        self.window: MainWindow | None = None
        self.dialog: QDialog | None = None
        self.last_email = ""

    def start(self) -> None:
        folder = self.folder
        self.tasks.db.run(lambda: Enrolment.load(folder), on_done=self._loaded,
                          on_error=self._fatal)

    def _loaded(self, enrolment: Enrolment | None) -> None:
        if enrolment is not None:
            self.enrolment = enrolment
            self._unlock()
            return
        dialog = FirstRunDialog(self.tasks, self.folder, self.preset)
        dialog.accepted.connect(lambda: self._enrolled(dialog))
        self._show(dialog)
        if self.auto_enrol:
            dialog.attempt()

    def _enrolled(self, dialog: FirstRunDialog) -> None:
        assert dialog.result_value is not None
        self.enrolment, secret = dialog.result_value
        self._unlock(new_secret=secret)

    def _unlock(self, new_secret: str | None = None) -> None:
        folder, enrolment, passphrase = self.folder, self.enrolment, self.passphrase
        assert enrolment is not None
        self.tasks.db.run(
            lambda: unlock(folder, enrolment, passphrase=passphrase, new_secret=new_secret),
            on_done=self._unlocked,
            on_error=lambda exc: self._unlock_failed(exc, new_secret))

    def _unlock_failed(self, exc: BaseException, new_secret: str | None) -> None:
        if not isinstance(exc, NeedPassphrase):
            self._fatal(exc)
            return
        dialog = PassphraseDialog(exc.creating)

        def typed() -> None:
            self.passphrase = dialog.box.text()
            self._unlock(new_secret)
        dialog.accepted.connect(typed)
        self._show(dialog)

    def _unlocked(self, unlocked: Unlocked) -> None:
        self.unlocked = unlocked
        self._sign_in(locked=self.window is not None)

    def _sign_in(self, *, locked: bool) -> None:
        dialog = LoginDialog(self.tasks.net, self._sign_in_work, email=self.last_email,
                             locked=locked)
        dialog.accepted.connect(lambda: self._signed_in(dialog))
        self._show(dialog)
        if self.auto_sign_in is not None:
            email, password = self.auto_sign_in
            self.auto_sign_in = None
            dialog.email.setText(email)
            dialog.password.setText(password)
            dialog.attempt()

    def _sign_in_work(self, email: str, password: str) -> Session:
        unlocked, enrolment = self.unlocked, self.enrolment
        assert unlocked is not None
        assert enrolment is not None
        with httpx.Client(base_url=enrolment.server_url, timeout=HTTP_TIMEOUT_S) as http:
            try:
                session = sign_in_online(unlocked.engine, http, email=email, password=password,
                                         device_id=enrolment.device_id,
                                         device_secret=unlocked.device_secret)
            except SyncNetworkError:
                return sign_in_offline(unlocked.engine, email=email, password=password)
            link = ServerLink(unlocked.engine, http, device_id=enrolment.device_id,
                              device_secret=unlocked.device_secret, session=session)
            link.refresh_clinic()
        found = cached_clinic(unlocked.engine)
        unlocked.clinic = ClinicInfo(*found) if found else unlocked.clinic
        return session

    def _signed_in(self, dialog: LoginDialog) -> None:
        session = dialog.session
        unlocked, enrolment = self.unlocked, self.enrolment
        assert session is not None
        assert unlocked is not None
        assert enrolment is not None
        self.last_email = session.email
        clinic = unlocked.clinic or ClinicInfo("Consulta", ZoneInfo("UTC"), "MX")
        http = httpx.Client(base_url=enrolment.server_url, timeout=HTTP_TIMEOUT_S)
        link = ServerLink(unlocked.engine, http, device_id=enrolment.device_id,
                          device_secret=unlocked.device_secret, session=session,
                          password=dialog.password_typed)
        client = SyncClient(unlocked.engine, http, token=link.token,
                            cursor_key=f"pull_cursor:{session.role}")
        desk = Desk(tasks=self.tasks, engine=unlocked.engine, session=session,
                    clock=HybridClock(enrolment.device_id.hex[:12]), clinic=clinic,
                    server=link)
        controller = SyncController(desk, client.sync)
        previous, self.window = self.window, MainWindow(desk, controller,
                                                         lock_minutes=self.lock_minutes)
        if previous is not None:
            previous.deleteLater()
        self.window.lock_requested.connect(self.lock)
        self.window.closed.connect(self._quit)
        self.window.show()
        controller.start()
        if not session.online:
            self.window.statusBar().showMessage(tr(
                "Signed in offline: changes are kept here and sent when the server is "
                "back."), 10_000)

    def lock(self) -> None:
        """Hide everything and close the store until someone signs in again."""
        window, unlocked = self.window, self.unlocked
        if window is None or unlocked is None:
            return
        window.shut()
        window.hide()
        self.tasks.wait()
        unlocked.engine.dispose()
        self.unlocked = None
        self._unlock()

    def _show(self, dialog: QDialog) -> None:
        """Show the next step; closing it without finishing closes the app."""
        self.dialog = dialog
        dialog.rejected.connect(self._quit)
        dialog.show()

    def _quit(self) -> None:
        if self.window is not None:
            self.window.shut()
        QApplication.quit()

    def _fatal(self, exc: BaseException) -> None:
        QMessageBox.critical(None, "Consulta", str(exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="consulta-desk", description="Consulta desktop")
    parser.add_argument("--demo", action="store_true",
                        help="start the demo server and open the front desk signed in")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where this computer's data lives (default: the user data folder)")
    parser.add_argument("--lock-minutes", type=float, default=None,
                        help=f"lock the screen after this idle time (default "
                             f"{DEFAULT_LOCK_MINUTES})")
    args = parser.parse_args(argv)
    app = QApplication(sys.argv[:1])
    # Between steps (a dialog closed, the next not yet shown) no window is open; the app
    # ends when the person closes the main window or walks away from a step instead.
    app.setQuitOnLastWindowClosed(False)
    mark_gui_thread(threading.current_thread())
    settings = QSettings("Consulta", "Desk")
    i18n.set_language(str(settings.value("language", i18n.system_language())))
    i18n.language_changed.connect(lambda: settings.setValue("language", i18n.language()))
    lock_minutes = args.lock_minutes or float(settings.value("lock_minutes",
                                                             DEFAULT_LOCK_MINUTES))
    folder = args.data_dir or data_dir()
    auto: tuple[str, str] | None = None
    server = None
    try:
        preset = machine_preset()
        if args.demo:
            from desktop.demo import start_demo

            server = start_demo(folder)
            folder = server.desk_folder
            preset = MachinePreset(server.url, server.enrolment_code)
            auto = (server.email, server.password)
    except ConfigError as exc:
        # Started from the Start menu there is no console: say it in a window too.
        print(f"error: {exc}", file=sys.stderr)
        QMessageBox.critical(None, "Consulta", str(exc))
        return 2
    # The demo enrols itself (its code is fresh from the demo server) and signs in.
    desk_app = DeskApp(folder=folder, preset=preset, lock_minutes=lock_minutes,
                       auto_sign_in=auto, auto_enrol=args.demo)
    desk_app.start()
    try:
        return int(app.exec())
    finally:
        desk_app.tasks.wait()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
