"""What the patient was sent: one appointment's messages (desktop.ui.appointment_dialogs
opens the dialog) and the messages that failed for good, each with "Send again" (shown in
Needs attention). Both ask the server on the network worker; offline they say so.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from desktop.operations.reminders import appointment_reminders, dead_letters, retry
from desktop.operations.schedule import Booking
from desktop.sync.errors import RequestRefused, SyncAuthError, SyncNetworkError
from desktop.ui.calendar_common import ERROR_STYLE, qdate, qlocale, set_text, slot_text
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QtGui,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.enums import AppointmentStatus, Channel
from shared_models.scheduling import Slot
from shared_models.schemas.reminders import DeadLetter, ReminderAttemptPublic, ReminderPublic

S = AppointmentStatus
# Who may read an appointment's messages, and who may send a failed one again (the
# server's FrontDesk and FrontOffice roles).
REMINDER_READERS = frozenset({"admin", "receptionist", "doctor"})
RETRIERS = frozenset({"admin", "receptionist"})
NOTE_STYLE = "color: #1b5e20"
CHANNELS = {Channel.EMAIL: "E-mail", Channel.SMS: "SMS", Channel.WHATSAPP: "WhatsApp"}
OUTCOMES = {"delivered": "Delivered", "temporary_failure": "Failed, tried again later",
            "permanent_failure": "Refused by the provider"}
OFFLINE = ("Reminder status needs the connection to the server, and this computer cannot "
           "reach it now. Try again when it is back online.")


# --- how a message reads ------------------------------------------------------------------


def lead_text(minutes: int) -> str:
    """How long before the appointment: "24 h", "2 days", "1 h 30 min", "45 min"."""
    if minutes >= 2 * 1440 and minutes % 1440 == 0:
        return tr("{n} days", n=minutes // 1440)
    if minutes >= 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{minutes} min"


def kind_text(kind: str, offset_minutes: int | None = None) -> str:
    if kind == "rescheduled":
        return tr("Change notice")
    if kind == "cancelled":
        return tr("Cancellation notice")
    if offset_minutes is None:
        return tr("Appointment reminder")
    return tr("Reminder {lead} before", lead=lead_text(offset_minutes))


def when_text(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{qlocale().toString(qdate(local.date()), 'ddd d MMM')} {local:%H:%M}"


def channel_text(channel: Channel | None) -> str:
    return tr(CHANNELS[channel]) if channel is not None else "—"


def status_text(message: ReminderPublic) -> str:
    if message.status == "pending":
        if message.attempts:
            return tr("Trying again ({n} failed tries)", n=message.attempts)
        return tr("Waiting to be sent")
    if message.status == "sent":
        return tr("Sent")
    if message.status == "dead":
        return tr("Failed after {n} tries", n=message.attempts)
    if message.status == "cancelled":
        return tr("Not sent: no longer needed")
    return tr("Not sent")


def reason_text(reason: str | None) -> str:
    """The server's note on a message (why it failed or was not sent), translated when it
    is one of the server's own reasons; a provider's error reads as it came."""
    return tr(reason) if reason else ""


def try_text(attempt: ReminderAttemptPublic, zone: ZoneInfo) -> str:
    text = (f"{when_text(attempt.attempted_at, zone)} · {channel_text(attempt.channel)} · "
            f"{tr(OUTCOMES[attempt.outcome])}")
    return f"{text}: {attempt.error}" if attempt.error else text


def refusal_text(exc: RequestRefused) -> str:
    """The server's reason for refusing, translated when it is one of its known
    sentences (desktop.ui.i18n), else as the server wrote it."""
    return tr(str(exc))


def problem_text(exc: BaseException) -> str:
    """Why the server's answer is not on screen, for a person."""
    if isinstance(exc, SyncNetworkError):
        return tr(OFFLINE)
    if isinstance(exc, RequestRefused):
        return refusal_text(exc)
    if isinstance(exc, SyncAuthError):
        return tr("The server did not accept this session: {error}", error=str(exc))
    return tr("Reminder status could not be loaded: {error}", error=str(exc))


# --- one appointment's messages ---------------------------------------------------------------


