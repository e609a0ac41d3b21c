"""The front desk's calendar: a day with the providers side by side, or one provider's
week, on a time axis in the clinic's zone; appointments as blocks coloured by status and
free slots as light cells. A click on a free slot books it, a click on an appointment
offers what can be done with it, and a block dragged onto a free slot moves it.

Everything shown comes from the database worker (desktop.operations.schedule); the grid
only paints what it was given, from positions worked out once per load or resize, so a
day of ten providers with forty appointments each paints without a wait.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, select

from desktop.operations.appointments import (
    AppointmentError,
    book_slot_offline,
    cancel_offline,
    check_booking,
    check_cancel_reason,
    check_command,
    check_in_offline,
    no_show_offline,
    reschedule_offline,
)
from desktop.operations.patients import PatientInvalid, check_patient, register_patient
from desktop.operations.schedule import (
    Booking,
    Column,
    DayView,
    ProviderInfo,
    WeekView,
    day_view,
    provider_free_slots,
    providers,
    week_days,
    week_view,
)
from desktop.store.search import search_patients
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.payments import PaymentDialog
from desktop.ui.qt import (
    QApplication,
    QColor,
    QComboBox,
    QDate,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QEvent,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QLocale,
    QMouseEvent,
    QObject,
    QPainter,
    QPaintEvent,
    QPen,
    QPoint,
    QPushButton,
    QRect,
    Qt,
    QtGui,
    QTimer,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.enums import AppointmentStatus
from shared_models.scheduling import TRANSITIONS, Slot
from shared_models.schemas.payments import PAYABLE_STATUSES, PAYMENT_ROLES
from shared_models.tables import appointment

S = AppointmentStatus
AXIS_WIDTH = 60
HEADER_HEIGHT = 44
HOUR_HEIGHT = 72
MIN_COLUMN_WIDTH = 120
# The hours shown when nothing falls outside them (wall clock, clinic zone).
DEFAULT_HOURS = (8, 19)
SEARCH_DELAY_MS = 150
NOW_LINE_REFRESH_MS = 30_000
ERROR_STYLE = "color: #b00020"


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
FREE_FILL, FREE_BORDER, FREE_TEXT = "#F3F8FE", "#A9CBEE", "#5A7FA8"
NOW_COLOUR = "#E53935"
# Given up bookings: drawn as a narrow tab on the right of their column, so the free
# slot they no longer hold stays visible and clickable beside them.
WITHDRAWN = frozenset({S.CANCELLED, S.REJECTED})
WITHDRAWN_SHARE = 0.4


def error_text(exc: BaseException) -> str:
    """A worker's error as the receptionist reads it, in the current language."""
    if isinstance(exc, AppointmentError):
        values = {k: tr(v) if isinstance(v, str) else v for k, v in exc.values.items()}
        return tr(exc.template, **values)
    return str(exc)


class _Alive:
    """Whether a widget still exists, for answers from a worker that arrive after the
    screen was closed: those are dropped instead of touching a deleted widget."""

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


def _announce(desk: Desk, entities: Callable[[], Sequence[str]],
              then: Callable[[Any], None]) -> Callable[[Any], None]:
    """After a write: tell every screen (even if the one that asked has closed), then let
    the asking screen finish."""
    def done(value: Any) -> None:
        desk.changed(*entities())
        then(value)
    return done


APPOINTMENTS = ("appointment",)
CASHIERS = frozenset(role.value for role in PAYMENT_ROLES)
PAYABLE = PAYABLE_STATUSES


