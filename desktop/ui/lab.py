"""The lab technician's workspace, online: the worklist (urgent first), one order with
its steps (sample received, processing, completed, or cancelled with a reason), and the
results table, pre-filled with the catalogue's analytes, units and reference ranges
(shared_models.lab_tests). Values are flagged by the server; the flags show once saved.

Every request runs on the network worker (desktop.operations.lab_worklist); a refusal
(completing with results missing, a step out of order) is shown in a dialog with the
server's reason.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from datetime import datetime

from desktop.operations.lab_worklist import (
    LabWorkError,
    enter_results,
    flag_mark,
    move,
    next_steps,
    worklist,
)
from desktop.sync.errors import RequestRefused, SyncAuthError, SyncNetworkError
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.pharmacy import ERROR_STYLE, ReasonDialog
from desktop.ui.qt import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QtGui,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models import lab_tests
from shared_models.schemas.lab_orders import RESULTS_OPEN, LabOrderPublic, LabOrdersPublic

OFFLINE = ("The lab works online, and this computer cannot reach the server now. The "
           "worklist shows here again when it is back.")
FILTERS = (("Open orders", None), ("Ordered", "ordered"), ("Sample received", "sample_received"),
           ("Processing", "processing"), ("Completed", "completed"), ("Cancelled", "cancelled"))
STATUS_LABELS = {"ordered": "Ordered", "sample_received": "Sample received",
                 "processing": "Processing", "completed": "Completed",
                 "cancelled": "Cancelled"}
STEP_LABELS = {"sample_received": "Sample received", "processing": "Processing",
               "completed": "Completed", "cancelled": "Cancel…"}
FLAG_LABELS = {"normal": "normal", "low": "low", "high": "high", "critical_low": "critical low",
               "critical_high": "critical high", "abnormal": "abnormal"}
FLAG_COLOURS = {"low": "#e65100", "high": "#e65100", "abnormal": "#b00020",
                "critical_low": "#b00020", "critical_high": "#b00020"}
LIST_COLUMNS = ("Priority", "Patient", "Record", "Tests", "Status", "Ordered")
RESULT_COLUMNS = ("Test", "Analyte", "Value", "Unit", "Reference", "Flag")
VALUE, UNIT, FLAG = 2, 3, 5


def test_name(code: str) -> str:
    test = lab_tests.test(code)
    return test.name_es if i18n.language() == "es" else test.name_en


def analyte_name(code: str, analyte_id: str) -> str:
    found = lab_tests.analyte(code, analyte_id)
    return found.name_es if i18n.language() == "es" else found.name_en


def range_text(low: float | None, high: float | None, normal: str | None) -> str:
    if normal:
        return normal
    if low is not None and high is not None:
        return f"{low:g}–{high:g}"
    if low is not None:
        return f"≥ {low:g}"
    if high is not None:
        return f"≤ {high:g}"
    return ""


def flag_text(flag: str) -> str:
    """The flag as lab reports print it: the mark and the word ("H high")."""
    if flag == "normal":
        return tr("normal")
    return f"{flag_mark(flag)} {tr(FLAG_LABELS.get(flag, flag))}"


def problem_text(exc: BaseException) -> str:
    if isinstance(exc, SyncNetworkError):
        return tr(OFFLINE)
    if isinstance(exc, RequestRefused) and exc.code == "results_missing":
        missing = [test_name(code) for code in exc.details.get("missing_tests", [])
                   if code in {t.code for t in lab_tests.catalogue().tests}]
        if missing:
            return tr("Enter results for {tests} before completing the order.",
                      tests=", ".join(missing))
    if isinstance(exc, RequestRefused | LabWorkError):
        return tr(str(exc))
    if isinstance(exc, SyncAuthError):
        return tr("The server did not accept this session: {error}", error=str(exc))
    return tr("The worklist could not be loaded: {error}", error=str(exc))


def local_time(moment: datetime, desk: Desk) -> str:
    return f"{moment.astimezone(desk.clinic.timezone):%Y-%m-%d %H:%M}"


class LabView(QWidget):
    """The worklist and the selected order. `loaded` fires when a list is on screen,
    `answered` when a step's or a save's answer is (tests wait on them)."""

    loaded = Signal()
    answered = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.orders: list[LabOrderPublic] = []
        self.current: LabOrderPublic | None = None
        # (test code, analyte id) of each row of the results table.
        self.result_keys: list[tuple[str, str]] = []
        # Values typed and not saved yet, by order.
        self.drafts: dict[uuid.UUID, dict[tuple[str, str], str]] = {}
        self.busy = False
        self.message_box: QMessageBox | None = None
        self.reason_dialog: ReasonDialog | None = None
        self._generation = 0
        self.setObjectName("lab_view")

        self.title = QLabel()
        self.filter = QComboBox()
        self.filter.setObjectName("lab_filter")
        self.filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button = QPushButton()
        self.refresh_button.setObjectName("lab_refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.note = QLabel()
        self.note.setObjectName("lab_note")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.filter)
        top.addWidget(self.refresh_button)
        self.table = QTableWidget(0, len(LIST_COLUMNS))
        self.table.setObjectName("lab_worklist")
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.currentCellChanged.connect(lambda row, *_: self._select(row))
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(self._detail())
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(splitter, 1)
        self.retranslate()
        i18n.language_changed.connect(self.retranslate)
        desk.synced.connect(self._synced)
        self.refresh()

    def _detail(self) -> QWidget:
        pane = QFrame()
        pane.setObjectName("lab_detail")
        self.header = QLabel()
        self.header.setObjectName("lab_order_header")
        self.header.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("lab_order_status")
        self.status.setWordWrap(True)
        self.step_buttons: dict[str, QPushButton] = {}
        steps = QHBoxLayout()
        for step in STEP_LABELS:
            button = QPushButton()
            button.setObjectName(f"lab_step_{step}")
            button.clicked.connect(lambda _c=False, s=step: self.step(s))
            self.step_buttons[step] = button
            steps.addWidget(button)
        steps.addStretch(1)
        self.results = QTableWidget(0, len(RESULT_COLUMNS))
        self.results.setObjectName("lab_results")
        self.results.verticalHeader().setVisible(False)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.save_button = QPushButton()
        self.save_button.setObjectName("lab_save_results")
        self.save_button.clicked.connect(self.save_results)
        save_row = QHBoxLayout()
        save_row.addStretch(1)
        save_row.addWidget(self.save_button)
        layout = QVBoxLayout(pane)
        layout.addWidget(self.header)
        layout.addWidget(self.status)
        layout.addLayout(steps)
        layout.addWidget(self.results, 1)
        layout.addLayout(save_row)
        self._show_detail(None)
        return pane

    def retranslate(self) -> None:
        self.title.setText(f"<b>{html.escape(tr('Lab worklist'))}</b>")
        self.filter.blockSignals(True)
        index = max(self.filter.currentIndex(), 0)
        self.filter.clear()
        for label, status in FILTERS:
            self.filter.addItem(tr(label), status)
        self.filter.setCurrentIndex(index)
        self.filter.blockSignals(False)
        self.refresh_button.setText(tr("Refresh"))
        self.table.setHorizontalHeaderLabels([tr(c) for c in LIST_COLUMNS])
        self.results.setHorizontalHeaderLabels([tr(c) for c in RESULT_COLUMNS])
        for step, button in self.step_buttons.items():
            button.setText(tr(STEP_LABELS[step]))
        self.save_button.setText(tr("Save results"))
        self._show_list()
        self._show_detail(self.current)

    # --- the worklist ---------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setStyleSheet(ERROR_STYLE if error else "")
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _synced(self) -> None:
        if not self.busy:
            self.refresh()

    def refresh(self) -> None:
        server = self.desk.server
        if server is None:
            self._failed(self._generation, SyncNetworkError("no server"))
            return
        self._generation += 1
        generation = self._generation
        status = self.filter.currentData()
        self.refresh_button.setEnabled(False)
        self.desk.tasks.net.run(lambda: worklist(server, status=status),
                                on_done=lambda page: self._loaded(generation, page),
                                on_error=lambda exc: self._failed(generation, exc), owner=self)

    def _loaded(self, generation: int, page: LabOrdersPublic) -> None:
        if generation != self._generation:
            return
        self.refresh_button.setEnabled(True)
        self._say("" if page.data else tr("No lab orders here."))
        keep = self.current.id if self.current is not None else None
        self.orders = list(page.data)
        self._show_list()
        ids = [o.id for o in self.orders]
        self.table.setCurrentCell(ids.index(keep) if keep in ids else (0 if ids else -1), 0)
        self._select(self.table.currentRow())
        self.loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.refresh_button.setEnabled(True)
        self.orders = []
        self._show_list()
        self._select(-1)
        self._say(problem_text(exc), error=not isinstance(exc, SyncNetworkError))
        self.loaded.emit()

    def _show_list(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.orders))
        for row, order in enumerate(self.orders):
            urgent = order.priority == "urgent"
            cells = (tr("URGENT") if urgent else tr("routine"), order.patient_name,
                     order.patient_mrn, ", ".join(test_name(t) for t in order.tests),
                     tr(STATUS_LABELS[order.status]), local_time(order.created_at, self.desk))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if urgent:
                    item.setForeground(QtGui.QColor("#b00020"))
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.blockSignals(False)

    def cell(self, row: int, column: str) -> str:
        item = self.table.item(row, LIST_COLUMNS.index(column))
        return item.text() if item is not None else ""

    def _select(self, row: int) -> None:
        order = self.orders[row] if 0 <= row < len(self.orders) else None
        self._show_detail(order)

    def select(self, order_id: object) -> None:
        row = self.select_row(order_id)
        if row is not None:
            self._select(row)

    def select_row(self, order_id: object) -> int | None:
        for row, order in enumerate(self.orders):
            if order.id == order_id:
                self.table.setCurrentCell(row, 0)
                return row
        return None

    # --- one order ------------------------------------------------------------------------

    def _show_detail(self, order: LabOrderPublic | None) -> None:
        # Values typed and not saved yet stay with their order: through a refresh, a step,
        # or a look at another order.
        if self.current is not None:
            self.drafts[self.current.id] = self.typed()
        typed = self.drafts.get(order.id, {}) if order is not None else {}
        self.current = order
        self.header.setVisible(order is not None)
        self.status.setVisible(order is not None)
        self.results.setRowCount(0)
        self.result_keys = []
        self._enable()
        if order is None:
            return
        priority = tr("URGENT") if order.priority == "urgent" else tr("routine")
        info = (f"<br>{html.escape(tr('Clinical information'))}: "
                f"{html.escape(order.clinical_info)}" if order.clinical_info else "")
        ordered = tr("Ordered by {doctor} on {when}", doctor=order.ordered_by_name,
                     when=local_time(order.created_at, self.desk))
        self.header.setText(
            f"<b style='font-size:13pt'>{html.escape(order.patient_name)}</b> · "
            f"{html.escape(order.patient_mrn)} · {html.escape(priority)}<br>"
            f"{html.escape(ordered)}{info}")
        status = tr(STATUS_LABELS[order.status])
        if order.status_reason:
            status = f"{status}: {order.status_reason}"
        self.status.setText(f"{tr('Status')}: {status}")
        saved = {(r.test_code, r.analyte): r for r in order.results}
        editable = order.status in RESULTS_OPEN
        for code in order.tests:
            for analyte in lab_tests.test(code).analytes:
                row = self.results.rowCount()
                self.results.insertRow(row)
                self.result_keys.append((code, analyte.id))
                result = saved.get((code, analyte.id))
                value = typed.get((code, analyte.id), result.value if result else "")
                unit = result.unit if result and result.unit is not None else analyte.unit
                reference = (range_text(result.ref_low, result.ref_high, result.ref_text)
                             if result else range_text(analyte.low, analyte.high,
                                                       analyte.normal_text))
                cells = (test_name(code), analyte_name(code, analyte.id), value, unit,
                         reference, flag_text(result.flag) if result else "")
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                    if editable and column in (VALUE, UNIT):
                        flags |= Qt.ItemFlag.ItemIsEditable
                    item.setFlags(flags)
                    if column == FLAG and result is not None and result.flag in FLAG_COLOURS:
                        item.setForeground(QtGui.QColor(FLAG_COLOURS[result.flag]))
                        font = item.font()
                        font.setBold(True)
                        item.setFont(font)
                    self.results.setItem(row, column, item)
        self.results.resizeColumnsToContents()
        self.results.horizontalHeader().setStretchLastSection(True)

    def _enable(self) -> None:
        order, busy = self.current, self.busy
        allowed = set(next_steps(order)) if order is not None else set()
        for step, button in self.step_buttons.items():
            button.setEnabled(step in allowed and not busy)
        self.save_button.setEnabled(bool(order and order.status in RESULTS_OPEN and not busy))

    def result_row(self, test_code: str, analyte: str) -> int:
        return self.result_keys.index((test_code, analyte))

    def result_cell(self, test_code: str, analyte: str, column: str) -> str:
        item = self.results.item(self.result_row(test_code, analyte),
                                 RESULT_COLUMNS.index(column))
        return item.text() if item is not None else ""

    def set_value(self, test_code: str, analyte: str, value: str) -> None:
        item = self.results.item(self.result_row(test_code, analyte), VALUE)
        assert item is not None
        item.setText(value)

    def typed(self) -> dict[tuple[str, str], str]:
        """The values in the table now, by (test code, analyte)."""
        values = {}
        for row, key in enumerate(self.result_keys):
            item = self.results.item(row, VALUE)
            if item is not None and item.text().strip():
                values[key] = item.text()
        return values

    # --- steps and results ----------------------------------------------------------------

    def step(self, to: str) -> None:
        if self.current is None:
            return
        if to == "cancelled":
            dialog = ReasonDialog(tr("Cancel order"), tr("Why is the order cancelled (for "
                                                         "example: sample haemolysed)?"), self)
            dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dialog.accepted.connect(lambda: self._move(to, dialog.text()))
            dialog.finished.connect(lambda _r: setattr(self, "reason_dialog", None))
            self.reason_dialog = dialog
            dialog.open()
            return
        self._move(to, None)

    def _move(self, to: str, reason: str | None) -> None:
        server, order = self.desk.server, self.current
        if order is None:
            return
        if server is None:
            self._refused(SyncNetworkError("no server"))
            return
        self._run(lambda: move(server, order.id, to, reason=reason))

    def save_results(self) -> None:
        server, order = self.desk.server, self.current
        if order is None:
            return
        if server is None:
            self._refused(SyncNetworkError("no server"))
            return
        rows = []
        for row, (code, analyte) in enumerate(self.result_keys):
            value_item, unit_item = self.results.item(row, VALUE), self.results.item(row, UNIT)
            value = value_item.text().strip() if value_item is not None else ""
            if not value:
                continue
            result = {"test_code": code, "analyte": analyte, "value": value}
            unit = unit_item.text().strip() if unit_item is not None else ""
            if unit and unit != lab_tests.analyte(code, analyte).unit:
                result["unit"] = unit  # the lab's own unit; the catalogue's is the default
            rows.append(result)
        if not rows:
            self._refused(LabWorkError("Enter at least one result."))
            return
        self._run(lambda: enter_results(server, order.id, rows, current=order), saving=True)

    def _run(self, work: Callable[[], LabOrderPublic], *, saving: bool = False) -> None:
        self.busy = True
        self._enable()
        self.desk.tasks.net.run(work, on_done=lambda order: self._answered(order, saving),
                                on_error=self._refused, owner=self)

    def _answered(self, order: LabOrderPublic, saved: bool = False) -> None:
        if saved:
            self.drafts.pop(order.id, None)
            self.current = None  # what was typed is saved: show the server's values
        self.busy = False
        self._say("")
        for row, old in enumerate(self.orders):
            if old.id == order.id:
                self.orders[row] = order
        self._show_list()
        self.table.blockSignals(True)
        self.select_row(order.id)
        self.table.blockSignals(False)
        self._show_detail(order)
        self.answered.emit()

    def _refused(self, exc: BaseException) -> None:
        self.busy = False
        self._enable()
        if isinstance(exc, SyncNetworkError):
            self._say(tr(OFFLINE))
        if self.message_box is not None:
            self.message_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, tr("Lab"), problem_text(exc),
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("lab_refused")
        self.message_box = box
        box.open()
        self.answered.emit()
