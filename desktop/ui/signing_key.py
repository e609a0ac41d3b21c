"""The prescriber's signing key: where it stands (none, not confirmed, not registered,
waiting for the admin's approval, active, revoked), making one, setting up the
authenticator app that guards it, and registering it with the server.

The key is made and confirmed on the store's worker (desktop.operations.signing); the
registration is one request on the network worker. Offline, a confirmed key waits here
with "Register now" until the server can be reached.
"""

from __future__ import annotations

from typing import Any

from desktop.operations.signing import (
    Enrolment,
    KeyInfo,
    confirm_key,
    create_key,
    key_info,
    mark_registered,
    registration_body,
)
from desktop.sync.errors import SyncNetworkError
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QDialog,
    QFont,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    Qt,
    QtGui,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.ui.step_up import CODE_DIGITS, ERROR_STYLE, forget_signer

NOTE_STYLE = "color: #1b5e20"
REGISTER_PATH = "/api/v1/signing-keys"
# Where the key stands, as the dialog and the prescription form say it.
STATES = ("none", "unconfirmed", "unregistered", "pending", "active", "revoked")
TITLES = {
    "none": "No prescribing key",
    "unconfirmed": "Not confirmed",
    "unregistered": "Not registered yet",
    "pending": "Waiting for the admin's approval",
    "active": "Active",
    "revoked": "Revoked",
}
DETAILS = {
    "none": "You have no prescribing key on this computer. Create one to sign prescriptions: "
            "you will need your sign-in password and an authenticator app on your phone.",
    "unconfirmed": "This key was made but never confirmed with a code from your "
                   "authenticator app, and its secret is shown only once. Create a new key "
                   "to start again.",
    "unregistered": "Your key is confirmed on this computer. It is registered with the "
                    "server when this computer is online; then the clinic admin approves it.",
    "pending": "Read this fingerprint to the clinic admin: they compare it with the one on "
               "their screen before approving your key. Once approved, it reaches this "
               "computer with the next sync and you can sign, also offline.",
    "active": "You can sign prescriptions on this computer, also offline.",
    "revoked": "This key was revoked and signs nothing any more. Create a new key.",
}
# What the prescription form says when the key cannot sign yet.
CANNOT_SIGN = {
    "none": "You have no prescribing key on this computer yet. Create one to sign "
            "prescriptions.",
    "unconfirmed": "Your prescribing key is not confirmed. Open Prescribing key… to finish "
                   "setting it up.",
    "unregistered": "Your prescribing key has not reached the server yet: it registers when "
                    "this computer is online, then the clinic admin approves it.",
    "pending": "Your prescribing key is waiting for the clinic admin's approval. You can "
               "sign once it is approved and this computer has synced.",
    "revoked": "Your prescribing key was revoked. Create a new one to sign prescriptions.",
}
OFFLINE = "Will register when online. This computer cannot reach the server now."


def key_state(info: KeyInfo | None) -> str:
    """One of STATES."""
    if info is None:
        return "none"
    if not info.confirmed:
        return "unconfirmed"
    return info.server_status


def fingerprint_text(fingerprint: str) -> str:
    """The fingerprint in groups of four, as it is read aloud to the admin."""
    groups = [fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4)]
    return "\n".join(" ".join(groups[i:i + 8]) for i in range(0, len(groups), 8))


def secret_text(secret: str) -> str:
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def _selectable(name: str, text: str = "") -> QLineEdit:
    box = QLineEdit(text)
    box.setObjectName(name)
    box.setReadOnly(True)
    return box


