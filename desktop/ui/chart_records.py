"""The chart's lists: adding, changing and removing a patient's allergies, conditions,
medications and vital signs, how each entry reads in the chart, and the message boxes the
doctor's screens share.

The dialogs send what was typed to `desktop.operations.clinical`, which checks it with
the server's own shapes; a refusal shows its reason in a message box, the dialog stays
open with everything typed, and nothing is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from desktop.operations.clinical import ClinicalError, add_record, remove_record, update_record
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from shared_models import prescribing
from shared_models.schemas.clinical import VITAL_UNITS
from shared_models.search import fold
from shared_models.tables import provider

ENTITIES = ("allergy", "condition", "medication", "vital_signs")
TITLES = {"allergy": "Allergies", "condition": "Conditions", "medication": "Medications",
          "vital_signs": "Vital signs"}
ADD_TITLES = {"allergy": "Add allergy", "condition": "Add condition",
              "medication": "Add medication", "vital_signs": "Record vital signs"}
EDIT_TITLES = {"allergy": "Edit allergy", "condition": "Edit condition",
               "medication": "Edit medication", "vital_signs": "Edit vital signs"}
REMOVE_QUESTIONS = {
    "allergy": "Remove this allergy from the chart? Do this only for an entry made in error; "
               "mark an allergy that no longer holds as resolved instead.",
    "condition": "Remove this condition from the chart? Do this only for an entry made in "
                 "error; mark a condition that has passed as resolved instead.",
    "medication": "Remove this medication from the chart? Do this only for an entry made in "
                  "error; mark a medicine the patient no longer takes as stopped instead.",
    "vital_signs": "Remove this reading from the chart? Do this only for a reading entered "
                   "in error.",
}
# (field, label, kind): kind is "text" (optional), "required", "choice", "date",
# "formulary" (a medicine or class of the formulary), "medicine", "int", "float" or "time".
FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "allergy": (("substance", "Substance", "required"),
                ("formulary_ref", "Formulary match", "formulary"),
                ("reaction", "Reaction", "text"),
                ("severity", "Severity", "choice"),
                ("status", "Status", "choice")),
    "condition": (("description", "Condition", "required"),
                  ("code", "ICD-10 code", "text"),
                  ("onset_date", "Since", "date"),
                  ("status", "Status", "choice")),
    "medication": (("name", "Medicine", "required"),
                   ("medicine_id", "Formulary match", "medicine"),
                   ("dose", "Dose and frequency", "text"),
                   ("status", "Status", "choice"),
                   ("started_on", "Started", "date"),
                   ("stopped_on", "Stopped", "date")),
    "vital_signs": (("measured_at", "Measured at", "time"),
                    ("systolic_mmhg", "Systolic (mmHg)", "int"),
                    ("diastolic_mmhg", "Diastolic (mmHg)", "int"),
                    ("heart_rate_bpm", "Heart rate (bpm)", "int"),
                    ("respiratory_rate", "Breaths per minute", "int"),
                    ("temperature_c", "Temperature (°C)", "float"),
                    ("spo2_pct", "SpO₂ (%)", "int"),
                    ("weight_kg", "Weight (kg)", "float"),
                    ("height_cm", "Height (cm)", "float")),
}
CHOICES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("allergy", "severity"): (("unknown", "Unknown"), ("mild", "Mild"),
                              ("moderate", "Moderate"), ("severe", "Severe")),
    ("allergy", "status"): (("active", "Active"), ("resolved", "Resolved")),
    ("condition", "status"): (("active", "Active"), ("resolved", "Resolved")),
    ("medication", "status"): (("active", "Taking"), ("stopped", "Stopped")),
}
SEVERITY_WORDS = {"mild": "mild", "moderate": "moderate", "severe": "severe"}
TIME_FORMAT = "%Y-%m-%d %H:%M"
MATCHES_SHOWN = 12
GREY = "#757575"


# --- message boxes ----------------------------------------------------------------------


def show_error(parent: QWidget, title: str, message: str) -> QMessageBox:
    """A refusal, in a box that does not hold up the GUI thread (`open`, not `exec`): the
    screen behind keeps what was typed."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok,
                      parent)
    box.setObjectName("error_message")
    box.open()
    return box