class RemindersDialog(QDialog):
    """Every message about one appointment: what it is, when it is or was due, how it
    went, on which channel, when it was sent and why it failed. Each try is in the row's
    tooltip."""

    COLUMNS = ("Message", "Due", "Status", "Channel", "Sent at", "Problem")

    def __init__(self, desk: Desk, booking: Booking, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self.messages: list[ReminderPublic] = []
        self._generation = 0
        zone = desk.clinic.timezone
        self.setObjectName("reminders_dialog")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # opened anew each time
        self.setWindowTitle(tr("Reminders"))
        self.resize(940, 320)
        day = qlocale().toString(qdate(booking.start.astimezone(zone).date()),
                                  "dddd d MMMM yyyy")
        about = tr("Messages to the patient about this appointment. Times in {zone}.",
                   zone=zone.key)
        summary = QLabel(
            f"<b>{html.escape(booking.patient_name)}</b> · {day}, "
            f"{slot_text(Slot(booking.start, booking.end), zone)}<br>{html.escape(about)}")
        summary.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("reminders_note")
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setObjectName("reminders_table")
        self.table.setHorizontalHeaderLabels([tr(c) for c in self.COLUMNS])
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.refresh_button = QPushButton(tr("Refresh"))
        self.refresh_button.setObjectName("reminders_refresh")
        self.refresh_button.clicked.connect(self.load)
        close = QPushButton(tr("Close"))
        close.setObjectName("reminders_close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.load()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setStyleSheet(ERROR_STYLE if error else "")
        set_text(self.note, text)

    def load(self) -> None:
        server, booking = self.desk.server, self.booking
        if booking.status is S.PENDING:
            self._show_messages([], tr("This booking has not reached the server yet; its "
                                       "reminders are planned when it does."))
            return
        if booking.status is S.REJECTED:
            self._show_messages([], tr("The server refused this booking; no messages were "
                                       "planned for it."))
            return
        if server is None:
            self._failed(SyncNetworkError("no server"))
            return
        self._generation += 1
        generation = self._generation
        self.refresh_button.setEnabled(False)
        self._say(tr("Loading…"))
        self.desk.tasks.net.run(
            lambda: appointment_reminders(server, booking.id),
            on_done=lambda found: self._loaded(generation, found),
            on_error=lambda exc: self._failed(exc, generation), owner=self)

    def _loaded(self, generation: int, messages: list[ReminderPublic]) -> None:
        if generation != self._generation:
            return
        self.refresh_button.setEnabled(True)
        self._show_messages(messages, "" if messages else tr(
            "No messages for this appointment: none were due when it was booked, or the "
            "clinic sends no reminders."))

    def _failed(self, exc: BaseException, generation: int | None = None) -> None:
        if generation is not None and generation != self._generation:
            return
        self.refresh_button.setEnabled(True)
        self.messages = []
        self.table.setRowCount(0)
        self._say(problem_text(exc), error=not isinstance(exc, SyncNetworkError))

    def _show_messages(self, messages: list[ReminderPublic], note: str) -> None:
        zone = self.desk.clinic.timezone
        self.messages = messages
        self._say(note)
        self.table.setRowCount(len(messages))
        for row, message in enumerate(messages):
            cells = (kind_text(message.kind, message.offset_minutes),
                     when_text(message.due_at, zone), status_text(message),
                     channel_text(message.channel),
                     when_text(message.sent_at, zone) if message.sent_at else "—",
                     reason_text(message.last_error))
            tries = "\n".join(try_text(t, zone) for t in message.tries)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if tries:
                    item.setToolTip(f"{tr('Tries')}:\n{tries}")
                if message.status == "dead":
                    item.setForeground(QtGui.QColor("#b00020"))
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)

    def cell(self, row: int, column: str) -> str:
        """The text shown for one message (a row) under one of COLUMNS."""
        item = self.table.item(row, self.COLUMNS.index(column))
        return item.text() if item is not None else ""


# --- messages that failed for good -----------------------------------------------------------


class DeadLetterItem(QWidget):
    def __init__(self, panel: DeadLettersPanel, letter: DeadLetter) -> None:
        super().__init__()
        self.letter = letter
        self.setObjectName(f"dead_letter_{letter.id}")
        zone = panel.desk.clinic.timezone
        failed = tr("failed after {n} tries", n=letter.attempts)
        if letter.last_error:
            failed += f": {letter.last_error}"
        when = tr("appointment {when}", when=when_text(letter.appointment_starts_at, zone))
        self.text = QLabel(
            f"<b>{html.escape(letter.patient_name)}</b> · {html.escape(when)}"
            f"<br>{html.escape(kind_text(letter.kind, letter.offset_minutes))} "
            f"({html.escape(channel_text(letter.channel))}) — {html.escape(failed)}")
        self.text.setWordWrap(True)
        self.retry_button = QPushButton(tr("Send again"))
        self.retry_button.setObjectName("dead_letter_retry")
        self.retry_button.setVisible(panel.desk.session.role in RETRIERS)
        self.retry_button.clicked.connect(lambda: panel.send_again(self))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.addWidget(self.text, 1)
        row.addWidget(self.retry_button)


class DeadLettersPanel(QWidget):
    """The clinic's messages that failed after every attempt, newest first, each with a
    "Send again". The workspace holding it calls `refresh` (when shown, after a sync);
    hidden while there are none. `loaded` fires each time an answer is on screen."""

    loaded = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.letters: list[DeadLetter] = []
        self.items: dict[uuid.UUID, DeadLetterItem] = {}
        self.message_box: QMessageBox | None = None
        self._generation = 0
        self.setObjectName("dead_letters")
        title = QLabel(f"<b>{html.escape(tr('Messages that could not be sent'))}</b>")
        explain = QLabel(tr("The patient did not get these messages. Check the patient's "
                            "phone or e-mail, then send again."))
        explain.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("dead_letters_note")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.list = QVBoxLayout()
        self.list.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 8, 0, 0)
        layout.addWidget(title)
        layout.addWidget(explain)
        layout.addWidget(self.note)
        layout.addLayout(self.list)
        self.setVisible(False)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setStyleSheet(ERROR_STYLE if error else NOTE_STYLE)
        set_text(self.note, text)

    def refresh(self) -> None:
        server = self.desk.server
        if server is None or self.desk.session.role not in RETRIERS:
            return  # no server to ask, or a role the server would not tell
        self._generation += 1
        generation = self._generation
        self.desk.tasks.net.run(lambda: dead_letters(server),
                                on_done=lambda found: self._loaded(generation, found),
                                on_error=lambda exc: self._failed(generation, exc),
                                owner=self)

    def _loaded(self, generation: int, letters: list[DeadLetter]) -> None:
        if generation != self._generation:
            return  # an older answer arriving after a newer question
        self._say("")
        self._show(letters)

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self._say(tr("Messages that could not be sent are kept on the server; they show "
                     "here when this computer can reach it.")
                  if isinstance(exc, SyncNetworkError) else problem_text(exc),
                  error=not isinstance(exc, SyncNetworkError))
        self._show([])

    def _show(self, letters: list[DeadLetter]) -> None:
        self.letters = letters
        for item in self.items.values():
            item.deleteLater()
        self.items = {}
        for letter in letters:
            item = DeadLetterItem(self, letter)
            self.items[letter.id] = item
            self.list.addWidget(item)
        self.setVisible(bool(letters) or self.note.isVisibleTo(self))
        self.loaded.emit()

    def send_again(self, item: DeadLetterItem) -> None:
        server, letter = self.desk.server, item.letter
        if server is None:
            self._refused(SyncNetworkError("no server"))
            return
        item.retry_button.setEnabled(False)
        item.retry_button.setText(tr("Sending…"))
        self.desk.tasks.net.run(lambda: retry(server, letter.id),
                                on_done=lambda _r: self._sent(letter),
                                on_error=lambda exc: self._not_sent(letter, exc), owner=self)

    def _sent(self, letter: DeadLetter) -> None:
        self._say(tr("The message to {patient} will go out again in a moment.",
                     patient=letter.patient_name))
        self._remove(letter.id)
        self.loaded.emit()

    def _remove(self, letter_id: uuid.UUID) -> None:
        self.letters = [x for x in self.letters if x.id != letter_id]
        item = self.items.pop(letter_id, None)
        if item is not None:
            self.list.removeWidget(item)
            item.deleteLater()
        self.setVisible(bool(self.letters) or self.note.isVisibleTo(self))

    def _not_sent(self, letter: DeadLetter, exc: BaseException) -> None:
        item = self.items.get(letter.id)
        if item is not None:
            item.retry_button.setEnabled(True)
            item.retry_button.setText(tr("Send again"))
        self._refused(exc)
        if isinstance(exc, RequestRefused):
            self.refresh()  # the list was out of date: show what the server has now

    def _refused(self, exc: BaseException) -> None:
        text = (tr("Sending again needs the connection to the server, and this computer "
                   "cannot reach it now. Try again when it is back online.")
                if isinstance(exc, SyncNetworkError) else problem_text(exc))
        if self.message_box is not None:
            self.message_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, tr("Send again"), text,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("dead_letter_refused")
        self.message_box = box
        box.open()
