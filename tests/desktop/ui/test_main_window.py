"""The main window: workspaces follow the role, the screen locks after inactivity (and
activity keeps it open), and the language switches live."""

from __future__ import annotations

from dataclasses import replace

from pytestqt.qtbot import QtBot

from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.main_window import MainWindow
from desktop.ui.sync_status import SyncController


def window_for(qtbot: QtBot, desk: Desk, role: str, *, lock_minutes: float = 10
               ) -> MainWindow:
    desk.session = replace(desk.session, role=role)
    window = MainWindow(desk, SyncController(desk, None), lock_minutes=lock_minutes)
    qtbot.addWidget(window)
    return window


def test_each_role_gets_its_own_workspaces(qtbot: QtBot, desk: Desk) -> None:
    tabs = {role: list(window_for(qtbot, desk, role).workspaces)
            for role in ("receptionist", "admin", "doctor", "lab_tech")}
    assert tabs["receptionist"] == tabs["admin"] == ["calendar", "patients", "attention"]
    assert tabs["doctor"] == ["consultation", "calendar", "patients"]
    assert tabs["lab_tech"] == ["lab"]


def test_the_screen_locks_after_inactivity_and_activity_postpones_it(
    qtbot: QtBot, desk: Desk
) -> None:
    window = window_for(qtbot, desk, "receptionist", lock_minutes=0.3 / 60)  # 300 ms
    window.show()
    patients = window.workspaces["patients"]
    for _ in range(4):  # typing keeps it open for longer than the timeout
        qtbot.wait(150)
        qtbot.keyClick(patients, "a")
    assert window.watch.timer.isActive()
    with qtbot.waitSignal(window.lock_requested, timeout=2000):
        pass
    window.shut()


def test_the_language_switches_live(qtbot: QtBot, desk: Desk) -> None:
    window = window_for(qtbot, desk, "receptionist")
    assert [window.tabs.tabText(i) for i in range(3)] == [
        "Calendar", "Patients", "Needs attention"]
    i18n.set_language("es")
    assert [window.tabs.tabText(i) for i in range(3)] == [
        "Agenda", "Pacientes", "Requiere atención"]
    assert window.sync_bar.pending.text() == "Todos los cambios enviados"
