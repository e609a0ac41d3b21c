"""The main window: the workspaces the signed-in role uses, the sync status bar, and the
screen lock after inactivity."""

from __future__ import annotations

from desktop.ui import i18n
from desktop.ui.attention import AttentionView
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.patients import PatientsView
from desktop.ui.qt import (
    QAction,
    QApplication,
    QCloseEvent,
    QEvent,
    QKeySequence,
    QLabel,
    QMainWindow,
    QObject,
    QTabWidget,
    QTimer,
    QWidget,
    Signal,
)
from desktop.ui.sync_status import SyncController, SyncStatusBar

DEFAULT_LOCK_MINUTES = 10
FRONT_DESK = frozenset({"admin", "receptionist"})
# Workspaces by role. Payments live in the front desk's calendar (check-in) only.
WORKSPACES: dict[str, tuple[str, ...]] = {
    "admin": ("calendar", "patients", "attention"),
    "receptionist": ("calendar", "patients", "attention"),
    "doctor": ("calendar", "patients"),
    "lab_tech": (),
    "pharmacist": (),
}
_ACTIVITY = frozenset({QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress,
                       QEvent.Type.MouseMove, QEvent.Type.Wheel})


class InactivityWatch(QObject):
    """Emits `idle` after `minutes` with no key press, click or mouse movement anywhere
    in the app."""

    idle = Signal()

    def __init__(self, minutes: float) -> None:
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(int(minutes * 60_000))
        self.timer.timeout.connect(self.idle)
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)
        self.timer.start()

    def eventFilter(self, _watched: QObject, event: QEvent) -> bool:  # Qt names it
        if event.type() in _ACTIVITY:
            self.timer.start()
        return False

    def stop(self) -> None:
        self.timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)


def build_workspace(name: str, desk: Desk) -> QWidget:
    if name == "patients":
        return PatientsView(desk)
    if name == "attention":
        return AttentionView(desk)
    from desktop.ui.calendar import CalendarView  # the heaviest screen, built on demand

    return CalendarView(desk)


WORKSPACE_TITLES = {"calendar": "Calendar", "patients": "Patients",
                    "attention": "Needs attention"}


class MainWindow(QMainWindow):
    lock_requested = Signal()
    closed = Signal()

    def __init__(self, desk: Desk, controller: SyncController, *,
                 lock_minutes: float = DEFAULT_LOCK_MINUTES) -> None:
        super().__init__()
        self.desk = desk
        self.controller = controller
        self.setObjectName("main_window")
        self.setWindowTitle(f"Consulta — {desk.clinic.name}")
        self.tabs = QTabWidget()
        self.tabs.setObjectName("workspaces")
        self.workspaces: dict[str, QWidget] = {}
        for name in WORKSPACES.get(desk.session.role, ()):
            widget = build_workspace(name, desk)
            widget.setObjectName(f"workspace_{name}")
            self.workspaces[name] = widget
            self.tabs.addTab(widget, tr(WORKSPACE_TITLES[name]))
        self.setCentralWidget(self.tabs)
        self.sync_bar = SyncStatusBar(controller)
        who = QLabel(f"{desk.session.email} · {desk.session.role}"
                     + ("" if desk.session.online else f" · {tr('Offline')}"))
        who.setObjectName("signed_in_as")
        self.statusBar().addWidget(who)
        self.statusBar().addPermanentWidget(self.sync_bar)
        self._menus()
        self.watch = InactivityWatch(lock_minutes)
        self.watch.idle.connect(self.lock_requested)
        i18n.language_changed.connect(self.retranslate)

    def _menus(self) -> None:
        menu = self.menuBar().addMenu("Consulta")
        sync = QAction(tr("Sync now"), self)
        sync.setShortcut(QKeySequence("F5"))
        sync.triggered.connect(self.controller.sync_now)
        lock = QAction(tr("Lock screen"), self)
        lock.setObjectName("lock_action")
        lock.setShortcut(QKeySequence("Ctrl+L"))
        lock.triggered.connect(self.lock_requested)
        menu.addAction(sync)
        menu.addAction(lock)
        languages = menu.addMenu(tr("Language"))
        for code, label in (("es", "Español"), ("en", "English")):
            action = QAction(label, self)
            action.setObjectName(f"language_{code}")
            action.triggered.connect(lambda _c=False, c=code: i18n.set_language(c))
            languages.addAction(action)
        self.addActions([sync, lock])

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit()
        super().closeEvent(event)

    def retranslate(self) -> None:
        for index, name in enumerate(self.workspaces):
            self.tabs.setTabText(index, tr(WORKSPACE_TITLES[name]))

    def shut(self) -> None:
        """Stop what runs in the background; the caller then closes the store."""
        self.watch.stop()
        self.controller.stop()
