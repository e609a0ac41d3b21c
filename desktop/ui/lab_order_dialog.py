"""Ordering laboratory tests for a patient: find tests in the bundled catalogue by code or
name (English or Spanish), pick them, set the priority and what the lab should know.

The order is written on the database worker by `desktop.operations.lab_orders`, which
checks it as the server will; a refusal shows its reason and the dialog keeps what was
picked.
"""

from __future__ import annotations

import uuid

from desktop.operations.lab_orders import order_tests
from desktop.ui.chart_records import error_message, show_error
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.qt import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    Qt,
    QVBoxLayout,
    QWidget,
)
from shared_models import lab_tests

RESULTS_SHOWN = 30


def test_name(code: str) -> str:
    """A test's name in the current language (its code when the catalogue lacks it)."""
    try:
        found = lab_tests.test(code)
    except lab_tests.UnknownTestError:
        return code
    return found.name_es if language() == "es" else found.name_en


class LabOrderDialog(QDialog):
    def __init__(self, desk: Desk, patient_id: uuid.UUID, parent: QWidget | None = None, *,
                 appointment_id: uuid.UUID | None = None, patient_name: str = "") -> None:
        super().__init__(parent)
        self.desk = desk
        self.patient_id = patient_id
        self.appointment_id = appointment_id
        self.order_id: uuid.UUID | None = None
        self.chosen: list[str] = []
        self.setObjectName("lab_order_dialog")
        title = tr("Order tests")
        self.setWindowTitle(f"{title} · {patient_name}" if patient_name else title)
        self.resize(640, 560)
        self.search = QLineEdit()
        self.search.setObjectName("lab_search")
        self.search.setPlaceholderText(tr("Find a test by name or code"))
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setObjectName("lab_results")
        self.add_button = QPushButton(tr("Add"))
        self.add_button.setObjectName("add_test")
        self.picked = QListWidget()
        self.picked.setObjectName("lab_chosen")
        self.remove_button = QPushButton(tr("Remove"))
        self.remove_button.setObjectName("remove_test")
        self.priority = QComboBox()
        self.priority.setObjectName("lab_priority")
        self.priority.addItem(tr("Routine"), "routine")
        self.priority.addItem(tr("Urgent"), "urgent")
        self.info = QPlainTextEdit()
        self.info.setObjectName("lab_clinical_info")
        self.info.setPlaceholderText(tr("What the lab should know (optional)"))
        self.info.setFixedHeight(70)
        self.order_button = QPushButton(tr("Order"))
        self.order_button.setObjectName("place_order")
        self.order_button.setDefault(True)
        self.order_button.setEnabled(False)
        buttons = QDialogButtonBox()
        buttons.addButton(self.order_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.rejected.connect(self.reject)

        columns = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.search)
        left.addWidget(self.results, 1)
        left.addWidget(self.add_button)
        right = QVBoxLayout()
        right.addWidget(QLabel(tr("Tests to order")))
        right.addWidget(self.picked, 1)
        right.addWidget(self.remove_button)
        columns.addLayout(left, 3)
        columns.addLayout(right, 2)
        form = QFormLayout()
        form.addRow(tr("Priority"), self.priority)
        form.addRow(tr("Clinical information"), self.info)
        layout = QVBoxLayout(self)
        layout.addLayout(columns, 1)
        layout.addLayout(form)
        layout.addWidget(buttons)

        self.search.textChanged.connect(self.find)
        self.results.itemDoubleClicked.connect(lambda _item: self.add_selected())
        self.add_button.clicked.connect(self.add_selected)
        self.picked.itemDoubleClicked.connect(lambda _item: self.remove_selected())
        self.remove_button.clicked.connect(self.remove_selected)
        self.order_button.clicked.connect(self.place)
        self.find("")

    def find(self, text: str) -> None:
        """The catalogue is bundled and small: searched here as the doctor types."""
        self.results.clear()
        for test in lab_tests.search(text, RESULTS_SHOWN):
            name = test.name_es if language() == "es" else test.name_en
            item = QListWidgetItem(f"{name} ({test.code})")
            item.setData(Qt.ItemDataRole.UserRole, test.code)
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def add(self, code: str) -> None:
        if code in self.chosen:
            return  # each test once per order
        self.chosen.append(code)
        self._show_chosen()

    def add_selected(self) -> None:
        item = self.results.currentItem()
        if item is not None:
            self.add(item.data(Qt.ItemDataRole.UserRole))

    def remove_selected(self) -> None:
        row = self.picked.currentRow()
        if 0 <= row < len(self.chosen):
            del self.chosen[row]
            self._show_chosen()

    def _show_chosen(self) -> None:
        self.picked.clear()
        for code in self.chosen:
            self.picked.addItem(f"{test_name(code)} ({code})")
        self.order_button.setEnabled(bool(self.chosen))

    def place(self) -> None:
        desk, tests = self.desk, list(self.chosen)
        priority = self.priority.currentData()
        info = self.info.toPlainText().strip() or None
        patient_id, appointment_id = self.patient_id, self.appointment_id
        self.order_button.setEnabled(False)

        def work() -> uuid.UUID:
            return order_tests(desk.engine, desk.clock, clinic_id=desk.session.clinic_id,
                               patient_id=patient_id, ordered_by=desk.session.user_id,
                               tests=tests, priority=priority, clinical_info=info,
                               appointment_id=appointment_id)
        desk.tasks.db.run(work, on_done=self._placed, on_error=self._failed, owner=self)

    def _placed(self, order_id: uuid.UUID) -> None:
        self.order_id = order_id
        self.desk.changed("lab_order")
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.order_button.setEnabled(bool(self.chosen))
        show_error(self, tr("Order tests"), error_message(exc))
