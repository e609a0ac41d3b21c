"""Reminders at the front desk over a real server: an appointment's messages with how each
went (from the calendar), failed messages in Needs attention sent again with one click
(and the server's reason when it will not), the patient's confirmation on the calendar,
and plain words instead of a wait while the server is away. Offscreen Qt with the
GUI-thread guard on; the reminder rows are the server's, their outcomes written as the
dispatcher would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import Row, insert, select, update
from sqlalchemy.engine import URL

from desktop.sync.client import SyncClient
from desktop.ui import i18n
from desktop.ui.appointment_dialogs import AppointmentDialog
from desktop.ui.attention import AttentionView
from desktop.ui.calendar import CONFIRMED_COLOUR, CalendarView
from desktop.ui.desk import ClinicInfo, Desk
from desktop.ui.qt import QColor, QLabel, Qt
from desktop.ui.reminders import OFFLINE, RemindersDialog
from desktop.ui.sync_status import SyncController
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import appointment, reminder, reminder_attempt
from sync_server.actions.clinics import scope
from sync_server.core.config import Settings
from sync_server.main import create_app
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import english, gui_thread_guard, setup_io
from tests.e2e.computers import enrolled_desk
from tests.factories import ClinicData, Factory

__all__ = ["english", "gui_thread_guard"]  # the autouse fixtures apply here too
LEFT = Qt.MouseButton.LeftButton
SANTIAGO = ZoneInfo("America/Santiago")
SMS_ERROR = "sms: provider answered 500"


@dataclass
class FrontDesk:
    """A receptionist's desk signed in to a live server, with the server's side at hand."""

    clinic: ClinicData
    factory: Factory
    desk: Desk
    controller: SyncController
    server: LiveServer
    patient_id: uuid.UUID

    def api(self, method: str, path: str, role: Role = Role.RECEPTIONIST,
            **kwargs: object) -> httpx.Response:
        with httpx.Client(base_url=self.server.url, timeout=10) as http, setup_io():
            return http.request(method, path, headers=self.factory.headers(
                self.clinic.users[role]), **kwargs)  # type: ignore[arg-type]

    def book(self, start: datetime) -> uuid.UUID:
        answer = self.api("POST", "/api/v1/appointments", json={
            "patient_id": str(self.patient_id), "provider_id": str(self.clinic.provider_ids[0]),
            "start": start.isoformat(), "reason": "Control"})
        assert answer.status_code == 201, answer.text
        return uuid.UUID(answer.json()["id"])

    def messages(self, appointment_id: uuid.UUID) -> list[Row[Any]]:
        """The server's reminder rows of the appointment, in the order staff see them."""
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            return list(conn.execute(
                select(reminder).where(reminder.c.appointment_id == appointment_id)
                .order_by(reminder.c.created_at, reminder.c.due_at, reminder.c.id)))

    def outcome(self, reminder_id: uuid.UUID, status: str, channel: str, *,
                tries: list[tuple[str, str | None]]) -> None:
        """Record what the dispatcher would have: the tries and where they left the row."""
        now = datetime.now(UTC)
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            for n, (outcome, error) in enumerate(tries):
                conn.execute(insert(reminder_attempt).values(
                    clinic_id=self.clinic.id, id=uuid7(), reminder_id=reminder_id,
                    channel=channel, attempted_at=now - timedelta(minutes=len(tries) - n),
                    outcome=outcome, error=error))
            conn.execute(update(reminder).where(reminder.c.id == reminder_id).values(
                status=status, channel=channel, attempts=len(tries),
                sent_at=now if status == "sent" else None,
                last_error=tries[-1][1], updated_at=now))

    def fail(self, reminder_id: uuid.UUID) -> None:
        self.outcome(reminder_id, "dead", "sms", tries=[("temporary_failure", SMS_ERROR)] * 3)

    def confirm(self, appointment_id: uuid.UUID, at: datetime) -> None:
        """The patient answered "yes" to a reminder."""
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            conn.execute(update(appointment).where(appointment.c.id == appointment_id)
                         .values(confirmed_at=at))

    def sync(self, qtbot: QtBot) -> None:
        before = self.controller.status.last_sync
        self.controller.sync_now()
        qtbot.waitUntil(lambda: self.controller.status.last_sync != before
                        and not self.controller.status.syncing, timeout=20_000)


