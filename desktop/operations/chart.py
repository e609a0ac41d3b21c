"""Reading a patient's chart from the local store, and the doctor's queue of the day.

Opening a chart must feel instant, offline as well, so everything here reads the local
copy in a few indexed statements, one per table and never one per entry: notes with
their addenda, prescriptions with their items, lab orders with their results. The first
paint (`load_summary`) reads only the newest entries of each kind; the whole history
(`load_timeline`) is built in one pass over each table.

What a doctor sees of notes follows the server's rules: signed notes, and their own
drafts; a conflict copy (the text that lost when two computers edited one draft) only to
its author. Tombstoned records are never shown.

    ChartError      the patient is not (or no longer) in the local copy
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    case,
    func,
    insert,
    or_,
    select,
)

from desktop.operations.schedule import day_window
from desktop.store.local import attention, outbox
from shared_models import lab_tests
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.tables import (
    allergy,
    appointment,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    prescription,
    prescription_item,
    provider,
    vital_signs,
)

FIRST_PAINT_ENTRIES = 20
VITALS_SHOWN = 10
# A note's title is its first line, cut to what fits a row of the timeline.
TITLE_CHARS = 80

EntryKind = Literal["note", "prescription", "lab"]
# The status a prescription shows when the server refused it (it has no server status).
NOT_ACCEPTED = "not_accepted"


class ChartError(Exception):
    """The chart cannot be opened; the message says why, for a dialog."""


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the chart. `children` are a note's addenda (oldest first), a
    prescription's items (in order) or a lab order's results (in the order's test order)."""

    kind: EntryKind
    id: uuid.UUID
    at: datetime
    title: str
    status: str
    author_id: uuid.UUID | None
    record: Mapping[str, Any]
    children: tuple[Mapping[str, Any], ...]
    # A lab order with any result outside its range.
    abnormal: bool = False


@dataclass(frozen=True)
class ChartSummary:
    patient: Mapping[str, Any]
    allergies: list[Mapping[str, Any]]
    conditions: list[Mapping[str, Any]]
    medications: list[Mapping[str, Any]]
    vitals: list[Mapping[str, Any]]
    recent: list[TimelineEntry]
    total_entries: int


@dataclass(frozen=True)
class QueueEntry:
    appointment: Mapping[str, Any]
    patient: Mapping[str, Any]
    status: str
    starts_at: datetime


# --- reading the chart ---------------------------------------------------------------------


def load_summary(engine: Engine, patient_id: uuid.UUID, *, viewer_id: uuid.UUID
                 ) -> ChartSummary:
    """What the chart paints first: the patient, their lists, the latest vitals and the
    newest FIRST_PAINT_ENTRIES entries of the timeline."""
    with engine.connect() as conn:
        person = _patient(conn, patient_id)
        notes, note_count = _notes(conn, patient_id, viewer_id, FIRST_PAINT_ENTRIES)
        scripts, script_count = _prescriptions(conn, patient_id, FIRST_PAINT_ENTRIES)
        labs, lab_count = _labs(conn, patient_id, FIRST_PAINT_ENTRIES)
        summary = ChartSummary(
            patient=person,
            allergies=_list(conn, allergy, patient_id, allergy.c.substance),
            conditions=_list(conn, condition, patient_id, condition.c.description),
            medications=_list(conn, medication, patient_id, medication.c.name),
            vitals=_records(conn.execute(
                select(vital_signs).where(vital_signs.c.patient_id == patient_id,
                                          vital_signs.c.deleted_at.is_(None))
                .order_by(vital_signs.c.measured_at.desc(), vital_signs.c.id.desc())
                .limit(VITALS_SHOWN))),
            recent=_newest_first([*notes, *scripts, *labs])[:FIRST_PAINT_ENTRIES],
            total_entries=note_count + script_count + lab_count,
        )
    return summary


def load_timeline(engine: Engine, patient_id: uuid.UUID, *, viewer_id: uuid.UUID
                  ) -> list[TimelineEntry]:
    """Every entry of the chart, newest first."""
    with engine.connect() as conn:
        _patient(conn, patient_id)
        notes, _ = _notes(conn, patient_id, viewer_id, None)
        scripts, _ = _prescriptions(conn, patient_id, None)
        labs, _ = _labs(conn, patient_id, None)
    return _newest_first([*notes, *scripts, *labs])


