"""The front desk's calendar: a day with the providers side by side, or one provider's
week, on a time axis in the clinic's zone; appointments as blocks coloured by status and
free slots as light cells, with a small check on those the patient confirmed (by replying
to a reminder). A click on a free slot books it, a click on an appointment offers what can
be done with it (desktop.ui.booking, desktop.ui.appointment_dialogs), and a block dragged
onto a free slot moves it.

Everything shown comes from the database worker (desktop.operations.schedule); the grid
only paints what it was given, from positions worked out once per load or resize, so a
day of ten providers with forty appointments each paints without a wait.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from desktop.operations.appointments import AppointmentError, check_command, reschedule_offline
from desktop.operations.schedule import (
    Booking,
    Column,
    DayView,
    ProviderInfo,
    WeekView,
    day_view,
    providers,
    week_days,
    week_view,
)
from desktop.ui.appointment_dialogs import AppointmentDialog
from desktop.ui.booking import BookingDialog
from desktop.ui.calendar_common import (
    APPOINTMENTS,
    ERROR_STYLE,
    STATUS_STYLES,
    Alive,
    announce,
    clock_text,
    error_text,
    qdate,
    qlocale,
    slot_minutes,
)
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QApplication,
    QColor,
    QComboBox,
    QDialog,
    QEvent,
    QHBoxLayout,
    QHelpEvent,
    QLabel,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPoint,
    QPushButton,
    QRect,
    Qt,
    QtGui,
    QTimer,
    QToolTip,
    QtWidgets,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.enums import AppointmentStatus
from shared_models.scheduling import TRANSITIONS, Slot

S = AppointmentStatus
AXIS_WIDTH = 60
HEADER_HEIGHT = 44
HOUR_HEIGHT = 72
MIN_COLUMN_WIDTH = 120
# The hours shown when nothing falls outside them (wall clock, clinic zone).
DEFAULT_HOURS = (8, 19)
NOW_LINE_REFRESH_MS = 30_000
FREE_FILL, FREE_BORDER, FREE_TEXT = "#F3F8FE", "#A9CBEE", "#5A7FA8"
NOW_COLOUR = "#E53935"
# The patient confirmed: a white check on a green disc in the block's top right corner.
CONFIRMED_COLOUR = "#2E7D32"
CONFIRMED_MARK = 16
# Given up bookings: drawn as a narrow tab on the right of their column, so the free
# slot they no longer hold stays visible and clickable beside them.
WITHDRAWN = frozenset({S.CANCELLED, S.REJECTED})
WITHDRAWN_SHARE = 0.4


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
    mark: QRect | None = None  # where the patient's confirmation is drawn


def shows_confirmed(booking: Booking) -> bool:
    """Whether the block carries the patient's confirmation (not on a given-up one)."""
    return booking.confirmed_at is not None and booking.status not in WITHDRAWN


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
                                  slot=slot, lines=[clock_text(slot.start, self.zone)]))
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
                    mark = None
                    if shows_confirmed(booking):
                        mark = QRect(rect.left() + 4 + text_width - CONFIRMED_MARK,
                                     rect.top() + 3, CONFIRMED_MARK, CONFIRMED_MARK)
                        text_width -= CONFIRMED_MARK + 4
                    items.append(Item(rect, index, booking=booking, mark=mark,
                                      lines=self._lines(booking, rect, text_width, metrics)))
            self.items.append(items)
        self.update()

    def _lines(self, booking: Booking, rect: QRect, width: int,
               metrics: QtGui.QFontMetrics) -> list[str]:
        style = STATUS_STYLES[booking.status]
        texts = [f"{clock_text(booking.start, self.zone)} {booking.patient_name}"]
        detail = tr(style.label)
        if booking.reason:
            detail += f" · {booking.reason}"
        texts.append(detail)
        fits = max(1, (rect.height() - 4) // metrics.height())
        elide = Qt.TextElideMode.ElideRight
        return [metrics.elidedText(t, elide, max(width, 10)) for t in texts[:fits]]

    def tooltip(self, item: Item | None) -> str:
        """What hovering an appointment block tells: time, patient, status, reason and
        whether the patient confirmed."""
        if item is None or item.booking is None:
            return ""
        booking = item.booking
        lines = [f"{clock_text(booking.start, self.zone)}–{clock_text(booking.end, self.zone)}"
                 f" {booking.patient_name}", tr(STATUS_STYLES[booking.status].label)]
        if booking.reason:
            lines.append(booking.reason)
        if booking.confirmed_at is not None:
            local = booking.confirmed_at.astimezone(self.zone)
            lines.append(tr("✓ Confirmed by the patient on {day} at {time}",
                            day=qlocale().toString(qdate(local.date()), "d MMM"),
                            time=f"{local:%H:%M}"))
        return "\n".join(lines)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip(self.item_at(event.pos()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().event(event)

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
        if item.mark is not None:
            painter.setPen(QPen(QColor("#FFFFFF"), 1))
            painter.setBrush(QColor(CONFIRMED_COLOUR))
            painter.drawEllipse(item.mark)
            painter.drawText(item.mark, int(Qt.AlignmentFlag.AlignCenter), "✓")

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
        locale = qlocale()
        return [(locale.toString(qdate(c.day), "ddd d"), locale.toString(qdate(c.day), "MMM"))
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
        self._alive = Alive(self)

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
        confirmed = QLabel(f"✓ {tr('Confirmed by the patient')}")
        confirmed.setObjectName("legend_confirmed")
        confirmed.setStyleSheet(f"background: #FFFFFF; color: {CONFIRMED_COLOUR}; "
                                f"border: 1px solid {CONFIRMED_COLOUR}; border-radius: 3px; "
                                "padding: 1px 6px")
        row.addWidget(confirmed)
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
                               on_done=lambda r: self._show(generation, r),
                               on_error=self._load_failed, owner=self)

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
        locale = qlocale()
        if self.mode == "day":
            text = locale.toString(qdate(self.day), "dddd d MMMM yyyy")
        else:
            days = week_days(self.day)
            text = (f"{locale.toString(qdate(days[0]), 'd MMM')} – "
                    f"{locale.toString(qdate(days[-1]), 'd MMM yyyy')}")
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
                               zone=zone, start=slot.start, minutes=slot_minutes(slot),
                               provider_id=target)

        def moved(_: object) -> None:
            when = slot.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            self.say(tr("{patient} moved to {when} with {provider}.",
                        patient=booking.patient_name, when=when, provider=column.provider.name))

        desk.tasks.db.run(work, on_done=announce(desk, lambda: APPOINTMENTS, self._alive(moved)),
                          on_error=self._alive(lambda exc: self.say(error_text(exc), error=True)))
