"""The front desk's calendar over a real store, with the real workers and the GUI-thread
guard on: what a day and a week show, booking from a free slot (an existing patient or
one typed in), every command on an appointment block, refusals with their reasons, and
keyboard and mouse navigation."""

from __future__ import annotations

import sys
import time as timer
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import func, insert, select

from desktop.operations.schedule import Booking, Column, ProviderInfo, day_window, week_days
from desktop.store.local import outbox
from desktop.ui.appointment_dialogs import AppointmentDialog, CancelDialog, RescheduleDialog
from desktop.ui.booking import BookingDialog
from desktop.ui.calendar import HOUR_HEIGHT, CalendarGrid, CalendarView
from desktop.ui.calendar_common import STATUS_STYLES
from desktop.ui.desk import Desk
from desktop.ui.payments import PaymentDialog
from desktop.ui.qt import QDialog, QPoint, QRect, Qt, QtCore
from shared_models.enums import AppointmentStatus
from shared_models.ids import uuid7
from shared_models.tables import appointment, patient
from tests.desktop.test_operations_appointments import (
    ZONE,
    Scenario,
    Seed,
    at,
    dst_days,
    future_day,
    seed_day,
)
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton
ROJAS, SOTO = 1, 0  # column order: providers by name


def _seed(desk: Desk, day: date | None = None) -> Scenario:
    with setup_io():
        return seed_day(Seed(desk.engine, desk.session.clinic_id), day or future_day())


def _calendar(qtbot: QtBot, desk: Desk, day: date) -> CalendarView:
    view = CalendarView(desk)
    qtbot.addWidget(view)
    view.resize(1200, 1000)
    view.show()
    qtbot.waitExposed(view)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.go_to(day)
    return view


def _click(qtbot: QtBot, view: CalendarView, rect: QRect | None) -> None:
    """Click the middle of a block of the grid, scrolled into sight first."""
    assert rect is not None
    view.scroll_area.ensureVisible(rect.center().x(), rect.center().y(), 20, 60)
    qtbot.mouseClick(view.grid, LEFT, pos=rect.center())


def _block(view: CalendarView, appointment_id: Any) -> Booking:
    [found] = [i.booking for i in view.grid.booking_items()
               if i.booking is not None and i.booking.id == appointment_id]
    assert found is not None
    return found


def _slot_labels(view: CalendarView, column: int) -> list[str]:
    return [i.lines[0] for i in view.grid.items[column] if i.slot is not None]


def _outbox(qtbot: QtBot, desk: Desk) -> list[Any]:
    def read() -> list[Any]:
        with desk.engine.connect() as conn:
            return list(conn.execute(select(outbox).order_by(outbox.c.seq)))
    return on_db_worker(qtbot, desk, read)


def _row(qtbot: QtBot, desk: Desk, appointment_id: Any) -> Any:
    def read() -> Any:
        with desk.engine.connect() as conn:
            return conn.execute(select(appointment)
                                .where(appointment.c.id == appointment_id)).one()
    return on_db_worker(qtbot, desk, read)


def _counts(qtbot: QtBot, desk: Desk) -> tuple[int, int, int]:
    def read() -> tuple[int, int, int]:
        with desk.engine.connect() as conn:
            return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                         for t in (patient, appointment, outbox))  # type: ignore[return-value]
    return on_db_worker(qtbot, desk, read)


def _open_block(qtbot: QtBot, view: CalendarView, appointment_id: Any) -> AppointmentDialog:
    _click(qtbot, view, view.grid.booking_rect(appointment_id))
    dialog = view.dialog
    assert isinstance(dialog, AppointmentDialog)
    assert dialog.booking.id == appointment_id
    return dialog


# --- what is shown ---------------------------------------------------------------------


