"""What the calendar and its appointment dialogs share: the status colours, how times and
errors read, the small label helpers, and the guards for answers from the worker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from desktop.operations.appointments import AppointmentError
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.qt import QDate, QLabel, QLocale, QObject, Qt
from shared_models.enums import AppointmentStatus
from shared_models.scheduling import Slot

S = AppointmentStatus
ERROR_STYLE = "color: #b00020"
APPOINTMENTS = ("appointment",)


@dataclass(frozen=True, slots=True)
class StatusStyle:
    label: str
    fill: str
    text: str
    border: str


STATUS_STYLES: dict[AppointmentStatus, StatusStyle] = {
    S.PENDING: StatusStyle("Pending", "#FFE082", "#4E3B00", "#F9A825"),
    S.BOOKED: StatusStyle("Booked", "#1E88E5", "#FFFFFF", "#1565C0"),
    S.CHECKED_IN: StatusStyle("Checked in", "#00897B", "#FFFFFF", "#00695C"),
    S.IN_PROGRESS: StatusStyle("In progress", "#8E24AA", "#FFFFFF", "#6A1B9A"),
    S.COMPLETED: StatusStyle("Completed", "#C5E1A5", "#33691E", "#7CB342"),
    S.CANCELLED: StatusStyle("Cancelled", "#F0F0F0", "#9E9E9E", "#BDBDBD"),
    S.NO_SHOW: StatusStyle("No-show", "#BCAAA4", "#3E2723", "#6D4C41"),
    S.REJECTED: StatusStyle("Rejected", "#FFCDD2", "#B71C1C", "#D32F2F"),
}


def error_text(exc: BaseException) -> str:
    """A worker's error as the receptionist reads it, in the current language."""
    if isinstance(exc, AppointmentError):
        values = {k: tr(v) if isinstance(v, str) else v for k, v in exc.values.items()}
        return tr(exc.template, **values)
    return str(exc)


class Alive:
    """Whether a widget still exists, for answers from a worker that arrive after the
    screen was closed: those are dropped instead of touching a deleted widget.

    Only for answers that must still do something without the widget (see `announce`);
    where the whole answer can be dropped, `Worker.run(..., owner=widget)` does it."""

    def __init__(self, owner: QObject) -> None:
        self.alive = True
        owner.destroyed.connect(self._gone)

    def _gone(self, *_: object) -> None:
        self.alive = False

    def __call__(self, callback: Callable[[Any], None]) -> Callable[[Any], None]:
        def guarded(value: Any) -> None:
            if self.alive:
                callback(value)
        return guarded


def announce(desk: Desk, entities: Callable[[], Sequence[str]],
             then: Callable[[Any], None]) -> Callable[[Any], None]:
    """After a write: tell every screen (even if the one that asked has closed), then let
    the asking screen finish."""
    def done(value: Any) -> None:
        desk.changed(*entities())
        then(value)
    return done


def qlocale() -> QLocale:
    return QLocale("es_CL") if language() == "es" else QLocale("en_GB")


def qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def clock_text(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def slot_text(slot: Slot, zone: ZoneInfo) -> str:
    return f"{clock_text(slot.start, zone)}–{clock_text(slot.end, zone)}"


def slot_minutes(slot: Slot) -> int:
    return int((slot.end - slot.start).total_seconds() // 60)


def error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def plain_label(text: str) -> QLabel:
    """A label that shows typed text as typed, never as markup."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def set_text(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))
