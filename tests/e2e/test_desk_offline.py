"""The front desk's screens over a real server that goes away and comes back: a booking
made while the server is stopped shows as pending with the change waiting, and becomes
booked once the server returns; a booking the server rejects lands in "needs attention"
and is rebooked with one click. All store and network work runs on the workers (the GUI
thread guard is on)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import select
from sqlalchemy.engine import URL

from desktop.operations.appointments import book_offline
from desktop.sync.client import SyncClient
from desktop.ui.attention import AttentionView
from desktop.ui.booking import BookingDialog
from desktop.ui.calendar import CalendarView
from desktop.ui.desk import ClinicInfo, Desk
from desktop.ui.qt import QPushButton, Qt
from desktop.ui.sync_status import SyncController, SyncStatusBar
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.tables import appointment
from sync_server.core.config import Settings
from sync_server.main import create_app
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import gui_thread_guard, on_db_worker, setup_io
from tests.e2e.computers import enrolled_desk
from tests.factories import ClinicData, Factory

__all__ = ["gui_thread_guard"]  # the autouse guard applies to these tests too
LEFT = Qt.MouseButton.LeftButton


@dataclass
class FrontDesk:
    clinic: ClinicData
    desk: Desk
    controller: SyncController
    server: LiveServer
    settings: Settings
    app_url: URL

    def restart_server(self) -> None:
        self.server = LiveServer(create_app(self.settings, self.app_url), port=self.server.port)
        self.server.start()

    def local_status(self, appointment_id: uuid.UUID) -> str:
        with self.desk.engine.connect() as conn:
            return str(conn.execute(select(appointment.c.status).where(
                appointment.c.id == appointment_id)).scalar_one())


@pytest.fixture
def front_desk(qapp: object, tmp_path: Path, factory: Factory, settings: Settings,
               db_urls: tuple[URL, URL]) -> Iterator[FrontDesk]:
    clinic = factory.clinic(patients=3, providers=1)
    factory.weekly_hours(clinic, clinic.provider_ids[0])
    server = LiveServer(create_app(settings, db_urls[1]))
    server.start()
    http = httpx.Client(base_url=server.url, timeout=10)
    engine, session, link = enrolled_desk(http, factory, clinic, tmp_path / "desk.db")
    client = SyncClient(engine, http, token=link.token, attempts=2, backoff_s=0.05)
    tasks = Tasks()
    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("desk"),
                clinic=ClinicInfo("Clínica", ZoneInfo("America/Santiago"), "CL"))
    controller = SyncController(desk, client.sync, every_ms=3_600_000, after_change_ms=50)
    front = FrontDesk(clinic, desk, controller, server, settings, db_urls[1])
    yield front
    controller.stop()
    tasks.wait(20_000)
    front.server.stop()
    http.close()
    engine.dispose()


def _first_free_slot(factory: Factory, front: FrontDesk) -> datetime:
    headers = factory.headers(front.clinic.users[Role.RECEPTIONIST])
    now = datetime.now(UTC)
    with httpx.Client(base_url=front.server.url, timeout=10) as http, setup_io():
        slots = http.get(f"/api/v1/providers/{front.clinic.provider_ids[0]}/slots",
                         headers=headers, params={"start": (now + timedelta(days=1)).isoformat(),
                                                  "end": (now + timedelta(days=3)).isoformat()})
    return datetime.fromisoformat(slots.json()["data"][0]["start"])


def test_a_booking_made_while_the_server_is_down_is_pending_then_booked(
    qtbot: QtBot, front_desk: FrontDesk, factory: Factory
) -> None:
    front, desk = front_desk, front_desk.desk
    bar = SyncStatusBar(front.controller)
    qtbot.addWidget(bar)
    front.controller.start()
    qtbot.waitUntil(lambda: front.controller.status.online is True, timeout=20_000)
    start = _first_free_slot(factory, front)

    front.server.stop()
    # The receptionist books from the calendar while the server is away.
    view = CalendarView(desk)
    qtbot.addWidget(view)
    view.resize(1200, 1000)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.go_to(start.astimezone(desk.clinic.timezone).date())
    rect = view.grid.slot_rect(0, start)
    assert rect is not None
    view.scroll_area.ensureVisible(rect.center().x(), rect.center().y(), 20, 60)
    qtbot.mouseClick(view.grid, LEFT, pos=rect.center())
    dialog = view.dialog
    assert isinstance(dialog, BookingDialog)
    qtbot.waitUntil(lambda: dialog.results.count() == 3)
    dialog.results.setCurrentRow(0)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.book_button, LEFT)
    booked = dialog.booked_id
    assert booked is not None
    qtbot.waitUntil(lambda: front.controller.status.online is False, timeout=20_000)
    qtbot.waitUntil(lambda: front.controller.status.pending == 1, timeout=10_000)
    assert bar.connection.text() == "Offline"
    assert bar.pending.text() == "1 changes waiting"
    assert on_db_worker(qtbot, desk, lambda: front.local_status(booked)) == "pending"

    front.restart_server()
    qtbot.mouseClick(bar.button, LEFT)
    qtbot.waitUntil(lambda: front.controller.status.online is True
                    and front.controller.status.pending == 0
                    and not front.controller.status.syncing, timeout=20_000)
    assert on_db_worker(qtbot, desk, lambda: front.local_status(booked)) == "booked"
    assert factory.appointments(front.clinic)[booked].status == "booked"
    assert bar.connection.text() == "Online"
    assert bar.pending.text() == "All changes sent"


def test_a_rejected_booking_needs_attention_and_is_rebooked_in_one_click(
    qtbot: QtBot, front_desk: FrontDesk, factory: Factory
) -> None:
    front, desk = front_desk, front_desk.desk
    front.controller.start()
    qtbot.waitUntil(lambda: front.controller.status.online is True, timeout=20_000)
    start = _first_free_slot(factory, front)
    # Another desk takes the slot while this one books it offline.
    factory.appointment(front.clinic, front.clinic.provider_ids[0],
                        front.clinic.patient_ids[1], starts_at=start)
    mine = on_db_worker(qtbot, desk, lambda: book_offline(
        desk.engine, desk.clock, clinic_id=front.clinic.id,
        patient_id=front.clinic.patient_ids[0], provider_id=front.clinic.provider_ids[0],
        start=start, minutes=30))
    view = AttentionView(desk)
    qtbot.addWidget(view)
    front.controller.sync_now()
    qtbot.waitUntil(lambda: len(view.items) == 1, timeout=20_000)
    assert on_db_worker(qtbot, desk, lambda: front.local_status(mine)) == "rejected"
    [item] = view.items
    assert item.code == "slot_taken"
    rebook_buttons = view.findChildren(QPushButton, "rebook")
    assert len(rebook_buttons) == 3
    qtbot.mouseClick(rebook_buttons[0], LEFT)
    qtbot.waitUntil(lambda: view.items == [] and view.empty.isVisibleTo(view), timeout=10_000)
    qtbot.waitUntil(lambda: front.controller.status.pending == 0
                    and not front.controller.status.syncing, timeout=20_000)
    server = factory.appointments(front.clinic)
    rebooked = [a for a in server.values()
                if a.patient_id == front.clinic.patient_ids[0] and a.status == "booked"]
    assert len(rebooked) == 1
    assert rebooked[0].starts_at == datetime.fromisoformat(
        item.detail["alternatives"][0]["start"])

