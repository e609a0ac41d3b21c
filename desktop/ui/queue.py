"""The doctor's day: today's patients in the order they are to be seen (who is waiting
first, with how long they have waited), and a search over the patients on this computer
for anyone not on the list. Choosing a patient asks for their chart."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from desktop.operations.chart import QueueEntry, doctor_queue
from desktop.store.search import search_patients
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QBrush,
    QColor,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.clock import Hlc

REFRESH_MS = 60_000
SEARCH_DELAY_MS = 150
SEARCH_LIMIT = 30
QUEUE_ENTITIES = frozenset({"appointment", "patient", "provider"})
STATUS_WORDS = {"checked_in": "Checked in", "in_progress": "In consultation",
                "booked": "Booked", "pending": "Pending", "completed": "Seen"}
STATUS_COLOURS = {"checked_in": "#00695C", "in_progress": "#6A1B9A", "completed": "#757575"}
WAITING = frozenset({"checked_in"})


def patient_name(person: Mapping[str, Any]) -> str:
    family, given = person.get("family_name"), person.get("given_name")
    if not family and not given:
        return tr("Patient not on this computer yet")
    return f"{family}, {given}" if family and given else str(family or given)


def arrived_at(visit: Mapping[str, Any], now: datetime) -> datetime | None:
    """When the patient was checked in: the stamp of the last write of the status. A
    check-in made on this computer and not yet synced has no stamp of its own; then the
    time is unknown rather than guessed."""
    stamp = (visit.get("field_stamps") or {}).get("status")
    if not stamp:
        return None
    try:
        at = datetime.fromtimestamp(Hlc.parse(stamp).wall_ms / 1000, UTC)
    except ValueError:
        return None
    # A stamp from before today belongs to the booking, not the arrival.
    if at > now or (now - at).total_seconds() > 16 * 3600:
        return None
    return at


def wait_text(minutes: int) -> str:
    if minutes < 60:
        return tr("waiting {n} min", n=minutes)
    return tr("waiting {h} h {m} min", h=minutes // 60, m=minutes % 60)


class QueueView(QWidget):
    """Today's queue over a search box. `patient_chosen` carries the patient's id and the
    appointment it was chosen from (None when found by the search)."""

    patient_chosen = Signal(object, object)

    def __init__(self, desk: Desk, parent: QWidget | None = None, *,
                 now: Callable[[], datetime] | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.now = now or (lambda: datetime.now(UTC))
        self.entries: list[QueueEntry] = []
        self.found: list[Any] = []
        self._generation = 0
        self._search_generation = 0
        self.title = QLabel()
        self.title.setObjectName("queue_title")
        self.title.setStyleSheet("font-weight: bold; font-size: 14px")
        self.search = QLineEdit()
        self.search.setObjectName("queue_search")
        self.search.setClearButtonEnabled(True)
        self.results = QListWidget()
        self.results.setObjectName("queue_search_results")
        self.results.setVisible(False)
        self.list = QListWidget()
        self.list.setObjectName("queue_list")
        self.list.setAlternatingRowColors(True)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QLabel()
        self.empty.setObjectName("queue_empty")
        self.empty.setWordWrap(True)
        self.empty.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.title)
        layout.addWidget(self.list, 3)
        layout.addWidget(self.empty)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)  # wait times move, and the day turns
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.search_timer = QTimer(self)
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(SEARCH_DELAY_MS)
        self.search_timer.timeout.connect(self.run_search)
        self.search.textChanged.connect(lambda _t: self.search_timer.start())
        self.search.returnPressed.connect(self.run_search)
        self.list.itemActivated.connect(self._queue_chosen)
        self.list.itemClicked.connect(self._queue_chosen)
        self.results.itemActivated.connect(self._found_chosen)
        self.results.itemClicked.connect(self._found_chosen)
        desk.data_changed.connect(self._on_data_changed)
        i18n.language_changed.connect(self.retranslate)
        self.retranslate()
        self.refresh()

    # --- the queue ---------------------------------------------------------------------

    def refresh(self) -> None:
        self._generation += 1
        generation, desk = self._generation, self.desk
        day = self.now().astimezone(desk.clinic.timezone).date()
        user_id, zone = desk.session.user_id, desk.clinic.timezone

        def work() -> list[QueueEntry]:
            return doctor_queue(desk.engine, user_id=user_id, day=day, tz=zone)
        desk.tasks.db.run(work, on_done=lambda found: self._show(generation, found),
                          owner=self)

    def _show(self, generation: int, entries: list[QueueEntry]) -> None:
        if generation != self._generation:
            return  # an older read answering after a newer one
        selected = self.selected_appointment()
        self.entries = entries
        self.list.clear()
        zone, now = self.desk.clinic.timezone, self.now()
        for entry in entries:
            item = QListWidgetItem(self._entry_text(entry, now, zone))
            item.setData(Qt.ItemDataRole.UserRole, entry.appointment["id"])
            colour = STATUS_COLOURS.get(entry.status)
            if colour:
                item.setForeground(QBrush(QColor(colour)))
            self.list.addItem(item)
            if entry.appointment["id"] == selected:
                self.list.setCurrentItem(item)
        self.empty.setVisible(not entries)

    def _entry_text(self, entry: QueueEntry, now: datetime, zone: Any) -> str:
        when = entry.starts_at.astimezone(zone).strftime("%H:%M")
        status = tr(STATUS_WORDS.get(entry.status, entry.status))
        if entry.status in WAITING:
            arrived = arrived_at(entry.appointment, now)
            if arrived is not None:
                status = f"{status} · {wait_text(int((now - arrived).total_seconds() // 60))}"
        reason = entry.appointment.get("reason")
        line = f"{when}  {patient_name(entry.patient)}"
        return f"{line}\n{status}" + (f" · {reason}" if reason else "")

    def selected_appointment(self) -> uuid.UUID | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _queue_chosen(self, item: QListWidgetItem) -> None:
        appointment_id = item.data(Qt.ItemDataRole.UserRole)
        entry = next((e for e in self.entries if e.appointment["id"] == appointment_id), None)
        if entry is not None:
            self.patient_chosen.emit(entry.appointment["patient_id"], appointment_id)

    # --- finding anyone else -------------------------------------------------------------

    def run_search(self) -> None:
        text = self.search.text().strip()
        self._search_generation += 1
        generation, engine = self._search_generation, self.desk.engine
        if not text:
            self.found = []
            self.results.clear()
            self.results.setVisible(False)
            return
        self.desk.tasks.db.run(lambda: search_patients(engine, text, limit=SEARCH_LIMIT),
                               on_done=lambda rows: self._show_found(generation, rows),
                               owner=self)

    def _show_found(self, generation: int, rows: list[Any]) -> None:
        if generation != self._search_generation:
            return
        self.found = rows
        self.results.clear()
        for row in rows:
            born = f" · {row.date_of_birth}" if row.date_of_birth else ""
            item = QListWidgetItem(f"{row.family_name}, {row.given_name} · {row.mrn}{born}")
            item.setData(Qt.ItemDataRole.UserRole, row.id)
            self.results.addItem(item)
        if not rows:
            item = QListWidgetItem(tr("No patient matches."))
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.results.addItem(item)
        self.results.setVisible(True)

    def _found_chosen(self, item: QListWidgetItem) -> None:
        patient_id = item.data(Qt.ItemDataRole.UserRole)
        if patient_id is not None:
            self.patient_chosen.emit(patient_id, None)

    # --- keeping up --------------------------------------------------------------------

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if entities & QUEUE_ENTITIES:
            self.refresh()
            if self.search.text().strip():
                self.run_search()

    def retranslate(self) -> None:
        self.title.setText(tr("Today's patients"))
        self.search.setPlaceholderText(tr("Find a patient by name, phone or record number"))
        self.empty.setText(tr("No appointments with you today."))
        if self.entries:
            self._show(self._generation, self.entries)
