"""Writing and signing a prescription: medicines from the bundled formulary, one line
each with its strength, form, dose, route, frequency, duration, quantity, refills and
instructions; the pharmacy it goes to (or the patient chooses, on paper); the safety
checks against the patient's chart; and the signature.

The formulary search is in memory and instant. The safety check runs on the store's
worker after every change of the medicine list (desktop.operations.prescriptions); each
warning needs a reason of at least three characters before "Sign…" opens. Signing asks
for the step-up (desktop.ui.step_up) unless the key was opened in the last few minutes,
and works offline once the prescriber's key is active on this computer.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

from sqlalchemy import select

from desktop.operations.prescriptions import (
    MIN_REASON_CHARS,
    DraftItem,
    PrescriptionError,
    UnacknowledgedWarnings,
    check_draft,
    search_pharmacies,
    sign_prescription,
    warning_key,
)
from desktop.operations.signing import KeyInfo, Signer, SigningError, key_info
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.qt import (
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.ui.signing_key import CANNOT_SIGN, SigningKeyDialog, key_state
from desktop.ui.step_up import ERROR_STYLE, StepUpDialog, forget_signer, held_signer
from shared_models import prescribing
from shared_models.prescribing import Medicine, PrescribingWarning
from shared_models.schemas.prescriptions import MAX_ITEMS
from shared_models.tables import allergy, patient

SEARCH_DELAY_MS = 150
MEDICINE_RESULTS = 30
HIGH_STYLE = "color: #ffffff; background: #c62828; padding: 1px 6px; border-radius: 3px"
MODERATE_STYLE = "color: #3e2723; background: #ffb300; padding: 1px 6px; border-radius: 3px"
WARNING_FRAME = "QFrame#{name} {{ border: 1px solid {colour}; border-radius: 4px; }}"
BANNER_STYLE = "QFrame#key_banner { background: #fff3e0; border: 1px solid #ef6c00; }"
FORM_LABELS = {
    "tablet": "tablet", "capsule": "capsule", "suspension": "suspension",
    "solution": "solution", "syrup": "syrup", "injection": "injection", "cream": "cream",
    "ointment": "ointment", "gel": "gel", "inhaler": "inhaler", "drops": "drops",
    "powder": "powder", "suppository": "suppository", "patch": "patch",
    "nebuliser_solution": "nebuliser solution",
}
ROUTE_LABELS = {
    "oral": "oral", "intravenous": "intravenous", "intramuscular": "intramuscular",
    "subcutaneous": "subcutaneous", "topical": "topical", "inhaled": "inhaled",
    "sublingual": "sublingual", "rectal": "rectal", "vaginal": "vaginal",
    "transdermal": "transdermal", "nasal": "nasal",
}
FREQUENCIES = ("once a day", "every 12 hours", "every 8 hours", "every 6 hours",
               "at bedtime", "when needed")
SEVERITY_LABELS = {"high": "High", "moderate": "Moderate"}
PRINT_CHOICE = "Patient will choose (print)"


def medicine_name(med: Medicine) -> str:
    name = med.name_es if language() == "es" else med.name_en
    return name[:1].upper() + name[1:]


def class_name(med: Medicine) -> str:
    cls = prescribing.therapeutic_class(med.therapeutic_class)
    return cls.name_es if language() == "es" else cls.name_en


def warning_message(warning: PrescribingWarning) -> str:
    return warning.message_es if language() == "es" else warning.message_en


def pharmacy_text(row: Mapping[str, Any]) -> str:
    return f"{row['name']} · {row['address']} · {row['registry_number']}"


def _spin(name: str, *, low: int, high: int, blank: str | None = None) -> QSpinBox:
    box = QSpinBox()
    box.setObjectName(name)
    box.setRange(low, high)
    if blank is not None:
        box.setSpecialValueText(blank)  # shown at `low`: nothing entered
    return box


class LineEditor(QFrame):
    """One medicine of the prescription."""

    remove_requested = Signal(object)  # this editor

    def __init__(self, med: Medicine, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.medicine = med
        self.setObjectName(f"line_{number}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel()
        self.title.setObjectName("line_title")
        self.remove_button = QPushButton(tr("Remove"))
        self.remove_button.setObjectName("line_remove")
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self))
        self.strength = QComboBox()
        self.strength.setObjectName("line_strength")
        self.strength.setEditable(True)
        self.strength.addItems(list(med.strengths))
        self.form = QComboBox()
        self.form.setObjectName("line_form")
        for form in med.forms:
            self.form.addItem(tr(FORM_LABELS[form]), form)
        self.route = QComboBox()
        self.route.setObjectName("line_route")
        for route in med.routes:
            self.route.addItem(tr(ROUTE_LABELS[route]), route)
        self.dose = QLineEdit()
        self.dose.setObjectName("line_dose")
        self.dose.setPlaceholderText(tr("e.g. 1 {form}", form=tr(FORM_LABELS[med.forms[0]])))
        self.frequency = QComboBox()
        self.frequency.setObjectName("line_frequency")
        self.frequency.setEditable(True)
        self.frequency.addItems([tr(f) for f in FREQUENCIES])
        self.frequency.setCurrentIndex(-1)
        line_edit = self.frequency.lineEdit()
        if line_edit is not None:
            line_edit.setPlaceholderText(tr("e.g. every 8 hours"))
        self.duration = _spin("line_duration", low=0, high=365, blank="—")
        self.quantity = _spin("line_quantity", low=0, high=10_000, blank="—")
        self.refills = _spin("line_refills", low=0, high=11)
        self.instructions = QLineEdit()
        self.instructions.setObjectName("line_instructions")
        self.instructions.setMaxLength(500)
        self.instructions.setPlaceholderText(tr("e.g. take with food"))
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setVerticalSpacing(2)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.remove_button)
        grid.addLayout(head, 0, 0, 1, 5)
        first = ((tr("Strength"), self.strength), (tr("Form"), self.form),
                 (tr("Route"), self.route), (tr("Dose"), self.dose),
                 (tr("Frequency"), self.frequency))
        second = ((tr("Duration (days)"), self.duration), (tr("Quantity"), self.quantity),
                  (tr("Refills"), self.refills), (tr("Instructions"), self.instructions))
        for column, (label, widget) in enumerate(first):
            grid.addWidget(QLabel(label), 1, column)
            grid.addWidget(widget, 2, column)
        for column, (label, widget) in enumerate(second):
            grid.addWidget(QLabel(label), 3, column)
            grid.addWidget(widget, 4, column, 1, 2 if column == 3 else 1)
        for column, stretch in enumerate((2, 2, 2, 3, 3)):
            grid.setColumnStretch(column, stretch)
        self.number(number)

    def number(self, number: int) -> None:
        self.setObjectName(f"line_{number}")
        med = self.medicine
        self.title.setText(f"<b>{number}. {html.escape(medicine_name(med))}</b> "
                           f"<span style='color:#555'>· {html.escape(class_name(med))} · "
                           f"{med.atc}</span>")

    def draft(self) -> DraftItem:
        return DraftItem(
            medicine_id=self.medicine.id, strength=self.strength.currentText().strip(),
            form=str(self.form.currentData()), dose=self.dose.text().strip(),
            route=str(self.route.currentData()), frequency=self.frequency.currentText().strip(),
            quantity=self.quantity.value(), duration_days=self.duration.value() or None,
            refills=self.refills.value(), instructions=self.instructions.text().strip() or None)

    def problems(self, number: int) -> list[str]:
        """What is still missing in this line, as sentences."""
        found = []
        item = self.draft()
        if not item.strength:
            found.append(tr("Line {n}: choose the strength.", n=number))
        if not item.dose:
            found.append(tr("Line {n}: enter the dose (for example 1 tablet).", n=number))
        if not item.frequency:
            found.append(tr("Line {n}: enter how often it is taken.", n=number))
        if item.quantity < 1:
            found.append(tr("Line {n}: enter the quantity to dispense.", n=number))
        return found


class WarningRow(QFrame):
    """One safety warning with the reason the prescriber gives for going ahead."""

    def __init__(self, warning: PrescribingWarning, index: int, reason: str) -> None:
        super().__init__()
        self.warning = warning
        name = f"warning_{index}"
        self.setObjectName(name)
        high = warning.severity == "high"
        self.setStyleSheet(WARNING_FRAME.format(name=name,
                                                colour="#c62828" if high else "#ffb300"))
        self.severity = QLabel(tr(SEVERITY_LABELS[warning.severity]))
        self.severity.setObjectName("warning_severity")
        self.severity.setStyleSheet(HIGH_STYLE if high else MODERATE_STYLE)
        self.message = QLabel(warning_message(warning))
        self.message.setObjectName("warning_message")
        self.message.setWordWrap(True)
        if high:
            self.message.setStyleSheet("color: #b00020")
        self.reason = QLineEdit(reason)
        self.reason.setObjectName("warning_reason")
        self.reason.setMaxLength(500)
        self.reason.setPlaceholderText(tr("Reason to go ahead (required)"))
        head = QHBoxLayout()
        head.addWidget(self.severity)
        head.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(head)
        layout.addWidget(self.message)
        layout.addWidget(self.reason)

    def answered(self) -> bool:
        return len(self.reason.text().strip()) >= MIN_REASON_CHARS



class PrescriptionForm(QDialog):
    """A new prescription for one patient. `signed` fires with the prescription's id once
    it is stored and queued; the form then closes."""

    signed = Signal(object)
    # The safety check's answer is on screen (tests and screenshots wait on it).
    checked = Signal()

    def __init__(self, desk: Desk, patient_id: uuid.UUID, *,
                 appointment_id: uuid.UUID | None = None, parent: QWidget | None = None
                 ) -> None:
        super().__init__(parent)
        self.desk = desk
        self.patient_id = patient_id
        self.appointment_id = appointment_id
        self.lines: list[LineEditor] = []
        self.warnings: list[PrescribingWarning] = []
        self.warning_rows: list[WarningRow] = []
        # Reasons typed so far, by warning: kept when the list is checked again.
        self.reasons: dict[tuple[str, tuple[str, ...]], str] = {}
        self.key: KeyInfo | None = None
        self.key_loaded = False
        self.checking = False
        self.check_problem = ""
        self.signing = False
        self.pharmacy_id: uuid.UUID | None = None
        self.pharmacies: list[Mapping[str, Any]] = []
        self.message_box: QMessageBox | None = None
        self.step_up: StepUpDialog | None = None
        self._check_generation = 0
        self._search_generation = 0
        self.setObjectName("prescription_form")
        self.setWindowTitle(tr("New prescription"))
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.resize(1280, 800)

        self.patient_label = QLabel()
        self.patient_label.setObjectName("prescription_patient")
        self.patient_label.setWordWrap(True)
        left = QVBoxLayout()
        left.addWidget(self.patient_label)
        left.addWidget(self._medicine_search())
        left.addWidget(self._lines_box(), 1)
        notes_label = QLabel(tr("Notes for the pharmacist (optional)"))
        self.notes = QPlainTextEdit()
        self.notes.setObjectName("prescription_notes")
        self.notes.setMaximumHeight(60)
        left.addWidget(notes_label)
        left.addWidget(self.notes)

        right = QVBoxLayout()
        right.addWidget(self._pharmacy_box())
        right.addWidget(self._warnings_box(), 1)
        right.addWidget(self._key_banner())
        self.sign_hint = QLabel()
        self.sign_hint.setObjectName("sign_hint")
        self.sign_hint.setWordWrap(True)
        right.addWidget(self.sign_hint)
        buttons = QHBoxLayout()
        cancel = QPushButton(tr("Cancel"))
        cancel.setObjectName("prescription_cancel")
        cancel.clicked.connect(self.reject)
        self.sign_button = QPushButton(tr("Sign…"))
        self.sign_button.setObjectName("sign_button")
        self.sign_button.setDefault(False)
        self.sign_button.setAutoDefault(False)
        self.sign_button.clicked.connect(self.sign)
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.sign_button)
        right.addLayout(buttons)

        columns = QHBoxLayout(self)
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)

        self.pharmacy_timer = QTimer(self)
        self.pharmacy_timer.setSingleShot(True)
        self.pharmacy_timer.setInterval(SEARCH_DELAY_MS)
        self.pharmacy_timer.timeout.connect(self.search_pharmacies)
        desk.data_changed.connect(self._data_changed)
        self._load_patient()
        self.load_key()
        self.search_pharmacies()
        self._update_sign()

    # --- building -------------------------------------------------------------------------

    def _medicine_search(self) -> QWidget:
        box = QGroupBox(tr("Add a medicine"))
        self.medicine_search = QLineEdit()
        self.medicine_search.setObjectName("medicine_search")
        self.medicine_search.setPlaceholderText(tr("Search by name (English or Spanish) or "
                                                   "ATC code"))
        self.medicine_search.setClearButtonEnabled(True)
        self.medicine_search.textChanged.connect(self.search_medicines)
        self.medicine_search.returnPressed.connect(self.add_selected)
        self.medicine_results = QListWidget()
        self.medicine_results.setObjectName("medicine_results")
        self.medicine_results.setMaximumHeight(120)
        self.medicine_results.itemActivated.connect(lambda _item: self.add_selected())
        self.add_button = QPushButton(tr("Add"))
        self.add_button.setObjectName("add_medicine")
        self.add_button.clicked.connect(self.add_selected)
        row = QHBoxLayout()
        row.addWidget(self.medicine_search, 1)
        row.addWidget(self.add_button)
        layout = QVBoxLayout(box)
        layout.addLayout(row)
        layout.addWidget(self.medicine_results)
        return box

    def _lines_box(self) -> QWidget:
        self.lines_widget = QWidget()
        self.lines_layout = QVBoxLayout(self.lines_widget)
        self.lines_layout.setContentsMargins(0, 0, 0, 0)
        self.no_lines = QLabel(tr("No medicines yet: search above and add one."))
        self.no_lines.setObjectName("no_lines")
        self.lines_layout.addWidget(self.no_lines)
        self.lines_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("prescription_lines")
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.lines_widget)
        return scroll

    def _pharmacy_box(self) -> QWidget:
        box = QGroupBox(tr("Pharmacy"))
        self.pharmacy_search = QLineEdit()
        self.pharmacy_search.setObjectName("pharmacy_search")
        self.pharmacy_search.setPlaceholderText(tr("Search by name, address or registry "
                                                   "number"))
        self.pharmacy_search.setClearButtonEnabled(True)
        self.pharmacy_search.textChanged.connect(lambda _t: self.pharmacy_timer.start())
        self.pharmacy_results = QListWidget()
        self.pharmacy_results.setObjectName("pharmacy_results")
        self.pharmacy_results.setMaximumHeight(110)
        self.pharmacy_results.currentItemChanged.connect(self._pharmacy_chosen)
        self.pharmacy_chosen = QLabel()
        self.pharmacy_chosen.setObjectName("pharmacy_chosen")
        self.pharmacy_chosen.setWordWrap(True)
        layout = QVBoxLayout(box)
        layout.addWidget(self.pharmacy_search)
        layout.addWidget(self.pharmacy_results)
        layout.addWidget(self.pharmacy_chosen)
        return box

    def _warnings_box(self) -> QWidget:
        box = QGroupBox(tr("Safety checks"))
        self.warnings_status = QLabel()
        self.warnings_status.setObjectName("warnings_status")
        self.warnings_status.setWordWrap(True)
        self.warnings_widget = QWidget()
        self.warnings_layout = QVBoxLayout(self.warnings_widget)
        self.warnings_layout.setContentsMargins(0, 0, 0, 0)
        self.warnings_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setObjectName("warnings_panel")
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.warnings_widget)
        layout = QVBoxLayout(box)
        layout.addWidget(self.warnings_status)
        layout.addWidget(scroll, 1)
        return box

    def _key_banner(self) -> QWidget:
        self.key_banner = QFrame()
        self.key_banner.setObjectName("key_banner")
        self.key_banner.setStyleSheet(BANNER_STYLE)
        self.key_text = QLabel()
        self.key_text.setObjectName("key_banner_text")
        self.key_text.setWordWrap(True)
        self.key_button = QPushButton(tr("Prescribing key…"))
        self.key_button.setObjectName("key_banner_open")
        self.key_button.clicked.connect(self.open_key_dialog)
        layout = QHBoxLayout(self.key_banner)
        layout.addWidget(self.key_text, 1)
        layout.addWidget(self.key_button)
        self.key_banner.setVisible(False)
        return self.key_banner

    # --- the patient and the key ----------------------------------------------------------

    def _load_patient(self) -> None:
        engine, patient_id = self.desk.engine, self.patient_id

        def work() -> tuple[Any, list[str]]:
            with engine.connect() as conn:
                person = conn.execute(select(
                    patient.c.given_name, patient.c.family_name, patient.c.date_of_birth,
                    patient.c.mrn).where(patient.c.id == patient_id)).first()
                allergies = conn.execute(select(allergy.c.substance).where(
                    allergy.c.patient_id == patient_id, allergy.c.status == "active",
                    allergy.c.deleted_at.is_(None)).order_by(allergy.c.substance)
                ).scalars().all()
            return person, [str(a) for a in allergies]
        self.desk.tasks.db.run(work, on_done=self._show_patient, owner=self)

    def _show_patient(self, found: tuple[Any, list[str]]) -> None:
        person, allergies = found
        if person is None:
            self.patient_label.setText(tr("This patient is not on this computer."))
            return
        born = (tr("born {date}", date=person.date_of_birth.isoformat())
                if isinstance(person.date_of_birth, date) else "")
        facts = " · ".join(x for x in (person.mrn, born) if x)
        allergy_text = (tr("Allergies: {list}", list=", ".join(allergies)) if allergies
                        else tr("No known allergies recorded."))
        colour = "#b00020" if allergies else "#555"
        self.patient_label.setText(
            f"<b style='font-size:14pt'>{html.escape(person.given_name)} "
            f"{html.escape(person.family_name)}</b> &nbsp;{html.escape(facts)}<br>"
            f"<span style='color:{colour}'>{html.escape(allergy_text)}</span>")

    def load_key(self) -> None:
        engine, user_id = self.desk.engine, self.desk.session.user_id
        self.desk.tasks.db.run(lambda: key_info(engine, user_id), on_done=self._show_key,
                               owner=self)

    def _show_key(self, info: KeyInfo | None) -> None:
        self.key = info
        self.key_loaded = True
        state = key_state(info)
        if state == "revoked":
            forget_signer()
        self.key_banner.setVisible(state != "active")
        self.key_text.setText(tr(CANNOT_SIGN[state]) if state in CANNOT_SIGN else "")
        self._update_sign()

    def open_key_dialog(self) -> None:
        dialog = SigningKeyDialog(self.desk, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _r: self.load_key())
        dialog.open()

    def _data_changed(self, entities: frozenset[str]) -> None:
        if entities & {"signing_key", "signing_identity"}:
            self.load_key()
        if entities & {"allergy", "medication"}:
            self.recheck()
            self._load_patient()
        if "pharmacy" in entities:
            self.search_pharmacies()

    # --- medicines ------------------------------------------------------------------------

    def search_medicines(self, text: str) -> None:
        self.medicine_results.clear()
        for med in prescribing.search(text, limit=MEDICINE_RESULTS):
            item = QListWidgetItem(f"{medicine_name(med)} — {class_name(med)} · {med.atc}")
            item.setData(Qt.ItemDataRole.UserRole, med.id)
            self.medicine_results.addItem(item)
        if self.medicine_results.count():
            self.medicine_results.setCurrentRow(0)

    def add_selected(self) -> None:
        item = self.medicine_results.currentItem()
        if item is None:
            return
        self.add_medicine(str(item.data(Qt.ItemDataRole.UserRole)))
        self.medicine_search.clear()

    def add_medicine(self, medicine_id: str) -> LineEditor | None:
        """Add a line for the medicine, with its strengths, forms and routes to choose."""
        if len(self.lines) >= MAX_ITEMS:
            self._tell(tr("A prescription holds at most {n} medicines; sign this one and "
                          "write another.", n=MAX_ITEMS))
            return None
        editor = LineEditor(prescribing.medicine(medicine_id), len(self.lines) + 1)
        editor.remove_requested.connect(self.remove_line)
        editor.quantity.valueChanged.connect(lambda _v: self._update_sign())
        self.lines.append(editor)
        self.lines_layout.insertWidget(len(self.lines) - 1, editor)
        self.no_lines.setVisible(False)
        self.recheck()
        return editor

    def remove_line(self, editor: LineEditor) -> None:
        self.lines.remove(editor)
        self.lines_layout.removeWidget(editor)
        editor.deleteLater()
        for number, line in enumerate(self.lines, start=1):
            line.number(number)
        self.no_lines.setVisible(not self.lines)
        self.recheck()

    # --- the safety check -----------------------------------------------------------------

    def recheck(self) -> None:
        """Check the medicine list again, on the store's worker."""
        self._check_generation += 1
        generation = self._check_generation
        drafts = [DraftItem(medicine_id=line.medicine.id, strength="", form="", dose="",
                            route="", frequency="", quantity=1) for line in self.lines]
        self.checking = True
        self._update_sign()
        engine, patient_id = self.desk.engine, self.patient_id
        self.desk.tasks.db.run(
            lambda: check_draft(engine, patient_id=patient_id, items=drafts),
            on_done=lambda found: self._checked(generation, found, ""),
            on_error=lambda exc: self._checked(generation, [], str(exc)), owner=self)

    def _checked(self, generation: int, warnings: list[PrescribingWarning], problem: str
                 ) -> None:
        if generation != self._check_generation:
            return  # the list changed again meanwhile; a newer answer is coming
        self.checking = False
        self.check_problem = tr(problem) if problem else ""
        self._show_warnings(warnings)
        self.checked.emit()

    def _show_warnings(self, warnings: list[PrescribingWarning]) -> None:
        for row in self.warning_rows:
            self.warnings_layout.removeWidget(row)
            row.deleteLater()
        self.warnings = warnings
        self.warning_rows = []
        for index, warning in enumerate(warnings):
            key = warning_key(warning)
            row = WarningRow(warning, index, self.reasons.get(key, ""))
            row.reason.textChanged.connect(lambda text, k=key: self._reason_typed(k, text))
            self.warning_rows.append(row)
            self.warnings_layout.insertWidget(index, row)
        self._update_sign()

    def _reason_typed(self, key: tuple[str, tuple[str, ...]], text: str) -> None:
        self.reasons[key] = text
        self._update_sign()

    def unanswered(self) -> int:
        return sum(1 for row in self.warning_rows if not row.answered())

    # --- what "Sign…" waits for -----------------------------------------------------------

    def _update_sign(self) -> None:
        missing = self.unanswered()
        if self.checking:
            status = tr("Checking…")
        elif self.check_problem:
            status = self.check_problem
        elif not self.lines:
            status = tr("Add a medicine to check it against the patient's allergies and "
                        "medicines.")
        elif not self.warnings:
            status = tr("No safety warnings.")
        elif missing == 1:
            status = tr("1 warning still needs a reason (at least {n} characters).",
                        n=MIN_REASON_CHARS)
        elif missing:
            status = tr("{count} warnings still need a reason (at least {n} characters).",
                        count=missing, n=MIN_REASON_CHARS)
        else:
            status = tr("Every warning has a reason.")
        self.warnings_status.setText(status)
        self.warnings_status.setStyleSheet(ERROR_STYLE if missing or self.check_problem
                                           else "")
        state = key_state(self.key) if self.key_loaded else ""
        if not self.lines:
            hint = tr("Add at least one medicine.")
        elif missing:
            hint = tr("Give a reason for each warning to sign.")
        else:
            hint = ""
        self.sign_hint.setText(hint)
        self.sign_button.setEnabled(
            state == "active" and bool(self.lines) and not self.checking
            and not self.check_problem and missing == 0 and not self.signing)

    # --- the pharmacy ---------------------------------------------------------------------

    def search_pharmacies(self) -> None:
        self._search_generation += 1
        generation = self._search_generation
        engine, query = self.desk.engine, self.pharmacy_search.text()
        self.desk.tasks.db.run(lambda: search_pharmacies(engine, query),
                               on_done=lambda rows: self._show_pharmacies(generation, rows),
                               owner=self)

    def _show_pharmacies(self, generation: int, rows: list[Mapping[str, Any]]) -> None:
        if generation != self._search_generation:
            return
        self.pharmacies = rows
        self.pharmacy_results.blockSignals(True)
        self.pharmacy_results.clear()
        choice = QListWidgetItem(tr(PRINT_CHOICE))
        choice.setData(Qt.ItemDataRole.UserRole, None)
        self.pharmacy_results.addItem(choice)
        current = 0
        for row in rows:
            item = QListWidgetItem(pharmacy_text(row))
            item.setData(Qt.ItemDataRole.UserRole, str(row["id"]))
            self.pharmacy_results.addItem(item)
            if row["id"] == self.pharmacy_id:
                current = self.pharmacy_results.count() - 1
        self.pharmacy_results.setCurrentRow(current)
        self.pharmacy_results.blockSignals(False)
        if current == 0 and self.pharmacy_id is not None and not self.pharmacy_search.text():
            self.pharmacy_id = None  # no longer in the directory
        self._describe_pharmacy()

    def _pharmacy_chosen(self, item: QListWidgetItem | None, _previous: object = None) -> None:
        if item is None:
            return
        chosen = item.data(Qt.ItemDataRole.UserRole)
        self.pharmacy_id = uuid.UUID(chosen) if chosen else None
        self._describe_pharmacy()

    def choose_pharmacy(self, pharmacy_id: uuid.UUID | None) -> None:
        for row in range(self.pharmacy_results.count()):
            data = self.pharmacy_results.item(row).data(Qt.ItemDataRole.UserRole)
            if (uuid.UUID(data) if data else None) == pharmacy_id:
                self.pharmacy_results.setCurrentRow(row)
                return

    def _describe_pharmacy(self) -> None:
        if self.pharmacy_id is None:
            self.pharmacy_chosen.setText(tr("Not sent to a pharmacy: print it and the patient "
                                            "takes it to the pharmacy they choose."))
            return
        row = next((r for r in self.pharmacies if r["id"] == self.pharmacy_id), None)
        if row is not None:
            self.pharmacy_chosen.setText(tr("Sent to {pharmacy}.", pharmacy=row["name"]))

    # --- signing --------------------------------------------------------------------------

    def _tell(self, text: str) -> None:
        if self.message_box is not None:
            self.message_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, tr("Prescription"), text,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("prescription_message")
        self.message_box = box
        box.open()

    def problems(self) -> list[str]:
        found = []
        for number, line in enumerate(self.lines, start=1):
            found.extend(line.problems(number))
        return found

    def sign(self) -> None:
        if not self.sign_button.isEnabled():
            return
        problems = self.problems()
        if problems:
            self._tell("\n".join(problems))
            return
        signer = held_signer(self.desk)
        if signer is not None:
            self._sign_with(signer)
            return
        dialog = StepUpDialog(self.desk, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self._unlocked(dialog.signer))
        dialog.finished.connect(lambda _r: setattr(self, "step_up", None))
        self.step_up = dialog
        dialog.open()

    def _unlocked(self, signer: Signer | None) -> None:
        if signer is not None:
            self._sign_with(signer)

    def _sign_with(self, signer: Signer) -> None:
        desk = self.desk
        items = [line.draft() for line in self.lines]
        acknowledgements = {warning_key(row.warning): row.reason.text().strip()
                            for row in self.warning_rows}
        pharmacy_id, notes = self.pharmacy_id, self.notes.toPlainText().strip() or None
        patient_id, appointment_id = self.patient_id, self.appointment_id
        lang: Literal["en", "es"] = "es" if language() == "es" else "en"
        self.signing = True
        self._update_sign()

        def work() -> uuid.UUID:
            return sign_prescription(
                desk.engine, desk.clock, signer, clinic_id=desk.session.clinic_id,
                patient_id=patient_id, prescriber_id=desk.session.user_id, items=items,
                acknowledgements=acknowledgements, pharmacy_id=pharmacy_id,
                appointment_id=appointment_id, notes=notes, language=lang)
        desk.tasks.db.run(work, on_done=self._signed, on_error=self._not_signed, owner=self)

    def _signed(self, prescription_id: uuid.UUID) -> None:
        self.signing = False
        self.desk.changed("prescription", "medication")
        self.signed.emit(prescription_id)
        self.accept()

    def _not_signed(self, exc: BaseException) -> None:
        self.signing = False
        self._update_sign()
        if isinstance(exc, UnacknowledgedWarnings):
            self.recheck()  # the chart changed under the form: show what it says now
        if isinstance(exc, SigningError):
            forget_signer()
            self.load_key()
        if isinstance(exc, PrescriptionError | SigningError):
            self._tell(tr(str(exc)))
        else:
            self._tell(tr("The prescription could not be signed: {error}", error=str(exc)))