def ask(parent: QWidget, title: str, question: str, yes: str, on_yes: Callable[[], None]
        ) -> QMessageBox:
    """A question whose `yes` button (objectName `confirm_yes`) runs `on_yes`."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question,
                      QMessageBox.StandardButton.NoButton, parent)
    box.setObjectName("confirm_message")
    button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    button.setObjectName("confirm_yes")
    box.addButton(tr("Cancel"), QMessageBox.ButtonRole.RejectRole)
    button.clicked.connect(on_yes)
    box.open()
    return box


def error_message(exc: BaseException) -> str:
    """An operation's refusal for a dialog, translated when it is one of the known
    sentences."""
    return tr(str(exc))


# --- how entries read -------------------------------------------------------------------


def formulary_label(ref: str | None) -> str:
    if not ref:
        return ""
    try:
        if ref.startswith(prescribing.CLASS_PREFIX):
            group = prescribing.therapeutic_class(ref)
            name = group.name_es if language() == "es" else group.name_en
            return tr("{name} (class)", name=name)
        medicine = prescribing.medicine(ref)
    except prescribing.UnknownMedicineError:
        return ref
    return medicine.name_es if language() == "es" else medicine.name_en


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def vitals_text(record: Mapping[str, Any], zone: Any) -> str:
    parts = [record["measured_at"].astimezone(zone).strftime(TIME_FORMAT)]
    systolic, diastolic = record.get("systolic_mmhg"), record.get("diastolic_mmhg")
    if systolic is not None or diastolic is not None:
        parts.append(tr("BP {value} mmHg", value=f"{systolic or '?'}/{diastolic or '?'}"))
    for field, label in (("heart_rate_bpm", "HR"), ("respiratory_rate", "RR"),
                         ("temperature_c", "T"), ("spo2_pct", "SpO₂"), ("weight_kg", ""),
                         ("height_cm", "")):
        value = record.get(field)
        if value is not None:
            unit = tr(VITAL_UNITS[field])
            spaced = unit if unit == "%" else f" {unit}"
            parts.append(f"{tr(label)} {_number(value)}{spaced}".strip())
    return " · ".join(parts)


def record_text(entity: str, record: Mapping[str, Any], zone: Any) -> str:
    """One line of a chart list."""
    if entity == "allergy":
        text = str(record["substance"])
        if record.get("reaction"):
            text += f" — {record['reaction']}"
        if record.get("severity") in SEVERITY_WORDS:
            text += f" ({tr(SEVERITY_WORDS[record['severity']])})"
        return text + (f" · {tr('resolved')}" if record.get("status") == "resolved" else "")
    if entity == "condition":
        text = str(record["description"])
        if record.get("code"):
            text += f" ({record['code']})"
        if record.get("onset_date"):
            text += f" · {tr('since {date}', date=record['onset_date'])}"
        return text + (f" · {tr('resolved')}" if record.get("status") == "resolved" else "")
    if entity == "medication":
        text = str(record["name"])
        if record.get("dose"):
            text += f" · {record['dose']}"
        return text + (f" · {tr('stopped')}" if record.get("status") == "stopped" else "")
    return vitals_text(record, zone)


def is_current(entity: str, record: Mapping[str, Any]) -> bool:
    return entity == "vital_signs" or record.get("status") == "active"


# --- the dialog -------------------------------------------------------------------------


class RecordDialog(QDialog):
    """Add an entry to a patient's chart, or change one (`current` given)."""

    def __init__(self, desk: Desk, entity: str, patient_id: uuid.UUID,
                 current: Mapping[str, Any] | None = None, parent: QWidget | None = None, *,
                 appointment_id: uuid.UUID | None = None) -> None:
        super().__init__(parent)
        if entity not in FIELDS:
            raise ValueError(f"not a chart list: {entity!r}")
        self.desk = desk
        self.entity = entity
        self.patient_id = patient_id
        self.current = current
        self.appointment_id = appointment_id
        self.saved_id: uuid.UUID | None = None
        self.setObjectName(f"record_dialog_{entity}")
        self.setWindowTitle(tr(EDIT_TITLES[entity] if current else ADD_TITLES[entity]))
        self.inputs: dict[str, QLineEdit | QComboBox] = {}
        form = QFormLayout()
        for field, label, kind in FIELDS[entity]:
            widget = self._input(field, kind)
            widget.setObjectName(f"field_{field}")
            self.inputs[field] = widget
            form.addRow(tr(label), widget)
        self.hint = QLabel()
        self.hint.setObjectName("record_hint")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet(f"color: {GREY}")
        if entity == "allergy":
            self.hint.setText(tr("Match the substance to the formulary so prescribing warns "
                                 "about it."))
        self.hint.setVisible(bool(self.hint.text()))
        buttons = QDialogButtonBox()
        self.save_button = QPushButton(tr("Save"))
        self.save_button.setObjectName("save_record")
        self.save_button.setDefault(True)
        buttons.addButton(self.save_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        self.save_button.clicked.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addWidget(buttons)
        self._fill()

    def _input(self, field: str, kind: str) -> QLineEdit | QComboBox:
        if kind == "choice":
            box = QComboBox()
            for value, label in CHOICES[(self.entity, field)]:
                box.addItem(tr(label), value)
            return box
        if kind in ("formulary", "medicine"):
            box = QComboBox()
            box.addItem(tr("Not in the formulary"), None)
            source = self.inputs["substance" if kind == "formulary" else "name"]
            assert isinstance(source, QLineEdit)
            source.textChanged.connect(
                lambda text, b=box, k=kind: self._offer_matches(b, text, k))
            return box
        line = QLineEdit()
        if kind == "date":
            line.setPlaceholderText(tr("YYYY-MM-DD"))
        elif kind == "time":
            line.setPlaceholderText(tr("YYYY-MM-DD HH:MM"))
        return line

    def _offer_matches(self, box: QComboBox, text: str, kind: str) -> None:
        """Formulary entries that fit the typed name; what was chosen stays chosen."""
        chosen = box.currentData()
        folded = fold(text)
        refs: list[str] = []
        if folded and kind == "formulary":
            refs += [prescribing.CLASS_PREFIX + c.id for c in prescribing.formulary().classes
                     if folded in fold(c.name_en) or folded in fold(c.name_es)]
        if folded:
            refs += [m.id for m in prescribing.search(text, MATCHES_SHOWN)]
        if chosen and chosen not in refs:
            refs.insert(0, chosen)
        box.blockSignals(True)
        box.clear()
        box.addItem(tr("Not in the formulary"), None)
        for ref in refs[:MATCHES_SHOWN]:
            box.addItem(formulary_label(ref), ref)
        box.setCurrentIndex(max(0, box.findData(chosen)) if chosen else 0)
        box.blockSignals(False)

    def _fill(self) -> None:
        zone = self.desk.clinic.timezone
        current = self.current or {}
        for field, _label, kind in FIELDS[self.entity]:
            widget = self.inputs[field]
            value = current.get(field)
            if isinstance(widget, QComboBox):
                if kind in ("formulary", "medicine") and value:
                    widget.addItem(formulary_label(value), value)
                if value is not None:
                    widget.setCurrentIndex(max(0, widget.findData(value)))
            elif kind == "time":
                at = value if isinstance(value, datetime) else datetime.now(zone)
                widget.setText(at.astimezone(zone).strftime(TIME_FORMAT))
            elif value is not None:
                widget.setText(_number(value))

    def typed(self) -> dict[str, Any]:
        """What the dialog holds, as the operation takes it: empty optional fields are
        None, numbers with a decimal comma read as with a point."""
        values: dict[str, Any] = {}
        for field, _label, kind in FIELDS[self.entity]:
            widget = self.inputs[field]
            if isinstance(widget, QComboBox):
                values[field] = widget.currentData()
                continue
            text = widget.text().strip()
            if kind == "required":
                values[field] = text
            elif kind == "time":
                values[field] = self._time(text)
            elif kind == "float":
                values[field] = text.replace(",", ".") or None
            else:
                values[field] = text or None
        return values

    def _time(self, text: str) -> datetime:
        """A wall-clock time typed in the clinic's zone."""
        message = tr("Write the time of the reading as YYYY-MM-DD HH:MM.")
        try:
            typed = datetime.fromisoformat(text) if ":" in text else None
        except ValueError:
            typed = None
        if typed is None or typed.tzinfo is not None:
            raise ClinicalError(message)
        return typed.replace(tzinfo=self.desk.clinic.timezone)

    def save(self) -> None:
        try:
            values = self.typed()
        except ClinicalError as exc:
            show_error(self, self.windowTitle(), str(exc))
            return
        desk, entity, current = self.desk, self.entity, self.current
        self.save_button.setEnabled(False)
        if current is None:
            values["patient_id"] = self.patient_id
            if entity == "vital_signs" and self.appointment_id is not None:
                values["appointment_id"] = self.appointment_id

            def work() -> object:
                return add_record(desk.engine, desk.clock, entity,
                                  clinic_id=desk.session.clinic_id,
                                  user_id=desk.session.user_id, values=values)
        else:
            record_id = current["id"]

            def work() -> object:
                update_record(desk.engine, desk.clock, entity,
                              record_id, values)
                return record_id
        desk.tasks.db.run(work, on_done=self._saved, on_error=self._failed, owner=self)

    def _saved(self, record_id: Any) -> None:
        self.saved_id = record_id
        self.desk.changed(self.entity)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.save_button.setEnabled(True)
        show_error(self, self.windowTitle(), error_message(exc))


def remove_entry(parent: QWidget, desk: Desk, entity: str, record: Mapping[str, Any]
                 ) -> QMessageBox:
    """Ask, then take the entry off the chart (kept as a tombstone for the sync)."""
    record_id = record["id"]

    def remove() -> None:
        def work() -> None:
            remove_record(desk.engine, desk.clock, entity, record_id)
        desk.tasks.db.run(work, on_done=lambda _r: desk.changed(entity),
                          on_error=lambda exc: show_error(parent, tr("Remove"),
                                                          error_message(exc)),
                          owner=parent)
    return ask(parent, tr("Remove"), tr(REMOVE_QUESTIONS[entity]), tr("Remove"), remove)


def staff_names(conn: Connection, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The names staff go by in the chart, from the providers they work as: the only
    staff names a doctor's computer holds."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    rows = conn.execute(select(provider.c.user_id, provider.c.display_name)
                        .where(provider.c.user_id.in_(ids), provider.c.deleted_at.is_(None)))
    return {row.user_id: row.display_name for row in rows}
