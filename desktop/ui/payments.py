"""Taking a payment for a visit at the front desk, and saving its receipt as a PDF.

The amount is typed the way the clinic's country writes money (see
`desktop.operations.payments`): "12.500" in Chile, "1,250.50" in Mexico; a problem shows
beside its field and nothing is stored until it is fixed. The payment is written on the
database worker; the receipt too, since it reads the store and writes a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Row, select

from desktop.operations.payments import (
    PaymentInvalid,
    amount_example,
    payments_for,
    read_amount,
    receipt_details,
    take_payment_offline,
)
from desktop.receipts import METHOD_LABELS, Receipt, write_receipt_pdf
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.schemas.payments import (
    PAYMENT_METHODS,
    PAYMENT_ROLES,
    currency_for_country,
    format_amount,
    is_local_receipt_number,
)
from shared_models.tables import patient

PathChooser = Callable[[str], Path | None]
FIELDS = ("amount", "method", "reference")
ERROR_STYLE = "color: #b00020"


class PaymentDialog(QDialog):
    """Take a payment for `appointment` (a row of the local appointment table), then save
    its receipt. `choose_path` asks where to save a receipt (a file dialog unless given),
    given a suggested file name; None cancels."""

    receipt_written = Signal(object)  # the Path of the receipt just written

    def __init__(self, desk: Desk, appointment: Row[Any], parent: QWidget | None = None, *,
                 choose_path: PathChooser | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.appointment = appointment
        self.choose_path = choose_path or self._ask_path
        # Which currency the clinic takes follows its country, as on the server.
        self.currency = currency_for_country(desk.clinic.country)
        self.payments: list[Row[Any]] = []
        self.selected: Row[Any] | None = None
        self.setObjectName("payment_dialog")
        self.setWindowTitle(tr("Take payment"))

        self.when = f"{appointment.starts_at.astimezone(desk.clinic.timezone):%Y-%m-%d %H:%M}"
        self.visit = QLabel(self.when)
        self.visit.setObjectName("payment_visit")
        self.amount = QLineEdit()
        self.amount.setObjectName("field_amount")
        self.amount.setPlaceholderText(amount_example(self.currency))
        amount_row = QHBoxLayout()
        amount_row.addWidget(self.amount, 1)
        amount_row.addWidget(QLabel(self.currency))
        self.method = QComboBox()
        self.method.setObjectName("field_method")
        for method in PAYMENT_METHODS:
            self.method.addItem(tr(METHOD_LABELS[method]), method)
        self.reference = QLineEdit()
        self.reference.setObjectName("field_reference")
        self.reference.setPlaceholderText(tr("Card voucher or transfer number"))
        self.errors = {field: self._error_label(f"error_{field}")
                       for field in (*FIELDS, "payment")}
        form = QFormLayout()
        form.addRow(tr("Appointment"), self.visit)
        for label, field, widget in ((tr("Amount"), "amount", amount_row),
                                     (tr("Method"), "method", self.method),
                                     (tr("Reference"), "reference", self.reference)):
            column = QVBoxLayout()
            if isinstance(widget, QHBoxLayout):
                column.addLayout(widget)
            else:
                column.addWidget(widget)
            column.addWidget(self.errors[field])
            form.addRow(label, column)

        self.take_button = QPushButton(tr("Take payment"))
        self.take_button.setObjectName("take_payment")
        self.take_button.setDefault(True)
        self.receipt_button = QPushButton(tr("Save receipt (PDF)…"))
        self.receipt_button.setObjectName("save_receipt")
        self.receipt_button.setEnabled(False)
        self.status = QLabel()
        self.status.setObjectName("payment_status")
        self.status.setWordWrap(True)
        self.list = QListWidget()
        self.list.setObjectName("payments_list")
        buttons = QDialogButtonBox()
        buttons.addButton(self.take_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.receipt_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(tr("Close"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.rejected.connect(self.reject)
        self.take_button.clicked.connect(self.take)
        self.receipt_button.clicked.connect(self.save_receipt)
        self.list.currentRowChanged.connect(self._select)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.errors["payment"])
        layout.addWidget(QLabel(tr("Payments for this visit")))
        layout.addWidget(self.list)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        if desk.session.role not in PAYMENT_ROLES:
            self.take_button.setEnabled(False)
            self.show_problems({"payment": ("Only the front desk takes payments.", {})})
            return
        self._load()

    @staticmethod
    def _error_label(name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setStyleSheet(ERROR_STYLE)
        label.setWordWrap(True)
        label.setVisible(False)
        return label

    # --- taking -------------------------------------------------------------------------

    def show_problems(self, problems: dict[str, tuple[str, dict[str, object]]]) -> None:
        for field, label in self.errors.items():
            problem = problems.get(field)
            if problem is not None:
                message, values = problem
                label.setText(tr(message, **{k: tr(v) if isinstance(v, str) else v
                                             for k, v in values.items()}))
            label.setVisible(problem is not None)
        if "amount" in problems:
            self.amount.setFocus()
        elif "reference" in problems:
            self.reference.setFocus()

    def take(self) -> None:
        try:
            amount = read_amount(self.amount.text(), self.currency)
        except PaymentInvalid as invalid:
            self.show_problems(invalid.problems)
            return
        self.show_problems({})
        self.take_button.setEnabled(False)
        desk, appointment_id = self.desk, self.appointment.id
        method, reference = self.method.currentData(), self.reference.text()

        def work() -> object:
            return take_payment_offline(
                desk.engine, desk.clock, clinic_id=desk.session.clinic_id,
                appointment_id=appointment_id, amount=amount, currency=self.currency,
                method=method, reference=reference, received_by=desk.session.user_id)
        desk.tasks.db.run(work, on_done=self._taken, on_error=self._take_failed)

    def _taken(self, _payment_id: object) -> None:
        self.desk.changed("payment")
        for widget in (self.amount, self.method, self.reference):
            widget.setEnabled(False)
        self.status.setText(tr("Payment taken."))
        self._load(select_last=True)

    def _take_failed(self, exc: BaseException) -> None:
        self.take_button.setEnabled(True)
        if isinstance(exc, PaymentInvalid):
            self.show_problems(exc.problems)
            return
        QMessageBox.warning(self, tr("Take payment"), str(exc))

    # --- the visit's payments and their receipts ---------------------------------------

    def _load(self, *, select_last: bool = False) -> None:
        engine, visit = self.desk.engine, self.appointment

        def work() -> tuple[str, list[Row[Any]]]:
            with engine.connect() as conn:
                person = conn.execute(select(patient.c.given_name, patient.c.family_name)
                                      .where(patient.c.id == visit.patient_id)).first()
            name = f"{person.family_name}, {person.given_name}" if person else ""
            return name, payments_for(engine, visit.id)
        self.desk.tasks.db.run(
            work, on_done=lambda found: self._show(found[0], found[1], select_last))

    def _show(self, patient_name: str, rows: list[Row[Any]], select_last: bool) -> None:
        self.visit.setText(f"{patient_name} · {self.when}" if patient_name else self.when)
        self.payments = rows
        self.list.clear()
        for row in rows:
            number = (tr("Pending") if is_local_receipt_number(row.receipt_number)
                      else row.receipt_number)
            text = (f"{number} · {format_amount(row.amount_minor, row.currency)} · "
                    f"{tr(METHOD_LABELS[row.method])}")
            self.list.addItem(f"{text} · {tr('VOID')}" if row.voided_at else text)
        if select_last and rows:
            self.list.setCurrentRow(len(rows) - 1)

    def _select(self, index: int) -> None:
        self.selected = self.payments[index] if 0 <= index < len(self.payments) else None
        self.receipt_button.setEnabled(self.selected is not None)

    def _ask_path(self, suggested: str) -> Path | None:
        chosen, _filter = QtWidgets.QFileDialog.getSaveFileName(
            self, tr("Save receipt"), suggested, "PDF (*.pdf)")
        return Path(chosen) if chosen else None

    def save_receipt(self) -> None:
        if self.selected is None:
            return
        payment_id, number = self.selected.id, self.selected.receipt_number
        label = tr("pending") if is_local_receipt_number(number) else number
        suggested = f"{tr('receipt')}-{label}.pdf"
        path = self.choose_path(suggested)
        if path is None:
            return
        desk = self.desk

        def work() -> Path:
            row = receipt_details(desk.engine, payment_id)
            patient = " ".join(n for n in (row.given_name, row.family_name) if n) or "—"
            return write_receipt_pdf(path, Receipt(
                clinic_name=desk.clinic.name, patient_name=patient,
                receipt_number=row.receipt_number, received_at=row.received_at,
                zone=desk.clinic.timezone, amount_minor=row.amount_minor,
                currency=row.currency, method=row.method, reference=row.reference,
                received_by=desk.session.email if row.received_by == desk.session.user_id
                else "—", voided_at=row.voided_at, void_reason=row.void_reason))
        desk.tasks.db.run(work, on_done=self._receipt_saved, on_error=self._receipt_failed)

    def _receipt_saved(self, path: Path) -> None:
        self.status.setText(tr("Receipt saved: {path}", path=str(path)))
        self.receipt_written.emit(path)

    def _receipt_failed(self, exc: BaseException) -> None:
        QMessageBox.warning(self, tr("Save receipt"), str(exc))