@contextmanager
def front_desk_on(server: LiveServer, tmp_path: Path, factory: Factory) -> Iterator[FrontDesk]:
    clinic = factory.clinic(patients=0, providers=1)
    factory.weekly_hours(clinic, clinic.provider_ids[0])
    patient_id = factory.patient(clinic, given_name="Ana", family_name="Rojas",
                                 phone="+56987654321")
    http = httpx.Client(base_url=server.url, timeout=10)
    engine, session, link = enrolled_desk(http, factory, clinic, tmp_path / "desk.db")
    client = SyncClient(engine, http, token=link.token, attempts=1)
    tasks = Tasks()
    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("desk"),
                clinic=ClinicInfo("Clínica", SANTIAGO, "CL"), server=link)
    controller = SyncController(desk, client.sync, every_ms=3_600_000, after_change_ms=3_600_000)
    try:
        yield FrontDesk(clinic, factory, desk, controller, server, patient_id)
    finally:
        controller.stop()
        tasks.wait(20_000)
        http.close()
        engine.dispose()


@pytest.fixture
def front(qapp: object, tmp_path: Path, factory: Factory, live_server: LiveServer
          ) -> Iterator[FrontDesk]:
    with front_desk_on(live_server, tmp_path, factory) as desk:
        yield desk


def _slot(days: int, hour: int) -> datetime:
    day = (datetime.now(UTC).astimezone(SANTIAGO) + timedelta(days=days)).date()
    return datetime.combine(day, time(hour), tzinfo=SANTIAGO)


def _calendar(qtbot: QtBot, front: FrontDesk, start: datetime) -> CalendarView:
    view = CalendarView(front.desk)
    qtbot.addWidget(view)
    view.resize(1200, 1000)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.go_to(start.astimezone(SANTIAGO).date())
    return view


def _open_appointment(qtbot: QtBot, view: CalendarView, appointment_id: uuid.UUID
                      ) -> AppointmentDialog:
    rect = view.grid.booking_rect(appointment_id)
    assert rect is not None
    view.scroll_area.ensureVisible(rect.center().x(), rect.center().y(), 20, 60)
    qtbot.mouseClick(view.grid, LEFT, pos=rect.center())
    dialog = view.dialog
    assert isinstance(dialog, AppointmentDialog)
    return dialog


def _open_reminders(qtbot: QtBot, dialog: AppointmentDialog) -> RemindersDialog:
    qtbot.mouseClick(dialog.reminders_button, LEFT)
    reminders = dialog.sub_dialog
    assert isinstance(reminders, RemindersDialog)
    qtbot.waitUntil(lambda: reminders.refresh_button.isEnabled(), timeout=10_000)
    return reminders


def _rows(dialog: RemindersDialog) -> list[tuple[str, ...]]:
    return [tuple(dialog.cell(row, c) for c in RemindersDialog.COLUMNS)
            for row in range(dialog.table.rowCount())]


def _attention(qtbot: QtBot, front: FrontDesk) -> AttentionView:
    view = AttentionView(front.desk)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.failed.loaded, timeout=10_000):
        view.show()  # showing the workspace asks the server
    return view