def record_chart_read(engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    """Queue the fact that this chart was opened: the server writes it to the audit log
    when it arrives, so a chart read offline is accounted for too."""
    with engine.begin() as conn:
        conn.execute(insert(outbox).values(
            mutation_id=uuid7(), entity="chart", op="read", record_id=patient_id,
            base_version=None, changes={}, base={}, hlc=clock.now().pack(),
            created_at=datetime.now(UTC)))


def _patient(conn: Connection, patient_id: uuid.UUID) -> Mapping[str, Any]:
    row = conn.execute(select(patient).where(patient.c.id == patient_id)).first()
    if row is None:
        raise ChartError("This patient is not on this computer yet; sync, then open the "
                         "chart again.")
    if row.deleted_at is not None:
        raise ChartError("This patient's record was removed from the clinic; their chart "
                         "can no longer be opened.")
    return dict(row._mapping)


def _records(rows: Iterable[Any]) -> list[Mapping[str, Any]]:
    return [dict(row._mapping) for row in rows]


def _list(conn: Connection, table: Table, patient_id: uuid.UUID,
          name: ColumnElement[Any]) -> list[Mapping[str, Any]]:
    """A chart list, what still holds first (active), then by name."""
    return _records(conn.execute(
        select(table).where(table.c.patient_id == patient_id, table.c.deleted_at.is_(None))
        .order_by(case((table.c.status == "active", 0), else_=1), name, table.c.id)))


def _newest_first(entries: list[TimelineEntry]) -> list[TimelineEntry]:
    return sorted(entries, key=lambda e: (e.at, e.id), reverse=True)


def _limited(stmt: Select[Any], table: Table, at: ColumnElement[Any], limit: int | None
             ) -> Select[Any]:
    """Newest first; with a limit, each row also carries how many rows match in all (a
    window count, so the first paint needs no second statement per table)."""
    stmt = stmt.order_by(at.desc(), table.c.id.desc())
    if limit is None:
        return stmt
    return stmt.add_columns(func.count().over().label("matching")).limit(limit)


def _split(rows: Sequence[Any], table: Table, limit: int | None
           ) -> tuple[list[dict[str, Any]], int]:
    columns = table.c.keys()
    records = [{name: row._mapping[name] for name in columns} for row in rows]
    if limit is None or not rows:
        return records, len(records)
    return records, int(rows[0].matching)


def _visible_to(viewer_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        clinical_note.c.deleted_at.is_(None),
        or_(clinical_note.c.status == "signed", clinical_note.c.author_id == viewer_id),
        or_(clinical_note.c.conflict_of.is_(None), clinical_note.c.author_id == viewer_id),
    )


def _notes(conn: Connection, patient_id: uuid.UUID, viewer_id: uuid.UUID, limit: int | None
           ) -> tuple[list[TimelineEntry], int]:
    visible = _visible_to(viewer_id)
    rows = conn.execute(_limited(
        select(clinical_note).where(clinical_note.c.patient_id == patient_id,
                                    clinical_note.c.addendum_to.is_(None), visible),
        clinical_note, clinical_note.c.created_at, limit)).all()
    notes, total = _split(rows, clinical_note, limit)
    addenda_of = select(clinical_note).where(clinical_note.c.patient_id == patient_id,
                                             clinical_note.c.addendum_to.is_not(None), visible)
    if limit is not None:
        addenda_of = addenda_of.where(clinical_note.c.addendum_to.in_([n["id"] for n in notes]))
    addenda: dict[uuid.UUID, list[Mapping[str, Any]]] = {}
    for row in conn.execute(addenda_of.order_by(clinical_note.c.created_at,
                                                clinical_note.c.id)):
        addenda.setdefault(row.addendum_to, []).append(dict(row._mapping))
    return [TimelineEntry(
        kind="note", id=note["id"], at=note["created_at"], title=_first_line(note["body"]),
        status=note["status"], author_id=note["author_id"], record=note,
        children=tuple(addenda.get(note["id"], ()))) for note in notes], total


def _first_line(body: str) -> str:
    line = next((line.strip() for line in body.splitlines() if line.strip()), "")
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1].rstrip() + "…"


def _prescriptions(conn: Connection, patient_id: uuid.UUID, limit: int | None
                   ) -> tuple[list[TimelineEntry], int]:
    # A prescription the server refused (a revoked key, a warning it found) never reached
    # a pharmacy: it shows as not accepted, with the server's reason.
    refused = (select(attention.c.reason).where(
        attention.c.record_id == prescription.c.id, attention.c.entity == "prescription",
        attention.c.status == "rejected").limit(1).scalar_subquery().label("refused"))
    rows = conn.execute(_limited(
        select(prescription, refused).where(prescription.c.patient_id == patient_id,
                                            prescription.c.deleted_at.is_(None)),
        prescription, prescription.c.signed_at, limit)).all()
    scripts, total = _split(rows, prescription, limit)
    for script, row in zip(scripts, rows, strict=True):
        if row.refused is not None:
            script.update(status=NOT_ACCEPTED, status_reason=row.refused)
    items_of = select(prescription_item).where(prescription_item.c.deleted_at.is_(None))
    if limit is None:
        items_of = items_of.join(prescription, and_(
            prescription.c.clinic_id == prescription_item.c.clinic_id,
            prescription.c.id == prescription_item.c.prescription_id)).where(
            prescription.c.patient_id == patient_id)
    else:
        items_of = items_of.where(
            prescription_item.c.prescription_id.in_([s["id"] for s in scripts]))
    items: dict[uuid.UUID, list[Mapping[str, Any]]] = {}
    for row in conn.execute(items_of.order_by(prescription_item.c.prescription_id,
                                              prescription_item.c.position)):
        items.setdefault(row.prescription_id, []).append(dict(row._mapping))
    entries = []
    for script in scripts:
        children = tuple(items.get(script["id"], ()))
        entries.append(TimelineEntry(
            kind="prescription", id=script["id"], at=script["signed_at"],
            title=", ".join(f"{i['medicine_name']} {i['strength']}" for i in children),
            status=script["status"], author_id=script["prescriber_id"], record=script,
            children=children))
    return entries, total


