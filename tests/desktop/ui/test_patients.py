"""The patient list: search answers as one types, the form shows each problem beside its
field and saves nothing until they are fixed, and a new patient reaches the store and the
outbox."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, select

from desktop.store.local import outbox
from desktop.ui.desk import Desk
from desktop.ui.patients import PatientDialog, PatientsView
from desktop.ui.qt import Qt
from shared_models.ids import uuid7
from shared_models.tables import patient
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton


def _seed(desk: Desk) -> None:
    people = [("Iñés", "Núñez", "+56961234567"), ("Pedro", "Soto", None),
              ("Ana", "Nuñoa", "+56971112222")]
    with setup_io(), desk.engine.begin() as conn:
        conn.execute(insert(patient), [
            {"clinic_id": desk.session.clinic_id, "id": uuid7(), "mrn": f"P-{n:06d}",
             "given_name": given, "family_name": family, "phone": phone,
             "preferred_channels": []} for n, (given, family, phone) in enumerate(people)])


def _count_patients(desk: Desk) -> int:
    with desk.engine.connect() as conn:
        return len(conn.execute(select(patient.c.id)).all())


def test_search_answers_as_one_types(qtbot: QtBot, desk: Desk) -> None:
    _seed(desk)
    view = PatientsView(desk)
    qtbot.addWidget(view)
    qtbot.waitUntil(lambda: view.results.rowCount() == 3)
    qtbot.keyClicks(view.search, "nun")
    qtbot.waitUntil(lambda: view.results.rowCount() == 2)
    assert {view.results.item(i, 1).text() for i in range(2)} == {"Núñez, Iñés", "Nuñoa, Ana"}
    view.search.clear()
    qtbot.keyClicks(view.search, "4567")
    qtbot.waitUntil(lambda: view.results.rowCount() == 1)
    assert view.results.item(0, 1).text() == "Núñez, Iñés"
    view.search.clear()
    qtbot.keyClicks(view.search, "zzz")
    qtbot.waitUntil(lambda: view.results.rowCount() == 0)
    assert view.empty.isVisibleTo(view)


def test_problems_show_beside_their_fields_and_nothing_is_saved(
    qtbot: QtBot, desk: Desk
) -> None:
    dialog = PatientDialog(desk)
    qtbot.addWidget(dialog)
    dialog.inputs["family_name"].setText("Rojas")
    dialog.inputs["phone"].setText("12")
    dialog.inputs["email"].setText("no-es-correo")
    dialog.inputs["date_of_birth"].setText("31/12/1990")
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.errors["given_name"].text() == "Required."
    assert dialog.errors["phone"].text() == "Not a valid phone number; include the area code."
    assert dialog.errors["email"].text() == "Not a valid e-mail address."
    assert dialog.errors["date_of_birth"].text() == "Write the date as YYYY-MM-DD."
    assert not dialog.errors["family_name"].isVisibleTo(dialog)
    assert dialog.result() == 0
    assert on_db_worker(qtbot, desk, lambda: _count_patients(desk)) == 0


def test_a_new_patient_is_saved_locally_and_queued_for_the_server(
    qtbot: QtBot, desk: Desk
) -> None:
    view = PatientsView(desk)
    qtbot.addWidget(view)
    dialog = PatientDialog(desk, parent=view)
    for field, value in {"given_name": "Rosa", "family_name": "Ñancupil",
                         "phone": "9 6123 9999", "email": "Rosa@Correo.CL",
                         "date_of_birth": "1984-05-06"}.items():
        dialog.inputs[field].setText(value)
    with qtbot.waitSignal(desk.data_changed, timeout=5000):
        qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.result() == 1
    qtbot.keyClicks(view.search, "nancupil")
    qtbot.waitUntil(lambda: view.results.rowCount() == 1)
    assert view.results.item(0, 2).text() == "+56961239999"

    def queued() -> list[dict[str, object]]:
        with desk.engine.connect() as conn:
            return [r.changes for r in conn.execute(select(outbox))]
    [change] = on_db_worker(qtbot, desk, queued)
    assert change["email"] == "rosa@correo.cl"
    assert change["phone"] == "+56961239999"


def test_searching_on_the_gui_thread_is_refused(qtbot: QtBot, desk: Desk) -> None:
    from desktop import threads
    from desktop.store.search import search_patients

    with pytest.raises(threads.GuiThreadIOError, match="GUI thread"):
        search_patients(desk.engine, "ana")
    assert threads.violations == ["a query on the local store"]
    threads.violations.clear()  # this test made the violation on purpose


def test_reminder_channels_language_and_zone_are_chosen_on_the_form(
    qtbot: QtBot, desk: Desk
) -> None:
    dialog = PatientDialog(desk)
    qtbot.addWidget(dialog)
    for field, value in {"given_name": "Jordi", "family_name": "Puig",
                         "phone": "9 6123 8888", "email": "jordi@correo.es"}.items():
        dialog.inputs[field].setText(value)
    dialog.channels["email"].setChecked(True)
    dialog.channels["whatsapp"].setChecked(True)
    dialog.language.setCurrentIndex(dialog.language.findData("en"))
    dialog.zone.setCurrentIndex(dialog.zone.findData("Europe/Madrid"))
    with qtbot.waitSignal(desk.data_changed, timeout=5000):
        qtbot.mouseClick(dialog.save_button, LEFT)

    def stored() -> tuple[object, ...]:
        with desk.engine.connect() as conn:
            row = conn.execute(select(patient).where(patient.c.family_name == "Puig")).one()
            [change] = [r.changes for r in conn.execute(select(outbox))]
        return row.preferred_channels, row.preferred_language, row.timezone, change
    channels, language, zone, change = on_db_worker(qtbot, desk, stored)
    assert (channels, language, zone) == (["whatsapp", "email"], "en", "Europe/Madrid")
    assert isinstance(change, dict)
    assert (change["preferred_channels"], change["timezone"]) == (
        ["whatsapp", "email"], "Europe/Madrid")

    row = on_db_worker(qtbot, desk, lambda: _patient_row(desk, "Puig"))
    edit = PatientDialog(desk, current=row)
    qtbot.addWidget(edit)
    assert [c for c, box in edit.channels.items() if box.isChecked()] == ["whatsapp", "email"]
    assert edit.zone.currentData() == "Europe/Madrid"
    edit.channels["whatsapp"].setChecked(False)
    edit.zone.setCurrentIndex(0)  # the clinic's
    with qtbot.waitSignal(desk.data_changed, timeout=5000):
        qtbot.mouseClick(edit.save_button, LEFT)
    row = on_db_worker(qtbot, desk, lambda: _patient_row(desk, "Puig"))
    assert (row.preferred_channels, row.timezone) == (["email"], None)


def test_a_reminder_channel_without_its_address_is_refused_beside_the_field(
    qtbot: QtBot, desk: Desk
) -> None:
    dialog = PatientDialog(desk)
    qtbot.addWidget(dialog)
    dialog.inputs["given_name"].setText("Sin")
    dialog.inputs["family_name"].setText("Datos")
    dialog.channels["email"].setChecked(True)
    dialog.channels["sms"].setChecked(True)
    qtbot.mouseClick(dialog.save_button, LEFT)
    assert dialog.errors["email"].text() == "E-mail reminders need an e-mail address."
    assert dialog.errors["phone"].text() == "Text reminders need a phone number."
    assert dialog.result() == 0
    assert on_db_worker(qtbot, desk, lambda: _count_patients(desk)) == 0


def _patient_row(desk: Desk, family_name: str) -> object:
    with desk.engine.connect() as conn:
        return conn.execute(select(patient).where(patient.c.family_name == family_name)).one()