def test_the_reminders_dialog_shows_each_message_and_how_it_went(
    qtbot: QtBot, front: FrontDesk
) -> None:
    booked = front.book(_slot(3, 10))
    moved_to = _slot(3, 11)
    answer = front.api("POST", f"/api/v1/appointments/{booked}/reschedule",
                       json={"start": moved_to.isoformat()})
    assert answer.status_code == 200, answer.text
    _old_day, _old_two_hours, notice, day_before, _two_hours = front.messages(booked)
    front.outcome(notice.id, "sent", "whatsapp", tries=[("delivered", None)])
    front.fail(day_before.id)
    front.sync(qtbot)

    view = _calendar(qtbot, front, moved_to)
    appointment_dialog = _open_appointment(qtbot, view, booked)
    assert appointment_dialog.reminders_button.isVisible()
    dialog = _open_reminders(qtbot, appointment_dialog)
    rows = _rows(dialog)
    assert [r[0] for r in rows] == ["Reminder 24 h before", "Reminder 2 h before",
                                    "Change notice", "Reminder 24 h before",
                                    "Reminder 2 h before"]
    # The first two were for the old time: not sent, and why.
    assert rows[0][2:] == ("Not sent: no longer needed", "—", "—", "rescheduled")
    # Due a day before the old time, shown in the clinic's zone.
    assert rows[0][1].endswith(f"{(_slot(3, 10) - timedelta(days=1)).astimezone(SANTIAGO):%H:%M}")
    assert rows[2][2:4] == ("Sent", "WhatsApp")
    assert rows[2][4] != "—"  # when it was sent
    assert rows[3][1].endswith(f"{(moved_to - timedelta(days=1)).astimezone(SANTIAGO):%H:%M}")
    assert rows[3][2:] == ("Failed after 3 tries", "SMS", "—", SMS_ERROR)
    assert rows[4][2:] == ("Waiting to be sent", "—", "—", "")
    tries = dialog.table.item(3, 0).toolTip().splitlines()
    assert tries[0] == "Tries:"
    assert len(tries) == 4
    assert tries[1].endswith(f"SMS · Failed, tried again later: {SMS_ERROR}")
    assert not dialog.note.isVisibleTo(dialog)
    dialog.reject()

    # The same, in Spanish.
    i18n.set_language("es")
    spanish = _open_reminders(qtbot, appointment_dialog)
    rows = _rows(spanish)
    assert [r[0] for r in rows[:3]] == ["Recordatorio 24 h antes", "Recordatorio 2 h antes",
                                        "Aviso de cambio"]
    assert rows[0][2] == "No enviado: ya no era necesario"
    assert rows[0][5] == "la cita se reprogramó"
    assert rows[3][2] == "Falló tras 3 intentos"
    assert spanish.table.horizontalHeaderItem(1).text() == "Programado"


def test_a_failed_message_is_sent_again_from_needs_attention(
    qtbot: QtBot, front: FrontDesk
) -> None:
    start = _slot(3, 10)
    booked = front.book(start)
    day_before, two_hours = front.messages(booked)
    front.fail(day_before.id)
    view = _attention(qtbot, front)
    panel = view.failed
    [letter] = panel.letters
    assert letter.id == day_before.id
    assert panel.isVisibleTo(view)
    assert not view.empty.isVisibleTo(view)
    item = panel.items[letter.id]
    text = item.text.text()
    assert "Ana Rojas" in text
    assert f"{start.astimezone(SANTIAGO):%H:%M}" in text
    assert f"Reminder 24 h before (SMS) — failed after 3 tries: {SMS_ERROR}" in text

    with qtbot.waitSignal(panel.loaded, timeout=10_000):
        qtbot.mouseClick(item.retry_button, LEFT)
    assert panel.letters == []
    assert letter.id not in panel.items
    assert "Ana Rojas will go out again" in panel.note.text()
    [again, _] = front.messages(booked)
    assert (again.status, again.attempts) == ("pending", 0)
    assert again.next_attempt_at <= datetime.now(UTC)

    # A message that fails later shows after the next sync, while the workspace is open.
    front.fail(two_hours.id)
    with qtbot.waitSignal(panel.loaded, timeout=20_000):
        front.controller.sync_now()
    assert [x.id for x in panel.letters] == [two_hours.id]