def _labs(conn: Connection, patient_id: uuid.UUID, limit: int | None
          ) -> tuple[list[TimelineEntry], int]:
    rows = conn.execute(_limited(
        select(lab_order).where(lab_order.c.patient_id == patient_id,
                                lab_order.c.deleted_at.is_(None)),
        lab_order, lab_order.c.created_at, limit)).all()
    orders, total = _split(rows, lab_order, limit)
    results_of = select(lab_result).where(lab_result.c.patient_id == patient_id,
                                          lab_result.c.deleted_at.is_(None))
    if limit is not None:
        results_of = results_of.where(lab_result.c.lab_order_id.in_([o["id"] for o in orders]))
    results: dict[uuid.UUID, list[Mapping[str, Any]]] = {}
    for row in conn.execute(results_of):
        results.setdefault(row.lab_order_id, []).append(dict(row._mapping))
    entries = []
    for order in orders:
        children = tuple(sorted(results.get(order["id"], ()),
                                key=_result_order(order["tests"])))
        entries.append(TimelineEntry(
            kind="lab", id=order["id"], at=order["created_at"],
            title=", ".join(_test_name(code) for code in order["tests"]),
            status=order["status"], author_id=order["ordered_by"], record=order,
            children=children,
            abnormal=any(r["flag"] in lab_tests.ABNORMAL for r in children)))
    return entries, total


def _test_name(code: str) -> str:
    try:
        return lab_tests.test(code).name_en
    except lab_tests.UnknownTestError:
        return code


def _result_order(tests: list[str]) -> Any:
    """Results in the order the tests were asked for, each test's analytes as the
    catalogue lists them."""
    test_rank = {code: n for n, code in enumerate(tests)}

    def key(result: Mapping[str, Any]) -> tuple[int, int, str]:
        code, analyte = result["test_code"], result["analyte"]
        try:
            analytes = [a.id for a in lab_tests.test(code).analytes]
        except lab_tests.UnknownTestError:
            analytes = []
        place = analytes.index(analyte) if analyte in analytes else len(analytes)
        return test_rank.get(code, len(test_rank)), place, analyte

    return key


# --- the doctor's queue ----------------------------------------------------------------------

# Who is waiting comes first, then who is still to come, then who has been seen.
_QUEUE_RANK = {"checked_in": 0, "in_progress": 0, "booked": 1, "pending": 1, "completed": 2}


def doctor_queue(engine: Engine, *, user_id: uuid.UUID, day: date, tz: ZoneInfo
                 ) -> list[QueueEntry]:
    """The day's appointments (in the clinic's zone `tz`) with the providers this user
    works as: checked-in patients first in the order of their times, then those still to
    come, then those already seen. Cancelled, no-show and rejected bookings are left out."""
    window = day_window(day, tz)
    with engine.connect() as conn:
        visits = _records(conn.execute(
            select(appointment).join(provider, and_(
                provider.c.clinic_id == appointment.c.clinic_id,
                provider.c.id == appointment.c.provider_id))
            .where(provider.c.user_id == user_id, provider.c.deleted_at.is_(None),
                   appointment.c.starts_at >= window.start,
                   appointment.c.starts_at < window.end,
                   appointment.c.status.in_(_QUEUE_RANK),
                   appointment.c.deleted_at.is_(None))))
        people = {row.id: dict(row._mapping) for row in conn.execute(
            select(patient).where(patient.c.id.in_({v["patient_id"] for v in visits})))}
    visits.sort(key=lambda v: (_QUEUE_RANK[v["status"]], v["starts_at"], v["id"]))
    return [QueueEntry(appointment=v,
                       patient=people.get(v["patient_id"], {"id": v["patient_id"]}),
                       status=v["status"], starts_at=v["starts_at"]) for v in visits]