def _qlocale() -> QLocale:
    return QLocale("es_CL") if language() == "es" else QLocale("en_GB")


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def _hm(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def slot_text(slot: Slot, zone: ZoneInfo) -> str:
    return f"{_hm(slot.start, zone)}–{_hm(slot.end, zone)}"


def _minutes(slot: Slot) -> int:
    return int((slot.end - slot.start).total_seconds() // 60)


def _wall_minutes(at: datetime, day: date, zone: ZoneInfo) -> int:
    """Minutes from the local midnight of `day` on the wall clock, kept within the day.

    The axis is the wall clock the receptionist reads, so 09:00 sits on the 09:00 line on
    every day, daylight saving or not."""
    local = at.astimezone(zone)
    minutes = (local.date() - day).days * 1440 + local.hour * 60 + local.minute
    return max(0, min(1440, minutes))


@dataclass(slots=True)
class Item:
    """Something drawn in a column, where it is, and what a click on it means."""

    rect: QRect
    column: int
    booking: Booking | None = None
    slot: Slot | None = None
    lines: list[str] = field(default_factory=list)


def _lanes(bookings: Sequence[Booking]) -> list[tuple[Booking, int, int]]:
    """Each booking with its lane and the number of lanes of its group of overlapping
    bookings, so overlapping ones sit side by side."""
    placed: list[tuple[Booking, int, int]] = []
    group: list[tuple[Booking, int]] = []
    lane_ends: list[datetime] = []
    group_end: datetime | None = None

    def close() -> None:
        placed.extend((b, lane, len(lane_ends)) for b, lane in group)

    for booking in sorted(bookings, key=lambda b: (b.start, b.end)):
        if group_end is not None and booking.start >= group_end:
            close()
            group, lane_ends, group_end = [], [], None
        lane = next((i for i, end in enumerate(lane_ends) if end <= booking.start), None)
        if lane is None:
            lane_ends.append(booking.end)
            lane = len(lane_ends) - 1
        else:
            lane_ends[lane] = booking.end
        group.append((booking, lane))
        group_end = booking.end if group_end is None else max(group_end, booking.end)
    close()
    return placed


class CalendarGrid(QWidget):
    """The painted time grid: a time axis on the left and one column per provider (day
    view) or per day (week view)."""

    slot_clicked = Signal(object, object)  # Column, Slot
    appointment_clicked = Signal(object)  # Booking
    appointment_dropped = Signal(object, object, object)  # Booking, Column, Slot

    def __init__(self, zone: ZoneInfo, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("calendar_grid")
        self.zone = zone
        self.columns: tuple[Column, ...] = ()
        self.show_withdrawn = True
        self.highlight_today = False  # the week view tints today's column
        self.first_hour, self.last_hour = DEFAULT_HOURS
        self.items: list[list[Item]] = []
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._press: tuple[QPoint, Item] | None = None
        self._drag_at: QPoint | None = None
        self._hover: Item | None = None
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # --- geometry ----------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = tuple(columns)
        self._fit_hours()
        height = (self.last_hour - self.first_hour) * HOUR_HEIGHT + 1
        self.setMinimumSize(AXIS_WIDTH + MIN_COLUMN_WIDTH * max(1, len(self.columns)), height)
        self.relayout()

    def _fit_hours(self) -> None:
        first, last = DEFAULT_HOURS
        for column in self.columns:
            spans = [(s.start, s.end) for s in column.free]
            spans += [(b.start, b.end) for b in self._shown(column)]
            for start, end in spans:
                first = min(first, _wall_minutes(start, column.day, self.zone) // 60)
                last = max(last, -(-_wall_minutes(end, column.day, self.zone) // 60))
        self.first_hour, self.last_hour = first, last

    def _shown(self, column: Column) -> list[Booking]:
        return [b for b in column.appointments
                if self.show_withdrawn or b.status is not S.CANCELLED]

    def column_width(self) -> int:
        return max(MIN_COLUMN_WIDTH, (self.width() - AXIS_WIDTH) // max(1, len(self.columns)))

    def y_of(self, at: datetime, day: date) -> int:
        minutes = _wall_minutes(at, day, self.zone) - self.first_hour * 60
        return round(minutes * HOUR_HEIGHT / 60)

    def now_y(self) -> int | None:
        """Where the current-time line is drawn, if the day shown is today (clinic zone)."""
        now = self.now()
        today = now.astimezone(self.zone).date()
        if not any(c.day == today for c in self.columns):
            return None
        y = self.y_of(now, today)
        return y if 0 <= y <= self.height() else None

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        super().resizeEvent(event)
        self.relayout()

    def relayout(self) -> None:
        """Work out every rectangle and its text once, so painting only draws."""
        width = self.column_width()
        metrics = self.fontMetrics()
        line = metrics.height()
        self.items = []
        for index, column in enumerate(self.columns):
            left = AXIS_WIDTH + index * width + 3
            inner = width - 6
            items: list[Item] = []
            for slot in column.free:
                top, bottom = self.y_of(slot.start, column.day), self.y_of(slot.end, column.day)
                items.append(Item(QRect(left, top + 1, inner, max(bottom - top - 2, 6)), index,
                                  slot=slot, lines=[_hm(slot.start, self.zone)]))
            shown = self._shown(column)
            held = [b for b in shown if b.status not in WITHDRAWN]
            withdrawn = [b for b in shown if b.status in WITHDRAWN]
            strip = int(inner * WITHDRAWN_SHARE)
            for group, x0, span in ((held, left, inner),
                                    (withdrawn, left + inner - strip, strip)):
                for booking, lane, lanes in _lanes(group):
                    top = self.y_of(booking.start, column.day)
                    bottom = self.y_of(booking.end, column.day)
                    lane_width = span // lanes
                    rect = QRect(x0 + lane * lane_width, top + 1, max(lane_width - 2, 8),
                                 max(bottom - top - 2, line + 2))
                    text_width = rect.width() - 8
                    if booking.status not in WITHDRAWN and any(
                            w.start < booking.end and booking.start < w.end for w in withdrawn):
                        text_width -= strip  # the tab on the right covers the rest
                    items.append(Item(rect, index, booking=booking,
                                      lines=self._lines(booking, rect, text_width, metrics)))
            self.items.append(items)
        self.update()

    def _lines(self, booking: Booking, rect: QRect, width: int,
               metrics: QtGui.QFontMetrics) -> list[str]:
        style = STATUS_STYLES[booking.status]
        texts = [f"{_hm(booking.start, self.zone)} {booking.patient_name}"]
        detail = tr(style.label)
        if booking.reason:
            detail += f" · {booking.reason}"
        texts.append(detail)
        fits = max(1, (rect.height() - 4) // metrics.height())
        elide = Qt.TextElideMode.ElideRight
        return [metrics.elidedText(t, elide, max(width, 10)) for t in texts[:fits]]

    # --- finding things ----------------------------------------------------------------

    def item_at(self, pos: QPoint) -> Item | None:
        """The block under `pos`: an appointment before the free slot beneath it."""
        if pos.x() < AXIS_WIDTH or not self.items:
            return None
        index = (pos.x() - AXIS_WIDTH) // self.column_width()
        if not 0 <= index < len(self.items):
            return None
        return next((i for i in reversed(self.items[index]) if i.rect.contains(pos)), None)

    def slot_items(self) -> list[Item]:
        return [i for column in self.items for i in column if i.slot is not None]

    def booking_items(self) -> list[Item]:
        return [i for column in self.items for i in column if i.booking is not None]

    def slot_rect(self, column: int, start: datetime) -> QRect | None:
        found = next((i for i in self.items[column] if i.slot and i.slot.start == start), None)
        return found.rect if found else None

    def booking_rect(self, appointment_id: uuid.UUID) -> QRect | None:
        found = next((i for i in self.booking_items() if i.booking
                      and i.booking.id == appointment_id), None)
        return found.rect if found else None

    # --- painting ----------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        clip = event.rect()
        painter = QPainter(self)
        painter.fillRect(clip, QColor("#FFFFFF"))
        width = self.column_width()
        today = self.now().astimezone(self.zone).date()
        for index, column in enumerate(self.columns):
            x = AXIS_WIDTH + index * width
            if column.day == today and self.highlight_today:
                painter.fillRect(QRect(x, clip.top(), width, clip.height()), QColor("#FFFDE7"))
        self._paint_axis(painter, clip)
        first = max(0, (clip.left() - AXIS_WIDTH) // width)
        last = min(len(self.items) - 1, (clip.right() - AXIS_WIDTH) // width)
        for index in range(first, last + 1):
            for item in self.items[index]:
                if item.rect.intersects(clip):
                    self._paint_item(painter, item)
        self._paint_now(painter, width)
        if self._drag_at is not None and self._press is not None:
            self._paint_drag(painter)
        painter.end()

    def _paint_axis(self, painter: QPainter, clip: QRect) -> None:
        right = AXIS_WIDTH + self.column_width() * len(self.columns)
        hour_pen, half_pen = QPen(QColor("#D6D6D6")), QPen(QColor("#EEEEEE"))
        half_pen.setStyle(Qt.PenStyle.DotLine)
        painter.setPen(QColor("#757575"))
        for hour in range(self.first_hour, self.last_hour + 1):
            y = (hour - self.first_hour) * HOUR_HEIGHT
            if y + HOUR_HEIGHT < clip.top() or y - HOUR_HEIGHT > clip.bottom():
                continue
            painter.setPen(hour_pen)
            painter.drawLine(AXIS_WIDTH - 6, y, right, y)
            painter.setPen(half_pen)
            painter.drawLine(AXIS_WIDTH, y + HOUR_HEIGHT // 2, right, y + HOUR_HEIGHT // 2)
            if hour < self.last_hour:
                painter.setPen(QColor("#616161"))
                painter.drawText(QRect(0, y + 2, AXIS_WIDTH - 10, 16),
                                 int(Qt.AlignmentFlag.AlignRight), f"{hour:02d}:00")
        painter.setPen(QColor("#E0E0E0"))
        for index in range(len(self.columns) + 1):
            x = AXIS_WIDTH + index * self.column_width()
            painter.drawLine(x, clip.top(), x, clip.bottom())

    def _paint_item(self, painter: QPainter, item: Item) -> None:
        rect = item.rect
        if item.slot is not None:
            hovered = item is self._hover
            painter.setPen(QPen(QColor(FREE_BORDER), 1))
            painter.setBrush(QColor("#E3F0FD" if hovered else FREE_FILL))
            painter.drawRoundedRect(rect, 3, 3)
            painter.setPen(QColor(FREE_TEXT))
            painter.drawText(rect.adjusted(4, 1, -2, 0), int(Qt.AlignmentFlag.AlignLeft
                                                             | Qt.AlignmentFlag.AlignTop),
                             item.lines[0])
            return
        assert item.booking is not None
        style = STATUS_STYLES[item.booking.status]
        pen = QPen(QColor(style.border), 2 if item is self._hover else 1)
        if item.booking.status is S.PENDING:
            pen.setStyle(Qt.PenStyle.DashLine)  # not confirmed by the server yet
        painter.setPen(pen)
        painter.setBrush(QColor(style.fill))
        painter.drawRoundedRect(rect, 3, 3)
        if item.booking.status is S.REJECTED:
            painter.setBrush(QtGui.QBrush(QColor(style.border), Qt.BrushStyle.BDiagPattern))
            painter.setPen(Qt.PenStyle.NoPen)
            painter.drawRoundedRect(rect, 3, 3)
        painter.setPen(QColor(style.text))
        line = self.fontMetrics().height()
        for n, text in enumerate(item.lines):
            painter.drawText(QRect(rect.left() + 4, rect.top() + 1 + n * line,
                                   rect.width() - 6, line),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                             text)

    def _paint_now(self, painter: QPainter, width: int) -> None:
        now = self.now()
        today = now.astimezone(self.zone).date()
        y = self.now_y()
        if y is None:
            return
        painter.setPen(QPen(QColor(NOW_COLOUR), 2))
        painter.setBrush(QColor(NOW_COLOUR))
        for index, column in enumerate(self.columns):
            if column.day == today:
                x = AXIS_WIDTH + index * width
                painter.drawLine(x, y, x + width, y)
        painter.drawEllipse(QPoint(AXIS_WIDTH - 3, y), 3, 3)

    def _paint_drag(self, painter: QPainter) -> None:
        assert self._press is not None
        assert self._drag_at is not None
        source = self._press[1].rect
        target = self.item_at(self._drag_at)
        if target is not None and target.slot is not None:
            painter.setPen(QPen(QColor("#2E7D32"), 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(target.rect, 3, 3)
        ghost = QRect(source)
        ghost.moveTopLeft(self._drag_at - (self._press[0] - source.topLeft()))
        painter.setOpacity(0.5)
        painter.setPen(QPen(QColor("#424242"), 1, Qt.PenStyle.DashLine))
        painter.setBrush(QColor("#90A4AE"))
        painter.drawRoundedRect(ghost, 3, 3)
        painter.setOpacity(1.0)

    # --- mouse -------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            super().mousePressEvent(event)
            return
        pos = event.position().toPoint()
        item = self.item_at(pos)
        self._press = (pos, item) if item is not None else None
        self._drag_at = None

    def _draggable(self, item: Item) -> bool:
        return item.booking is not None and \
            item.booking.status in TRANSITIONS["reschedule"].sources

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        if self._press is not None and self._draggable(self._press[1]) and (
                self._drag_at is not None
                or (pos - self._press[0]).manhattanLength() >= QApplication.startDragDistance()):
            self._drag_at = pos
            self.update()
            return
        item = self.item_at(pos)
        if item is not self._hover:
            for old in (self._hover, item):
                if old is not None:
                    self.update(old.rect.adjusted(-2, -2, 2, 2))
            self._hover = item
            self.setCursor(Qt.CursorShape.PointingHandCursor if item is not None
                           else Qt.CursorShape.ArrowCursor)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        press, dragged_to = self._press, self._drag_at
        self._press = self._drag_at = None
        if press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        item = press[1]
        if dragged_to is not None:
            self.update()
            target = self.item_at(event.position().toPoint())
            if target is not None and target.slot is not None and item.booking is not None:
                self.appointment_dropped.emit(item.booking, self.columns[target.column],
                                              target.slot)
            return
        if item.booking is not None:
            self.appointment_clicked.emit(item.booking)
        elif item.slot is not None:
            self.slot_clicked.emit(self.columns[item.column], item.slot)

    def leaveEvent(self, event: QEvent) -> None:
        if self._hover is not None:
            self.update(self._hover.rect.adjusted(-2, -2, 2, 2))
            self._hover = None
        super().leaveEvent(event)


class CalendarHeader(QWidget):
    """Column titles above the grid (providers, or the days of the week), kept in line
    with the grid's horizontal scrolling."""

    day_clicked = Signal(object)  # date

    def __init__(self, grid: CalendarGrid, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = grid
        self.week = False
        self.selected: date | None = None
        self.offset = 0
        self.setFixedHeight(HEADER_HEIGHT)

    def titles(self) -> list[tuple[str, str]]:
        if not self.week:
            return [(c.provider.name, c.provider.specialty or "") for c in self.grid.columns]
        locale = _qlocale()
        return [(locale.toString(_qdate(c.day), "ddd d"), locale.toString(_qdate(c.day), "MMM"))
                for c in self.grid.columns]

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(event.rect(), QColor("#FAFAFA"))
        width = self.grid.column_width()
        today = self.grid.now().astimezone(self.grid.zone).date()
        bold = QtGui.QFont(self.font())
        bold.setBold(True)
        for index, ((title, sub), column) in enumerate(zip(self.titles(), self.grid.columns,
                                                            strict=True)):
            x = AXIS_WIDTH + index * width - self.offset
            box = QRect(x, 0, width, HEADER_HEIGHT)
            if self.week and column.day == self.selected:
                painter.fillRect(box, QColor("#E3F2FD"))
            colour = column.provider.color if not self.week else None
            painter.fillRect(QRect(x + 1, 0, width - 2, 4), QColor(colour or "#B0BEC5"))
            painter.setFont(bold if (not self.week or column.day == today) else self.font())
            painter.setPen(QColor(NOW_COLOUR if self.week and column.day == today
                                  else "#212121"))
            metrics = painter.fontMetrics()
            painter.drawText(QRect(x + 6, 6, width - 10, 18), int(Qt.AlignmentFlag.AlignLeft),
                             metrics.elidedText(title, Qt.TextElideMode.ElideRight, width - 10))
            painter.setFont(self.font())
            painter.setPen(QColor("#757575"))
            painter.drawText(QRect(x + 6, 24, width - 10, 16), int(Qt.AlignmentFlag.AlignLeft),
                             painter.fontMetrics().elidedText(sub, Qt.TextElideMode.ElideRight,
                                                              width - 10))
            painter.setPen(QColor("#E0E0E0"))
            painter.drawLine(x, 0, x, HEADER_HEIGHT)
        painter.drawLine(0, HEADER_HEIGHT - 1, self.width(), HEADER_HEIGHT - 1)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        x = event.position().toPoint().x() + self.offset - AXIS_WIDTH
        index = x // self.grid.column_width() if x >= 0 else -1
        if self.week and 0 <= index < len(self.grid.columns):
            self.day_clicked.emit(self.grid.columns[index].day)


CALENDAR_KEYS = frozenset({Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_T, Qt.Key.Key_D,
                           Qt.Key.Key_W, Qt.Key.Key_PageUp, Qt.Key.Key_PageDown})


def _calendar_key(event: QtGui.QKeyEvent) -> bool:
    return event.key() in CALENDAR_KEYS and \
        not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier


class CalendarScroll(QtWidgets.QScrollArea):
    """A scroll area that leaves the calendar's keys to the calendar (it would take
    Left/Right to scroll sideways and PageUp/PageDown to scroll)."""

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if _calendar_key(event):
            event.ignore()  # on to the parent: the calendar view
            return
        super().keyPressEvent(event)


class CalendarView(QWidget):
    """The calendar screen. `loaded` fires each time fresh data is on screen."""

    loaded = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.zone = desk.clinic.timezone
        self.setObjectName("calendar")
        self.mode = "day"
        self.day = self.today()
        self.week_provider: uuid.UUID | None = None
        self.people: list[ProviderInfo] = []
        self.view: DayView | WeekView | None = None
        self.dialog: QDialog | None = None
        self._generation = 0
        self._scrolled_to: tuple[str, date] | None = None
        self._alive = _Alive(self)

        self.today_button = QPushButton(tr("Today"))
        self.today_button.setObjectName("calendar_today")
        self.prev_button = QPushButton("◀")
        self.prev_button.setObjectName("calendar_previous")
        self.prev_button.setToolTip(tr("Previous"))
        self.next_button = QPushButton("▶")
        self.next_button.setObjectName("calendar_next")
        self.next_button.setToolTip(tr("Next"))
        self.date_label = QLabel()
        self.date_label.setObjectName("calendar_date")
        bold = self.date_label.font()
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.15)
        self.date_label.setFont(bold)
        self.zone_label = QLabel(tr("Times in {zone}", zone=self.zone.key))
        self.zone_label.setStyleSheet("color: #757575")
        self.day_button = QPushButton(tr("Day"))
        self.day_button.setObjectName("calendar_day_mode")
        self.week_button = QPushButton(tr("Week"))
        self.week_button.setObjectName("calendar_week_mode")
        for button in (self.day_button, self.week_button):
            button.setCheckable(True)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.day_button.setChecked(True)
        self.provider_combo = QComboBox()
        self.provider_combo.setObjectName("calendar_provider")
        self.provider_combo.setVisible(False)
        self.show_cancelled = QtWidgets.QCheckBox(tr("Show cancelled"))
        self.show_cancelled.setObjectName("calendar_show_cancelled")
        self.show_cancelled.setChecked(True)
        self.message = QLabel()
        self.message.setObjectName("calendar_message")
        self.message.setWordWrap(True)
        self.message.setVisible(False)

        self.grid = CalendarGrid(self.zone)
        self.header = CalendarHeader(self.grid)
        self.scroll_area = CalendarScroll()
        self.scroll_area.setWidget(self.grid)
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)

        top = QHBoxLayout()
        for widget in (self.today_button, self.prev_button, self.next_button):
            top.addWidget(widget)
        top.addSpacing(8)
        top.addWidget(self.date_label)
        top.addWidget(self.zone_label)
        top.addStretch(1)
        top.addWidget(self.provider_combo)
        top.addWidget(self.show_cancelled)
        top.addWidget(self.day_button)
        top.addWidget(self.week_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(self._legend())
        layout.addWidget(self.message)
        layout.addWidget(self.header)
        layout.addWidget(self.scroll_area, 1)

        self.today_button.clicked.connect(self.go_today)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.day_button.clicked.connect(lambda: self.set_mode("day"))
        self.week_button.clicked.connect(lambda: self.set_mode("week"))
        self.provider_combo.activated.connect(self._provider_chosen)
        self.show_cancelled.toggled.connect(self._toggle_cancelled)
        self.scroll_area.horizontalScrollBar().valueChanged.connect(self._scrolled)
        self.header.day_clicked.connect(self.open_day)
        self.grid.slot_clicked.connect(self.open_booking)
        self.grid.appointment_clicked.connect(self.open_appointment)
        self.grid.appointment_dropped.connect(self.move_appointment)
        desk.data_changed.connect(self._on_data_changed)
        self.timer = QTimer(self)
        self.timer.setInterval(NOW_LINE_REFRESH_MS)
        self.timer.timeout.connect(self.grid.update)
        self.timer.start()
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.refresh()

    def _legend(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.setSpacing(10)
        for status, style in STATUS_STYLES.items():
            swatch = QLabel(tr(style.label))
            swatch.setObjectName(f"legend_{status.value}")
            border = "dashed" if status is S.PENDING else "solid"
            swatch.setStyleSheet(f"background: {style.fill}; color: {style.text}; "
                                 f"border: 1px {border} {style.border}; border-radius: 3px; "
                                 "padding: 1px 6px")
            row.addWidget(swatch)
        free = QLabel(tr("Free"))
        free.setObjectName("legend_free")
        free.setStyleSheet(f"background: {FREE_FILL}; color: {FREE_TEXT}; "
                           f"border: 1px solid {FREE_BORDER}; border-radius: 3px; "
                           "padding: 1px 6px")
        row.addWidget(free)
        row.addStretch(1)
        return row

    # --- what is shown -----------------------------------------------------------------

    def today(self) -> date:
        return datetime.now(UTC).astimezone(self.zone).date()

    def refresh(self) -> None:
        """Load what the current day or week shows, on the database worker."""
        self._generation += 1
        generation, engine, zone = self._generation, self.desk.engine, self.zone
        mode, day, wanted = self.mode, self.day, self.week_provider

        def work() -> tuple[list[ProviderInfo], DayView | WeekView | None]:
            people = providers(engine)
            if mode == "day":
                return people, day_view(engine, day=day, zone=zone)
            ids = [p.id for p in people]
            chosen = wanted if wanted in ids else (ids[0] if ids else None)
            if chosen is None:
                return people, None
            return people, week_view(engine, day=day, zone=zone, provider_id=chosen)

        self.desk.tasks.db.run(work,
                               on_done=self._alive(lambda r: self._show(generation, r)),
                               on_error=self._alive(self._load_failed))

    def _show(self, generation: int,
              result: tuple[list[ProviderInfo], DayView | WeekView | None]) -> None:
        if generation != self._generation:
            return  # an older load answering after the receptionist moved on
        self.people, self.view = result
        if isinstance(self.view, WeekView):
            self.week_provider = self.view.provider.id
        self._fill_providers()
        self.grid.highlight_today = self.mode == "week"
        self.grid.set_columns(self.view.columns if self.view else ())
        self.header.week = self.mode == "week"
        self.header.selected = self.day
        self.header.update()
        self._show_date()
        if self._scrolled_to != (self.mode, self.day):
            self._scrolled_to = (self.mode, self.day)
            QTimer.singleShot(0, self._scroll_to_start)
        if not self.people:
            self.say(tr("No providers on this computer yet; they arrive with the next sync."),
                     kind="no_providers")
        elif self.message.property("kind") == "no_providers":
            self.say("")
        self.loaded.emit()

    def _scroll_to_start(self) -> None:
        """A newly shown day opens at the current time, else at its first block."""
        y = self.grid.now_y()
        if y is None:
            tops = [i.rect.top() for column in self.grid.items for i in column]
            y = min(tops, default=0)
        self.scroll_area.verticalScrollBar().setValue(max(0, y - HOUR_HEIGHT // 2))

    def _load_failed(self, exc: BaseException) -> None:
        self.say(tr("The calendar could not be loaded: {error}", error=str(exc)), error=True)

    def _fill_providers(self) -> None:
        combo = self.provider_combo
        combo.blockSignals(True)
        combo.clear()
        for person in self.people:
            combo.addItem(person.name, person.id)
        if self.week_provider is not None:
            combo.setCurrentIndex(max(0, combo.findData(self.week_provider)))
        combo.blockSignals(False)

    def _show_date(self) -> None:
        locale = _qlocale()
        if self.mode == "day":
            text = locale.toString(_qdate(self.day), "dddd d MMMM yyyy")
        else:
            days = week_days(self.day)
            text = (f"{locale.toString(_qdate(days[0]), 'd MMM')} – "
                    f"{locale.toString(_qdate(days[-1]), 'd MMM yyyy')}")
        self.date_label.setText(text[:1].upper() + text[1:])

    def say(self, text: str, *, error: bool = False, kind: str = "note") -> None:
        """A line above the grid: what just happened, or why something did not."""
        self.message.setText(text)
        self.message.setStyleSheet(ERROR_STYLE if error else "color: #1b5e20")
        self.message.setProperty("kind", kind if text else "")
        self.message.setVisible(bool(text))

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if entities & {"appointment", "availability_rule", "availability_exception", "provider",
                       "patient"}:
            self.refresh()

    def _toggle_cancelled(self, shown: bool) -> None:
        self.grid.show_withdrawn = shown
        self.grid.set_columns(self.grid.columns)

    def _scrolled(self, value: int) -> None:
        self.header.offset = value
        self.header.update()

    # --- navigation --------------------------------------------------------------------

    def go_to(self, day: date) -> None:
        if self.message.property("kind") == "note":
            self.say("")  # about the day being left
        self.day = day
        self._show_date()
        self.refresh()

    def go_today(self) -> None:
        self.go_to(self.today())

    def step(self, direction: int) -> None:
        """Previous or next day (day view) or week (week view)."""
        self.go_to(self.day + timedelta(days=direction * (7 if self.mode == "week" else 1)))

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.day_button.setChecked(mode == "day")
        self.week_button.setChecked(mode == "week")
        self.provider_combo.setVisible(mode == "week")
        self.refresh()

    def open_day(self, day: date) -> None:
        self.day = day
        self.set_mode("day")

    def _provider_chosen(self, index: int) -> None:
        self.week_provider = self.provider_combo.itemData(index)
        self.refresh()

    def handle_key(self, key: int) -> bool:
        if key == Qt.Key.Key_Left:
            self.go_to(self.day - timedelta(days=1))
        elif key == Qt.Key.Key_Right:
            self.go_to(self.day + timedelta(days=1))
        elif key == Qt.Key.Key_T:
            self.go_today()
        elif key == Qt.Key.Key_PageUp:
            self.step(-1)
        elif key == Qt.Key.Key_PageDown:
            self.step(1)
        elif key == Qt.Key.Key_D:
            self.set_mode("day")
        elif key == Qt.Key.Key_W:
            self.set_mode("week")
        else:
            return False
        return True

    def keyPressEvent(self, event: QtGui.QKeyEvent) -> None:
        if not _calendar_key(event) or not self.handle_key(event.key()):
            super().keyPressEvent(event)


    # --- acting on it ------------------------------------------------------------------

    def _open(self, dialog: QDialog) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = dialog
        dialog.open()

    def _provider(self, provider_id: uuid.UUID) -> ProviderInfo | None:
        return next((p for p in self.people if p.id == provider_id), None)

    def open_booking(self, column: Column, slot: Slot) -> None:
        self._open(BookingDialog(self.desk, column.provider, slot, self))

    def open_appointment(self, booking: Booking) -> None:
        self._open(AppointmentDialog(self.desk, booking, self._provider(booking.provider_id),
                                     self))

    def move_appointment(self, booking: Booking, column: Column, slot: Slot) -> None:
        """A block dropped onto a free slot: reschedule it there."""
        desk, zone = self.desk, self.zone
        try:
            check_command("reschedule", status=booking.status, role=desk.session.role)
        except AppointmentError as exc:
            self.say(error_text(exc), error=True)
            return
        target = column.provider.id if column.provider.id != booking.provider_id else None

        def work() -> None:
            reschedule_offline(desk.engine, desk.clock, booking.id, role=desk.session.role,
                               zone=zone, start=slot.start, minutes=_minutes(slot),
                               provider_id=target)

        def moved(_: object) -> None:
            when = slot.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            self.say(tr("{patient} moved to {when} with {provider}.",
                        patient=booking.patient_name, when=when, provider=column.provider.name))

        desk.tasks.db.run(work, on_done=_announce(desk, lambda: APPOINTMENTS, self._alive(moved)),
                          on_error=self._alive(lambda exc: self.say(error_text(exc), error=True)))


def _error_label(name: str) -> QLabel:
    label = QLabel()
    label.setObjectName(name)
    label.setStyleSheet(ERROR_STYLE)
    label.setWordWrap(True)
    label.setVisible(False)
    return label


def _plain(text: str) -> QLabel:
    """A label that shows typed text as typed, never as markup."""
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def _set_text(label: QLabel, text: str) -> None:
    label.setText(text)
    label.setVisible(bool(text))


NEW_PATIENT_FIELDS = ("given_name", "family_name", "phone", "date_of_birth")
NEW_PATIENT_LABELS = {"given_name": "Given name", "family_name": "Family name",
                      "phone": "Phone", "date_of_birth": "Date of birth"}


class BookingDialog(QDialog):
    """Book a free slot: find the patient by typing, or register one in place, and say
    why they come. Saved on the database worker as a pending booking."""

    def __init__(self, desk: Desk, provider: ProviderInfo, slot: Slot,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.provider = provider
        self.slot = slot
        self.rows: list[Row[Any]] = []
        self.booked_id: uuid.UUID | None = None
        self._registered: uuid.UUID | None = None
        self._generation = 0
        self._alive = _Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("booking_dialog")
        self.setWindowTitle(tr("Book an appointment"))
        day = _qlocale().toString(_qdate(slot.start.astimezone(zone).date()), "dddd d MMMM yyyy")
        self.when = QLabel(f"<b>{html.escape(provider.name)}</b><br>{day}, "
                           f"{slot_text(slot, zone)} ({zone.key})")
        self.when.setObjectName("booking_when")
        self.search = QLineEdit()
        self.search.setObjectName("booking_search")
        self.search.setPlaceholderText(tr("Search by name, phone or record number"))
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setObjectName("booking_results")
        self.new_button = QPushButton(tr("New patient"))
        self.new_button.setObjectName("booking_new_patient")
        self.new_button.setCheckable(True)
        self.inputs: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        self.new_box = QWidget()
        form = QFormLayout(self.new_box)
        for name in NEW_PATIENT_FIELDS:
            box = QLineEdit()
            box.setObjectName(f"booking_{name}")
            if name == "date_of_birth":
                box.setPlaceholderText("YYYY-MM-DD")
            error = _error_label(f"booking_error_{name}")
            column = QVBoxLayout()
            column.addWidget(box)
            column.addWidget(error)
            form.addRow(tr(NEW_PATIENT_LABELS[name]), column)
            self.inputs[name], self.errors[name] = box, error
        self.new_box.setVisible(False)
        self.reason = QLineEdit()
        self.reason.setObjectName("booking_reason")
        self.reason.setPlaceholderText(tr("Reason for the visit (optional)"))
        self.reason.setMaxLength(500)
        self.error = _error_label("booking_error")
        buttons = QDialogButtonBox()
        self.book_button = buttons.addButton(tr("Book"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.book_button.setObjectName("booking_book")
        buttons.addButton(tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.book)
        buttons.rejected.connect(self.reject)
        finder = QHBoxLayout()
        finder.addWidget(self.search, 1)
        finder.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.when)
        layout.addLayout(finder)
        layout.addWidget(self.results)
        layout.addWidget(self.new_box)
        layout.addWidget(QLabel(tr("Reason")))
        layout.addWidget(self.reason)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(SEARCH_DELAY_MS)
        self.timer.timeout.connect(self.look_up)
        self.search.textChanged.connect(lambda _t: self.timer.start())
        self.new_button.toggled.connect(self._new_patient_mode)
        self.resize(460, 520)
        self.look_up()

    def look_up(self) -> None:
        self._generation += 1
        generation, text, engine = self._generation, self.search.text(), self.desk.engine
        self.desk.tasks.db.run(lambda: search_patients(engine, text),
                               on_done=self._alive(lambda rows: self._found(generation, rows)))

    def _found(self, generation: int, rows: list[Row[Any]]) -> None:
        if generation != self._generation:
            return
        self.rows = rows
        self.results.clear()
        for row in rows:
            details = " · ".join(str(v) for v in (row.phone, row.mrn) if v)
            self.results.addItem(QListWidgetItem(
                f"{row.family_name}, {row.given_name}" + (f"  ({details})" if details else "")))
        if len(rows) == 1:
            self.results.setCurrentRow(0)

    def _new_patient_mode(self, on: bool) -> None:
        self.new_box.setVisible(on)
        self.search.setEnabled(not on)
        self.results.setEnabled(not on)
        _set_text(self.error, "")

    def selected_patient(self) -> Row[Any] | None:
        index = self.results.currentRow()
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def show_problems(self, problems: dict[str, tuple[str, dict[str, object]]]) -> None:
        for name, label in self.errors.items():
            problem = problems.get(name)
            _set_text(label, tr(problem[0], **problem[1]) if problem else "")
        first = next((n for n in NEW_PATIENT_FIELDS if n in problems), None)
        if first is not None:
            self.inputs[first].setFocus()

    def book(self) -> None:
        _set_text(self.error, "")
        fields: dict[str, Any] | None = None
        patient_id: uuid.UUID | None = None
        if self.new_button.isChecked() and self._registered is None:
            typed = {name: box.text() for name, box in self.inputs.items()}
            problems: dict[str, tuple[str, dict[str, object]]] = {}
            try:
                fields = check_patient(typed, region=self.desk.clinic.country)
            except PatientInvalid as invalid:
                problems = dict(invalid.problems)
            if not typed["phone"].strip():
                problems.setdefault("phone", ("Required.", {}))  # the desk calls back on it
            self.show_problems(problems)
            if problems:
                return
        elif self.new_button.isChecked():
            patient_id = self._registered
        else:
            chosen = self.selected_patient()
            if chosen is None:
                _set_text(self.error, tr("Choose a patient, or add a new one."))
                return
            patient_id = chosen.id
        self.book_button.setEnabled(False)
        desk, provider, slot = self.desk, self.provider, self.slot
        zone, role, reason = desk.clinic.timezone, desk.session.role, self.reason.text()
        registered: list[uuid.UUID] = []

        def work() -> uuid.UUID:
            # Checked before a typed-in patient is registered, so a taken slot does not
            # leave a new patient behind without the booking they came for.
            check_booking(desk.engine, role=role, patient_id=patient_id,
                          provider_id=provider.id, start=slot.start, minutes=_minutes(slot),
                          zone=zone, reason=reason)
            who = patient_id
            if who is None:
                assert fields is not None
                who = register_patient(desk.engine, desk.clock,
                                       clinic_id=desk.session.clinic_id, fields=fields)
                registered.append(who)
            return book_slot_offline(desk.engine, desk.clock, role=role,
                                     clinic_id=desk.session.clinic_id, patient_id=who,
                                     provider_id=provider.id, start=slot.start,
                                     minutes=_minutes(slot), zone=zone, reason=reason)

        def touched() -> tuple[str, ...]:
            return ("appointment", "patient") if registered else APPOINTMENTS

        def failed(exc: BaseException) -> None:
            if registered:  # the patient was saved even though the booking was not
                desk.changed("patient")
            self._alive(lambda e: self._failed(e, registered))(exc)

        desk.tasks.db.run(work, on_done=_announce(desk, touched, self._alive(self._booked)),
                          on_error=failed)

    def _booked(self, appointment_id: uuid.UUID) -> None:
        self.booked_id = appointment_id
        self.accept()

    def _failed(self, exc: BaseException, registered: list[uuid.UUID]) -> None:
        if registered:  # the patient was saved: booking again must not register them twice
            self._registered = registered[0]
            for box in self.inputs.values():
                box.setEnabled(False)
        self.book_button.setEnabled(True)
        _set_text(self.error, error_text(exc))


class AppointmentDialog(QDialog):
    """What the front desk can do with one appointment: check in, no-show, reschedule,
    cancel. A command the appointment's state or the user's role does not allow is
    refused with the reason, before anything is written."""

    def __init__(self, desk: Desk, booking: Booking, provider: ProviderInfo | None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self.provider = provider
        self.sub_dialog: QDialog | None = None
        self._alive = _Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("appointment_dialog")
        self.setWindowTitle(tr("Appointment"))
        style = STATUS_STYLES[booking.status]
        day = _qlocale().toString(_qdate(booking.start.astimezone(zone).date()),
                                  "dddd d MMMM yyyy")
        self.summary = QLabel(
            f"<b>{html.escape(booking.patient_name)}</b><br>{day}, "
            f"{slot_text(Slot(booking.start, booking.end), zone)} ({zone.key})<br>"
            f"{html.escape(provider.name) if provider else ''}")
        self.status = QLabel(tr(style.label))
        self.status.setObjectName("appointment_status")
        self.status.setSizePolicy(QtWidgets.QSizePolicy.Policy.Maximum,
                                  QtWidgets.QSizePolicy.Policy.Preferred)
        self.status.setStyleSheet(f"background: {style.fill}; color: {style.text}; "
                                  f"border: 1px solid {style.border}; padding: 2px 8px")
        form = QFormLayout()
        form.addRow(tr("Status"), self.status)
        if booking.reason:
            form.addRow(tr("Reason"), _plain(booking.reason))
        if booking.cancel_reason:
            form.addRow(tr("Cancelled because"), _plain(booking.cancel_reason))
        self.note = QLabel()
        self.note.setWordWrap(True)
        if booking.status is S.PENDING:
            self.note.setText(tr("Waiting for the server to confirm this booking."))
        elif booking.status is S.REJECTED:
            self.note.setText(tr("The server refused this booking: the time was no longer "
                                 "free. Rebook it from Needs attention."))
        self.note.setVisible(bool(self.note.text()))
        self.check_in_button = QPushButton(tr("Check in"))
        self.check_in_button.setObjectName("appointment_check_in")
        self.no_show_button = QPushButton(tr("No-show"))
        self.no_show_button.setObjectName("appointment_no_show")
        self.reschedule_button = QPushButton(tr("Reschedule…"))
        self.reschedule_button.setObjectName("appointment_reschedule")
        self.cancel_button = QPushButton(tr("Cancel appointment…"))
        self.cancel_button.setObjectName("appointment_cancel")
        self.payment_button = QPushButton(tr("Take payment…"))
        self.payment_button.setObjectName("appointment_payment")
        # Money is the front desk's: doctors and others never see the action.
        self.payment_button.setVisible(desk.session.role in CASHIERS
                                       and booking.status in PAYABLE)
        self.payment_button.clicked.connect(self.take_payment)
        self.close_button = QPushButton(tr("Close"))
        self.close_button.setObjectName("appointment_close")
        self.error = _error_label("appointment_error")
        commands = {"check_in": self.check_in_button, "no_show": self.no_show_button,
                    "reschedule": self.reschedule_button, "cancel": self.cancel_button}
        for command, button in commands.items():
            button.clicked.connect(lambda _c=False, c=command: self.run(c))
            try:
                check_command(command, status=booking.status, role=desk.session.role)
            except AppointmentError as exc:
                button.setToolTip(error_text(exc))
        self.close_button.clicked.connect(self.reject)
        actions = QHBoxLayout()
        for button in (*commands.values(), self.payment_button, self.close_button):
            actions.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.error)
        layout.addLayout(actions)

    def run(self, command: str) -> None:
        _set_text(self.error, "")
        desk, booking = self.desk, self.booking
        try:
            check_command(command, status=booking.status, role=desk.session.role)
        except AppointmentError as exc:
            _set_text(self.error, error_text(exc))
            return
        if command == "cancel":
            self._open(CancelDialog(desk, booking, self))
            return
        if command == "reschedule":
            self._open(RescheduleDialog(desk, booking, self))
            return
        operation = check_in_offline if command == "check_in" else no_show_offline
        for button in (self.check_in_button, self.no_show_button):
            button.setEnabled(False)

        def work() -> None:
            operation(desk.engine, desk.clock, booking.id, role=desk.session.role)

        desk.tasks.db.run(work, on_done=_announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _open(self, dialog: QDialog) -> None:
        self.sub_dialog = dialog
        dialog.accepted.connect(self.accept)
        dialog.open()

    def take_payment(self) -> None:
        desk, appointment_id = self.desk, self.booking.id

        def work() -> Any:
            with desk.engine.connect() as conn:
                return conn.execute(select(appointment).where(
                    appointment.c.id == appointment_id)).one()
        desk.tasks.db.run(work, on_done=self._alive(
            lambda row: self._open(PaymentDialog(desk, row, self))),
            on_error=self._alive(self._failed))

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        for button in (self.check_in_button, self.no_show_button):
            button.setEnabled(True)
        _set_text(self.error, error_text(exc))


class CancelDialog(QDialog):
    """Cancelling asks why: the clinic keeps the reason with the appointment."""

    def __init__(self, desk: Desk, booking: Booking, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self._alive = _Alive(self)
        self.setObjectName("cancel_dialog")
        self.setWindowTitle(tr("Cancel appointment"))
        self.reason = QLineEdit()
        self.reason.setObjectName("cancel_reason")
        self.reason.setPlaceholderText(tr("Why is it cancelled?"))
        self.error = _error_label("cancel_error")
        buttons = QDialogButtonBox()
        self.confirm_button = buttons.addButton(tr("Cancel appointment"),
                                                QDialogButtonBox.ButtonRole.AcceptRole)
        self.confirm_button.setObjectName("cancel_confirm")
        buttons.addButton(tr("Back"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.confirm)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("Reason")))
        layout.addWidget(self.reason)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def confirm(self) -> None:
        try:
            reason = check_cancel_reason(self.reason.text())
        except AppointmentError as exc:
            _set_text(self.error, error_text(exc))
            self.reason.setFocus()
            return
        _set_text(self.error, "")
        self.confirm_button.setEnabled(False)
        desk, booking = self.desk, self.booking

        def work() -> None:
            cancel_offline(desk.engine, desk.clock, booking.id, role=desk.session.role,
                           reason=reason)

        desk.tasks.db.run(work, on_done=_announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.confirm_button.setEnabled(True)
        _set_text(self.error, error_text(exc))


class RescheduleDialog(QDialog):
    """Move an appointment to another free time of the same provider: pick a day, then
    one of its free slots."""

    def __init__(self, desk: Desk, booking: Booking, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.booking = booking
        self.slots: list[Slot] = []
        self._generation = 0
        self._alive = _Alive(self)
        zone = desk.clinic.timezone
        self.setObjectName("reschedule_dialog")
        self.setWindowTitle(tr("Reschedule"))
        today = datetime.now(UTC).astimezone(zone).date()
        self.date = QDateEdit(_qdate(max(today, booking.start.astimezone(zone).date())))
        self.date.setObjectName("reschedule_date")
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        self.date.setMinimumDate(_qdate(today))
        self.list = QListWidget()
        self.list.setObjectName("reschedule_slots")
        self.empty = QLabel(tr("No free times on this day."))
        self.empty.setObjectName("reschedule_empty")
        self.empty.setVisible(False)
        self.error = _error_label("reschedule_error")
        buttons = QDialogButtonBox()
        self.move_button = buttons.addButton(tr("Move here"),
                                             QDialogButtonBox.ButtonRole.AcceptRole)
        self.move_button.setObjectName("reschedule_move")
        buttons.addButton(tr("Back"), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.move_here)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(tr("Day")))
        layout.addWidget(self.date)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.date.dateChanged.connect(lambda _d: self.load())
        self.list.itemDoubleClicked.connect(lambda _i: self.move_here())
        self.load()

    def chosen_day(self) -> date:
        picked: date = self.date.date().toPython()  # type: ignore[assignment]
        return picked

    def load(self) -> None:
        self._generation += 1
        generation, desk, booking, day = (self._generation, self.desk, self.booking,
                                          self.chosen_day())
        self.desk.tasks.db.run(
            lambda: provider_free_slots(desk.engine, provider_id=booking.provider_id, day=day,
                                        zone=desk.clinic.timezone,
                                        ignore_appointment=booking.id),
            on_done=self._alive(lambda slots: self._loaded(generation, slots)),
            on_error=self._alive(lambda exc: _set_text(self.error, error_text(exc))))

    def _loaded(self, generation: int, slots: list[Slot]) -> None:
        if generation != self._generation:
            return
        zone = self.desk.clinic.timezone
        self.slots = [s for s in slots if (s.start, s.end)
                      != (self.booking.start, self.booking.end)]
        self.list.clear()
        for slot in self.slots:
            self.list.addItem(slot_text(slot, zone))
        self.empty.setVisible(not self.slots)

    def move_here(self) -> None:
        index = self.list.currentRow()
        if not 0 <= index < len(self.slots):
            _set_text(self.error, tr("Choose one of the free times."))
            return
        _set_text(self.error, "")
        slot, desk, booking = self.slots[index], self.desk, self.booking
        self.move_button.setEnabled(False)

        def work() -> None:
            reschedule_offline(desk.engine, desk.clock, booking.id, role=desk.session.role,
                               zone=desk.clinic.timezone, start=slot.start,
                               minutes=_minutes(slot))

        desk.tasks.db.run(work, on_done=_announce(desk, lambda: APPOINTMENTS,
                                                  self._alive(self._done)),
                          on_error=self._alive(self._failed))

    def _done(self, _: object) -> None:
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self.move_button.setEnabled(True)
        _set_text(self.error, error_text(exc))

