"""The doctor's workspace on a real store with the real workers: the day's queue puts who
is waiting first, the search finds anyone else, the chart paints the allergy banner, the
lists and the timeline (drafts marked, addenda under their note, abnormal lab values in
bold red with their flag), a long history arrives after the first paint, opening a chart
is queued for the audit log once, an addendum starts from the timeline, lab tests are
ordered, and each role gets its own workspaces."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, select

from desktop.operations.chart import NOT_ACCEPTED
from desktop.store.local import outbox
from desktop.ui import i18n
from desktop.ui.chart import ChartView, prescription_status
from desktop.ui.chart_records import ask
from desktop.ui.consultation import ConsultationView
from desktop.ui.desk import Desk
from desktop.ui.lab_order_dialog import LabOrderDialog
from desktop.ui.main_window import MainWindow
from desktop.ui.note_editor import NoteEditor
from desktop.ui.qt import QColor, QMessageBox, QPushButton, Qt
from desktop.ui.queue import QueueView
from desktop.ui.sync_status import SyncController
from shared_models.clock import Hlc
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
    pharmacy,
    prescription,
    prescription_item,
    provider,
    vital_signs,
)
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton
# Noon in Santiago on a Monday (UTC-3 in March).
NOON = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
RED = QColor("#C62828")


@pytest.fixture
def doctor(desk: Desk) -> Desk:
    desk.session = dataclasses.replace(desk.session, role="doctor", email="arojas@andes.cl")
    return desk


def add(desk: Desk, table: Any, **values: Any) -> uuid.UUID:
    values.setdefault("id", uuid7())
    values.setdefault("clinic_id", desk.session.clinic_id)
    with setup_io(), desk.engine.begin() as conn:
        conn.execute(insert(table).values(**values))
    return uuid.UUID(str(values["id"]))


def person(desk: Desk, given: str, family: str, mrn: str, **values: Any) -> uuid.UUID:
    return add(desk, patient, given_name=given, family_name=family, mrn=mrn,
               preferred_channels=[], **values)


def doctor_provider(desk: Desk, name: str = "Dra. Ana Rojas",
                    user_id: uuid.UUID | None = None) -> uuid.UUID:
    return add(desk, provider, display_name=name,
               user_id=user_id or desk.session.user_id)


def visit(desk: Desk, provider_id: uuid.UUID, patient_id: uuid.UUID, local: str,
          status: str, **values: Any) -> uuid.UUID:
    hour, minute = map(int, local.split(":"))
    starts = datetime(2026, 3, 9, hour, minute, tzinfo=desk.clinic.timezone)
    return add(desk, appointment, patient_id=patient_id, provider_id=provider_id,
               starts_at=starts, ends_at=starts + timedelta(minutes=30), status=status,
               **values)


def queued(desk: Desk) -> list[Any]:
    with desk.engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


def seed_chart(desk: Desk) -> dict[str, uuid.UUID]:
    """A patient with something of everything; another doctor wrote the signed note."""
    ids: dict[str, uuid.UUID] = {}
    colleague = uuid7()
    doctor_provider(desk)
    doctor_provider(desk, "Dr. Tomás Vidal", colleague)
    ids["patient"] = person(desk, "Iñés", "Núñez Vera", "P-000007",
                            date_of_birth=date(1988, 6, 14), sex="female")
    pid = ids["patient"]
    add(desk, allergy, patient_id=pid, substance="Penicilina", severity="severe",
        formulary_ref="class:penicillin", reaction="Urticaria", status="active")
    add(desk, allergy, patient_id=pid, substance="Látex", severity="mild", status="resolved")
    add(desk, condition, patient_id=pid, description="Hipertensión arterial", code="I10",
        status="active")
    add(desk, medication, patient_id=pid, name="Losartán 50 mg", dose="1 al día",
        status="active")
    add(desk, vital_signs, patient_id=pid, measured_at=NOON - timedelta(days=30),
        systolic_mmhg=150, diastolic_mmhg=95, heart_rate_bpm=80)
    add(desk, vital_signs, patient_id=pid, measured_at=NOON - timedelta(hours=1),
        systolic_mmhg=132, diastolic_mmhg=84, heart_rate_bpm=72, temperature_c=36.8)
    ids["signed"] = add(desk, clinical_note, patient_id=pid, author_id=colleague,
                        status="signed", body="Control de presión.\nPA 132/84.",
                        created_at=NOON - timedelta(days=3),
                        signed_at=NOON - timedelta(days=3))
    ids["addendum"] = add(desk, clinical_note, patient_id=pid, author_id=colleague,
                          status="signed", body="Resultado de laboratorio revisado.",
                          addendum_to=ids["signed"], created_at=NOON - timedelta(days=2),
                          signed_at=NOON - timedelta(days=2))
    ids["draft"] = add(desk, clinical_note, patient_id=pid, author_id=desk.session.user_id,
                       status="draft", body="Consulta por cefalea.",
                       created_at=NOON - timedelta(hours=2))
    add(desk, clinical_note, patient_id=pid, author_id=colleague, status="draft",
        body="Borrador ajeno.", created_at=NOON - timedelta(hours=1))
    shop = add(desk, pharmacy, name="Farmacia Cruz Verde Providencia",
               address="Av. Providencia 1234", registry_number="F-1001")
    ids["prescription"] = add(
        desk, prescription, patient_id=pid, prescriber_id=desk.session.user_id,
        signed_at=NOON - timedelta(days=1), formulary_version="2026.1", acknowledgements=[],
        signing_key_id=uuid7(), signature="MEUC", pharmacy_id=shop, status="dispensed")
    add(desk, prescription_item, prescription_id=ids["prescription"], position=1,
        medicine_id="amlodipine", medicine_name="Amlodipino", strength="5 mg", form="tablet",
        dose="1 tablet", route="oral", frequency="once daily", duration_days=30, quantity=30)
    ids["lab"] = add(desk, lab_order, patient_id=pid, ordered_by=desk.session.user_id,
                     tests=["cbc"], priority="urgent", status="completed",
                     completed_at=NOON - timedelta(days=2), created_at=NOON - timedelta(days=4))
    for analyte, value, flag, low, high in (("hgb", "10.1", "low", 12.0, 17.5),
                                            ("wbc", "7.2", "normal", 4.0, 11.0),
                                            ("plt", "980", "critical_high", 150.0, 450.0)):
        add(desk, lab_result, lab_order_id=ids["lab"], patient_id=pid, test_code="cbc",
            analyte=analyte, value=value, value_numeric=float(value), unit="x",
            ref_low=low, ref_high=high, flag=flag, entered_by=uuid7(),
            entered_at=NOON - timedelta(days=2))
    return ids


def open_chart(qtbot: QtBot, desk: Desk, patient_id: uuid.UUID) -> ChartView:
    chart = ChartView(desk, today=lambda: date(2026, 3, 9))
    qtbot.addWidget(chart)
    chart.resize(1280, 800)
    with qtbot.waitSignal(chart.timeline_loaded, timeout=10_000):
        chart.open_patient(patient_id)
    return chart


def top_texts(chart: ChartView) -> list[str]:
    return [chart.timeline.topLevelItem(i).text(1)
            for i in range(chart.timeline.topLevelItemCount())]


# --- the queue ------------------------------------------------------------------------------


def test_the_queue_puts_who_is_waiting_first_with_the_wait(qtbot: QtBot, doctor: Desk
                                                           ) -> None:
    mine = doctor_provider(doctor)
    someone_else = add(doctor, provider, display_name="Dr. Otro", user_id=uuid7())
    names = {key: person(doctor, given, family, f"P-{n:06d}")
             for n, (key, given, family) in enumerate((
                 ("a", "Ana", "Soto"), ("b", "Beto", "Paz"), ("c", "Carla", "Ríos"),
                 ("d", "Diego", "Mena"), ("e", "Eva", "Lagos")), 1)}
    arrived = Hlc(int((NOON - timedelta(minutes=25)).timestamp() * 1000), 0, "desk").pack()
    visit(doctor, mine, names["a"], "09:00", "booked")
    visit(doctor, mine, names["b"], "10:00", "checked_in", field_stamps={"status": arrived})
    visit(doctor, mine, names["c"], "08:00", "completed")
    visit(doctor, mine, names["d"], "09:30", "in_progress")
    visit(doctor, mine, names["e"], "11:00", "cancelled")
    visit(doctor, someone_else, names["e"], "12:00", "checked_in")
    queue = QueueView(doctor, now=lambda: NOON)
    qtbot.addWidget(queue)
    qtbot.waitUntil(lambda: queue.list.count() == 4, timeout=10_000)
    assert [queue.list.item(i).text() for i in range(4)] == [
        "09:30  Mena, Diego\nIn consultation",
        "10:00  Paz, Beto\nChecked in · waiting 25 min",
        "09:00  Soto, Ana\nBooked",
        "08:00  Ríos, Carla\nSeen",
    ]
    with qtbot.waitSignal(queue.patient_chosen) as chosen:
        queue.list.setCurrentRow(1)
        queue.list.itemClicked.emit(queue.list.item(1))
    assert chosen.args[0] == names["b"]

    # The front desk checks Ana in on this computer: the queue follows.
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(appointment.update().where(appointment.c.patient_id == names["a"])
                     .values(status="checked_in"))
    doctor.changed("appointment")
    qtbot.waitUntil(lambda: queue.list.item(0).text().startswith("09:00  Soto"),
                    timeout=10_000)
    # Checked in here and not yet synced: no stamp, so no made-up wait time.
    assert queue.list.item(0).text() == "09:00  Soto, Ana\nChecked in"


def test_the_search_finds_a_patient_who_is_not_on_todays_list(qtbot: QtBot, doctor: Desk
                                                              ) -> None:
    wanted = person(doctor, "Rodrigo", "Fuentealba", "P-000042")
    person(doctor, "Ramón", "Álvarez", "P-000043")
    view = ConsultationView(doctor)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.queue.empty.isVisibleTo(view.queue), timeout=10_000)
    qtbot.keyClicks(view.queue.search, "fuenteal")
    results = view.queue.results
    qtbot.waitUntil(lambda: results.count() == 1 and results.isVisibleTo(view.queue),
                    timeout=10_000)
    assert results.item(0).text() == "Fuentealba, Rodrigo · P-000042"
    with qtbot.waitSignal(view.chart.loaded, timeout=10_000):
        results.itemClicked.emit(results.item(0))
    assert view.chart.patient_id == wanted
    assert view.chart.name.text() == "Fuentealba, Rodrigo"
    view.queue.search.clear()
    qtbot.waitUntil(lambda: not results.isVisibleTo(view.queue), timeout=5_000)


# --- the chart ------------------------------------------------------------------------------


def test_the_chart_paints_the_banner_the_lists_and_the_timeline(qtbot: QtBot, doctor: Desk
                                                                ) -> None:
    ids = seed_chart(doctor)
    chart = open_chart(qtbot, doctor, ids["patient"])
    assert chart.name.text() == "Núñez Vera, Iñés"
    assert chart.details.text() == "37 years · Female · Record P-000007"
    assert chart.banner.text() == "Allergies: Penicilina (severe)"
    assert chart.banner.property("state") == "allergic"
    lists = {e: [chart.record_lists[e].item(i).text()
                 for i in range(chart.record_lists[e].count())] for e in chart.record_lists}
    assert lists["allergy"] == ["Penicilina — Urticaria (severe)", "Látex (mild) · resolved"]
    assert lists["condition"] == ["Hipertensión arterial (I10)"]
    assert lists["medication"] == ["Losartán 50 mg · 1 al día"]
    assert lists["vital_signs"] == [
        "2026-03-09 11:00 · BP 132/84 mmHg · HR 72 bpm · T 36.8 °C",
        "2026-02-07 12:00 · BP 150/95 mmHg · HR 80 bpm"]

    # Newest first; the colleague's draft is not shown, my draft is marked.
    assert top_texts(chart) == [
        "Note: Consulta por cefalea.",
        "Prescription: Amlodipino 5 mg",
        "Note: Control de presión.",
        "Lab order: Complete blood count · urgent",
    ]
    timeline = chart.timeline
    draft, script, note, lab = (timeline.topLevelItem(i) for i in range(4))
    assert draft.text(2) == "Draft"
    assert draft.font(1).italic()
    assert note.text(2) == "Signed by Dr. Tomás Vidal"
    assert note.childCount() == 1
    assert note.child(0).text(1) == "Addendum: Resultado de laboratorio revisado."
    assert script.text(2) == "Dispensed by Farmacia Cruz Verde Providencia"
    assert script.child(0).text(1) == ("Amlodipino 5 mg tablet · 1 tablet oral once daily · "
                                       "30 days · quantity 30")
    assert lab.text(2) == "Results in · abnormal results"
    results = [(lab.child(i).text(1), lab.child(i).text(2), lab.child(i).font(1).bold(),
                lab.child(i).foreground(1).color() == RED) for i in range(lab.childCount())]
    assert results == [
        ("Haemoglobin: 10.1 x (12–17.5)", "L", True, True),
        ("White cells: 7.2 x (4–11)", "", False, False),
        ("Platelets: 980 x (150–450)", "HH", True, True),
    ]

    # A signed note (or addendum) takes an addendum; a draft does not.
    timeline.setCurrentItem(draft)
    assert not chart.buttons["add_addendum"].isEnabled()
    assert chart.detail.toPlainText() == "Consulta por cefalea."
    timeline.setCurrentItem(note.child(0))
    assert chart.buttons["add_addendum"].isEnabled()
    timeline.setCurrentItem(lab)
    assert "Platelets: 980 x (150–450)  HH" in chart.detail.toPlainText()


def test_an_empty_or_clear_allergy_record_reads_as_such(qtbot: QtBot, doctor: Desk) -> None:
    never = person(doctor, "Luis", "Parra", "P-000100")
    chart = open_chart(qtbot, doctor, never)
    assert (chart.banner.text(), chart.banner.property("state")) == (
        "Allergies not recorded", "unknown")
    cleared = person(doctor, "Marta", "Gil", "P-000101")
    add(doctor, allergy, patient_id=cleared, substance="Polen", status="resolved")
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        chart.open_patient(cleared)
    assert (chart.banner.text(), chart.banner.property("state")) == (
        "No known allergies", "none")


def test_a_long_history_paints_the_newest_first_and_the_rest_after(qtbot: QtBot,
                                                                   doctor: Desk) -> None:
    pid = person(doctor, "Rosa", "Muñoz", "P-000200")
    for n in range(25):
        at = NOON - timedelta(days=n)
        add(doctor, clinical_note, patient_id=pid, author_id=doctor.session.user_id,
            status="signed", body=f"Control {n}", created_at=at, signed_at=at)
    chart = ChartView(doctor)
    qtbot.addWidget(chart)
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        chart.open_patient(pid)
    assert chart.timeline.topLevelItemCount() == 20
    assert chart.more.isVisibleTo(chart)
    assert chart.more.text() == "Loading older entries (25 in all)…"
    with qtbot.waitSignal(chart.timeline_loaded, timeout=10_000):
        pass
    assert top_texts(chart) == [f"Note: Control {n}" for n in range(25)]
    assert not chart.more.isVisibleTo(chart)


def test_opening_a_chart_is_queued_for_the_audit_log_once(qtbot: QtBot, doctor: Desk) -> None:
    ids = seed_chart(doctor)
    chart = open_chart(qtbot, doctor, ids["patient"])
    chart.open_patient(ids["patient"])  # chosen again from the queue: the same reading
    doctor.changed("allergy")  # a refresh is not a new reading either
    qtbot.waitSignal(chart.loaded, timeout=10_000).wait()
    rows = on_db_worker(qtbot, doctor, lambda: queued(doctor))
    assert [(r.entity, r.op, r.record_id, r.changes) for r in rows] == [
        ("chart", "read", ids["patient"], {})]


def test_an_addendum_starts_from_the_timeline_and_shows_under_its_note(
    qtbot: QtBot, doctor: Desk
) -> None:
    ids = seed_chart(doctor)
    chart = open_chart(qtbot, doctor, ids["patient"])
    chart.timeline.setCurrentItem(chart.timeline.topLevelItem(2))
    qtbot.mouseClick(chart.buttons["add_addendum"], LEFT)
    editor = chart.dialog
    assert isinstance(editor, NoteEditor)
    qtbot.waitUntil(lambda: editor.editable, timeout=10_000)
    assert editor.note_id != ids["signed"]
    assert editor.heading.text() == "Núñez Vera, Iñés · Addendum to the note of 2026-03-06 12:00"
    editor.body.setPlainText("Paciente trae examen de orina normal.")
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        editor.sign()
    qtbot.waitUntil(lambda: editor.addendum_button.isVisible(), timeout=10_000)
    qtbot.waitUntil(lambda: chart.timeline.topLevelItem(2).childCount() == 2, timeout=10_000)
    child = chart.timeline.topLevelItem(2).child(1)
    assert child.text(1) == "Addendum: Paciente trae examen de orina normal."
    assert child.text(2) == "Signed by Dra. Ana Rojas"
    rows = on_db_worker(qtbot, doctor, lambda: queued(doctor))
    started = next(r for r in rows if r.entity == "clinical_note" and r.base_version is None)
    assert started.changes["addendum_to"] == str(ids["signed"])
    assert [r.op for r in rows if r.record_id == editor.note_id] == ["upsert", "upsert", "sign"]
    editor.request_close()


def test_a_new_note_opens_the_editor_on_a_draft_for_the_visit(qtbot: QtBot, doctor: Desk
                                                               ) -> None:
    pid = person(doctor, "Iván", "Tapia", "P-000300")
    chart = open_chart(qtbot, doctor, pid)
    appointment_id = uuid7()
    chart.open_patient(pid, appointment_id)
    qtbot.mouseClick(chart.buttons["new_note"], LEFT)
    qtbot.waitUntil(lambda: isinstance(chart.dialog, NoteEditor), timeout=10_000)
    editor = chart.dialog
    qtbot.waitUntil(lambda: editor.editable, timeout=10_000)
    qtbot.waitUntil(lambda: top_texts(chart) == ["Note: (empty)"], timeout=10_000)
    [row] = [r for r in on_db_worker(qtbot, doctor, lambda: queued(doctor))
             if r.entity == "clinical_note"]
    assert row.changes == {"patient_id": str(pid), "body": "",
                           "appointment_id": str(appointment_id)}
    editor.request_close()


# --- ordering tests -------------------------------------------------------------------------


def test_lab_tests_are_found_picked_and_ordered(qtbot: QtBot, doctor: Desk) -> None:
    pid = person(doctor, "Iván", "Tapia", "P-000300")
    chart = open_chart(qtbot, doctor, pid)
    qtbot.mouseClick(chart.buttons["order_tests"], LEFT)
    dialog = chart.dialog
    assert isinstance(dialog, LabOrderDialog)
    assert not dialog.order_button.isEnabled()  # nothing picked yet
    qtbot.keyClicks(dialog.search, "glucosa")
    assert dialog.results.currentItem().text() == "Fasting glucose (glucose)"
    qtbot.mouseClick(dialog.add_button, LEFT)
    dialog.search.setText("hba1c")
    qtbot.mouseClick(dialog.add_button, LEFT)
    qtbot.mouseClick(dialog.add_button, LEFT)  # the same test twice is one test
    assert dialog.chosen == ["glucose", "hba1c"]
    dialog.priority.setCurrentIndex(dialog.priority.findData("urgent"))
    dialog.info.setPlainText("Polidipsia y poliuria.")
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.order_button, LEFT)
    assert dialog.order_id is not None
    assert top_texts(chart) == ["Lab order: Fasting glucose, Glycated haemoglobin · urgent"]
    assert chart.timeline.topLevelItem(0).text(2) == "Ordered"
    [row] = [r for r in on_db_worker(qtbot, doctor, lambda: queued(doctor))
             if r.entity == "lab_order"]
    assert (row.op, row.record_id) == ("upsert", dialog.order_id)
    assert row.changes == {"patient_id": str(pid), "appointment_id": None,
                           "tests": ["glucose", "hba1c"], "priority": "urgent",
                           "clinical_info": "Polidipsia y poliuria."}


def test_an_order_that_cannot_be_placed_says_why_and_keeps_the_picks(
    qtbot: QtBot, doctor: Desk
) -> None:
    dialog = LabOrderDialog(doctor, uuid7())  # a patient this computer does not have
    qtbot.addWidget(dialog)
    dialog.add("tsh")
    qtbot.mouseClick(dialog.order_button, LEFT)
    qtbot.waitUntil(lambda: dialog.findChild(QMessageBox, "error_message") is not None,
                    timeout=10_000)
    box = dialog.findChild(QMessageBox, "error_message")
    assert box.text() == ("The order was not placed: this patient is not on this computer; "
                          "sync, then try again.")
    assert dialog.chosen == ["tsh"]
    assert dialog.order_button.isEnabled()
    assert on_db_worker(qtbot, doctor, lambda: queued(doctor)) == []


# --- the workspaces -------------------------------------------------------------------------


def test_each_clinical_role_gets_its_workspace_and_only_doctors_the_key(
    qtbot: QtBot, doctor: Desk
) -> None:
    window = MainWindow(doctor, SyncController(doctor, None))
    qtbot.addWidget(window)
    assert list(window.workspaces) == ["consultation", "calendar", "patients"]
    assert window.tabs.tabText(0) == "Consultation"
    assert isinstance(window.workspaces["consultation"], ConsultationView)
    assert window.key_action is not None
    assert window.key_action.text() == "Prescribing key…"
    window.shut()
    for role, name, title in (("pharmacist", "pharmacy", "Pharmacy"),
                              ("lab_tech", "lab", "Laboratory")):
        doctor.session = dataclasses.replace(doctor.session, role=role)
        other = MainWindow(doctor, SyncController(doctor, None))
        qtbot.addWidget(other)
        assert list(other.workspaces) == [name]
        assert other.tabs.tabText(0) == title
        assert other.key_action is None
        other.shut()


def test_the_confirmation_box_runs_its_action_only_on_yes(qtbot: QtBot, doctor: Desk) -> None:
    chart = ChartView(doctor)
    qtbot.addWidget(chart)
    said: list[str] = []
    box = ask(chart, "Title", "Sure?", "Yes", lambda: said.append("yes"))
    box.reject()
    assert said == []
    box = ask(chart, "Title", "Sure?", "Yes", lambda: said.append("yes"))
    qtbot.mouseClick(box.findChild(QPushButton, "confirm_yes"), LEFT)
    assert said == ["yes"]


def test_no_patient_shows_how_to_start(qtbot: QtBot, doctor: Desk) -> None:
    chart = ChartView(doctor)
    qtbot.addWidget(chart)
    assert chart.stack.currentWidget() is chart.placeholder
    assert chart.placeholder.text() == "Choose a patient from today's list, or find one."


def test_a_note_opened_twice_has_one_editor(qtbot: QtBot, doctor: Desk) -> None:
    ids = seed_chart(doctor)
    chart = open_chart(qtbot, doctor, ids["patient"])
    draft = chart.timeline.topLevelItem(0)
    chart.timeline.itemDoubleClicked.emit(draft, 1)
    first = chart.dialog
    assert isinstance(first, NoteEditor)
    chart.timeline.itemDoubleClicked.emit(draft, 1)
    assert chart.dialog is first
    qtbot.waitUntil(lambda: first.editable, timeout=10_000)
    assert first.body.toPlainText() == "Consulta por cefalea."
    first.request_close()
    qtbot.waitUntil(lambda: chart.editors == {}, timeout=10_000)  # gone with its window


def test_a_prescription_the_server_refused_says_so_with_its_reason() -> None:
    reason = "The prescriber's key was revoked; it was not accepted."
    text = prescription_status({"status": NOT_ACCEPTED, "status_reason": reason,
                                "pharmacy_id": None}, {})
    assert text.startswith("Not accepted by the server")
    assert reason in text
    i18n.set_language("es")
    try:
        assert prescription_status({"status": NOT_ACCEPTED, "status_reason": reason,
                                    "pharmacy_id": None}, {}).startswith(
            "No aceptada por el servidor")
    finally:
        i18n.set_language("en")