class SigningKeyDialog(QDialog):
    """The signed-in prescriber's key on this computer. `state_shown` fires each time a
    state is on screen (after loading, creating, confirming or registering)."""

    state_shown = Signal(str)

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.info: KeyInfo | None = None
        self.state = ""
        self.enrolment: Enrolment | None = None
        self.setObjectName("signing_key_dialog")
        self.setWindowTitle(tr("Prescribing key"))
        self.resize(620, 380)
        self.pages = QStackedWidget()
        self.pages.addWidget(self._status_page())
        self.pages.addWidget(self._create_page())
        self.pages.addWidget(self._setup_page())
        layout = QVBoxLayout(self)
        layout.addWidget(self.pages)
        self.load(register=True)

    # --- pages ----------------------------------------------------------------------------

    def _status_page(self) -> QWidget:
        page = QWidget()
        self.title = QLabel()
        self.title.setObjectName("key_state_title")
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.detail = QLabel()
        self.detail.setObjectName("key_state_detail")
        self.detail.setWordWrap(True)
        self.fingerprint = QLabel()
        self.fingerprint.setObjectName("key_fingerprint")
        self.fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint.setFont(QtGui.QFontDatabase.systemFont(
            QtGui.QFontDatabase.SystemFont.FixedFont))
        self.note = QLabel()
        self.note.setObjectName("key_note")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.create_button = QPushButton(tr("Create key…"))
        self.create_button.setObjectName("key_create")
        self.create_button.clicked.connect(self._ask_password)
        self.register_button = QPushButton(tr("Register now"))
        self.register_button.setObjectName("key_register")
        self.register_button.clicked.connect(self.register)
        close = QPushButton(tr("Close"))
        close.setObjectName("key_close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.create_button)
        buttons.addWidget(self.register_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(page)
        layout.addWidget(self.title)
        layout.addWidget(self.detail)
        layout.addWidget(self.fingerprint)
        layout.addWidget(self.note)
        layout.addStretch(1)
        layout.addLayout(buttons)
        return page

    def _create_page(self) -> QWidget:
        page = QWidget()
        explain = QLabel(tr("Your prescribing key is protected by your sign-in password and by "
                            "a code from an authenticator app on your phone: signing a "
                            "prescription asks for both."))
        explain.setWordWrap(True)
        self.password = QLineEdit()
        self.password.setObjectName("key_password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.create_error = _error_label("key_create_error")
        self.create_confirm = QPushButton(tr("Create key"))
        self.create_confirm.setObjectName("key_create_confirm")
        self.create_confirm.setDefault(True)
        self.create_confirm.clicked.connect(self.make_key)
        back = QPushButton(tr("Back"))
        back.clicked.connect(lambda: self.pages.setCurrentIndex(0))
        form = QFormLayout()
        form.addRow(tr("Password"), self.password)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(back)
        buttons.addWidget(self.create_confirm)
        layout = QVBoxLayout(page)
        layout.addWidget(explain)
        layout.addLayout(form)
        layout.addWidget(self.create_error)
        layout.addStretch(1)
        layout.addLayout(buttons)
        return page

    def _setup_page(self) -> QWidget:
        page = QWidget()
        explain = QLabel(tr("Add this key to your authenticator app (Google Authenticator, "
                            "Microsoft Authenticator, FreeOTP…): paste the link, or type the "
                            "secret. It is shown only now; keep it to yourself."))
        explain.setWordWrap(True)
        self.totp_uri = _selectable("key_totp_uri")
        self.totp_secret = _selectable("key_totp_secret")
        self.totp_secret.setFont(QtGui.QFontDatabase.systemFont(
            QtGui.QFontDatabase.SystemFont.FixedFont))
        self.code = QLineEdit()
        self.code.setObjectName("key_confirm_code")
        self.code.setMaxLength(CODE_DIGITS)
        self.code.setPlaceholderText("123456")
        self.code.setValidator(QtGui.QRegularExpressionValidator(r"\d{0,6}"))
        self.confirm_error = _error_label("key_confirm_error")
        self.confirm_button = QPushButton(tr("Confirm"))
        self.confirm_button.setObjectName("key_confirm")
        self.confirm_button.setDefault(True)
        self.confirm_button.clicked.connect(self.confirm)
        form = QFormLayout()
        form.addRow(tr("Link"), self.totp_uri)
        form.addRow(tr("Secret"), self.totp_secret)
        form.addRow(tr("Code the app shows now"), self.code)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.confirm_button)
        layout = QVBoxLayout(page)
        layout.addWidget(explain)
        layout.addLayout(form)
        layout.addWidget(self.confirm_error)
        layout.addStretch(1)
        layout.addLayout(buttons)
        return page

    # --- the key's state ------------------------------------------------------------------

    def load(self, *, register: bool = False) -> None:
        """Read the key's state; `register`: then send a confirmed, unregistered key to the
        server when there is one to send it to."""
        engine, user_id = self.desk.engine, self.desk.session.user_id
        self.desk.tasks.db.run(lambda: key_info(engine, user_id),
                               on_done=lambda info: self._show(info, register), owner=self)

    def _show(self, info: KeyInfo | None, register: bool = False) -> None:
        self.info = info
        self.state = key_state(info)
        self.pages.setCurrentIndex(0)
        self.title.setText(tr(TITLES[self.state]))
        self.detail.setText(tr(DETAILS[self.state]))
        colour = {"active": NOTE_STYLE, "revoked": ERROR_STYLE}.get(self.state, "")
        self.title.setStyleSheet(colour)
        self.fingerprint.setText(
            f"{tr('Fingerprint')}:\n{fingerprint_text(info.fingerprint)}" if info else "")
        self.fingerprint.setVisible(info is not None and self.state != "unconfirmed")
        self.create_button.setVisible(self.state in ("none", "unconfirmed", "revoked"))
        self.register_button.setVisible(self.state == "unregistered")
        if self.state != "unregistered":
            self._say("")
        if self.state == "revoked":
            forget_signer()
        self.state_shown.emit(self.state)
        if self.state == "unregistered" and self.desk.server is None:
            self._say(tr(OFFLINE))
        elif register and self.state == "unregistered":
            self.register()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setStyleSheet(ERROR_STYLE if error else "")
        self.note.setText(text)
        self.note.setVisible(bool(text))

    # --- making a key ---------------------------------------------------------------------

    def _ask_password(self) -> None:
        self.password.clear()
        self.create_error.setVisible(False)
        self.pages.setCurrentIndex(1)
        self.password.setFocus()

    def make_key(self) -> None:
        password = self.password.text()
        if not password:
            self.create_error.setText(tr("Type your password: it protects the key."))
            self.create_error.setVisible(True)
            return
        self.create_error.setVisible(False)
        self.create_confirm.setEnabled(False)
        session, engine = self.desk.session, self.desk.engine
        self.desk.tasks.db.run(
            lambda: create_key(engine, clinic_id=session.clinic_id, user_id=session.user_id,
                               email=session.email, password=password),
            on_done=self._created, on_error=self._not_created, owner=self)

    def _created(self, enrolment: Enrolment) -> None:
        self.create_confirm.setEnabled(True)
        self.password.clear()
        self.enrolment = enrolment
        self.totp_uri.setText(enrolment.totp_uri)
        self.totp_uri.setCursorPosition(0)
        self.totp_secret.setText(secret_text(enrolment.totp_secret))
        self.code.clear()
        self.confirm_error.setVisible(False)
        self.pages.setCurrentIndex(2)
        self.code.setFocus()
        self.state_shown.emit("setup")

    def _not_created(self, exc: BaseException) -> None:
        self.create_confirm.setEnabled(True)
        self.create_error.setText(tr(str(exc)))
        self.create_error.setVisible(True)

    def confirm(self) -> None:
        code = self.code.text().strip()
        if len(code) != CODE_DIGITS:
            self.confirm_error.setText(tr("Type the 6-digit code your authenticator app "
                                          "shows now."))
            self.confirm_error.setVisible(True)
            return
        self.confirm_error.setVisible(False)
        self.confirm_button.setEnabled(False)
        engine, user_id = self.desk.engine, self.desk.session.user_id
        self.desk.tasks.db.run(lambda: confirm_key(engine, user_id, code),
                               on_done=self._confirmed, on_error=self._not_confirmed,
                               owner=self)

    def _confirmed(self, _result: object) -> None:
        self.confirm_button.setEnabled(True)
        self.enrolment = None
        self.totp_uri.clear()
        self.totp_secret.clear()
        self.desk.changed("signing_identity")
        self.load(register=True)

    def _not_confirmed(self, exc: BaseException) -> None:
        self.confirm_button.setEnabled(True)
        self.code.clear()
        self.confirm_error.setText(tr(str(exc)))
        self.confirm_error.setVisible(True)

    # --- registering it with the server ---------------------------------------------------

    def register(self) -> None:
        if self.desk.server is None:
            self._not_registered(SyncNetworkError("no server"))
            return
        self.register_button.setEnabled(False)
        self._say(tr("Registering…"))
        engine, user_id = self.desk.engine, self.desk.session.user_id
        self.desk.tasks.db.run(lambda: registration_body(engine, user_id),
                               on_done=self._send, on_error=self._not_registered, owner=self)

    def _send(self, body: dict[str, Any]) -> None:
        server = self.desk.server
        assert server is not None
        self.desk.tasks.net.run(lambda: server.request("POST", REGISTER_PATH, json=body),
                                on_done=self._registered, on_error=self._not_registered,
                                owner=self)

    def _registered(self, answer: dict[str, Any]) -> None:
        engine, user_id = self.desk.engine, self.desk.session.user_id
        status = str(answer.get("status", "pending"))
        self.desk.tasks.db.run(lambda: mark_registered(engine, user_id, status),
                               on_done=self._marked, on_error=self._not_registered,
                               owner=self)

    def _marked(self, _result: object) -> None:
        self.register_button.setEnabled(True)
        self.desk.changed("signing_identity")
        self.load()

    def _not_registered(self, exc: BaseException) -> None:
        self.register_button.setEnabled(True)
        if isinstance(exc, SyncNetworkError):
            self._say(tr(OFFLINE))
        else:
            self._say(tr(str(exc)), error=True)
