"""Two doctors' computers and a real server that goes away and comes back, driven through
the chart and the note editor: doctor A writes and signs a note while the server is
stopped, then syncs when it is back; doctor B's computer receives the signed note, adds
an addendum and syncs; doctor A's chart then shows the addendum under the note. All store
and network work runs on the workers (the GUI thread guard is on)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.engine import URL

from desktop.sync.client import SyncClient
from desktop.ui.chart import ChartView
from desktop.ui.desk import ClinicInfo, Desk
from desktop.ui.note_editor import NoteEditor
from desktop.ui.qt import QMessageBox, QPushButton, Qt, QTreeWidgetItem
from desktop.ui.sync_status import SyncController
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.tables import clinical_note
from sync_server.core.config import Settings
from sync_server.main import create_app
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import gui_thread_guard, on_db_worker
from tests.e2e.computers import enrolled_desk
from tests.factories import ClinicData, Factory

__all__ = ["gui_thread_guard"]  # the autouse guard applies to these tests too
LEFT = Qt.MouseButton.LeftButton
SANTIAGO = ClinicInfo("Clínica Andes", ZoneInfo("America/Santiago"), "CL")


@dataclass
class DoctorComputer:
    desk: Desk
    controller: SyncController
    tasks: Tasks
    http: httpx.Client

    def sync(self, qtbot: QtBot) -> None:
        """Sync now and wait until nothing is left to send."""
        qtbot.waitUntil(lambda: not self.controller.status.syncing, timeout=20_000)
        self.controller.sync_now()

        def done() -> bool:
            status = self.controller.status
            return status.online is True and not status.syncing and status.pending == 0
        qtbot.waitUntil(done, timeout=20_000)


@dataclass
class Clinic:
    data: ClinicData
    server: LiveServer
    settings: Settings
    app_url: URL
    computers: list[DoctorComputer]

    def restart_server(self) -> None:
        self.server = LiveServer(create_app(self.settings, self.app_url), port=self.server.port)
        self.server.start()

    def computer(self, tmp_path: Path, factory: Factory, name: str, data: ClinicData
                 ) -> DoctorComputer:
        http = httpx.Client(base_url=self.server.url, timeout=10)
        engine, session, link = enrolled_desk(http, factory, data, tmp_path / f"{name}.db",
                                              role=Role.DOCTOR)
        client = SyncClient(engine, http, token=link.token, attempts=2, backoff_s=0.05)
        tasks = Tasks()
        desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock(name),
                    clinic=SANTIAGO, server=link)
        # Syncs only when asked, so each step of the story is the test's to take.
        controller = SyncController(desk, client.sync, every_ms=3_600_000,
                                    after_change_ms=3_600_000)
        computer = DoctorComputer(desk, controller, tasks, http)
        self.computers.append(computer)
        return computer


@pytest.fixture
def clinic(qapp: object, factory: Factory, settings: Settings, db_urls: tuple[URL, URL]
           ) -> Iterator[Clinic]:
    data = factory.clinic(patients=2, providers=1)
    server = LiveServer(create_app(settings, db_urls[1]))
    server.start()
    setup = Clinic(data, server, settings, db_urls[1], [])
    yield setup
    for computer in setup.computers:
        computer.controller.stop()
        computer.tasks.wait(20_000)
        computer.http.close()
        computer.desk.engine.dispose()
    setup.server.stop()


def open_chart(qtbot: QtBot, desk: Desk, patient_id: uuid.UUID) -> ChartView:
    chart = ChartView(desk)
    qtbot.addWidget(chart)
    chart.resize(1200, 800)
    chart.show()
    with qtbot.waitSignal(chart.timeline_loaded, timeout=10_000):
        chart.open_patient(patient_id)
    return chart


def note_items(chart: ChartView) -> list[QTreeWidgetItem]:
    items = (chart.timeline.topLevelItem(i) for i in range(chart.timeline.topLevelItemCount()))
    return [item for item in items if item.data(0, Qt.ItemDataRole.UserRole)[0] == "note"]


def sign_in_editor(qtbot: QtBot, editor: NoteEditor) -> None:
    qtbot.mouseClick(editor.sign_button, LEFT)
    box = editor.findChild(QMessageBox, "confirm_message")
    assert isinstance(box, QMessageBox)
    qtbot.mouseClick(box.findChild(QPushButton, "confirm_yes"), LEFT)
    qtbot.waitUntil(lambda: editor.addendum_button.isVisible(), timeout=10_000)


def test_a_note_signed_offline_reaches_the_other_doctor_and_their_addendum_comes_back(
    qtbot: QtBot, clinic: Clinic, factory: Factory, tmp_path: Path
) -> None:
    patient_id = clinic.data.patient_ids[0]
    a = clinic.computer(tmp_path, factory, "doctora", clinic.data)
    second = factory.user(clinic.data, Role.DOCTOR, email="tvidal@andes.test")
    b = clinic.computer(tmp_path, factory, "doctorb", dataclasses.replace(
        clinic.data, users={**clinic.data.users, Role.DOCTOR: second}))
    a.sync(qtbot)  # the patients arrive

    # Doctor A, with the server gone, writes and signs a note in the editor.
    clinic.server.stop()
    chart_a = open_chart(qtbot, a.desk, patient_id)
    qtbot.mouseClick(chart_a.buttons["new_note"], LEFT)
    qtbot.waitUntil(lambda: isinstance(chart_a.dialog, NoteEditor), timeout=10_000)
    editor = chart_a.dialog
    assert isinstance(editor, NoteEditor)
    qtbot.waitUntil(lambda: editor.editable, timeout=10_000)
    qtbot.keyClicks(editor.body, "Control post operatorio. Herida limpia.")
    qtbot.waitUntil(lambda: editor.status.text().startswith("Saved on this computer"),
                    timeout=10_000)
    sign_in_editor(qtbot, editor)
    note_id = editor.note_id
    a.controller.sync_now()
    # Waiting: the chart read, the note's start, its save and its signature.
    qtbot.waitUntil(lambda: a.controller.status.online is False
                    and not a.controller.status.syncing
                    and a.controller.status.pending == 4, timeout=20_000)
    qtbot.mouseClick(editor.close_button, LEFT)

    # Back online: A's changes go up.
    clinic.restart_server()
    a.sync(qtbot)
    server_note = factory.row(clinical_note, clinic.data, note_id)
    assert (server_note["status"], server_note["body"]) == (
        "signed", "Control post operatorio. Herida limpia.")

    # Doctor B's computer gets the signed note and adds to it.
    b.sync(qtbot)
    chart_b = open_chart(qtbot, b.desk, patient_id)
    [note_b] = note_items(chart_b)
    assert note_b.text(1) == "Note: Control post operatorio. Herida limpia."
    assert note_b.text(2) == "Signed by another doctor"
    chart_b.timeline.setCurrentItem(note_b)
    qtbot.mouseClick(chart_b.buttons["add_addendum"], LEFT)
    addendum_editor = chart_b.dialog
    assert isinstance(addendum_editor, NoteEditor)
    qtbot.waitUntil(lambda: addendum_editor.editable and addendum_editor.note_id != note_id,
                    timeout=10_000)
    qtbot.keyClicks(addendum_editor.body, "Se retiran puntos; sin signos de infeccion.")
    sign_in_editor(qtbot, addendum_editor)
    addendum_id = addendum_editor.note_id
    b.sync(qtbot)
    assert factory.row(clinical_note, clinic.data, addendum_id)["addendum_to"] == note_id

    # Doctor A's chart, still open, shows the addendum under the note after a sync.
    a.sync(qtbot)
    qtbot.waitUntil(lambda: note_items(chart_a) and note_items(chart_a)[0].childCount() == 1,
                    timeout=10_000)
    [note_a] = note_items(chart_a)
    assert note_a.text(1) == "Note: Control post operatorio. Herida limpia."
    addendum = note_a.child(0)
    assert addendum.text(1) == "Addendum: Se retiran puntos; sin signos de infeccion."
    assert addendum.text(2) == "Signed by another doctor"
    stored = on_db_worker(qtbot, a.desk, lambda: _local_note(a.desk, addendum_id))
    assert (stored["status"], stored["addendum_to"]) == ("signed", note_id)


def _local_note(desk: Desk, note_id: uuid.UUID) -> dict[str, object]:
    with desk.engine.connect() as conn:
        return dict(conn.execute(select(clinical_note).where(clinical_note.c.id == note_id))
                    .one()._mapping)
