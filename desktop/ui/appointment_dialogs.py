"""What the front desk does with one appointment from the calendar: the appointment's own
dialog (check in, no-show, payment, what the patient was sent) and the cancel and
reschedule dialogs it opens."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from desktop.operations.appointments import (
    AppointmentError,
    cancel_offline,
    check_cancel_reason,
    check_command,
    check_in_offline,
    no_show_offline,
    reschedule_offline,
)
from desktop.operations.schedule import Booking, ProviderInfo, provider_free_slots
from desktop.ui.calendar_common import (
    APPOINTMENTS,
    STATUS_STYLES,
    Alive,
    announce,
    error_label,
    error_text,
    plain_label,
    qdate,
    qlocale,
    set_text,
    slot_minutes,
    slot_text,
)
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.payments import PaymentDialog
from desktop.ui.qt import (
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QtWidgets,
    QVBoxLayout,
    QWidget,
)
from desktop.ui.reminders import REMINDER_READERS, RemindersDialog, when_text
from shared_models.enums import AppointmentStatus
from shared_models.scheduling import Slot
from shared_models.schemas.payments import PAYABLE_STATUSES, PAYMENT_ROLES
from shared_models.tables import appointment

S = AppointmentStatus
CASHIERS = frozenset(role.value for role in PAYMENT_ROLES)
PAYABLE = PAYABLE_STATUSES


class AppointmentDialog(QDialog):
    """What the front desk can do with one appointment: check in, no-show, reschedule,
    cancel. A command the appointment's state or the user's role does not allow is
    refused with the reason, before anything is written."""

    def __init__(self, desk: Desk, booking: Booking, provider: ProviderInfo | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self.provider = provider
        self.sub_dialog: QDialog | None = None
        self._alive = Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("appointment_dialog")
        self.setWindowTitle(tr("Appointment"))
        style = STATUS_STYLES[booking.status]
        day = qlocale().toString(qdate(booking.start.astimezone(zone).date()),
                                  "dddd d MMMM yyyy")
        self.summary = QLabel(
            f"<b>{html.escape(booking.patient_name)}</b><br>{day}, "
            f"{slot_text(Slot(booking.start, booking.end), zone)} ({zone.key})<br>"
            f"{html.escape(provider.name) if provider else ''}")
        self.status = QLabel(tr(style.label))
        self.status.setObjectName("appointment_status")
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Maximum,
                                  QtWidgets.QSizePolicy.Policy.Preferred)
        self.status.setStyleSheet(f"background: {style.fill}; color: {style.text}; "
                                  f"border: 1px solid {style.border}; padding: 2px 8px")
        form = QFormLayout()
        form.addRow(tr("Status"), self.status)
        if booking.reason:
            form.addRow(tr("Reason"), plain_label(booking.reason))
        if booking.cancel_reason:
            form.addRow(tr("Cancelled because"), plain_label(booking.cancel_reason))
        if booking.confirmed_at is not None:
            confirmed = plain_label(tr("✓ By the patient, {when}",
                                       when=when_text(booking.confirmed_at, zone)))
            confirmed.setObjectName("appointment_confirmed")
            form.addRow(tr("Confirmed"), confirmed)
        self.note = QLabel()
        self.note.setWordWrap(True)
        if booking.status is S.PENDING:
            self.note.setText(tr("Waiting for the server to confirm this booking."))
        elif booking.status is S.REJECTED:
            self.note.setText(tr("The server refused this booking: the time was no longer "
                                 "free. Rebook it from Needs attention."))
        self.note.setVisible(bool(self.note.text()))
        self.check_in_button = QPushButton(tr("Check in"))
        self.check_in_button.setObjectName("appointment_check_in")
        self.no_show_button = QPushButton(tr("No-show"))
        self.no_show_button.setObjectName("appointment_no_show")
        self.reschedule_button = QPushButton(tr("Reschedule…"))
        self.reschedule_button.setObjectName("appointment_reschedule")
        self.cancel_button = QPushButton(tr("Cancel appointment…"))
        self.cancel_button.setObjectName("appointment_cancel")
        self.payment_button = QPushButton(tr("Take payment…"))
        self.payment_button.setObjectName("appointment_payment")
        # Money is the front desk's: doctors and others never see the action.
        self.payment_button.setVisible(desk.session.role in CASHIERS
                                       and booking.status in PAYABLE)
        self.payment_button.clicked.connect(self.take_payment)
        self.reminders_button = QPushButton(tr("Reminders…"))
        self.reminders_button.setObjectName("appointment_reminders")
        self.reminders_button.setToolTip(tr("What the patient was sent about this appointment"))
        self.reminders_button.setVisible(desk.session.role in REMINDER_READERS)
        self.reminders_button.clicked.connect(self.show_reminders)
        self.close_button = QPushButton(tr("Close"))
        self.close_button.setObjectName("appointment_close")
        self.error = error_label("appointment_error")
        commands = {"check_in": self.check_in_button, "no_show": self.no_show_button,
                    "reschedule": self.reschedule_button, "cancel": self.cancel_button}
        for command, button in commands.items():
            button.clicked.connect(lambda _c=False, c=command: self.run(c))
            try:
                check_command(command, status=booking.status, role=desk.session.role)
            except AppointmentError as exc:
                button.setToolTip(error_text(exc))
        self.close_button.clicked.connect(self.reject)
        actions = QHBoxLayout()
        for button in (*commands.values(), self.payment_button, self.reminders_button,
                       self.close_button):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addLayout(actions)

    def run(self, command: str) -> None:
        set_text(self.error, "")
        desk, booking = self.desk, self.booking
        try:
            check_command(command, status=booking.status, role=desk.session.role)
        except AppointmentError as exc:
            set_text(self.error, error_text(exc))
            return
        if command == "cancel":
            self._open(CancelDialog(desk, booking, self))
            return
        if command == "reschedule":
            self._open(RescheduleDialog(desk, booking, self))
            return
        operation = check_in_offline if command == "check_in" else no_show_offline
        for button in (self.check_in_button, self.no_show_button):
            button.setEnabled(False)

        def work() -> None:
            operation(desk.engine, desk.clock, booking.id, role=desk.session.role)

        desk.tasks.db.run(work, on_done=announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _open(self, dialog: QDialog) -> None:
        self.sub_dialog = dialog
        dialog.accepted.connect(self.accept)
        dialog.open()

    def show_reminders(self) -> None:
        """Opened over this dialog, which stays open behind it."""
        self.sub_dialog = RemindersDialog(self.desk, self.booking, self)
        self.sub_dialog.open()

    def take_payment(self) -> None:
        desk, appointment_id = self.desk, self.booking.id

        def work() -> Any:
            with desk.engine.connect() as conn:
                return conn.execute(select(appointment).where(
                    appointment.c.id == appointment_id)).one()
        desk.tasks.db.run(work, on_done=lambda row: self._open(PaymentDialog(desk, row, self)),
                          on_error=self._failed, owner=self)

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        for button in (self.check_in_button, self.no_show_button):
            button.setEnabled(True)
        set_text(self.error, error_text(exc))


def act_or_back(dialog: QDialog, label: str, name: str, act: Callable[[], None]
                ) -> tuple[QDialogButtonBox, QPushButton]:
    """The two buttons of a step: do it (`label`), or go back to the appointment."""
    buttons = QDialogButtonBox()
    button = buttons.addButton(label, QDialogButtonBox.ButtonRole.AcceptRole)
    button.setObjectName(name)
    buttons.addButton(tr("Back"), QDialogButtonBox.ButtonRole.RejectRole)
    buttons.accepted.connect(act)
    buttons.rejected.connect(dialog.reject)
    return buttons, button


class CancelDialog(QDialog):
    """Cancelling asks why: the clinic keeps the reason with the appointment."""

    def __init__(self, desk: Desk, booking: Booking, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self._alive = Alive(self)
        self.setObjectName("cancel_dialog")
        self.setWindowTitle(tr("Cancel appointment"))
        self.reason = QLineEdit()
        self.reason.setObjectName("cancel_reason")
        self.reason.setPlaceholderText(tr("Why is it cancelled?"))
        self.error = error_label("cancel_error")
        buttons, self.confirm_button = act_or_back(self, tr("Cancel appointment"),
                                                   "cancel_confirm", self.confirm)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("Reason")))
        layout.addWidget(self.reason)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def confirm(self) -> None:
        try:
            reason = check_cancel_reason(self.reason.text())
        except AppointmentError as exc:
            set_text(self.error, error_text(exc))
            self.reason.setFocus()
            return
        set_text(self.error, "")
        self.confirm_button.setEnabled(False)
        desk, booking = self.desk, self.booking

        def work() -> None:
            cancel_offline(desk.engine, desk.clock, booking.id, role=desk.session.role,
                           reason=reason)

        desk.tasks.db.run(work, on_done=announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.confirm_button.setEnabled(True)
        set_text(self.error, error_text(exc))


class RescheduleDialog(QDialog):
    """Move an appointment to another free time of the same provider: pick a day, then
    one of its free slots."""

    def __init__(self, desk: Desk, booking: Booking, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self.slots: list[Slot] = []
        self._generation = 0
        self._alive = Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("reschedule_dialog")
        self.setWindowTitle(tr("Reschedule"))
        today = datetime.now(UTC).astimezone(zone).date()
        self.date = QDateEdit(qdate(max(today, booking.start.astimezone(zone).date())))
        self.date.setObjectName("reschedule_date")
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        self.date.setMinimumDate(qdate(today))
        self.list = QListWidget()
        self.list.setObjectName("reschedule_slots")
        self.empty = QLabel(tr("No free times on this day."))
        self.empty.setObjectName("reschedule_empty")
        self.empty.setVisible(False)
        self.error = error_label("reschedule_error")
        buttons, self.move_button = act_or_back(self, tr("Move here"), "reschedule_move",
                                                self.move_here)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("Day")))
        layout.addWidget(self.date)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.date.dateChanged.connect(lambda _d: self.load())
        self.list.itemDoubleClicked.connect(lambda _i: self.move_here())
        self.load()

    def chosen_day(self) -> date:
        picked: date = self.date.date().toPython()  # type: ignore[assignment]
        return picked

    def load(self) -> None:
        self._generation += 1
        generation, desk, booking, day = (self._generation, self.desk, self.booking,
                                          self.chosen_day())
        self.desk.tasks.db.run(
            lambda: provider_free_slots(desk.engine, provider_id=booking.provider_id, day=day,
                                        zone=desk.clinic.timezone,
                                        ignore_appointment=booking.id),
            on_done=lambda slots: self._loaded(generation, slots),
            on_error=lambda exc: set_text(self.error, error_text(exc)), owner=self)

    def _loaded(self, generation: int, slots: list[Slot]) -> None:
        if generation != self._generation:
            return
        zone = self.desk.clinic.timezone
        self.slots = [s for s in slots if (s.start, s.end)
                      != (self.booking.start, self.booking.end)]
        self.list.clear()
        for slot in self.slots:
            self.list.addItem(slot_text(slot, zone))
        self.empty.setVisible(not self.slots)

    def move_here(self) -> None:
        index = self.list.currentRow()
        if not 0 <= index < len(self.slots):
            set_text(self.error, tr("Choose one of the free times."))
            return
        set_text(self.error, "")
        slot, desk, booking = self.slots[index], self.desk, self.booking
        self.move_button.setEnabled(False)

        def work() -> None:
            reschedule_offline(desk.engine, desk.clock, booking.id, role=desk.session.role,
                               zone=desk.clinic.timezone, start=slot.start,
                               minutes=slot_minutes(slot))

        desk.tasks.db.run(work, on_done=announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.move_button.setEnabled(True)
        set_text(self.error, error_text(exc))
