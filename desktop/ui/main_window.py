"""The main window: the workspaces the signed-in role uses (the front desk's calendar,
patients and needs attention; the doctor's consultation; the pharmacy's and the lab's own),
the sync status bar, and the screen lock after inactivity."""

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
    "doctor": ("consultation", "calendar", "patients"),
    "lab_tech": ("lab",),
    "pharmacist": ("pharmacy",),
}
PRESCRIBERS = frozenset({"doctor"})
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
    # Each role's own screens are imported when that role signs in.
    if name == "patients":
        return PatientsView(desk)
    if name == "attention":
        return AttentionView(desk)
    if name == "consultation":
        from desktop.ui.consultation import ConsultationView

        return ConsultationView(desk)
    if name == "pharmacy":
        from desktop.ui.pharmacy import PharmacyView

        return PharmacyView(desk)
    if name == "lab":
        from desktop.ui.lab import LabView

        return LabView(desk)
    from desktop.ui.calendar import CalendarView  # the heaviest screen, built on demand

    return CalendarView(desk)


WORKSPACE_TITLES = {"calendar": "Calendar", "patients": "Patients",
                    "attention": "Needs attention", "consultation": "Consultation",
                    "pharmacy": "Pharmacy", "lab": "Laboratory"}


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
        self.key_action: QAction | None = None
        if self.desk.session.role in PRESCRIBERS:
            self.key_action = QAction(tr("Prescribing key…"), self)
            self.key_action.setObjectName("prescribing_key_action")
            self.key_action.triggered.connect(self.open_signing_key)
            menu.addAction(self.key_action)
        languages = menu.addMenu(tr("Language"))
        for code, label in (("es", "Español"), ("en", "English")):
            action = QAction(label, self)
            action.setObjectName(f"language_{code}")
            action.triggered.connect(lambda _c=False, c=code: i18n.set_language(c))
            languages.addAction(action)
        self.addActions([sync, lock])

    def open_signing_key(self) -> None:
        from desktop.ui.signing_key import SigningKeyDialog  # prescribers only

        dialog = SigningKeyDialog(self.desk, parent=self)
        dialog.open()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.closed.emit()
        super().closeEvent(event)

    def retranslate(self) -> None:
        for index, name in enumerate(self.workspaces):
            self.tabs.setTabText(index, tr(WORKSPACE_TITLES[name]))
        if self.key_action is not None:
            self.key_action.setText(tr("Prescribing key…"))

    def shut(self) -> None:
        """Stop what runs in the background; the caller then closes the store."""
        from desktop.ui.step_up import forget_signer  # an opened signing key ends here too

        forget_signer()
        self.watch.stop()
        self.controller.stop()
        from desktop.ui.note_editor import NoteEditor

        # A note being written is saved before the store closes (the caller waits for the
        # database worker to finish first).
        for editor in self.findChildren(NoteEditor):
            editor.save()