def test_sending_again_a_message_that_no_longer_failed_shows_the_servers_reason(
    qtbot: QtBot, front: FrontDesk
) -> None:
    booked = front.book(_slot(3, 10))
    day_before, _ = front.messages(booked)
    front.fail(day_before.id)
    view = _attention(qtbot, front)
    item = view.failed.items[day_before.id]
    # Another computer sent it again meanwhile.
    answer = front.api("POST", f"/api/v1/reminders/{day_before.id}/retry",
                       role=Role.ADMIN)
    assert answer.status_code == 200, answer.text

    qtbot.mouseClick(item.retry_button, LEFT)
    qtbot.waitUntil(lambda: view.failed.message_box is not None
                    and view.failed.message_box.isVisible(), timeout=10_000)
    box = view.failed.message_box
    assert box is not None
    assert box.text() == "This message is pending; only a failed message can be retried."
    # The list is read again: the message is no longer a failed one.
    qtbot.waitUntil(lambda: view.failed.letters == [] and view.empty.isVisibleTo(view),
                    timeout=10_000)
    box.accept()


def test_a_patients_confirmation_shows_on_the_calendar(qtbot: QtBot, front: FrontDesk) -> None:
    confirmed = front.book(_slot(3, 10))
    unconfirmed = front.book(_slot(3, 12))
    answered = _slot(-1, 9) + timedelta(minutes=7)  # yesterday, by text message
    front.confirm(confirmed, answered)
    front.sync(qtbot)

    view = _calendar(qtbot, front, _slot(3, 10))
    assert view.findChild(QLabel, "legend_confirmed").text() == "✓ Confirmed by the patient"
    items = {i.booking.id: i for i in view.grid.booking_items() if i.booking is not None}
    mark = items[confirmed].mark
    assert mark is not None
    assert items[unconfirmed].mark is None
    image = view.grid.grab().toImage()
    green = QColor(CONFIRMED_COLOUR).rgb()
    painted = sum(image.pixel(x, y) == green for x in range(mark.left(), mark.right() + 1)
                  for y in range(mark.top(), mark.bottom() + 1))
    assert painted > mark.width() * mark.height() // 4
    confirmation = view.grid.tooltip(items[confirmed]).splitlines()[-1]
    assert confirmation.startswith(f"✓ Confirmed by the patient on {answered.day} ")
    assert confirmation.endswith(" at 09:07")
    assert "Confirmed" not in view.grid.tooltip(items[unconfirmed])

    dialog = _open_appointment(qtbot, view, confirmed)
    label = dialog.findChild(QLabel, "appointment_confirmed")
    assert label is not None
    assert label.text().startswith("✓ By the patient, ")
    assert label.text().endswith("09:07")
    dialog.reject()
    other = _open_appointment(qtbot, view, unconfirmed)
    assert other.findChild(QLabel, "appointment_confirmed") is None


def test_without_the_server_reminder_status_says_it_needs_the_connection(
    qtbot: QtBot, tmp_path: Path, factory: Factory, settings: Settings,
    db_urls: tuple[URL, URL]
) -> None:
    server = LiveServer(create_app(settings, db_urls[1]))
    server.start()
    try:
        with front_desk_on(server, tmp_path, factory) as front:
            start = _slot(3, 10)
            booked = front.book(start)
            front.fail(front.messages(booked)[0].id)
            front.sync(qtbot)
            view = _calendar(qtbot, front, start)
            appointment_dialog = _open_appointment(qtbot, view, booked)

            server.stop()
            dialog = _open_reminders(qtbot, appointment_dialog)
            assert dialog.note.text() == OFFLINE
            assert dialog.table.rowCount() == 0
            attention = _attention(qtbot, front)
            assert attention.failed.letters == []
            assert attention.failed.note.text().startswith(
                "Messages that could not be sent are kept on the server")

            server = LiveServer(create_app(settings, db_urls[1]), port=server.port)
            server.start()
            qtbot.mouseClick(dialog.refresh_button, LEFT)
            qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=10_000)
            assert not dialog.note.isVisibleTo(dialog)
    finally:
        server.stop()
