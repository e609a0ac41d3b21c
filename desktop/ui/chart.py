"""A patient's chart as the doctor works with it: who the patient is, a red banner of
their allergies, their conditions, medications and latest vital signs (each list with
add, edit and remove), and the timeline of notes (addenda under their note),
prescriptions and lab orders with results (values out of range in bold red with their
flag).

The chart paints what `load_summary` returns (the newest entries) as soon as it is read
and adds the rest of the history from `load_timeline` afterwards, both on the database
worker. Opening a chart is recorded once, for the audit log, even offline.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select

from desktop.operations.chart import (
    NOT_ACCEPTED,
    ChartSummary,
    TimelineEntry,
    load_summary,
    load_timeline,
    record_chart_read,
)
from desktop.operations.notes import start_note
from desktop.ui import i18n
from desktop.ui.chart_records import (
    ENTITIES,
    GREY,
    TITLES,
    RecordDialog,
    error_message,
    is_current,
    record_text,
    remove_entry,
    show_error,
    staff_names,
)
from desktop.ui.desk import Desk
from desktop.ui.i18n import language, tr
from desktop.ui.lab_order_dialog import LabOrderDialog, test_name
from desktop.ui.note_editor import NoteEditor
from desktop.ui.qt import (
    QBrush,
    QColor,
    QFont,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    Qt,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models import lab_tests
from shared_models.tables import pharmacy

CHART_ENTITIES = frozenset({"patient", "allergy", "condition", "medication", "vital_signs",
                            "clinical_note", "prescription", "prescription_item", "lab_order",
                            "lab_result", "pharmacy", "provider"})
TIME_FORMAT = "%Y-%m-%d %H:%M"
ABNORMAL_COLOUR = "#C62828"
DRAFT_COLOUR = "#8D6E00"
BANNER_STYLES = {
    "allergic": "background: #C62828; color: white; font-weight: bold; padding: 6px",
    "none": "background: #E8F5E9; color: #1B5E20; padding: 6px",
    "unknown": "background: #FFF8E1; color: #6D4C00; padding: 6px",
}
# The short flag a lab report prints beside a value out of range.
FLAG_LETTERS = {"low": "L", "high": "H", "critical_low": "LL", "critical_high": "HH",
                "abnormal": "A"}
SEX_WORDS = {"female": "Female", "male": "Male", "other": "Other sex",
             "unknown": "Sex not recorded"}
LAB_STATUS = {"ordered": "Ordered", "sample_received": "Sample received",
              "processing": "Processing", "completed": "Results in",
              "cancelled": "Cancelled"}
ROLE = Qt.ItemDataRole.UserRole
STATUS_WIDTH = 250


@dataclass(frozen=True)
class Names:
    """Who wrote what (staff by user id) and where prescriptions went (by pharmacy id)."""

    staff: dict[uuid.UUID, str]
    pharmacies: dict[uuid.UUID, str]


def _names(engine: Engine, entries: Sequence[TimelineEntry]) -> Names:
    authors: set[uuid.UUID] = set()
    places: set[uuid.UUID] = set()
    for entry in entries:
        if entry.author_id is not None:
            authors.add(entry.author_id)
        if entry.kind == "note":
            authors |= {child["author_id"] for child in entry.children}
        elif entry.kind == "prescription" and entry.record.get("pharmacy_id"):
            places.add(entry.record["pharmacy_id"])
    with engine.connect() as conn:
        staff = staff_names(conn, authors)
        found = conn.execute(select(pharmacy.c.id, pharmacy.c.name)
                             .where(pharmacy.c.id.in_(places))) if places else []
        return Names(staff, {row.id: row.name for row in found})


def first_paint(engine: Engine, patient_id: uuid.UUID, viewer_id: uuid.UUID
                ) -> tuple[ChartSummary, Names]:
    summary = load_summary(engine, patient_id, viewer_id=viewer_id)
    return summary, _names(engine, summary.recent)


def whole_timeline(engine: Engine, patient_id: uuid.UUID, viewer_id: uuid.UUID
                   ) -> tuple[list[TimelineEntry], Names]:
    entries = load_timeline(engine, patient_id, viewer_id=viewer_id)
    return entries, _names(engine, entries)


# --- how the chart reads ------------------------------------------------------------------


def age_text(born: date | None, today: date) -> str:
    if born is None:
        return tr("Age not recorded")
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if years >= 2:
        return tr("{n} years", n=years)
    months = (today.year - born.year) * 12 + today.month - born.month - (today.day < born.day)
    return tr("{n} months", n=max(0, months))


def full_name(person: Mapping[str, Any]) -> str:
    return f"{person.get('family_name', '')}, {person.get('given_name', '')}".strip(", ")


def banner(allergies: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """(text, state) of the allergy banner: the active allergies; "no known allergies"
    when every recorded one has resolved; "not recorded" when none was ever recorded."""
    active = [a for a in allergies if a.get("status") == "active"]
    if active:
        names = ", ".join(
            str(a["substance"]) + (f" ({tr(a['severity'])})" if a.get("severity")
                                   in ("mild", "moderate", "severe") else "")
            for a in active)
        return tr("Allergies: {names}", names=names), "allergic"
    if allergies:
        return tr("No known allergies"), "none"
    return tr("Allergies not recorded"), "unknown"


def result_text(result: Mapping[str, Any]) -> str:
    try:
        part = lab_tests.analyte(result["test_code"], result["analyte"])
        name = part.name_es if language() == "es" else part.name_en
    except lab_tests.UnknownTestError:
        name = str(result["analyte"])
    value = f"{result['value']} {result.get('unit') or ''}".strip()
    low, high = result.get("ref_low"), result.get("ref_high")
    if low is not None and high is not None:
        reference = f"{low:g}–{high:g}"
    elif low is not None:
        reference = f"≥ {low:g}"
    elif high is not None:
        reference = f"≤ {high:g}"
    else:
        reference = result.get("ref_text") or ""
    return f"{name}: {value}" + (f" ({reference})" if reference else "")


def prescription_status(record: Mapping[str, Any], pharmacies: Mapping[uuid.UUID, str]
                        ) -> str:
    status = record["status"]
    place = pharmacies.get(record.get("pharmacy_id"), tr("the pharmacy"))
    reason = record.get("status_reason")
    if status == "sent":
        return tr("Sent to {pharmacy}", pharmacy=place)
    if status == "received":
        return tr("Received by {pharmacy}", pharmacy=place)
    if status == "dispensed":
        return tr("Dispensed by {pharmacy}", pharmacy=place)
    if status == "refused":
        return tr("Refused ({reason})", reason=reason) if reason else tr("Refused")
    if status == "cancelled":
        return tr("Cancelled ({reason})", reason=reason) if reason else tr("Cancelled")
    if status == NOT_ACCEPTED:
        return tr("Not accepted by the server: {reason} Correct it and sign again.",
                  reason=reason or "")
    return tr("Signed")


def item_text(item: Mapping[str, Any]) -> str:
    parts = [f"{item['medicine_name']} {item['strength']} {item['form']}",
             f"{item['dose']} {item['route']} {item['frequency']}"]
    if item.get("duration_days"):
        parts.append(tr("{n} days", n=item["duration_days"]))
    parts.append(tr("quantity {n}", n=item["quantity"]))
    if item.get("refills"):
        parts.append(tr("{n} refills", n=item["refills"]))
    if item.get("instructions"):
        parts.append(str(item["instructions"]))
    return " · ".join(parts)


def _first_line(body: str) -> str:
    return next((line.strip() for line in body.splitlines() if line.strip()), "")


class ChartView(QWidget):
    """One patient's chart at a time (`open_patient`); empty until one is chosen."""

    # The first paint is on screen; then the whole history is.
    loaded = Signal()
    timeline_loaded = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None, *,
                 today: Callable[[], date] | None = None) -> None:
        super().__init__(parent)
        self.desk = desk
        self.today = today or (lambda: datetime.now(UTC).astimezone(desk.clinic.timezone)
                               .date())
        self.patient_id: uuid.UUID | None = None
        self.appointment_id: uuid.UUID | None = None
        self.summary: ChartSummary | None = None
        self.entries: list[TimelineEntry] = []
        self.names = Names({}, {})
        self.complete = False
        self.notes: dict[uuid.UUID, Mapping[str, Any]] = {}
        self.lists: dict[str, list[Mapping[str, Any]]] = {e: [] for e in ENTITIES}
        self.dialog: Any = None  # the dialog this chart opened last (tests look at it)
        self.editors: dict[uuid.UUID, NoteEditor] = {}
        self._generation = 0
        self.setObjectName("chart")

        self.placeholder = QLabel()
        self.placeholder.setObjectName("chart_placeholder")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setStyleSheet(f"color: {GREY}; font-size: 14px")
        self.page = QWidget()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.page)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        self.name = QLabel()
        self.name.setObjectName("chart_name")
        self.name.setTextFormat(Qt.TextFormat.PlainText)
        self.name.setStyleSheet("font-size: 18px; font-weight: bold")
        self.details = QLabel()
        self.details.setObjectName("chart_details")
        self.banner = QLabel()
        self.banner.setObjectName("allergy_banner")
        self.banner.setTextFormat(Qt.TextFormat.PlainText)
        self.banner.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for key, handler in (("new_note", self.new_note), ("add_addendum", self.add_addendum),
                             ("prescribe", self.prescribe), ("order_tests", self.order_tests)):
            button = QPushButton()
            button.setObjectName(key)
            button.clicked.connect(handler)
            actions.addWidget(button)
            self.buttons[key] = button
        actions.addStretch(1)
        self.buttons["add_addendum"].setEnabled(False)

        self.timeline = QTreeWidget()
        self.timeline.setObjectName("timeline")
        self.timeline.setColumnCount(3)
        self.timeline.setUniformRowHeights(False)
        self.timeline.setWordWrap(True)
        header = self.timeline.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        # A long status ("Dispensed by <pharmacy>") is cut rather than squeezing the entry.
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.timeline.setColumnWidth(2, STATUS_WIDTH)
        self.more = QLabel()
        self.more.setObjectName("timeline_more")
        self.more.setStyleSheet(f"color: {GREY}")
        self.more.setVisible(False)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("entry_detail")
        self.detail.setReadOnly(True)
        timeline_side = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.timeline, 1)
        top_layout.addWidget(self.more)
        timeline_side.addWidget(top)
        timeline_side.addWidget(self.detail)
        timeline_side.setStretchFactor(0, 3)
        timeline_side.setStretchFactor(1, 1)

        self.panels: dict[str, QGroupBox] = {}
        self.record_lists: dict[str, QListWidget] = {}
        self.record_buttons: dict[str, dict[str, QPushButton]] = {}
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        for entity in ENTITIES:
            side_layout.addWidget(self._panel(entity))
        side_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)
        body = QSplitter()
        body.addWidget(timeline_side)
        body.addWidget(scroll)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 1)
        body.setSizes([700, 340])

        layout = QVBoxLayout(self.page)
        layout.setContentsMargins(6, 0, 0, 0)
        layout.addWidget(self.name)
        layout.addWidget(self.details)
        layout.addWidget(self.banner)
        layout.addLayout(actions)
        layout.addWidget(body, 1)

        self.timeline.itemSelectionChanged.connect(self._selected)
        self.timeline.itemDoubleClicked.connect(lambda item, _c: self._open_item(item))
        desk.data_changed.connect(self._on_data_changed)
        i18n.language_changed.connect(self.retranslate)
        self.retranslate()

    def _panel(self, entity: str) -> QGroupBox:
        box = QGroupBox()
        box.setObjectName(f"panel_{entity}")
        entries = QListWidget()
        entries.setObjectName(f"list_{entity}")
        entries.setWordWrap(True)
        entries.setMaximumHeight(120)
        buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for action in ("add", "edit", "remove"):
            button = QPushButton()
            button.setObjectName(f"{action}_{entity}")
            button.setEnabled(action == "add")
            row.addWidget(button)
            buttons[action] = button
        row.addStretch(1)
        buttons["add"].clicked.connect(lambda _c=False, e=entity: self.add_record(e))
        buttons["edit"].clicked.connect(lambda _c=False, e=entity: self.edit_record(e))
        buttons["remove"].clicked.connect(lambda _c=False, e=entity: self.remove_record(e))
        entries.itemDoubleClicked.connect(lambda _i, e=entity: self.edit_record(e))
        entries.currentRowChanged.connect(
            lambda r, e=entity: self._record_selected(e, r))
        layout = QVBoxLayout(box)
        layout.addWidget(entries)
        layout.addLayout(row)
        self.panels[entity] = box
        self.record_lists[entity] = entries
        self.record_buttons[entity] = buttons
        return box

    # --- opening and reading --------------------------------------------------------------

    def open_patient(self, patient_id: uuid.UUID, appointment_id: uuid.UUID | None = None
                     ) -> None:
        self.appointment_id = appointment_id
        if patient_id == self.patient_id:
            return  # already open: not a second read
        self.patient_id = patient_id
        self.summary, self.entries, self.complete = None, [], False
        self.stack.setCurrentWidget(self.page)
        self.name.setText(tr("Loading…"))
        self.details.clear()
        self.banner.clear()
        self.timeline.clear()
        self.detail.clear()
        for entries in self.record_lists.values():
            entries.clear()
        desk = self.desk
        desk.tasks.db.run(lambda: record_chart_read(desk.engine, desk.clock, patient_id),
                          on_done=lambda _r: desk.changed("chart"), owner=self)
        self.reload()

    def reload(self) -> None:
        if self.patient_id is None:
            return
        self._generation += 1
        generation, patient_id, desk = self._generation, self.patient_id, self.desk
        viewer = desk.session.user_id
        desk.tasks.db.run(lambda: first_paint(desk.engine, patient_id, viewer),
                          on_done=lambda found: self._painted(generation, found),
                          on_error=lambda exc: self._failed(generation, exc), owner=self)

    def _painted(self, generation: int, found: tuple[ChartSummary, Names]) -> None:
        if generation != self._generation:
            return  # another patient, or a newer read
        summary, names = found
        self.summary, self.names = summary, names
        needs_whole = summary.total_entries > len(summary.recent)
        if not (needs_whole and self.complete):
            # A refresh keeps the whole history on screen until the new one is read.
            self.entries = list(summary.recent)
            self.complete = not needs_whole
        self._paint_all()
        self.loaded.emit()
        if not needs_whole:
            self.timeline_loaded.emit()
            return
        patient_id, desk, viewer = self.patient_id, self.desk, self.desk.session.user_id
        assert patient_id is not None
        desk.tasks.db.run(lambda: whole_timeline(desk.engine, patient_id, viewer),
                          on_done=lambda whole: self._completed(generation, whole),
                          on_error=lambda exc: self._failed(generation, exc), owner=self)

    def _completed(self, generation: int, whole: tuple[list[TimelineEntry], Names]) -> None:
        if generation != self._generation:
            return
        entries, names = whole
        shown = [e.id for e in self.entries]
        self.names = Names({**self.names.staff, **names.staff},
                           {**self.names.pharmacies, **names.pharmacies})
        if [e.id for e in entries[:len(shown)]] == shown:
            for entry in entries[len(shown):]:  # the older history goes under what is shown
                self.timeline.addTopLevelItem(self._entry_item(entry))
            self.entries = entries
            self.timeline.expandAll()
        else:
            self.entries = entries
            self._paint_timeline()
        self.complete = True
        self.more.setVisible(False)
        self.timeline_loaded.emit()

    def _failed(self, generation: int, exc: BaseException) -> None:
        if generation != self._generation:
            return
        self.name.setText(error_message(exc))
        show_error(self, tr("Chart"), error_message(exc))

    def _on_data_changed(self, entities: frozenset[str]) -> None:
        if entities & CHART_ENTITIES and self.patient_id is not None:
            self.reload()

    # --- painting ---------------------------------------------------------------------

    def _paint_all(self) -> None:
        summary = self.summary
        if summary is None:
            return
        person = summary.patient
        self.name.setText(full_name(person))
        sex = tr(SEX_WORDS.get(person.get("sex") or "unknown", "Sex not recorded"))
        self.details.setText(" · ".join((
            age_text(person.get("date_of_birth"), self.today()), sex,
            tr("Record {mrn}", mrn=person.get("mrn", "")))))
        text, state = banner(summary.allergies)
        self.banner.setText(text)
        self.banner.setStyleSheet(BANNER_STYLES[state])
        self.banner.setProperty("state", state)
        self.lists = {"allergy": summary.allergies, "condition": summary.conditions,
                      "medication": summary.medications, "vital_signs": summary.vitals}
        zone = self.desk.clinic.timezone
        for entity, records in self.lists.items():
            entries = self.record_lists[entity]
            selected = entries.currentItem().data(ROLE) if entries.currentItem() else None
            entries.clear()
            for record in records:
                item = QListWidgetItem(record_text(entity, record, zone))
                item.setData(ROLE, record["id"])
                if not is_current(entity, record):
                    item.setForeground(QBrush(QColor(GREY)))
                entries.addItem(item)
                if record["id"] == selected:
                    entries.setCurrentItem(item)
            if not records:
                empty = QListWidgetItem(tr("None recorded"))
                empty.setFlags(Qt.ItemFlag.NoItemFlags)
                entries.addItem(empty)
            self._record_selected(entity, entries.currentRow())
        self._paint_timeline()

    def _paint_timeline(self) -> None:
        selected = self._selected_key()
        self.timeline.clear()
        self.notes = {}
        for entry in self.entries:
            self.timeline.addTopLevelItem(self._entry_item(entry))
        self.timeline.expandAll()
        if selected is not None:
            self._select_key(selected)
        summary = self.summary
        waiting = summary is not None and not self.complete
        self.more.setText(tr("Loading older entries ({n} in all)…",
                             n=summary.total_entries if summary else 0))
        self.more.setVisible(waiting)
        self._selected()

    def _entry_item(self, entry: TimelineEntry) -> QTreeWidgetItem:
        item = self._build_item(entry)
        # Long titles and statuses are cut in their columns; the whole text is a hover away.
        for line in (item, *(item.child(n) for n in range(item.childCount()))):
            for column in (1, 2):
                if not line.toolTip(column):
                    line.setToolTip(column, line.text(column))
        return item

    def _build_item(self, entry: TimelineEntry) -> QTreeWidgetItem:
        zone = self.desk.clinic.timezone
        when = entry.at.astimezone(zone).strftime(TIME_FORMAT)
        if entry.kind == "note":
            item = self._note_item(entry.record, when, addendum=False)
            for child in entry.children:
                item.addChild(self._note_item(
                    child, child["created_at"].astimezone(zone).strftime(TIME_FORMAT),
                    addendum=True))
            return item
        if entry.kind == "prescription":
            item = QTreeWidgetItem([when, tr("Prescription: {what}", what=entry.title),
                                    prescription_status(entry.record, self.names.pharmacies)])
            item.setData(0, ROLE, ("prescription", entry.id))
            for child in entry.children:
                line = QTreeWidgetItem(["", item_text(child), ""])
                line.setData(0, ROLE, ("prescription", entry.id))
                item.addChild(line)
            return item
        record = entry.record
        tests = ", ".join(test_name(code) for code in record.get("tests") or ())
        what = tr("Lab order: {tests}", tests=tests)
        if record.get("priority") == "urgent":
            what += f" · {tr('urgent')}"
        status = tr(LAB_STATUS.get(entry.status, entry.status))
        if entry.abnormal:
            status += f" · {tr('abnormal results')}"
        item = QTreeWidgetItem([when, what, status])
        item.setData(0, ROLE, ("lab", entry.id))
        if entry.abnormal:
            item.setForeground(2, QBrush(QColor(ABNORMAL_COLOUR)))
        for result in entry.children:
            flag = FLAG_LETTERS.get(result["flag"], "")
            line = QTreeWidgetItem(["", result_text(result), flag])
            line.setData(0, ROLE, ("lab", entry.id))
            if flag:
                font = QFont(line.font(1))
                font.setBold(True)
                for column in (1, 2):
                    line.setFont(column, font)
                    line.setForeground(column, QBrush(QColor(ABNORMAL_COLOUR)))
                line.setToolTip(2, tr(result["flag"].replace("_", " ")))
            item.addChild(line)
        return item

    def _note_item(self, note: Mapping[str, Any], when: str, *, addendum: bool
                   ) -> QTreeWidgetItem:
        self.notes[note["id"]] = note
        first = _first_line(note["body"]) or tr("(empty)")
        what = (tr("Addendum: {line}", line=first) if addendum
                else tr("Note: {line}", line=first))
        if note["status"] == "signed":
            author = self._author(note["author_id"])
            status = tr("Signed by {author}", author=author)
        elif note.get("conflict_of") is not None:
            status = tr("Draft (the other version of an edited draft)")
        else:
            status = tr("Draft")
        item = QTreeWidgetItem([when, what, status])
        item.setData(0, ROLE, ("note", note["id"]))
        if note["status"] != "signed":
            font = QFont(item.font(1))
            font.setItalic(True)
            for column in (1, 2):
                item.setFont(column, font)
                item.setForeground(column, QBrush(QColor(DRAFT_COLOUR)))
        return item

    def _author(self, user_id: uuid.UUID | None) -> str:
        if user_id is None:
            return "—"
        name = self.names.staff.get(user_id)
        if name:
            return name
        return tr("you") if user_id == self.desk.session.user_id else tr("another doctor")

    # --- the selected entry -------------------------------------------------------------

    def _selected_key(self) -> tuple[str, uuid.UUID] | None:
        item = self.timeline.currentItem()
        if item is None:
            return None
        key = item.data(0, ROLE)
        if key is None:
            return None
        return (str(key[0]), key[1])

    def _select_key(self, key: tuple[str, uuid.UUID]) -> None:
        for index in range(self.timeline.topLevelItemCount()):
            top = self.timeline.topLevelItem(index)
            for item in (top, *(top.child(n) for n in range(top.childCount()))):
                data = item.data(0, ROLE)
                if data is not None and (data[0], data[1]) == key and (
                        item is top or data[0] == "note"):
                    self.timeline.setCurrentItem(item)
                    return

    def selected_note(self) -> Mapping[str, Any] | None:
        key = self._selected_key()
        if key is None or key[0] != "note":
            return None
        return self.notes.get(key[1])

    def _selected(self) -> None:
        note = self.selected_note()
        self.buttons["add_addendum"].setEnabled(note is not None and note["status"] == "signed")
        self.detail.setPlainText(self._detail_text())

    def _detail_text(self) -> str:
        key = self._selected_key()
        if key is None:
            return ""
        zone = self.desk.clinic.timezone
        if key[0] == "note":
            note = self.notes.get(key[1])
            if note is None:
                return ""
            return note["body"]
        entry = next((e for e in self.entries if e.id == key[1]), None)
        if entry is None:
            return ""
        when = entry.at.astimezone(zone).strftime(TIME_FORMAT)
        if entry.kind == "prescription":
            lines = [f"{when} · {prescription_status(entry.record, self.names.pharmacies)}",
                     tr("Prescribed by {author}", author=self._author(entry.author_id))]
            lines += [f"{n}. {item_text(i)}" for n, i in enumerate(entry.children, 1)]
            if entry.record.get("notes"):
                lines.append(str(entry.record["notes"]))
            return "\n".join(lines)
        lines = [f"{when} · {tr(LAB_STATUS.get(entry.status, entry.status))}",
                 tr("Ordered by {author}", author=self._author(entry.author_id))]
        if entry.record.get("clinical_info"):
            lines.append(str(entry.record["clinical_info"]))
        for result in entry.children:
            flag = FLAG_LETTERS.get(result["flag"], "")
            lines.append(result_text(result) + (f"  {flag}" if flag else ""))
        if entry.status == "cancelled" and entry.record.get("status_reason"):
            lines.append(tr("Cancelled ({reason})", reason=entry.record["status_reason"]))
        return "\n".join(lines)

    def _open_item(self, item: QTreeWidgetItem) -> None:
        data = item.data(0, ROLE)
        if data is not None and data[0] == "note":
            self.open_note(data[1])

    # --- actions ----------------------------------------------------------------------

    def open_note(self, note_id: uuid.UUID) -> NoteEditor:
        """The note's editor; the one already open, if any (two editors of one draft
        would save over each other)."""
        editor = self.editors.get(note_id)
        if editor is None:
            editor = NoteEditor(self.desk, note_id, self)
            editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self._track(editor, note_id)
            editor.note_opened.connect(lambda shown, e=editor: self._track(e, shown))
            editor.destroyed.connect(lambda _o=None, e=editor: self._track(e, None))
            editor.open()
        else:
            editor.raise_()
            editor.activateWindow()
        self.dialog = editor
        return editor

    def _track(self, editor: NoteEditor, note_id: uuid.UUID | None) -> None:
        """Which note `editor` shows now (None: it is gone)."""
        for known, open_editor in list(self.editors.items()):
            if open_editor is editor:
                del self.editors[known]
        if note_id is None:
            return
        self.editors[note_id] = editor

    def new_note(self) -> None:
        if self.patient_id is None:
            return
        desk, patient_id, appointment_id = self.desk, self.patient_id, self.appointment_id

        def work() -> uuid.UUID:
            return start_note(desk.engine, desk.clock, clinic_id=desk.session.clinic_id,
                              patient_id=patient_id, author_id=desk.session.user_id,
                              appointment_id=appointment_id)
        self.buttons["new_note"].setEnabled(False)
        desk.tasks.db.run(work, on_done=self._note_started, on_error=self._note_failed,
                          owner=self)

    def _note_started(self, note_id: uuid.UUID) -> None:
        self.buttons["new_note"].setEnabled(True)
        self.desk.changed("clinical_note")
        self.open_note(note_id)

    def _note_failed(self, exc: BaseException) -> None:
        self.buttons["new_note"].setEnabled(True)
        show_error(self, tr("New note"), error_message(exc))

    def add_addendum(self) -> None:
        note = self.selected_note()
        if note is None or note["status"] != "signed":
            return
        editor = self.open_note(note["id"])
        editor.add_addendum()  # the editor turns to the new addendum once it exists

    def prescribe(self) -> None:
        if self.patient_id is None:
            return
        from desktop.ui.prescription_form import PrescriptionForm  # built on demand

        form = PrescriptionForm(self.desk, self.patient_id, appointment_id=self.appointment_id,
                                parent=self)
        self.dialog = form
        form.open()

    def order_tests(self) -> None:
        if self.patient_id is None:
            return
        name = full_name(self.summary.patient) if self.summary else ""
        dialog = LabOrderDialog(self.desk, self.patient_id, self,
                                appointment_id=self.appointment_id, patient_name=name)
        self.dialog = dialog
        dialog.open()

    def _record_selected(self, entity: str, row: int) -> None:
        chosen = 0 <= row < len(self.lists.get(entity, ()))
        for action in ("edit", "remove"):
            self.record_buttons[entity][action].setEnabled(chosen)

    def _current_record(self, entity: str) -> Mapping[str, Any] | None:
        row = self.record_lists[entity].currentRow()
        records = self.lists.get(entity, [])
        return records[row] if 0 <= row < len(records) else None

    def add_record(self, entity: str) -> RecordDialog | None:
        if self.patient_id is None:
            return None
        dialog = RecordDialog(self.desk, entity, self.patient_id, None, self,
                              appointment_id=self.appointment_id)
        self.dialog = dialog
        dialog.open()
        return dialog

    def edit_record(self, entity: str) -> RecordDialog | None:
        record = self._current_record(entity)
        if record is None or self.patient_id is None:
            return None
        dialog = RecordDialog(self.desk, entity, self.patient_id, record, self)
        self.dialog = dialog
        dialog.open()
        return dialog

    def remove_record(self, entity: str) -> None:
        record = self._current_record(entity)
        if record is not None:
            self.dialog = remove_entry(self, self.desk, entity, record)

    # --- words ------------------------------------------------------------------------

    def retranslate(self) -> None:
        self.placeholder.setText(tr("Choose a patient from today's list, or find one."))
        for key, label in (("new_note", "New note"), ("add_addendum", "Add addendum"),
                           ("prescribe", "Prescribe…"), ("order_tests", "Order tests…")):
            self.buttons[key].setText(tr(label))
        for entity, box in self.panels.items():
            box.setTitle(tr(TITLES[entity]))
            for action, label in (("add", "Add"), ("edit", "Edit"), ("remove", "Remove")):
                self.record_buttons[entity][action].setText(tr(label))
        self.timeline.setHeaderLabels([tr("When"), tr("Entry"), tr("Status")])
        if self.summary is not None:
            self._paint_all()
