"""The chart's lists on a real store with the real workers: an allergy typed wrongly is
refused in a message box with nothing stored and the dialog keeps what was typed; a good
one reaches the banner and the outbox with its formulary match; a reading out of range
is refused; an edit queues only what changed; a removal asks first and leaves a
tombstone."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, select

from desktop.store.local import outbox
from desktop.ui.chart import ChartView
from desktop.ui.chart_records import RecordDialog, record_text
from desktop.ui.desk import Desk
from desktop.ui.qt import QMessageBox, QPushButton, Qt
from shared_models.ids import uuid7
from shared_models.tables import allergy, condition, medication, patient, vital_signs
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def doctor(desk: Desk) -> Desk:
    desk.session = dataclasses.replace(desk.session, role="doctor")
    return desk


@pytest.fixture
def patient_id(doctor: Desk) -> uuid.UUID:
    pid = uuid7()
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=doctor.session.clinic_id, id=pid, mrn="P-000051", given_name="Camila",
            family_name="Herrera", date_of_birth=date(1979, 1, 5), sex="female",
            preferred_channels=[]))
    return pid


@pytest.fixture
def chart(qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID) -> ChartView:
    view = ChartView(doctor)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        view.open_patient(patient_id)
    return view


def stored(desk: Desk, table: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    with desk.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(table))]
        queue = list(conn.execute(select(outbox.c.entity, outbox.c.op, outbox.c.changes,
                                         outbox.c.base).where(outbox.c.entity != "chart")
                                  .order_by(outbox.c.seq)))
    return rows, queue


def error_box(qtbot: QtBot, dialog: RecordDialog) -> QMessageBox:
    qtbot.waitUntil(lambda: dialog.findChild(QMessageBox, "error_message") is not None,
                    timeout=10_000)
    box = dialog.findChild(QMessageBox, "error_message")
    assert isinstance(box, QMessageBox)
    return box


def test_an_allergy_with_no_substance_is_refused_and_nothing_is_stored(
    qtbot: QtBot, doctor: Desk, chart: ChartView
) -> None:
    qtbot.mouseClick(chart.record_buttons["allergy"]["add"], LEFT)
    dialog = chart.dialog
    assert isinstance(dialog, RecordDialog)
    assert dialog.windowTitle() == "Add allergy"
    qtbot.keyClicks(dialog.inputs["substance"], "   ")
    qtbot.keyClicks(dialog.inputs["reaction"], "Anafilaxia")
    qtbot.mouseClick(dialog.save_button, LEFT)
    box = error_box(qtbot, dialog)
    assert box.text() == "The allergy was not saved: substance cannot be empty."
    assert box.windowTitle() == "Add allergy"
    assert dialog.isVisible()
    assert dialog.inputs["reaction"].text() == "Anafilaxia"
    assert dialog.save_button.isEnabled()
    assert on_db_worker(qtbot, doctor, lambda: stored(doctor, allergy)) == ([], [])
    assert chart.banner.text() == "Allergies not recorded"


def test_an_allergy_matched_to_the_formulary_reaches_the_banner_and_the_outbox(
    qtbot: QtBot, doctor: Desk, chart: ChartView, patient_id: uuid.UUID
) -> None:
    dialog = chart.add_record("allergy")
    assert dialog is not None
    qtbot.keyClicks(dialog.inputs["substance"], "Penicil")
    match = dialog.inputs["formulary_ref"]
    labels = [match.itemText(i) for i in range(match.count())]
    assert labels[0] == "Not in the formulary"
    assert "Penicillins (class)" in labels
    match.setCurrentIndex(match.findData("class:penicillin"))
    qtbot.keyClicks(dialog.inputs["substance"], "ina")  # the choice survives more typing
    assert match.currentData() == "class:penicillin"
    dialog.inputs["severity"].setCurrentIndex(dialog.inputs["severity"].findData("severe"))
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert not dialog.isVisible()
    assert chart.banner.text() == "Allergies: Penicilina (severe)"
    assert chart.record_lists["allergy"].item(0).text() == "Penicilina (severe)"
    [row], [queued] = on_db_worker(qtbot, doctor, lambda: stored(doctor, allergy))
    assert (row["substance"], row["formulary_ref"], row["recorded_by"]) == (
        "Penicilina", "class:penicillin", doctor.session.user_id)
    assert (queued.entity, queued.op) == ("allergy", "upsert")
    assert queued.changes == {"patient_id": str(patient_id), "substance": "Penicilina",
                              "formulary_ref": "class:penicillin", "reaction": None,
                              "severity": "severe", "status": "active"}


@pytest.mark.parametrize(("typed", "message"), [
    ({"systolic_mmhg": "120", "diastolic_mmhg": "130"},
     "The vital signs reading was not saved: the diastolic pressure must be lower than the "
     "systolic."),
    ({"temperature_c": "3,7"},
     "The vital signs reading was not saved: temperature_c 3.7 is outside 30-45 °C; check "
     "the reading."),
    ({"heart_rate_bpm": "setenta"},
     "The vital signs reading was not saved: heart rate bpm: Input should be a valid "
     "integer, unable to parse string as an integer."),
    ({"measured_at": "ayer", "spo2_pct": "97"},
     "Write the time of the reading as YYYY-MM-DD HH:MM."),
    ({}, "The vital signs reading was not saved: record at least one measurement."),
])
def test_a_reading_that_cannot_be_right_is_refused(
    qtbot: QtBot, doctor: Desk, chart: ChartView, typed: dict[str, str], message: str
) -> None:
    dialog = chart.add_record("vital_signs")
    assert dialog is not None
    for field, text in typed.items():
        dialog.inputs[field].setText(text)
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert error_box(qtbot, dialog).text() == message
    assert on_db_worker(qtbot, doctor, lambda: stored(doctor, vital_signs)) == ([], [])


def test_a_reading_is_recorded_at_the_clinic_time_typed(
    qtbot: QtBot, doctor: Desk, chart: ChartView
) -> None:
    dialog = chart.add_record("vital_signs")
    assert dialog is not None
    dialog.inputs["measured_at"].setText("2026-03-09 10:15")
    for field, text in (("systolic_mmhg", "118"), ("diastolic_mmhg", "76"),
                        ("temperature_c", "36,9"), ("weight_kg", "64.5")):
        dialog.inputs[field].setText(text)
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.save_button, LEFT)
    [row], _queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, vital_signs))
    assert row["measured_at"] == datetime(2026, 3, 9, 13, 15, tzinfo=UTC)
    assert chart.record_lists["vital_signs"].item(0).text() == (
        "2026-03-09 10:15 · BP 118/76 mmHg · T 36.9 °C · 64.5 kg")


def test_an_edit_queues_only_what_changed_and_a_resolved_allergy_clears_the_banner(
    qtbot: QtBot, doctor: Desk, chart: ChartView, patient_id: uuid.UUID
) -> None:
    allergy_id = uuid7()
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(insert(allergy).values(
            clinic_id=doctor.session.clinic_id, id=allergy_id, patient_id=patient_id,
            substance="Ácido acetilsalicílico", reaction="Broncoespasmo", severity="moderate",
            status="active", server_version=12))
    doctor.changed("allergy")
    qtbot.waitUntil(lambda: chart.banner.text().startswith("Allergies: Ácido"), timeout=10_000)
    chart.record_lists["allergy"].setCurrentRow(0)
    dialog = chart.edit_record("allergy")
    assert dialog is not None
    assert dialog.windowTitle() == "Edit allergy"
    assert dialog.inputs["substance"].text() == "Ácido acetilsalicílico"
    dialog.inputs["status"].setCurrentIndex(dialog.inputs["status"].findData("resolved"))
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert chart.banner.text() == "No known allergies"
    assert chart.record_lists["allergy"].item(0).text() == (
        "Ácido acetilsalicílico — Broncoespasmo (moderate) · resolved")
    _rows, [queued] = on_db_worker(qtbot, doctor, lambda: stored(doctor, allergy))
    assert (queued.op, queued.changes, queued.base) == (
        "upsert", {"status": "resolved"}, {"status": "active"})


def test_removing_a_condition_asks_first_and_leaves_a_tombstone(
    qtbot: QtBot, doctor: Desk, chart: ChartView, patient_id: uuid.UUID
) -> None:
    condition_id = uuid7()
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(insert(condition).values(
            clinic_id=doctor.session.clinic_id, id=condition_id, patient_id=patient_id,
            description="Asma bronquial", code="J45", status="active", server_version=3))
    doctor.changed("condition")
    qtbot.waitUntil(lambda: chart.record_lists["condition"].item(0).text()
                    == "Asma bronquial (J45)", timeout=10_000)
    assert not chart.record_buttons["condition"]["remove"].isEnabled()
    chart.record_lists["condition"].setCurrentRow(0)
    assert chart.record_buttons["condition"]["remove"].isEnabled()
    qtbot.mouseClick(chart.record_buttons["condition"]["remove"], LEFT)
    box = chart.dialog
    assert isinstance(box, QMessageBox)
    assert box.text().startswith("Remove this condition from the chart?")
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(box.findChild(QPushButton, "confirm_yes"), LEFT)
    assert chart.record_lists["condition"].item(0).text() == "None recorded"
    [row], [queued] = on_db_worker(qtbot, doctor, lambda: stored(doctor, condition))
    assert row["deleted_at"] is not None
    assert (queued.entity, queued.op, queued.changes) == ("condition", "delete", {})


def test_a_medication_takes_its_formulary_medicine(qtbot: QtBot, doctor: Desk,
                                                   chart: ChartView) -> None:
    dialog = chart.add_record("medication")
    assert dialog is not None
    qtbot.keyClicks(dialog.inputs["name"], "metformin")
    match = dialog.inputs["medicine_id"]
    match.setCurrentIndex(match.findData("metformin"))
    dialog.inputs["dose"].setText("850 mg cada 12 horas")
    dialog.inputs["started_on"].setText("2025-11-02")
    with qtbot.waitSignal(chart.loaded, timeout=10_000):
        qtbot.mouseClick(dialog.save_button, LEFT)
    [row], _queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, medication))
    assert (row["medicine_id"], row["started_on"]) == ("metformin", date(2025, 11, 2))
    assert record_text("medication", row, doctor.clinic.timezone) == (
        "metformin · 850 mg cada 12 horas")
