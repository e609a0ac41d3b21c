"""Opening a patient's chart from a real encrypted store, with no server: the summary and
the timeline newest first across notes, prescriptions and lab orders, each with its
addenda, items or results; other doctors' drafts, conflict copies of others and
tombstones never shown; a few statements whatever the chart's length; every chart read
queued for the audit log; the doctor's queue with checked-in patients first."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, Table, event, insert, select, update

from benchmarks.chart_data import fill_chart, fill_other_patients
from desktop.operations.chart import (
    FIRST_PAINT_ENTRIES,
    VITALS_SHOWN,
    ChartError,
    TimelineEntry,
    doctor_queue,
    load_summary,
    load_timeline,
    record_chart_read,
)
from desktop.operations.clinical import add_record
from desktop.operations.lab_orders import order_tests
from desktop.operations.notes import sign_note, start_addendum, start_note
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.scheduling import local_instant
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

CLINIC = uuid7()
DOCTOR = uuid7()
COLLEAGUE = uuid7()
ZONE = ZoneInfo("America/Mexico_City")
T0 = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("doctorpc")


def _patient(engine: Engine, **values: Any) -> uuid.UUID:
    patient_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=patient_id, mrn=f"P-{patient_id.hex[-6:]}",
            given_name="Rosario", family_name="Quispe", preferred_channels=[], **values))
    return patient_id


def _add(engine: Engine, table: Table, **values: Any) -> uuid.UUID:
    record_id = values.pop("id", None) or uuid7()
    with engine.begin() as conn:
        conn.execute(insert(table).values(clinic_id=CLINIC, id=record_id, **values))
    return record_id


def _note(engine: Engine, patient_id: uuid.UUID, at: datetime, *, author: uuid.UUID = DOCTOR,
          status: str = "signed", body: str = "Consulta de control", **values: Any
          ) -> uuid.UUID:
    return _add(engine, clinical_note, patient_id=patient_id, author_id=author, status=status,
                body=body, signed_at=at if status == "signed" else None, created_at=at,
                **values)


def _prescription(engine: Engine, patient_id: uuid.UUID, at: datetime,
                  items: list[tuple[str, str]], **values: Any) -> uuid.UUID:
    script_id = _add(engine, prescription, patient_id=patient_id, prescriber_id=DOCTOR,
                     signed_at=at, formulary_version="2026.11", acknowledgements=[],
                     signing_key_id=uuid7(), signature="MEUCIQ==", status="signed",
                     created_at=at, **values)
    # Written out of order: the chart shows them by position.
    for position, (name, strength) in reversed(list(enumerate(items, 1))):
        _add(engine, prescription_item, prescription_id=script_id, position=position,
             medicine_id=name, medicine_name=name, strength=strength, form="tablet",
             dose="1", route="oral", frequency="every 8 hours", quantity=21)
    return script_id


def _lab(engine: Engine, patient_id: uuid.UUID, at: datetime, tests: list[str],
         results: list[tuple[str, str, str]] | None = None, **values: Any) -> uuid.UUID:
    results = results or []
    order_id = _add(engine, lab_order, patient_id=patient_id, ordered_by=DOCTOR, tests=tests,
                    status="completed" if results else "ordered",
                    completed_at=at + timedelta(days=1) if results else None, created_at=at,
                    **values)
    for test_code, analyte, flag in results:
        _add(engine, lab_result, lab_order_id=order_id, patient_id=patient_id,
             test_code=test_code, analyte=analyte, value="1", flag=flag, entered_by=uuid7(),
             entered_at=at + timedelta(days=1))
    return order_id


def _ids(entries: list[TimelineEntry]) -> list[uuid.UUID]:
    return [e.id for e in entries]


# --- the timeline --------------------------------------------------------------------------


def test_the_timeline_is_newest_first_across_notes_prescriptions_and_labs(
        engine: Engine) -> None:
    pid = _patient(engine)
    old_note = _note(engine, pid, T0, body="\n  Dolor lumbar mecánico\nSin irradiación")
    script = _prescription(engine, pid, T0 + timedelta(days=1),
                           [("ibuprofen", "400 mg"), ("paracetamol", "500 mg")])
    order = _lab(engine, pid, T0 + timedelta(days=2), ["lipids", "glucose"],
                 [("glucose", "glucose", "normal"), ("lipids", "tg", "normal"),
                  ("lipids", "chol", "high")])
    new_note = _note(engine, pid, T0 + timedelta(days=3), body="x" * 200)

    timeline = load_timeline(engine, pid, viewer_id=DOCTOR)

    assert _ids(timeline) == [new_note, order, script, old_note]
    assert [e.kind for e in timeline] == ["note", "lab", "prescription", "note"]
    assert [e.at for e in timeline] == [T0 + timedelta(days=d) for d in (3, 2, 1, 0)]
    assert timeline[3].title == "Dolor lumbar mecánico"
    assert timeline[0].title == "x" * 79 + "…"
    assert timeline[2].title == "ibuprofen 400 mg, paracetamol 500 mg"
    assert [i["position"] for i in timeline[2].children] == [1, 2]
    lab = timeline[1]
    assert lab.title.count(",") == 1
    assert lab.status == "completed"
    # Results follow the order's tests, each test's analytes as the catalogue lists them.
    assert [(r["test_code"], r["analyte"]) for r in lab.children] == [
        ("lipids", "chol"), ("lipids", "tg"), ("glucose", "glucose")]
    assert lab.abnormal is True
    assert all(e.author_id == DOCTOR for e in timeline)
    assert timeline[0].record["body"] == "x" * 200


def test_a_lab_order_with_only_normal_results_or_none_yet_is_not_abnormal(
        engine: Engine) -> None:
    pid = _patient(engine)
    _lab(engine, pid, T0, ["glucose"], [("glucose", "glucose", "normal")])
    _lab(engine, pid, T0 + timedelta(hours=1), ["hba1c"])
    assert [(e.abnormal, len(e.children)) for e in load_timeline(engine, pid,
                                                                   viewer_id=DOCTOR)] == [
        (False, 0), (False, 1)]


def test_a_note_carries_its_addenda_oldest_first(engine: Engine) -> None:
    pid = _patient(engine)
    note = _note(engine, pid, T0)
    later = _note(engine, pid, T0 + timedelta(days=2), addendum_to=note, body="Segunda")
    sooner = _note(engine, pid, T0 + timedelta(days=1), addendum_to=note, body="Primera")

    [entry] = load_timeline(engine, pid, viewer_id=DOCTOR)

    assert entry.id == note
    assert [a["id"] for a in entry.children] == [sooner, later]


def test_other_doctors_drafts_are_hidden_and_ones_own_are_shown(engine: Engine) -> None:
    pid = _patient(engine)
    signed_by_colleague = _note(engine, pid, T0, author=COLLEAGUE)
    mine = _note(engine, pid, T0 + timedelta(hours=1), status="draft")
    theirs = _note(engine, pid, T0 + timedelta(hours=2), author=COLLEAGUE, status="draft")
    my_addendum = _note(engine, pid, T0 + timedelta(hours=3), status="draft",
                        addendum_to=signed_by_colleague)
    their_addendum = _note(engine, pid, T0 + timedelta(hours=4), status="draft",
                           author=COLLEAGUE, addendum_to=signed_by_colleague)

    as_me = load_timeline(engine, pid, viewer_id=DOCTOR)
    as_colleague = load_timeline(engine, pid, viewer_id=COLLEAGUE)

    assert _ids(as_me) == [mine, signed_by_colleague]
    assert [a["id"] for a in as_me[1].children] == [my_addendum]
    assert _ids(as_colleague) == [theirs, signed_by_colleague]
    assert [a["id"] for a in as_colleague[1].children] == [their_addendum]
    summary = load_summary(engine, pid, viewer_id=DOCTOR)
    assert (_ids(summary.recent), summary.total_entries) == ([mine, signed_by_colleague], 2)
    assert theirs not in _ids(load_timeline(engine, pid, viewer_id=uuid7()))


def test_a_conflict_copy_is_shown_only_to_its_author(engine: Engine) -> None:
    pid = _patient(engine)
    note = _note(engine, pid, T0, status="draft", body="Texto que ganó")
    copy = _note(engine, pid, T0 + timedelta(minutes=5), status="draft", conflict_of=note,
                 body="Texto que perdió")
    # Even a copy that somehow reads as signed stays the author's business.
    signed_copy = _note(engine, pid, T0 + timedelta(minutes=6), conflict_of=note)

    assert _ids(load_timeline(engine, pid, viewer_id=DOCTOR)) == [signed_copy, copy, note]
    assert load_timeline(engine, pid, viewer_id=COLLEAGUE) == []
    copy_entry = load_timeline(engine, pid, viewer_id=DOCTOR)[1]
    assert copy_entry.record["conflict_of"] == note


def test_tombstones_are_never_shown(engine: Engine) -> None:
    pid = _patient(engine)
    gone = T0 + timedelta(days=30)
    note = _note(engine, pid, T0)
    _note(engine, pid, T0 + timedelta(hours=1), deleted_at=gone)
    _note(engine, pid, T0 + timedelta(hours=2), addendum_to=note, deleted_at=gone)
    _prescription(engine, pid, T0, [("ibuprofen", "400 mg")], deleted_at=gone)
    _lab(engine, pid, T0, ["glucose"], deleted_at=gone)
    for table, values in ((allergy, {"substance": "Látex"}),
                          (condition, {"description": "Asma"}),
                          (medication, {"name": "Salbutamol"}),
                          (vital_signs, {"measured_at": T0, "heart_rate_bpm": 70})):
        _add(engine, table, patient_id=pid, deleted_at=gone, **values)

    summary = load_summary(engine, pid, viewer_id=DOCTOR)
    timeline = load_timeline(engine, pid, viewer_id=DOCTOR)

    assert _ids(timeline) == _ids(summary.recent) == [note]
    assert timeline[0].children == ()
    assert (summary.allergies, summary.conditions, summary.medications, summary.vitals) == (
        [], [], [], [])
    assert summary.total_entries == 1


def test_another_patients_chart_is_not_mixed_in(engine: Engine) -> None:
    pid, other = _patient(engine), _patient(engine)
    mine = _note(engine, pid, T0)
    _note(engine, other, T0)
    _prescription(engine, other, T0, [("ibuprofen", "400 mg")])
    _lab(engine, other, T0, ["glucose"], [("glucose", "glucose", "high")])
    _add(engine, allergy, patient_id=other, substance="Látex")
    assert _ids(load_timeline(engine, pid, viewer_id=DOCTOR)) == [mine]
    assert load_summary(engine, pid, viewer_id=DOCTOR).allergies == []


# --- the summary ---------------------------------------------------------------------------


def test_the_summary_has_the_patient_the_lists_active_first_and_the_latest_vitals(
        engine: Engine) -> None:
    pid = _patient(engine, date_of_birth=date(1958, 2, 3))
    _add(engine, allergy, patient_id=pid, substance="Sulfas", status="resolved")
    _add(engine, allergy, patient_id=pid, substance="Penicilina", severity="severe")
    _add(engine, allergy, patient_id=pid, substance="Látex")
    _add(engine, condition, patient_id=pid, description="Hipertensión", code="I10")
    _add(engine, medication, patient_id=pid, name="Losartán", status="stopped")
    _add(engine, medication, patient_id=pid, name="Amlodipino")
    readings = [T0 + timedelta(days=n) for n in range(VITALS_SHOWN + 3)]
    for at in readings:
        _add(engine, vital_signs, patient_id=pid, measured_at=at, systolic_mmhg=120,
             diastolic_mmhg=80)

    summary = load_summary(engine, pid, viewer_id=DOCTOR)

    assert summary.patient["id"] == pid
    assert summary.patient["date_of_birth"] == date(1958, 2, 3)
    assert [a["substance"] for a in summary.allergies] == ["Látex", "Penicilina", "Sulfas"]
    assert [c["code"] for c in summary.conditions] == ["I10"]
    assert [m["name"] for m in summary.medications] == ["Amlodipino", "Losartán"]
    assert [v["measured_at"] for v in summary.vitals] == readings[::-1][:VITALS_SHOWN]
    assert (summary.recent, summary.total_entries) == ([], 0)


def test_the_first_paint_is_the_newest_entries_of_a_long_chart(engine: Engine) -> None:
    pid = uuid7()
    fill = fill_chart(engine, CLINIC, pid, notes=60, prescriptions=30, labs=15,
                      doctor_id=DOCTOR)

    summary = load_summary(engine, pid, viewer_id=DOCTOR)
    timeline = load_timeline(engine, pid, viewer_id=DOCTOR)

    assert len(timeline) == summary.total_entries == 60 + 30 + 15
    assert len(summary.recent) == FIRST_PAINT_ENTRIES
    assert summary.recent == timeline[:FIRST_PAINT_ENTRIES]
    assert sum(len(e.children) for e in timeline if e.kind == "note") == fill.addenda
    assert sum(len(e.children) for e in timeline if e.kind == "prescription") == fill.items
    assert sum(len(e.children) for e in timeline if e.kind == "lab") == fill.results
    assert any(e.abnormal for e in timeline)
    ats = [e.at for e in timeline]
    assert ats == sorted(ats, reverse=True)
    # Another doctor does not see this doctor's drafts, and counts without them.
    assert load_summary(engine, pid, viewer_id=COLLEAGUE).total_entries == len(timeline) - 3


def _statements(engine: Engine, call: Any) -> int:
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_a_chart_is_read_in_the_same_few_statements_however_long_it_is(
        engine: Engine) -> None:
    short, long = uuid7(), uuid7()
    fill_chart(engine, CLINIC, short, notes=3, prescriptions=2, labs=1, doctor_id=DOCTOR)
    fill_chart(engine, CLINIC, long, notes=200, prescriptions=100, labs=50, doctor_id=DOCTOR)
    fill_other_patients(engine, CLINIC, count=50)

    counts = {pid: (_statements(engine, lambda p=pid: load_summary(engine, p,
                                                                   viewer_id=DOCTOR)),
                    _statements(engine, lambda p=pid: load_timeline(engine, p,
                                                                    viewer_id=DOCTOR)))
              for pid in (short, long)}

    assert counts[short] == counts[long]
    summary_statements, timeline_statements = counts[long]
    assert summary_statements <= 11
    assert timeline_statements <= 7


def test_the_chart_queries_are_served_by_indexes(engine: Engine) -> None:
    pid = uuid7()
    fill_chart(engine, CLINIC, pid, notes=5, prescriptions=5, labs=5, doctor_id=DOCTOR)
    plans: list[str] = []

    def explain(conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        raw = conn.connection.dbapi_connection
        rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
        plans.extend(row[-1] for row in rows)

    event.listen(engine, "before_cursor_execute", explain)
    try:
        load_timeline(engine, pid, viewer_id=DOCTOR)
        load_summary(engine, pid, viewer_id=DOCTOR)
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    assert plans
    # A window count reads back its own result ("SCAN (subquery-n)"), never a table.
    assert [p for p in plans if p.startswith("SCAN") and "(subquery" not in p] == []


def test_a_patient_not_on_this_computer_or_removed_has_no_chart(engine: Engine) -> None:
    with pytest.raises(ChartError, match="not on this computer"):
        load_summary(engine, uuid7(), viewer_id=DOCTOR)
    removed = _patient(engine, deleted_at=T0)
    with pytest.raises(ChartError, match="removed"):
        load_timeline(engine, removed, viewer_id=DOCTOR)


# --- chart reads -------------------------------------------------------------------------


def test_each_chart_read_is_queued_once_for_the_audit_log(
        engine: Engine, clock: HybridClock) -> None:
    pid = _patient(engine)
    record_chart_read(engine, clock, pid)
    record_chart_read(engine, clock, pid)
    with engine.connect() as conn:
        queued = conn.execute(select(outbox).order_by(outbox.c.seq)).all()
    assert [(q.entity, q.op, q.record_id, q.changes, q.base, q.base_version)
            for q in queued] == [("chart", "read", pid, {}, {}, None)] * 2
    assert queued[0].hlc < queued[1].hlc
    assert queued[0].mutation_id != queued[1].mutation_id


# --- the doctor's queue --------------------------------------------------------------------


def _provider(engine: Engine, user_id: uuid.UUID | None, **values: Any) -> uuid.UUID:
    return _add(engine, provider, display_name="Dra. Quispe", user_id=user_id, **values)


def _visit(engine: Engine, provider_id: uuid.UUID, day: date, hhmm: str, status: str,
           **values: Any) -> uuid.UUID:
    starts = local_instant(day, time.fromisoformat(hhmm), ZONE)
    return _add(engine, appointment, patient_id=values.pop("patient_id", None)
                or _patient(engine), provider_id=provider_id, starts_at=starts,
                ends_at=starts + timedelta(minutes=20), status=status, **values)


def test_the_queue_has_checked_in_patients_first_then_the_day_then_those_seen(
        engine: Engine) -> None:
    day = date(2025, 3, 10)
    mine = _provider(engine, DOCTOR)
    also_mine = _provider(engine, DOCTOR)
    theirs = _provider(engine, COLLEAGUE)
    seen = _visit(engine, mine, day, "08:00", "completed")
    waiting_later = _visit(engine, mine, day, "10:00", "checked_in")
    with_doctor = _visit(engine, also_mine, day, "09:00", "in_progress")
    booked = _visit(engine, mine, day, "11:00", "booked")
    pending = _visit(engine, also_mine, day, "08:30", "pending")
    early_arrival = _visit(engine, mine, day, "09:30", "checked_in")
    for status in ("cancelled", "no_show", "rejected"):
        _visit(engine, mine, day, "12:00", status)
    _visit(engine, mine, day, "12:30", "booked", deleted_at=T0)
    _visit(engine, theirs, day, "09:00", "checked_in")
    _visit(engine, mine, day - timedelta(days=1), "23:50", "checked_in")
    _visit(engine, mine, day + timedelta(days=1), "00:00", "booked")
    last_minute = _visit(engine, mine, day, "23:59", "booked")

    queue = doctor_queue(engine, user_id=DOCTOR, day=day, tz=ZONE)

    assert [q.appointment["id"] for q in queue] == [
        with_doctor, early_arrival, waiting_later, pending, booked, last_minute, seen]
    assert [q.status for q in queue] == ["in_progress", "checked_in", "checked_in",
                                         "pending", "booked", "booked", "completed"]
    assert all(q.patient["given_name"] == "Rosario" for q in queue)
    assert all(q.starts_at == q.appointment["starts_at"] for q in queue)
    assert doctor_queue(engine, user_id=uuid7(), day=day, tz=ZONE) == []


def test_the_queue_follows_the_clinics_day_not_utcs(engine: Engine) -> None:
    day = date(2025, 3, 10)
    mine = _provider(engine, DOCTOR)
    evening = _visit(engine, mine, day, "20:00", "booked")  # 02:00 UTC the next day
    assert [q.appointment["id"] for q in doctor_queue(engine, user_id=DOCTOR, day=day,
                                                      tz=ZONE)] == [evening]
    assert doctor_queue(engine, user_id=DOCTOR, day=day + timedelta(days=1), tz=ZONE) == []


def test_a_chart_written_offline_shows_at_once_and_waits_in_the_outbox(
        engine: Engine, clock: HybridClock) -> None:
    pid = _patient(engine)
    note = start_note(engine, clock, clinic_id=CLINIC, patient_id=pid, author_id=DOCTOR,
                      body="Faringitis aguda")
    sign_note(engine, clock, note)
    addendum = start_addendum(engine, clock, clinic_id=CLINIC, note_id=note,
                              author_id=DOCTOR, body="Cultivo negativo")
    order = order_tests(engine, clock, clinic_id=CLINIC, patient_id=pid, ordered_by=DOCTOR,
                        tests=["cbc"])
    add_record(engine, clock, "allergy", clinic_id=CLINIC, user_id=DOCTOR,
               values={"patient_id": pid, "substance": "Penicilina"})
    record_chart_read(engine, clock, pid)

    summary = load_summary(engine, pid, viewer_id=DOCTOR)

    assert {e.id for e in summary.recent} == {note, order}
    [note_entry] = [e for e in summary.recent if e.kind == "note"]
    assert (note_entry.status, [a["id"] for a in note_entry.children]) == ("signed", [addendum])
    assert [a["substance"] for a in summary.allergies] == ["Penicilina"]
    with engine.connect() as conn:
        queued = [(q.entity, q.op) for q in conn.execute(select(outbox).order_by(outbox.c.seq))]
    assert queued == [("clinical_note", "upsert"), ("clinical_note", "sign"),
                      ("clinical_note", "upsert"), ("lab_order", "upsert"),
                      ("allergy", "upsert"), ("chart", "read")]
    with engine.begin() as conn:  # a later sync changing the order shows on the next read
        conn.execute(update(lab_order).where(lab_order.c.id == order)
                     .values(status="sample_received"))
    assert {e.status for e in load_timeline(engine, pid, viewer_id=DOCTOR)
            if e.kind == "lab"} == {"sample_received"}
