"""The front desk's patient list: search as you type over the local store, a form to
register or edit a patient with the problems shown beside each field, and the patient's
appointment history."""

from __future__ import annotations

from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import Row, select

from desktop.operations.patients import (
    PatientInvalid,
    check_patient,
    edit_patient,
    register_patient,
)
from desktop.store.search import search_patients
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTimer,
    QVBoxLayout,
    QWidget,
)
from shared_models.tables import appointment

SEARCH_DELAY_MS = 150
FIELDS = ("given_name", "family_name", "date_of_birth", "phone", "email", "address")
LABELS = {"given_name": "Given name", "family_name": "Family name",
          "date_of_birth": "Date of birth", "phone": "Phone", "email": "E-mail",
          "address": "Address"}
# What decides how the patient is reminded: channels in order of preference, language,
# and the time zone quiet hours are kept in (empty: the clinic's).
REMINDER_FIELDS = ("preferred_channels", "preferred_language", "timezone")
CHANNEL_LABELS = {"whatsapp": "WhatsApp", "sms": "SMS", "email": "E-mail"}
LANGUAGES = {"es": "Español", "en": "English"}


class PatientDialog(QDialog):
    """Register a patient, or edit one (`current` given). Saving happens on the database
    worker; the dialog closes when the store has the change."""

    def __init__(self, desk: Desk, current: Row[Any] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.current = current
        self.setObjectName("patient_dialog")
        self.setWindowTitle(tr("Edit patient") if current else tr("New patient"))
        self.inputs: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        for field in FIELDS:
            box = QLineEdit()
            box.setObjectName(f"field_{field}")
            if field == "date_of_birth":
                box.setPlaceholderText("YYYY-MM-DD")
            if current is not None and getattr(current, field) is not None:
                box.setText(str(getattr(current, field)))
            error = QLabel()
            error.setObjectName(f"error_{field}")
            error.setStyleSheet("color: #b00020")
            error.setVisible(False)
            column = QVBoxLayout()
            column.addWidget(box)
            column.addWidget(error)
            form.addRow(tr(LABELS[field]), column)
            self.inputs[field] = box
            self.errors[field] = error
        self._reminder_rows(form, current)
        buttons = QDialogButtonBox()
        self.save_button = buttons.addButton(tr("Save"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setObjectName("save_patient")
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _reminder_rows(self, form: QFormLayout, current: Row[Any] | None) -> None:
        stored = list(current.preferred_channels or []) if current is not None else []
        # The patient's own order first, then the rest as offered.
        order = [*stored, *(c for c in CHANNEL_LABELS if c not in stored)]
        self.channels: dict[str, QCheckBox] = {}
        row = QHBoxLayout()
        for channel in order:
            box = QCheckBox(tr(CHANNEL_LABELS[channel]))
            box.setObjectName(f"channel_{channel}")
            box.setChecked(channel in stored)
            row.addWidget(box)
            self.channels[channel] = box
        row.addStretch(1)
        self.channel_error = QLabel()
        self.channel_error.setObjectName("error_preferred_channels")
        self.channel_error.setStyleSheet("color: #b00020")
        self.channel_error.setVisible(False)
        column = QVBoxLayout()
        column.addLayout(row)
        column.addWidget(self.channel_error)
        form.addRow(tr("Reminders by"), column)
        self.language = QComboBox()
        self.language.setObjectName("field_preferred_language")
        for code, name in LANGUAGES.items():
            self.language.addItem(name, code)
        if current is not None:
            self.language.setCurrentIndex(max(0, self.language.findData(
                current.preferred_language)))
        form.addRow(tr("Language of messages"), self.language)
        self.zone = QComboBox()
        self.zone.setObjectName("field_timezone")
        self.zone.addItem(tr("The clinic's ({zone})", zone=self.desk.clinic.timezone.key), "")
        for name in sorted(available_timezones()):
            self.zone.addItem(name.replace("_", " "), name)
        if current is not None and current.timezone:
            self.zone.setCurrentIndex(max(0, self.zone.findData(current.timezone)))
        form.addRow(tr("Time zone"), self.zone)

    def typed(self) -> dict[str, Any]:
        fields: dict[str, Any] = {field: box.text() for field, box in self.inputs.items()}
        fields["preferred_channels"] = [c for c, box in self.channels.items() if box.isChecked()]
        fields["preferred_language"] = self.language.currentData()
        fields["timezone"] = self.zone.currentData()
        return fields

    def show_problems(self, problems: dict[str, tuple[str, dict[str, object]]]) -> None:
        for field, label in {**self.errors, "preferred_channels": self.channel_error}.items():
            problem = problems.get(field)
            label.setText(tr(problem[0], **problem[1]) if problem else "")
            label.setVisible(problem is not None)
        first = next((f for f in FIELDS if f in problems), None)
        if first is not None:
            self.inputs[first].setFocus()

    def save(self) -> None:
        try:
            clean = check_patient(self.typed(), region=self.desk.clinic.country)
        except PatientInvalid as invalid:
            self.show_problems(invalid.problems)
            return
        self.show_problems({})
        self.save_button.setEnabled(False)
        desk, current = self.desk, self.current
        if current is None:
            def work() -> object:
                return register_patient(desk.engine, desk.clock,
                                        clinic_id=desk.session.clinic_id, fields=clean)
        else:
            changes = {f: clean.get(f) for f in FIELDS
                       if _text(getattr(current, f)) != _text(clean.get(f))}
            changes |= {f: clean.get(f, [] if f == "preferred_channels" else None)
                        for f in REMINDER_FIELDS
                        if _text(getattr(current, f) or None)
                        != _text(clean.get(f) or None)}

            def work() -> object:
                if changes:
                    edit_patient(desk.engine, desk.clock, current.id, changes)
                return current.id
        desk.tasks.db.run(work, on_done=self._saved, on_error=self._failed, owner=self)

    def _saved(self, _patient_id: object) -> None:
        self.desk.changed("patient")
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        QMessageBox.warning(self, tr("Save"), str(exc))


def _text(value: object) -> str:
    return "" if value is None else str(value)


class PatientsView(QWidget):
    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.search = QLineEdit()
        self.search.setObjectName("patient_search")
        self.search.setPlaceholderText(tr("Search by name, phone or record number"))
        self.search.setClearButtonEnabled(True)
        self.new_button = QPushButton(tr("New patient"))
        self.new_button.setObjectName("new_patient")
        self.results = QTableWidget(0, 4)
        self.results.setObjectName("patient_results")
        self.results.setHorizontalHeaderLabels(
            [tr("Record"), tr("Name"), tr("Phone"), tr("Date of birth")])
        self.results.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.results.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.empty = QLabel(tr("No patient matches."))
        self.empty.setObjectName("no_patient")
        self.empty.setVisible(False)
        self.history = QTableWidget(0, 3)
        self.history.setObjectName("patient_history")
        self.history.setHorizontalHeaderLabels([tr("Appointments"), tr("Status"), ""])
        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.results, 3)
        layout.addWidget(self.empty)
        layout.addWidget(self.history, 1)
        self.rows: list[Row[Any]] = []
        self._generation = 0
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SEARCH_DELAY_MS)
        self.timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self.timer.start())
        self.search.returnPressed.connect(self.refresh)
        self.new_button.clicked.connect(lambda: self.open_patient(None))
        self.results.cellDoubleClicked.connect(lambda r, _c: self.open_patient(self.rows[r]))
        self.results.itemSelectionChanged.connect(self._load_history)
        desk.data_changed.connect(self._on_data_changed)
        self.refresh()

    def refresh(self) -> None:
        self._generation += 1
        generation, text, engine = self._generation, self.search.text(), self.desk.engine
        self.desk.tasks.db.run(lambda: search_patients(engine, text),
                               on_done=lambda rows: self._show(generation, rows), owner=self)

    def _show(self, generation: int, rows: list[Row[Any]]) -> None:
        if generation != self._generation:
            return  # an older search answering after a newer one was typed
        self.rows = rows
        self.results.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, value in enumerate((row.mrn, f"{row.family_name}, {row.given_name}",
                                       row.phone or "", row.date_of_birth or "")):
                self.results.setItem(i, j, QTableWidgetItem(str(value)))
        self.empty.setVisible(not rows and bool(self.search.text().strip()))

    def open_patient(self, row: Row[Any] | None) -> None:
        PatientDialog(self.desk, row, self).open()

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if entities & {"patient", "appointment"}:
            self.refresh()

    def _load_history(self) -> None:
        selected = self.results.currentRow()
        if not 0 <= selected < len(self.rows):
            return
        patient_id, engine = self.rows[selected].id, self.desk.engine

        def work() -> list[Row[Any]]:
            with engine.connect() as conn:
                return list(conn.execute(
                    select(appointment).where(appointment.c.patient_id == patient_id)
                    .order_by(appointment.c.starts_at.desc()).limit(100)))
        self.desk.tasks.db.run(work, on_done=self._show_history, owner=self)

    def _show_history(self, rows: list[Row[Any]]) -> None:
        zone = self.desk.clinic.timezone
        self.history.setRowCount(len(rows))
        for i, row in enumerate(rows):
            when = row.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            self.history.setItem(i, 0, QTableWidgetItem(when))
            self.history.setItem(i, 1, QTableWidgetItem(row.status))
            self.history.setItem(i, 2, QTableWidgetItem(row.reason or ""))
        self.history.setVisible(True)

