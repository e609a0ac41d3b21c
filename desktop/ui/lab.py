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
from desktop.ui.qt import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QtGui,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.ui.worklist import OnlineWorklist, local_time
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


class LabView(OnlineWorklist[LabOrderPublic]):
    """The worklist and the selected order. `loaded` fires when a list is on screen,
    `answered` when a step's or a save's answer is (tests wait on them)."""

    answered = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(desk, name="lab", list_name="lab_worklist", columns=LIST_COLUMNS,
                         filters=FILTERS, problem=problem_text, parent=parent)
        # (test code, analyte id) of each row of the results table.
        self.result_keys: list[tuple[str, str]] = []
        # Values typed and not saved yet, by order.
        self.drafts: dict[uuid.UUID, dict[tuple[str, str], str]] = {}
        self._lay_out(self.table, self._detail())

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
        self._retranslate_list(tr("Lab worklist"))
        self.results.setHorizontalHeaderLabels([tr(c) for c in RESULT_COLUMNS])
        for step, button in self.step_buttons.items():
            button.setText(tr(STEP_LABELS[step]))
        self.save_button.setText(tr("Save results"))
        self._show_list()
        self._show_detail(self.current)

    # --- the worklist ---------------------------------------------------------------------

    def refresh(self) -> None:
        self._fetch(lambda server, status: worklist(server, status=status), self._take)

    def _take(self, page: LabOrdersPublic) -> str:
        self.rows = list(page.data)
        return "" if page.data else tr("No lab orders here.")

    def row_id(self, row: LabOrderPublic) -> uuid.UUID:
        return row.id

    def _list_items(self, row: LabOrderPublic) -> list[QTableWidgetItem]:
        urgent = row.priority == "urgent"
        cells = (tr("URGENT") if urgent else tr("routine"), row.patient_name,
                 row.patient_mrn, ", ".join(test_name(t) for t in row.tests),
                 tr(STATUS_LABELS[row.status]), local_time(row.created_at, self.desk))
        items = []
        for text in cells:
            item = QTableWidgetItem(text)
            if urgent:
                item.setForeground(QtGui.QColor("#b00020"))
                font = item.font()
                font.setBold(True)
                item.setFont(font)
            items.append(item)
        return items

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
            self._ask_reason(tr("Cancel order"), tr("Why is the order cancelled (for "
                                                    "example: sample haemolysed)?"),
                             lambda reason: self._move(to, reason))
            return
        self._move(to, None)

    def _move(self, to: str, reason: str | None) -> None:
        ready = self._ready()
        if ready is None:
            return
        server, order = ready
        self._run(lambda: move(server, order.id, to, reason=reason), self._answered)

    def save_results(self) -> None:
        ready = self._ready()
        if ready is None:
            return
        server, order = ready
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
        self._run(lambda: enter_results(server, order.id, rows, current=order),
                  lambda answer: self._answered(answer, saved=True))

    def _answered(self, order: LabOrderPublic, saved: bool = False) -> None:
        if saved:
            self.drafts.pop(order.id, None)
            self.current = None  # what was typed is saved: show the server's values
        self.busy = False
        self._say("")
        self._put(order)
        self.table.blockSignals(True)
        self.select_row(order.id)
        self.table.blockSignals(False)
        self._show_detail(order)
        self.answered.emit()

    def _refused(self, exc: BaseException) -> None:
        self.busy = False
        self._enable()
        self._warn(tr("Lab"), exc)
        self.answered.emit()
