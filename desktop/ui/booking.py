"""Booking a free slot from the calendar: the patient found by typing or registered in
place, and the reason for the visit, saved on the database worker."""

from __future__ import annotations

import html
import uuid
from typing import Any

from sqlalchemy import Row

from desktop.operations.appointments import book_slot_offline, check_booking
from desktop.operations.patients import PatientInvalid, check_patient, register_patient
from desktop.operations.schedule import ProviderInfo
from desktop.store.search import search_patients
from desktop.ui.calendar_common import (
    APPOINTMENTS,
    Alive,
    announce,
    error_label,
    error_text,
    qdate,
    qlocale,
    set_text,
    slot_minutes,
    slot_text,
)
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTimer,
    QVBoxLayout,
    QWidget,
)
from shared_models.scheduling import Slot

SEARCH_DELAY_MS = 150
NEW_PATIENT_FIELDS = ("given_name", "family_name", "phone", "date_of_birth")
NEW_PATIENT_LABELS = {"given_name": "Given name", "family_name": "Family name",
                      "phone": "Phone", "date_of_birth": "Date of birth"}


class BookingDialog(QDialog):
    """Book a free slot: find the patient by typing, or register one in place, and say
    why they come. Saved on the database worker as a pending booking."""

    def __init__(self, desk: Desk, provider: ProviderInfo, slot: Slot,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.provider = provider
        self.slot = slot
        self.rows: list[Row[Any]] = []
        self.booked_id: uuid.UUID | None = None
        self._registered: uuid.UUID | None = None
        self._generation = 0
        self._alive = Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("booking_dialog")
        self.setWindowTitle(tr("Book an appointment"))
        day = qlocale().toString(qdate(slot.start.astimezone(zone).date()), "dddd d MMMM yyyy")
        self.when = QLabel(f"<b>{html.escape(provider.name)}</b><br>{day}, "
                           f"{slot_text(slot, zone)} ({zone.key})")
        self.when.setObjectName("booking_when")
        self.search = QLineEdit()
        self.search.setObjectName("booking_search")
        self.search.setPlaceholderText(tr("Search by name, phone or record number"))
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setObjectName("booking_results")
        self.new_button = QPushButton(tr("New patient"))
        self.new_button.setObjectName("booking_new_patient")
        self.new_button.setCheckable(True)
        self.inputs: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        self.new_box = QWidget()
        form = QFormLayout(self.new_box)
        for name in NEW_PATIENT_FIELDS:
            box = QLineEdit()
            box.setObjectName(f"booking_{name}")
            if name == "date_of_birth":
                box.setPlaceholderText("YYYY-MM-DD")
            error = error_label(f"booking_error_{name}")
            column = QVBoxLayout()
            column.addWidget(box)
            column.addWidget(error)
            form.addRow(tr(NEW_PATIENT_LABELS[name]), column)
            self.inputs[name], self.errors[name] = box, error
        self.new_box.setVisible(False)
        self.reason = QLineEdit()
        self.reason.setObjectName("booking_reason")
        self.reason.setPlaceholderText(tr("Reason for the visit (optional)"))
        self.reason.setMaxLength(500)
        self.error = error_label("booking_error")
        buttons = QDialogButtonBox()
        self.book_button = buttons.addButton(tr("Book"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.book_button.setObjectName("booking_book")
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.book)
        buttons.rejected.connect(self.reject)
        finder = QHBoxLayout()
        finder.addWidget(self.search, 1)
        finder.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.when)
        layout.addLayout(finder)
        layout.addWidget(self.results)
        layout.addWidget(self.new_box)
        layout.addWidget(QLabel(tr("Reason")))
        layout.addWidget(self.reason)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SEARCH_DELAY_MS)
        self.timer.timeout.connect(self.look_up)
        self.search.textChanged.connect(lambda _t: self.timer.start())
        self.new_button.toggled.connect(self._new_patient_mode)
        self.resize(460, 520)
        self.look_up()

    def look_up(self) -> None:
        self._generation += 1
        generation, text, engine = self._generation, self.search.text(), self.desk.engine
        self.desk.tasks.db.run(lambda: search_patients(engine, text),
                               on_done=lambda rows: self._found(generation, rows), owner=self)

    def _found(self, generation: int, rows: list[Row[Any]]) -> None:
        if generation != self._generation:
            return
        self.rows = rows
        self.results.clear()
        for row in rows:
            details = " · ".join(str(v) for v in (row.phone, row.mrn) if v)
            self.results.addItem(QListWidgetItem(
                f"{row.family_name}, {row.given_name}" + (f"  ({details})" if details else "")))
        if len(rows) == 1:
            self.results.setCurrentRow(0)

    def _new_patient_mode(self, on: bool) -> None:
        self.new_box.setVisible(on)
        self.search.setEnabled(not on)
        self.results.setEnabled(not on)
        set_text(self.error, "")

    def selected_patient(self) -> Row[Any] | None:
        index = self.results.currentRow()
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def show_problems(self, problems: dict[str, tuple[str, dict[str, object]]]) -> None:
        for name, label in self.errors.items():
            problem = problems.get(name)
            set_text(label, tr(problem[0], **problem[1]) if problem else "")
        first = next((n for n in NEW_PATIENT_FIELDS if n in problems), None)
        if first is not None:
            self.inputs[first].setFocus()

    def book(self) -> None:
        set_text(self.error, "")
        fields: dict[str, Any] | None = None
        patient_id: uuid.UUID | None = None
        if self.new_button.isChecked() and self._registered is None:
            typed = {name: box.text() for name, box in self.inputs.items()}
            problems: dict[str, tuple[str, dict[str, object]]] = {}
            try:
                fields = check_patient(typed, region=self.desk.clinic.country)
            except PatientInvalid as invalid:
                problems = dict(invalid.problems)
            if not typed["phone"].strip():
                problems.setdefault("phone", ("Required.", {}))  # the desk calls back on it
            self.show_problems(problems)
            if problems:
                return
        elif self.new_button.isChecked():
            patient_id = self._registered
        else:
            chosen = self.selected_patient()
            if chosen is None:
                set_text(self.error, tr("Choose a patient, or add a new one."))
                return
            patient_id = chosen.id
        self.book_button.setEnabled(False)
        desk, provider, slot = self.desk, self.provider, self.slot
        zone, role, reason = desk.clinic.timezone, desk.session.role, self.reason.text()
        registered: list[uuid.UUID] = []

        def work() -> uuid.UUID:
            # Checked before a typed-in patient is registered, so a taken slot does not
            # leave a new patient behind without the booking they came for.
            check_booking(desk.engine, role=role, patient_id=patient_id,
                          provider_id=provider.id, start=slot.start, minutes=slot_minutes(slot),
                          zone=zone, reason=reason)
            who = patient_id
            if who is None:
                assert fields is not None
                who = register_patient(desk.engine, desk.clock,
                                       clinic_id=desk.session.clinic_id, fields=fields)
                registered.append(who)
            return book_slot_offline(desk.engine, desk.clock, role=role,
                                     clinic_id=desk.session.clinic_id, patient_id=who,
                                     provider_id=provider.id, start=slot.start,
                                     minutes=slot_minutes(slot), zone=zone, reason=reason)

        def touched() -> tuple[str, ...]:
            return ("appointment", "patient") if registered else APPOINTMENTS

        def failed(exc: BaseException) -> None:
            if registered:  # the patient was saved even though the booking was not
                desk.changed("patient")
            self._alive(lambda e: self._failed(e, registered))(exc)

        desk.tasks.db.run(work, on_done=announce(desk, touched, self._alive(self._booked)),
                          on_error=failed)

    def _booked(self, appointment_id: uuid.UUID) -> None:
        self.booked_id = appointment_id
        self.accept()

    def _failed(self, exc: BaseException, registered: list[uuid.UUID]) -> None:
        if registered:  # the patient was saved: booking again must not register them twice
            self._registered = registered[0]
            for box in self.inputs.values():
                box.setEnabled(False)
        self.book_button.setEnabled(True)
        set_text(self.error, error_text(exc))
