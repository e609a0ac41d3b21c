"""The "needs attention" list: bookings the server rejected, with its other free times
one click away, values that lost a merge, with both values shown and one click to keep
either, and reminders that could not be sent, with one click to send again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row

from desktop.operations.attention import dismiss, needs_attention, rebook, restore_mine
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QtGui,
    QtWidgets,
    QVBoxLayout,
    QWidget,
)
from desktop.ui.reminders import DeadLettersPanel


class AttentionItem(QWidget):
    def __init__(self, view: AttentionView, item: Row[Any]) -> None:
        super().__init__()
        self.view = view
        self.item = item
        self.setObjectName(f"attention_{item.mutation_id}")
        layout = QVBoxLayout(self)
        zone = view.desk.clinic.timezone
        if item.status == "rejected":
            title = QLabel(f"<b>{tr('Booking rejected')}</b>: {item.reason or ''}")
            title.setWordWrap(True)
            layout.addWidget(title)
            row = QHBoxLayout()
            for slot in item.detail.get("alternatives", []):
                start = datetime.fromisoformat(slot["start"])
                button = QPushButton(f"{tr('Rebook')} {start.astimezone(zone):%a %d %H:%M}")
                button.setObjectName("rebook")
                button.clicked.connect(lambda _c=False, s=start: view.rebook(item, s))
                row.addWidget(button)
            layout.addLayout(row)
        for conflict in item.detail.get("conflicts", []):
            text = QLabel(f"<b>{tr('Value replaced')}</b> ({conflict['field']}): "
                          f"{conflict['kept']!s} ← {conflict['lost']!s}")
            text.setWordWrap(True)
            layout.addWidget(text)
            row = QHBoxLayout()
            keep = QPushButton(tr("Keep current"))
            keep.setObjectName("keep_current")
            keep.clicked.connect(lambda: view.dismiss(item))
            row.addWidget(keep)
            if conflict.get("winner") == "server":
                mine = QPushButton(tr("Restore mine"))
                mine.setObjectName("restore_mine")
                mine.clicked.connect(
                    lambda _c=False, f=conflict["field"]: view.restore(item, f))
                row.addWidget(mine)
            layout.addLayout(row)


class AttentionView(QWidget):
    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.items: list[Row[Any]] = []
        self.list = QVBoxLayout()
        self.empty = QLabel(tr("Nothing needs attention."))
        self.empty.setObjectName("attention_empty")
        # Failed reminders live on the server: asked for when this workspace is shown and
        # after each sync while it is on screen.
        self.failed = DeadLettersPanel(desk)
        self.failed.loaded.connect(self._show_empty)
        inner = QWidget()
        column = QVBoxLayout(inner)
        column.addLayout(self.list)
        column.addWidget(self.failed)
        column.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        layout = QVBoxLayout(self)
        layout.addWidget(self.empty)
        layout.addWidget(scroll)
        desk.data_changed.connect(self._on_data_changed)
        desk.synced.connect(self._on_synced)
        self.refresh()

    def _on_data_changed(self, _entities: frozenset[str]) -> None:
        self.refresh()

    def _on_synced(self) -> None:
        if self.isVisible():
            self.failed.refresh()

    def showEvent(self, event: QtGui.QShowEvent) -> None:
        super().showEvent(event)
        if not event.spontaneous():  # the tab was opened, not the window restored
            self.failed.refresh()

    def refresh(self) -> None:
        engine = self.desk.engine
        self.desk.tasks.db.run(lambda: needs_attention(engine), on_done=self._show, owner=self)

    def _show(self, items: list[Row[Any]]) -> None:
        self.items = items
        while self.list.count():
            entry = self.list.takeAt(0)
            widget = entry.widget() if entry is not None else None
            if widget is not None:
                widget.deleteLater()
        for item in items:
            self.list.addWidget(AttentionItem(self, item))
        self._show_empty()

    def _show_empty(self) -> None:
        self.empty.setVisible(not self.items and not self.failed.letters)

    def _settle(self, work: Any) -> None:
        self.desk.tasks.db.run(work, on_done=self._settled, on_error=self._refused,
                               owner=self)

    def _settled(self, _result: object) -> None:
        self.desk.changed("appointment", "patient")

    def _refused(self, exc: BaseException) -> None:
        QMessageBox.warning(self, tr("Needs attention"), str(exc))

    def rebook(self, item: Row[Any], start: datetime) -> None:
        desk = self.desk
        self._settle(lambda: rebook(desk.engine, desk.clock, item.mutation_id, start))

    def dismiss(self, item: Row[Any]) -> None:
        desk = self.desk
        self._settle(lambda: dismiss(desk.engine, item.mutation_id))

    def restore(self, item: Row[Any], field: str) -> None:
        desk = self.desk
        self._settle(lambda: restore_mine(desk.engine, desk.clock, item.mutation_id, field))