def test_day_view_shows_each_providers_appointments_and_free_slots(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    assert [t for t, _ in view.header.titles()] == ["Dr. Luis Soto", "Dra. Ana Rojas"]
    assert _slot_labels(view, ROJAS) == ["09:30", "10:00", "11:30"]
    assert _slot_labels(view, SOTO) == ["14:30", "15:30", "17:00", "17:30"]
    blocks = {i.booking.id: i for i in view.grid.items[ROJAS] if i.booking is not None}
    assert blocks[scenario.booked].lines == ["09:00 Iñés Núñez", "Booked · Control"]
    assert blocks[scenario.pending].lines[0] == "11:00 Pedro Soto"
    assert blocks[scenario.pending].booking.status is AppointmentStatus.PENDING  # type: ignore[union-attr]
    # Blocks sit on their wall-clock lines: 09:00 is one hour below the 08:00 top.
    assert view.grid.first_hour == 8
    assert blocks[scenario.booked].rect.top() == HOUR_HEIGHT + 1
    half_past_eleven = view.grid.slot_rect(ROJAS, at(scenario.day, "11:30"))
    assert half_past_eleven is not None
    assert half_past_eleven.top() == round(3.5 * HOUR_HEIGHT) + 1
    assert view.zone_label.text() == "Times in America/Santiago"
    assert view.date_label.text().endswith(scenario.day.strftime("%Y"))


def test_a_rejected_offline_booking_is_marked_and_its_slot_stays_bookable(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    [rejected] = [i for i in view.grid.items[ROJAS]
                  if i.booking is not None and i.booking.id == scenario.rejected]
    assert rejected.lines[1] == "Rejected"
    free = view.grid.slot_rect(ROJAS, at(scenario.day, "09:30"))
    assert free is not None
    # The rejected booking is a tab on the right; the free slot beside it takes clicks.
    assert rejected.rect.left() > free.center().x()
    beside = view.grid.item_at(QPoint(free.left() + 10, free.center().y()))
    assert beside is not None
    assert beside.slot is not None
    on_tab = view.grid.item_at(rejected.rect.center())
    assert on_tab is not None
    assert on_tab.booking is not None
    assert on_tab.booking.status is AppointmentStatus.REJECTED


def test_every_status_has_its_own_colour_in_the_legend(qtbot: QtBot, desk: Desk) -> None:
    view = _calendar(qtbot, desk, future_day())
    assert len({s.fill for s in STATUS_STYLES.values()}) == len(AppointmentStatus)
    for status, style in STATUS_STYLES.items():
        swatch = view.findChild(type(view.date_label), f"legend_{status.value}")
        assert swatch is not None
        assert swatch.text() == style.label
        assert style.fill in swatch.styleSheet()
    assert view.message.text() == \
        "No providers on this computer yet; they arrive with the next sync."
    with setup_io():  # the first sync brings them
        Seed(desk.engine, desk.session.clinic_id).provider("Dra. Ana Rojas")
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        desk.changed("provider")
    assert not view.message.isVisibleTo(view)
    assert [t for t, _ in view.header.titles()] == ["Dra. Ana Rojas"]


def test_cancelled_appointments_can_be_hidden(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    assert view.grid.booking_rect(scenario.cancelled) is not None
    view.show_cancelled.setChecked(False)
    assert view.grid.booking_rect(scenario.cancelled) is None
    assert view.grid.booking_rect(scenario.rejected) is not None  # needs attention: kept


def test_slots_on_a_daylight_saving_day_sit_on_their_wall_clock_lines(
    qtbot: QtBot, desk: Desk
) -> None:
    day = next(d for d in dst_days()
               if (w := day_window(d, ZONE)).end - w.start == timedelta(hours=23))
    with setup_io():
        seed = Seed(desk.engine, desk.session.clinic_id)
        doctor = seed.provider("Dra. Ana Rojas")
        seed.rule(doctor, day, "00:00", "02:00", 30)
        seed.rule(doctor, day, "09:00", "10:00", 30)
    view = _calendar(qtbot, desk, day)
    items = [i for i in view.grid.items[0] if i.slot is not None]
    # Clocks jump from 00:00 to 01:00 that night: the missing hour has no slots.
    assert [i.lines[0] for i in items] == ["01:00", "01:30", "09:00", "09:30"]
    assert view.grid.first_hour == 1
    one, nine = items[0], items[2]
    assert one.rect.top() == 1
    assert nine.rect.top() == 8 * HOUR_HEIGHT + 1
    assert nine.slot is not None
    assert nine.slot.start.astimezone(ZONE).utcoffset() == timedelta(hours=-3)


def test_the_current_time_line_follows_the_clinics_zone(qtbot: QtBot) -> None:
    grid = CalendarGrid(ZONE)
    qtbot.addWidget(grid)
    now = datetime(2026, 6, 15, 14, 15, tzinfo=UTC)  # 10:15 in Santiago (UTC-4 in June)
    grid.now = lambda: now
    person = ProviderInfo(uuid7(), uuid7(), "Dra. Ana Rojas", None, None)
    grid.set_columns([Column(person, date(2026, 6, 15), (), ())])
    grid.resize(600, 1000)
    assert grid.first_hour == 8
    assert grid.now_y() == round((10.25 - 8) * HOUR_HEIGHT)
    grid.set_columns([Column(person, date(2026, 6, 14), (), ())])
    assert grid.now_y() is None  # not today in Santiago: no line


def test_a_full_day_of_ten_providers_loads_and_paints_quickly(
    qtbot: QtBot, desk: Desk
) -> None:
    day = future_day()
    with setup_io():
        seed = Seed(desk.engine, desk.session.clinic_id)
        people = [seed.provider(f"Dr. {n:02d}") for n in range(10)]
        who = seed.patient("Ana", "Pérez")
        for person in people:
            seed.rule(person, day, "08:00", "18:00", 15)
        with desk.engine.begin() as conn:  # forty of the forty 15-minute slots, each
            conn.execute(insert(appointment), [
                {"clinic_id": desk.session.clinic_id, "id": uuid7(), "patient_id": who,
                 "provider_id": person, "starts_at": at(day, "08:00") + timedelta(minutes=15 * n),
                 "ends_at": at(day, "08:15") + timedelta(minutes=15 * n),
                 "status": "booked" if n % 3 else "pending"}
                for person in people for n in range(40)])
    view = CalendarView(desk)
    qtbot.addWidget(view)
    view.resize(1600, 1000)
    view.show()
    started = timer.perf_counter()
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.go_to(day)
    loaded = timer.perf_counter() - started
    assert len(view.grid.booking_items()) == 400
    started = timer.perf_counter()
    view.grid.relayout()
    view.grid.grab()
    painted = timer.perf_counter() - started
    assert loaded < 2.0, f"loading the day took {loaded:.2f} s"
    assert painted < 0.5, f"laying out and painting the day took {painted:.2f} s"


LEAKY_PYSIDE = QtCore.qVersion() == "6.12.0" and sys.version_info < (3, 12)


@pytest.mark.xfail(LEAKY_PYSIDE, strict=True, reason=(
    "PySide6 6.12.0 on Python 3.11 drops a reference to None on every Qt method that "
    "returns nothing; the process aborts (none_dealloc) once None's count reaches zero, "
    "which a few calendar repaints bring near. PySide6 6.11.3 does not; nor does "
    "Python 3.12+, where None is immortal."))
def test_painting_keeps_pythons_references_to_none(qtbot: QtBot) -> None:
    grid = CalendarGrid(ZONE)
    qtbot.addWidget(grid)
    day = future_day()
    person = ProviderInfo(uuid7(), uuid7(), "Dra. Ana Rojas", None, None)
    bookings = tuple(
        Booking(uuid7(), uuid7(), "Ana Pérez", person.id,
                at(day, "08:00") + timedelta(minutes=15 * n),
                at(day, "08:15") + timedelta(minutes=15 * n), AppointmentStatus.BOOKED,
                None, None) for n in range(40))
    grid.set_columns([Column(person, day, bookings, ())] * 10)
    grid.resize(1400, 900)
    grid.grab()  # caches warmed
    before = sys.getrefcount(None)
    for _ in range(3):
        grid.grab()
    assert before - sys.getrefcount(None) < 100


# --- booking ---------------------------------------------------------------------------


def test_booking_an_existing_patient_from_a_free_slot(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    _click(qtbot, view, view.grid.slot_rect(ROJAS, at(scenario.day, "11:30")))
    dialog = view.dialog
    assert isinstance(dialog, BookingDialog)
    assert "Dra. Ana Rojas" in dialog.when.text()
    assert "11:30–12:00 (America/Santiago)" in dialog.when.text()
    qtbot.waitUntil(lambda: dialog.results.count() == 2)
    qtbot.keyClicks(dialog.search, "nunez")
    qtbot.waitUntil(lambda: dialog.results.count() == 1)
    dialog.reason.setText("Dolor de cabeza")
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.result() == QDialog.DialogCode.Accepted
    new_id = dialog.booked_id
    block = _block(view, new_id)
    assert (block.status, block.patient_name) == (AppointmentStatus.PENDING, "Iñés Núñez")
    assert block.start == at(scenario.day, "11:30")
    assert "11:30" not in _slot_labels(view, ROJAS)
    stored = _row(qtbot, desk, new_id)
    assert (stored.status, stored.patient_id, stored.reason) == (
        "pending", scenario.ines, "Dolor de cabeza")
    [mutation] = _outbox(qtbot, desk)
    assert (mutation.op, mutation.record_id) == ("book", new_id)
    assert mutation.changes["start"] == at(scenario.day, "11:30").isoformat()
    assert mutation.changes["provider_id"] == str(scenario.rojas)


def test_booking_without_choosing_a_patient_says_so(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    _click(qtbot, view, view.grid.slot_rect(ROJAS, at(scenario.day, "11:30")))
    dialog = view.dialog
    assert isinstance(dialog, BookingDialog)
    qtbot.waitUntil(lambda: dialog.results.count() == 2)
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.error.text() == "Choose a patient, or add a new one."
    assert dialog.isVisible()
    assert _counts(qtbot, desk) == (2, 6, 0)


def test_booking_a_patient_typed_in_shows_problems_then_creates_both(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    _click(qtbot, view, view.grid.slot_rect(SOTO, at(scenario.day, "17:00")))
    dialog = view.dialog
    assert isinstance(dialog, BookingDialog)
    qtbot.mouseClick(dialog.new_button, LEFT)
    assert dialog.new_box.isVisibleTo(dialog)
    dialog.inputs["family_name"].setText("Ñancupil")
    dialog.inputs["phone"].setText("12")
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.errors["given_name"].text() == "Required."
    assert dialog.errors["phone"].text() == "Not a valid phone number; include the area code."
    assert not dialog.errors["family_name"].isVisibleTo(dialog)
    dialog.inputs["given_name"].setText("Rosa")
    dialog.inputs["phone"].setText("")
    qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.errors["phone"].text() == "Required."
    assert not dialog.errors["given_name"].isVisibleTo(dialog)
    assert dialog.result() == 0
    assert _counts(qtbot, desk) == (2, 6, 0)  # nothing created

    dialog.inputs["phone"].setText("9 6123 9999")
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.book_button, LEFT)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert _block(view, dialog.booked_id).patient_name == "Rosa Ñancupil"
    assert _counts(qtbot, desk) == (3, 7, 2)
    upsert, book = _outbox(qtbot, desk)
    assert (upsert.entity, upsert.op, upsert.changes["phone"]) == (
        "patient", "upsert", "+56961239999")
    assert (book.op, book.changes["patient_id"]) == ("book", str(upsert.record_id))
    assert book.changes["start"] == at(scenario.day, "17:00").isoformat()


def test_a_slot_taken_meanwhile_is_refused_with_the_reason(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    _click(qtbot, view, view.grid.slot_rect(ROJAS, at(scenario.day, "11:30")))
    dialog = view.dialog
    assert isinstance(dialog, BookingDialog)
    qtbot.waitUntil(lambda: dialog.results.count() == 2)
    dialog.results.setCurrentRow(0)
    with setup_io():  # another booking lands (a pull) while the dialog is open
        Seed(desk.engine, desk.session.clinic_id).appointment(
            scenario.rojas, scenario.pedro, at(scenario.day, "11:30"), 30)
    qtbot.mouseClick(dialog.book_button, LEFT)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog))
    assert dialog.error.text().startswith(
        f"{at(scenario.day, '11:30').astimezone(ZONE):%Y-%m-%d} 11:30 is taken")
    assert dialog.book_button.isEnabled()
    assert _outbox(qtbot, desk) == []


# --- commands on a block ---------------------------------------------------------------


def test_check_in_updates_the_block_and_queues_check_in(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    assert dialog.status.text() == "Booked"
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.check_in_button, LEFT)
    assert _block(view, scenario.booked).status is AppointmentStatus.CHECKED_IN
    assert _row(qtbot, desk, scenario.booked).status == "checked_in"
    assert [(m.op, m.record_id) for m in _outbox(qtbot, desk)] == [
        ("check_in", scenario.booked)]


def test_cancel_asks_for_a_reason_and_refuses_an_empty_one(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    qtbot.mouseClick(dialog.cancel_button, LEFT)
    cancel = dialog.sub_dialog
    assert isinstance(cancel, CancelDialog)
    qtbot.keyClicks(cancel.reason, "   ")
    qtbot.mouseClick(cancel.confirm_button, LEFT)
    assert cancel.error.text() == "Say why the appointment is cancelled."
    assert cancel.isVisible()
    assert _outbox(qtbot, desk) == []
    assert _row(qtbot, desk, scenario.booked).status == "booked"

    cancel.reason.setText("La paciente viaja")
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(cancel.confirm_button, LEFT)
    assert dialog.result() == QDialog.DialogCode.Accepted
    stored = _row(qtbot, desk, scenario.booked)
    assert (stored.status, stored.cancel_reason) == ("cancelled", "La paciente viaja")
    [mutation] = _outbox(qtbot, desk)
    assert (mutation.op, mutation.changes) == ("cancel", {"reason": "La paciente viaja"})
    assert _block(view, scenario.booked).status is AppointmentStatus.CANCELLED
    assert "09:00" in _slot_labels(view, ROJAS)  # the time is free again


def test_no_show_once_the_appointment_time_has_come(qtbot: QtBot, desk: Desk) -> None:
    started = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    day = started.astimezone(ZONE).date()
    with setup_io():
        seed = Seed(desk.engine, desk.session.clinic_id)
        doctor = seed.provider("Dra. Ana Rojas")
        late = seed.appointment(doctor, seed.patient("Ana", "Pérez"), started, 15)
    view = _calendar(qtbot, desk, day)
    dialog = _open_block(qtbot, view, late)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.no_show_button, LEFT)
    assert _row(qtbot, desk, late).status == "no_show"
    assert [m.op for m in _outbox(qtbot, desk)] == ["no_show"]
    assert _block(view, late).status is AppointmentStatus.NO_SHOW


def test_no_show_before_the_time_is_refused(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    qtbot.mouseClick(dialog.no_show_button, LEFT)
    qtbot.waitUntil(lambda: dialog.error.isVisibleTo(dialog))
    assert dialog.error.text() == ("A patient can be marked as a no-show only once the "
                                   "appointment time has come.")
    assert _outbox(qtbot, desk) == []
    assert _row(qtbot, desk, scenario.booked).status == "booked"


def test_reschedule_lists_the_providers_free_slots_and_moves_the_block(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    qtbot.mouseClick(dialog.reschedule_button, LEFT)
    move = dialog.sub_dialog
    assert isinstance(move, RescheduleDialog)
    assert move.chosen_day() == scenario.day
    qtbot.waitUntil(lambda: move.list.count() == 3)
    assert [move.list.item(n).text() for n in range(3)] == [
        "09:30–10:00", "10:00–10:30", "11:30–12:00"]
    qtbot.mouseClick(move.move_button, LEFT)
    assert move.error.text() == "Choose one of the free times."
    move.list.setCurrentRow(2)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(move.move_button, LEFT)
    assert dialog.result() == QDialog.DialogCode.Accepted
    moved = _block(view, scenario.booked)
    assert (moved.start, moved.status) == (at(scenario.day, "11:30"), AppointmentStatus.BOOKED)
    assert _row(qtbot, desk, scenario.booked).starts_at == at(scenario.day, "11:30")
    [mutation] = _outbox(qtbot, desk)
    assert (mutation.op, mutation.changes) == (
        "reschedule", {"start": at(scenario.day, "11:30").isoformat()})
    assert _slot_labels(view, ROJAS) == ["09:00", "09:30", "10:00"]


def test_reschedule_to_a_day_without_hours_says_there_is_no_free_time(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    qtbot.mouseClick(dialog.reschedule_button, LEFT)
    move = dialog.sub_dialog
    assert isinstance(move, RescheduleDialog)
    qtbot.waitUntil(lambda: move.list.count() == 3)
    move.date.setDate(move.date.date().addDays(1))
    qtbot.waitUntil(lambda: move.list.count() == 0)
    assert move.empty.isVisibleTo(move)


@pytest.mark.parametrize(("which", "button", "message"), [
    ("pending", "check_in_button", "This booking is still waiting for the server to confirm "
                                   "it; the patient can be checked in once it is booked"),
    ("cancelled", "reschedule_button", "This appointment is cancelled; only a pending or "
                                       "booked appointment can be rescheduled."),
    ("rejected", "cancel_button", "This appointment is rejected; only a pending, booked or "
                                  "checked-in appointment can be cancelled."),
])
def test_a_command_the_state_machine_forbids_is_refused_with_the_reason(
    qtbot: QtBot, desk: Desk, which: str, button: str, message: str
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, getattr(scenario, which))
    assert getattr(dialog, button).toolTip().startswith(message)
    qtbot.mouseClick(getattr(dialog, button), LEFT)
    assert dialog.error.text().startswith(message)
    assert dialog.sub_dialog is None
    assert dialog.isVisible()
    assert _outbox(qtbot, desk) == []


def test_the_refusal_is_in_spanish_when_the_desk_is(qtbot: QtBot, desk: Desk) -> None:
    from desktop.ui import i18n

    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    i18n.set_language("es")
    dialog = _open_block(qtbot, view, scenario.cancelled)
    qtbot.mouseClick(dialog.check_in_button, LEFT)
    assert dialog.error.text() == ("Estado de la cita: cancelada. Solo se puede registrar la "
                                   "llegada de una cita reservada.")
    assert dialog.status.text() == "Cancelada"


def test_dragging_a_block_onto_another_providers_free_slot_moves_it(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    view.resize(1200, 1400)
    qtbot.waitUntil(lambda: view.grid.height() > 11 * HOUR_HEIGHT)
    source = view.grid.booking_rect(scenario.booked)
    target = view.grid.slot_rect(SOTO, at(scenario.day, "17:30"))
    assert source is not None
    assert target is not None
    view.scroll_area.verticalScrollBar().setValue(0)
    qtbot.mousePress(view.grid, LEFT, pos=source.center())
    qtbot.mouseMove(view.grid, source.center() + QPoint(0, 30))
    qtbot.mouseMove(view.grid, target.center())
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseRelease(view.grid, LEFT, pos=target.center())
    moved = _block(view, scenario.booked)
    assert (moved.provider_id, moved.start) == (scenario.soto, at(scenario.day, "17:30"))
    assert view.message.text().startswith("Iñés Núñez moved to")
    [mutation] = _outbox(qtbot, desk)
    assert mutation.changes == {"start": at(scenario.day, "17:30").isoformat(),
                                "provider_id": str(scenario.soto)}


# --- navigation ------------------------------------------------------------------------


def test_week_view_shows_one_provider_and_moves_by_weeks(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.week_button, LEFT)
    assert view.provider_combo.isVisibleTo(view)
    assert [view.provider_combo.itemText(n) for n in range(2)] == [
        "Dr. Luis Soto", "Dra. Ana Rojas"]
    assert [c.day for c in view.grid.columns] == list(week_days(scenario.day))
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.provider_combo.setCurrentIndex(1)
        view.provider_combo.activated.emit(1)
    assert {c.provider.id for c in view.grid.columns} == {scenario.rojas}
    index = week_days(scenario.day).index(scenario.day)
    assert _slot_labels(view, index) == ["09:30", "10:00", "11:30"]

    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.next_button, LEFT)
    assert view.grid.columns[0].day == week_days(scenario.day)[0] + timedelta(days=7)
    assert {c.provider.id for c in view.grid.columns} == {scenario.rojas}  # kept
    assert not view.grid.booking_items()
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.prev_button, LEFT)
    assert view.day == scenario.day
    assert _block(view, scenario.booked).start == at(scenario.day, "09:00")

    # A click on a day's title opens that day with every provider.
    x = view.grid.column_width() * index + 80
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.header, LEFT, pos=QPoint(x, 20))
    assert (view.mode, view.day, len(view.grid.columns)) == ("day", scenario.day, 2)


def test_keys_move_by_day_and_back_to_today(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.keyClick(view.grid, Qt.Key.Key_Right)
    assert view.day == scenario.day + timedelta(days=1)
    assert view.grid.columns[0].day == scenario.day + timedelta(days=1)
    assert not view.grid.slot_items()
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.keyClick(view.scroll_area, Qt.Key.Key_Left)
    assert view.grid.columns[0].day == scenario.day
    assert _slot_labels(view, ROJAS) == ["09:30", "10:00", "11:30"]
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.keyClick(view.grid, Qt.Key.Key_W)
    assert view.mode == "week"
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.keyClick(view.grid, Qt.Key.Key_Left)
    assert view.day == scenario.day - timedelta(days=1)
    assert [c.day for c in view.grid.columns] == list(week_days(view.day))
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.keyClick(view.grid, Qt.Key.Key_T)
    today = datetime.now(UTC).astimezone(ZONE).date()
    assert view.day == today
    assert today in [c.day for c in view.grid.columns]
    assert view.grid.now_y() is not None or not view.grid.columns
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.today_button, LEFT)
    assert view.day == today


def test_the_calendar_refreshes_when_availability_changes(qtbot: QtBot, desk: Desk) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    with setup_io():  # a pull brings a new rule
        Seed(desk.engine, desk.session.clinic_id).rule(scenario.rojas, scenario.day,
                                                       "15:00", "16:00", 30)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        desk.changed("availability_rule")
    assert _slot_labels(view, ROJAS) == ["09:30", "10:00", "11:30", "15:00", "15:30"]
    with qtbot.assertNotEmitted(view.loaded, wait=200):
        desk.changed("clinical_note")


def test_an_answer_arriving_after_the_calendar_closed_is_dropped(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = CalendarView(desk)
    view.go_to(scenario.day)  # two loads on their way
    closed: list[bool] = []
    view.destroyed.connect(lambda *_: closed.append(True))
    view.deleteLater()
    qtbot.waitUntil(lambda: bool(closed))
    assert desk.tasks.db.wait(10_000)
    qtbot.wait(50)  # the answers are delivered now; pytest-qt fails the test if one raised
    assert not desk.tasks.db.busy



def test_the_front_desk_takes_payment_from_an_appointment_and_a_doctor_is_not_offered_it(
    qtbot: QtBot, desk: Desk
) -> None:
    scenario = _seed(desk)
    view = _calendar(qtbot, desk, scenario.day)
    dialog = _open_block(qtbot, view, scenario.booked)
    assert dialog.payment_button.isVisibleTo(dialog)
    qtbot.mouseClick(dialog.payment_button, LEFT)
    qtbot.waitUntil(lambda: isinstance(dialog.sub_dialog, PaymentDialog), timeout=5000)
    assert isinstance(dialog.sub_dialog, PaymentDialog)
    assert dialog.sub_dialog.appointment.id == scenario.booked
    dialog.sub_dialog.reject()
    dialog.reject()

    desk.session = replace(desk.session, role="doctor")
    doctors = _open_block(qtbot, view, scenario.booked)
    assert not doctors.payment_button.isVisibleTo(doctors)
