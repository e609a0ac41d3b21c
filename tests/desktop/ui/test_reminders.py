"""How reminders read at the front desk, in both languages, and what the reminders dialog
says when there is nothing to ask the server (a booking it has not seen, no server)."""

from __future__ import annotations

import ast
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

import desktop
from desktop.operations.schedule import Booking
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.reminders import (
    CHANNELS,
    OFFLINE,
    OUTCOMES,
    RemindersDialog,
    kind_text,
    lead_text,
)
from shared_models.enums import AppointmentStatus


def _literal_tr_strings() -> set[str]:
    """Every text written straight into a tr(...) call in the desktop app."""
    found: set[str] = set()
    for path in Path(desktop.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "tr" \
                    and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_every_text_of_the_screens_has_a_spanish_translation() -> None:
    texts = _literal_tr_strings() | set(CHANNELS.values()) | set(OUTCOMES.values()) \
        | set(RemindersDialog.COLUMNS) | {OFFLINE}
    assert len(texts) > 100  # the scan found the screens' texts
    assert sorted(texts - set(i18n.SPANISH)) == []


@pytest.mark.parametrize(("minutes", "in_english", "in_spanish"), [
    (1440, "24 h", "24 h"), (120, "2 h", "2 h"), (90, "1 h 30 min", "1 h 30 min"),
    (45, "45 min", "45 min"), (2880, "2 days", "2 días"), (1500, "25 h", "25 h"),
])
def test_how_long_before_the_appointment_a_reminder_goes(minutes: int, in_english: str,
                                                         in_spanish: str) -> None:
    assert lead_text(minutes) == in_english
    i18n.set_language("es")
    assert lead_text(minutes) == in_spanish


def test_each_kind_of_message_is_named_for_a_person() -> None:
    assert [kind_text("reminder", 1440), kind_text("reminder"), kind_text("rescheduled"),
            kind_text("cancelled")] == ["Reminder 24 h before", "Appointment reminder",
                                        "Change notice", "Cancellation notice"]
    i18n.set_language("es")
    assert [kind_text("reminder", 120), kind_text("rescheduled"), kind_text("cancelled")] == [
        "Recordatorio 2 h antes", "Aviso de cambio", "Aviso de cancelación"]


def _booking(desk: Desk, status: AppointmentStatus) -> Booking:
    start = datetime.now(UTC) + timedelta(days=2)
    return Booking(uuid.uuid4(), uuid.uuid4(), "Ana Rojas", uuid.uuid4(), start,
                   start + timedelta(minutes=30), status, None, None)


def test_a_booking_the_server_has_not_seen_has_no_messages_yet(qtbot: QtBot, desk: Desk
                                                               ) -> None:
    dialog = RemindersDialog(desk, _booking(desk, AppointmentStatus.PENDING))
    qtbot.addWidget(dialog)
    assert dialog.note.text().startswith("This booking has not reached the server yet")
    assert dialog.table.rowCount() == 0


def test_a_desk_with_no_server_says_reminders_need_the_connection(qtbot: QtBot, desk: Desk
                                                                  ) -> None:
    assert desk.server is None
    dialog = RemindersDialog(desk, _booking(desk, AppointmentStatus.BOOKED))
    qtbot.addWidget(dialog)
    assert dialog.note.text() == OFFLINE
    assert dialog.refresh_button.isEnabled()
