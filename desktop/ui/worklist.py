"""The frame the online workspaces share (the pharmacist's prescriptions, the lab's
worklist): the title, status filter and refresh row, the note that says the list is empty
or the server out of reach, the read-only list beside a detail pane, asking the server on
the network worker without letting a late answer overwrite a newer one, the dialog that
asks why (refusing, cancelling), and the message box for a step the server turned down.

Each view keeps its own rows, detail pane, steps and texts; this module has none of them.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Generic, TypeVar

from desktop.server_link import ServerLink
from desktop.sync.errors import SyncNetworkError
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSplitter,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)

ERROR_STYLE = "color: #b00020"

Row = TypeVar("Row")
Page = TypeVar("Page")
Answer = TypeVar("Answer")


def local_time(moment: datetime, desk: Desk) -> str:
    return f"{moment.astimezone(desk.clinic.timezone):%Y-%m-%d %H:%M}"


class ReasonDialog(QDialog):
    """Asks why (refusing a prescription, cancelling a lab order): at least 3 characters."""

    def __init__(self, title: str, question: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reason_dialog")
        self.setWindowTitle(title)
        label = QLabel(question)
        label.setWordWrap(True)
        self.reason = QLineEdit()
        self.reason.setObjectName("reason_text")
        self.reason.setMaxLength(500)
        self.error = QLabel(tr("Say why, in at least 3 characters."))
        self.error.setObjectName("reason_error")
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.setVisible(False)
        buttons = QDialogButtonBox()
        self.ok_button = buttons.addButton(title, QDialogButtonBox.ButtonRole.AcceptRole)
        self.ok_button.setObjectName("reason_ok")
        buttons.addButton(tr("Back"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(label)
        layout.addWidget(self.reason)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def text(self) -> str:
        return self.reason.text().strip()

    def _check(self) -> None:
        if len(self.text()) < 3:
            self.error.setVisible(True)
            return
        self.accept()


class OnlineWorklist(QWidget, Generic[Row]):
    """A list of `Row`s from the server and the one selected. `name` prefixes the object
    names (`{name}_view`, `_title`, `_filter`, `_refresh`, `_note`, `_refused`);
    `problem` words an error for a person. `loaded` fires when a list is on screen.

    A view builds its detail pane after this constructor, then calls `_lay_out`, and
    fills in the methods below that raise NotImplementedError."""

    loaded = Signal()

    def __init__(self, desk: Desk, *, name: str, list_name: str, columns: tuple[str, ...],
                 filters: tuple[tuple[str, str | None], ...],
                 problem: Callable[[BaseException], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.rows: list[Row] = []
        self.current: Row | None = None
        self.busy = False
        self.message_box: QMessageBox | None = None
        self.reason_dialog: ReasonDialog | None = None
        self._name = name
        self._columns = columns
        self._filters = filters
        self._problem = problem
        self._generation = 0
        self.setObjectName(f"{name}_view")

        self.title = QLabel()
        self.title.setObjectName(f"{name}_title")
        self.filter = QComboBox()
        self.filter.setObjectName(f"{name}_filter")
        self.filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button = QPushButton()
        self.refresh_button.setObjectName(f"{name}_refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.note = QLabel()
        self.note.setObjectName(f"{name}_note")
        self.note.setWordWrap(True)
        self.note.setVisible(False)
        self.table = QTableWidget(0, len(columns))
        self.table.setObjectName(list_name)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.currentCellChanged.connect(lambda row, *_: self._select(row))

    def _lay_out(self, list_pane: QWidget, detail: QWidget) -> None:
        """Puts the header row, the note, and the list beside the detail on screen, and
        asks for the first list. Separate from the constructor because the view's detail
        pane needs the view's own state, set after this class's."""
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.filter)
        top.addWidget(self.refresh_button)
        splitter = QSplitter()
        splitter.addWidget(list_pane)
        splitter.addWidget(detail)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.note)
        layout.addWidget(splitter, 1)
        self.retranslate()
        i18n.language_changed.connect(self.retranslate)
        self.desk.synced.connect(self._synced)
        self.refresh()

    def _retranslate_list(self, title: str) -> None:
        """The header row and the list's columns in the language now; `title` is
        translated by the view, which owns its wording."""
        self.title.setText(f"<b>{html.escape(title)}</b>")
        # Refilling the filter is not the user choosing a status: no new request.
        self.filter.blockSignals(True)
        index = max(self.filter.currentIndex(), 0)
        self.filter.clear()
        for label, status in self._filters:
            self.filter.addItem(tr(label), status)
        self.filter.setCurrentIndex(index)
        self.filter.blockSignals(False)
        self.refresh_button.setText(tr("Refresh"))
        self.table.setHorizontalHeaderLabels([tr(c) for c in self._columns])

    # --- what each view fills in ----------------------------------------------------------

    def retranslate(self) -> None:
        raise NotImplementedError

    def refresh(self) -> None:
        raise NotImplementedError

    def row_id(self, row: Row) -> uuid.UUID:
        raise NotImplementedError

    def _list_items(self, row: Row) -> list[QTableWidgetItem]:
        """One list row's cells, in the order of the columns."""
        raise NotImplementedError

    def _show_detail(self, row: Row | None) -> None:
        raise NotImplementedError

    def _enable(self) -> None:
        """The step buttons for the current row, shut while a step is on its way."""
        raise NotImplementedError

    def _refused(self, exc: BaseException) -> None:
        raise NotImplementedError

    # --- the list -------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        self.note.setStyleSheet(ERROR_STYLE if error else "")
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def _synced(self) -> None:
        if not self.busy:
            self.refresh()

    def _fetch(self, work: Callable[[ServerLink, str | None], Page],
               take: Callable[[Page], str]) -> None:
        """Asks the server for a list, for the status the filter shows, on the network
        worker. `take` keeps the answer's rows and returns what the note says ("" for
        nothing)."""
        server = self.desk.server
        if server is None:
            self._failed(self._generation, SyncNetworkError("no server"))
            return
        # Each request gets a number; only the answer to the newest one is shown.
        self._generation += 1
        generation = self._generation
        status = self.filter.currentData()
        self.refresh_button.setEnabled(False)
        self.desk.tasks.net.run(lambda: work(server, status),
                                on_done=lambda page: self._loaded(generation, page, take),
                                on_error=lambda exc: self._failed(generation, exc),
                                owner=self)

    def _loaded(self, generation: int, page: Page, take: Callable[[Page], str]) -> None:
        if generation != self._generation:
            return  # an older answer arriving after a newer question
        self.refresh_button.setEnabled(True)
        keep = self.row_id(self.current) if self.current is not None else None
        self._say(take(page))
        self._show_list()
        ids = [self.row_id(r) for r in self.rows]
        self.table.setCurrentCell(ids.index(keep) if keep in ids else (0 if ids else -1), 0)
        self._select(self.table.currentRow())
        self.loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.refresh_button.setEnabled(True)
        self._drop_rows()
        self._show_list()
        self._select(-1)
        # Out of reach is a state, said plainly; anything else is an error.
        self._say(self._problem(exc), error=not isinstance(exc, SyncNetworkError))
        self.loaded.emit()

    def _drop_rows(self) -> None:
        """Forgets the list: nothing old stays on screen when the server cannot say."""
        self.rows = []

    def _show_list(self) -> None:
        # Rebuilding the rows is not the user choosing one.
        self.table.blockSignals(True)
        self.table.setRowCount(len(self.rows))
        for row, value in enumerate(self.rows):
            for column, item in enumerate(self._list_items(value)):
                self.table.setItem(row, column, item)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.blockSignals(False)

    def _put(self, changed: Row) -> None:
        """Puts a row the server answered with in place of the one with its id."""
        key = self.row_id(changed)
        for row, old in enumerate(self.rows):
            if self.row_id(old) == key:
                self.rows[row] = changed
        self._show_list()

    def cell(self, row: int, column: str) -> str:
        item = self.table.item(row, self._columns.index(column))
        return item.text() if item is not None else ""

    def _select(self, row: int) -> None:
        self._show_detail(self.rows[row] if 0 <= row < len(self.rows) else None)

    def select(self, row_id: object) -> None:
        row = self.select_row(row_id)
        if row is not None:
            self._select(row)

    def select_row(self, row_id: object) -> int | None:
        for row, value in enumerate(self.rows):
            if self.row_id(value) == row_id:
                self.table.setCurrentCell(row, 0)
                return row
        return None

    # --- the steps ------------------------------------------------------------------------

    def _ask_reason(self, title: str, question: str, then: Callable[[str], None]) -> None:
        """Opens the reason dialog; `then` gets the reason once it is given. Kept in
        `reason_dialog` while open, so tests and the view can reach it."""
        dialog = ReasonDialog(title, question, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: then(dialog.text()))
        dialog.finished.connect(lambda _r: setattr(self, "reason_dialog", None))
        self.reason_dialog = dialog
        dialog.open()

    def _ready(self) -> tuple[ServerLink, Row] | None:
        """The server and the row a step is for; None when no row is selected, or when
        there is no server (said as being offline, like a refused step)."""
        server, current = self.desk.server, self.current
        if current is None:
            return None
        if server is None:
            self._refused(SyncNetworkError("no server"))
            return None
        return server, current

    def _run(self, work: Callable[[], Answer], done: Callable[[Answer], None]) -> None:
        """Sends a step on the network worker; the buttons stay shut until it answers."""
        self.busy = True
        self._enable()
        self.desk.tasks.net.run(work, on_done=done, on_error=self._refused, owner=self)

    def _warn(self, caption: str, exc: BaseException) -> None:
        """Says in a message box why a step did not go through, and in the note too when
        the server is out of reach (that outlasts the box)."""
        text = self._problem(exc)
        if isinstance(exc, SyncNetworkError):
            self._say(text)
        # One box at a time: a newer refusal replaces the one not yet closed.
        if self.message_box is not None:
            self.message_box.deleteLater()
        box = QMessageBox(QMessageBox.Icon.Warning, caption, text,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName(f"{self._name}_refused")
        self.message_box = box
        box.open()
