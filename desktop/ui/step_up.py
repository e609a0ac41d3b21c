"""The prescriber's step-up before signing: their password and a current code from the
authenticator app open the signing key (desktop.operations.signing.unlock, on the store's
worker), and the opened key is held here, in memory only, for UNLOCK_MINUTES.

One key is held at a time, for one desk (one signed-in session): a new sign-in or a lock
of the screen (`forget_signer`) drops it, and so does its own expiry.
"""

from __future__ import annotations

import weakref
from datetime import datetime

from desktop.operations.signing import (
    UNLOCK_MINUTES,
    Signer,
    SigningError,
    UnlockLocked,
    WrongUnlock,
    unlock,
)
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    Qt,
    QtGui,
    QVBoxLayout,
    QWidget,
)

ERROR_STYLE = "color: #b00020"
CODE_DIGITS = 6


class _Held:
    """The opened key and the desk it was opened for."""

    def __init__(self) -> None:
        self.signer: Signer | None = None
        self.desk: weakref.ref[Desk] | None = None


_held = _Held()


def held_signer(desk: Desk, now: datetime | None = None) -> Signer | None:
    """The key this desk's prescriber opened less than UNLOCK_MINUTES ago, if any."""
    signer = _held.signer
    owner = _held.desk() if _held.desk is not None else None
    if signer is None:
        return None
    if owner is not desk or signer.user_id != desk.session.user_id or signer.expired(now):
        forget_signer()
        return None
    return signer


def keep_signer(desk: Desk, signer: Signer) -> None:
    forget_signer()
    _held.signer = signer
    _held.desk = weakref.ref(desk)


def forget_signer() -> None:
    """Drop the opened key at once (the screen was locked, or the person signed out)."""
    if _held.signer is not None:
        _held.signer.forget()
    _held.signer = None
    _held.desk = None


def locked_text(exc: UnlockLocked, desk: Desk) -> str:
    until = exc.until.astimezone(desk.clinic.timezone)
    return tr("Too many wrong tries: unlocking your prescribing key is blocked until {time}. "
              "Try again then.", time=f"{until:%H:%M}")


def signing_error_text(exc: BaseException, desk: Desk) -> str:
    """A signing failure as the prescriber reads it, in the current language."""
    if isinstance(exc, UnlockLocked):
        return locked_text(exc, desk)
    return tr(str(exc))


class StepUpDialog(QDialog):
    """Password and a 6-digit code; accepted once the key is open (then `signer` holds it,
    and it is kept for the desk for UNLOCK_MINUTES)."""

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.signer: Signer | None = None
        self.setObjectName("step_up_dialog")
        self.setWindowTitle(tr("Unlock your prescribing key"))
        explain = QLabel(tr("Type your password and the code your authenticator app shows "
                            "now. The key stays open for {n} minutes.", n=UNLOCK_MINUTES))
        explain.setWordWrap(True)
        self.password = QLineEdit()
        self.password.setObjectName("step_up_password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.code = QLineEdit()
        self.code.setObjectName("step_up_code")
        self.code.setMaxLength(CODE_DIGITS)
        self.code.setPlaceholderText("123456")
        self.code.setValidator(QtGui.QRegularExpressionValidator(r"\d{0,6}"))
        self.code.setInputMethodHints(Qt.InputMethodHint.ImhDigitsOnly)
        self.error = QLabel()
        self.error.setObjectName("step_up_error")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        form = QFormLayout()
        form.addRow(tr("Password"), self.password)
        form.addRow(tr("Code"), self.code)
        buttons = QDialogButtonBox()
        self.unlock_button = buttons.addButton(tr("Unlock"),
                                               QDialogButtonBox.ButtonRole.AcceptRole)
        self.unlock_button.setObjectName("step_up_unlock")
        self.unlock_button.setDefault(True)
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.submit)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(explain)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def _say(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    def submit(self) -> None:
        password, code = self.password.text(), self.code.text().strip()
        if not password:
            self._say(tr("Type your password."))
            self.password.setFocus()
            return
        if len(code) != CODE_DIGITS:
            self._say(tr("Type the 6-digit code your authenticator app shows now."))
            self.code.setFocus()
            return
        self._say("")
        self.unlock_button.setEnabled(False)
        engine, user_id = self.desk.engine, self.desk.session.user_id
        self.desk.tasks.db.run(
            lambda: unlock(engine, user_id=user_id, password=password, code=code),
            on_done=self._opened, on_error=self._refused, owner=self)

    def _opened(self, signer: Signer) -> None:
        self.signer = signer
        keep_signer(self.desk, signer)
        self.password.clear()
        self.accept()

    def _refused(self, exc: BaseException) -> None:
        self.unlock_button.setEnabled(True)
        self.code.clear()
        if isinstance(exc, WrongUnlock):
            self._say(tr(str(exc)))
            self.code.setFocus()
        elif isinstance(exc, SigningError):
            self._say(signing_error_text(exc, self.desk))
        else:
            self._say(tr("Your prescribing key could not be opened: {error}", error=str(exc)))
