"""Signing in: online when the server answers, otherwise against the verifier cached at
the last online sign-in. The same dialog unlocks a locked screen."""

from __future__ import annotations

from collections.abc import Callable

from desktop.session import OfflineLoginError, Session
from desktop.sync.errors import SyncAuthError
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)
from desktop.ui.tasks import Worker

SignIn = Callable[[str, str], Session]


class LoginDialog(QDialog):
    def __init__(self, worker: Worker, sign_in: SignIn, *, email: str = "",
                 locked: bool = False, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.sign_in = sign_in
        self.session: Session | None = None
        self.password_typed: str | None = None
        self.setObjectName("login_dialog")
        self.setWindowTitle(tr("Sign in"))
        self.email = QLineEdit(email)
        self.email.setObjectName("login_email")
        self.password = QLineEdit()
        self.password.setObjectName("login_password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.error = QLabel()
        self.error.setObjectName("login_error")
        self.error.setStyleSheet("color: #b00020")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        form = QFormLayout()
        form.addRow(tr("E-mail"), self.email)
        form.addRow(tr("Password"), self.password)
        buttons = QDialogButtonBox()
        self.submit = buttons.addButton(tr("Sign in"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.submit.setObjectName("login_submit")
        buttons.accepted.connect(self.attempt)
        layout = QVBoxLayout(self)
        if locked:
            notice = QLabel(tr("Screen locked. Sign in again to continue."))
            notice.setObjectName("lock_notice")
            layout.addWidget(notice)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        (self.password if email else self.email).setFocus()

    def attempt(self) -> None:
        email, password = self.email.text().strip(), self.password.text()
        if not email or not password:
            self._show_error(tr("Required."))
            return
        self.submit.setEnabled(False)
        self.error.setVisible(False)
        sign_in = self.sign_in
        self.worker.run(lambda: sign_in(email, password),
                        on_done=lambda s: self._signed_in(s, password), on_error=self._refused,
                        owner=self)

    def _signed_in(self, session: Session, password: str) -> None:
        self.session = session
        self.password_typed = password
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.submit.setEnabled(True)
        self.password.clear()
        if isinstance(exc, OfflineLoginError | SyncAuthError):
            self._show_error(str(exc))
        else:
            self._show_error(f"{type(exc).__name__}: {exc}")

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(True)
