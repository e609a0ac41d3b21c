"""Sync in the background and what the status bar says about it: online or offline,
changes waiting to be sent, the last sync, and a "Sync now" button.

Sync runs on the network worker every minute and a few seconds after each change made
here; only one runs at a time. Records it brings in are announced through the desk's
"data changed" signal, which screens refresh from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import func, select

from desktop.store.local import outbox
from desktop.sync.client import Progress
from desktop.sync.errors import SyncAuthError, SyncNetworkError
from desktop.ui.desk import Desk
from desktop.ui.i18n import language_changed, tr
from desktop.ui.qt import QHBoxLayout, QLabel, QObject, QPushButton, QTimer, QWidget, Signal

SYNC_EVERY_MS = 60_000
AFTER_CHANGE_MS = 2_000
SYNCED = frozenset({"patient", "provider", "availability_rule", "availability_exception",
                    "appointment", "clinical_note", "payment", "allergy", "condition",
                    "medication", "vital_signs", "pharmacy", "signing_key", "prescription",
                    "prescription_item", "lab_order", "lab_result"})


@dataclass(frozen=True)
class SyncStatus:
    online: bool | None = None  # None until the first attempt
    syncing: bool = False
    pending: int = 0
    last_sync: datetime | None = None
    problem: str | None = None  # what the last attempt ran into, for a person


class SyncController(QObject):
    changed = Signal(object)  # SyncStatus

    def __init__(self, desk: Desk, run_sync: Callable[[], Progress] | None, *,
                 every_ms: int = SYNC_EVERY_MS, after_change_ms: int = AFTER_CHANGE_MS) -> None:
        super().__init__()
        self.desk = desk
        self.run_sync = run_sync
        self.status = SyncStatus()
        self._announcing = False
        self.timer = QTimer(self)
        self.timer.setInterval(every_ms)
        self.timer.timeout.connect(self.sync_now)
        self.soon = QTimer(self)
        self.soon.setSingleShot(True)
        self.soon.setInterval(after_change_ms)
        self.soon.timeout.connect(self.sync_now)
        desk.data_changed.connect(self._on_local_change)

    def start(self) -> None:
        self.timer.start()
        self.refresh_pending()
        self.sync_now()

    def stop(self) -> None:
        self.timer.stop()
        self.soon.stop()

    def _set(self, **changes: object) -> None:
        self.status = replace(self.status, **changes)  # type: ignore[arg-type]
        self.changed.emit(self.status)

    def _on_local_change(self, _entities: frozenset[str]) -> None:
        if self._announcing:
            return  # our own announcement of what a sync brought in
        self.refresh_pending()
        if self.run_sync is not None:
            self.soon.start()

    def refresh_pending(self) -> None:
        engine = self.desk.engine

        def count() -> int:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
        self.desk.tasks.db.run(count, on_done=lambda n: self._set(pending=n), owner=self)

    def sync_now(self) -> None:
        if self.run_sync is None or self.status.syncing:
            return
        self._set(syncing=True)
        run_sync = self.run_sync
        self.desk.tasks.net.run(run_sync, on_done=self._done, on_error=self._failed,
                                owner=self)

    def _done(self, progress: Progress) -> None:
        self._set(syncing=False, online=True, last_sync=datetime.now(UTC), problem=None)
        self.refresh_pending()
        self.desk.synced.emit()
        if progress.pulled or progress.pushed:
            self._announcing = True
            try:
                self.desk.data_changed.emit(SYNCED)
            finally:
                self._announcing = False

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, SyncNetworkError):
            self._set(syncing=False, online=False, problem=None)
        elif isinstance(exc, SyncAuthError):
            self._set(syncing=False, online=False, problem=str(exc))
        else:
            self._set(syncing=False, problem=str(exc))
        self.refresh_pending()


class SyncStatusBar(QWidget):
    def __init__(self, controller: SyncController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.connection = QLabel()
        self.connection.setObjectName("sync_connection")
        self.pending = QLabel()
        self.pending.setObjectName("sync_pending")
        self.last = QLabel()
        self.last.setObjectName("sync_last")
        self.button = QPushButton()
        self.button.setObjectName("sync_now")
        self.button.clicked.connect(controller.sync_now)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.connection, self.pending, self.last, self.button):
            layout.addWidget(widget)
        controller.changed.connect(self.show_status)
        language_changed.connect(self.retranslate)
        self.show_status(controller.status)

    def retranslate(self) -> None:
        self.show_status(self.controller.status)

    def show_status(self, status: SyncStatus) -> None:
        online = status.online is not False
        self.connection.setText(tr("Online") if online else tr("Offline"))
        self.connection.setStyleSheet("color: #2e7d32" if online else "color: #b00020")
        self.pending.setText(tr("{n} changes waiting", n=status.pending) if status.pending
                             else tr("All changes sent"))
        zone = self.controller.desk.clinic.timezone
        self.last.setText(
            tr("Last sync {time}", time=status.last_sync.astimezone(zone).strftime("%H:%M"))
            if status.last_sync else tr("Never synced"))
        if status.problem:
            self.last.setToolTip(status.problem)
        self.button.setText(tr("Syncing…") if status.syncing else tr("Sync now"))
        self.button.setEnabled(not status.syncing and self.controller.run_sync is not None)
