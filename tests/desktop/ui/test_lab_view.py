"""The lab technician's workspace against a real server: urgent orders first, the steps
an order may take now, the results table pre-filled from the catalogue, flags shown once
the server has them, and the server's refusals (completing with results missing) in a
dialog."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import update

from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.lab import LabView
from desktop.ui.qt import QMessageBox, Qt
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.tables import lab_order, patient
from sync_server.actions.clinics import scope
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import SANTIAGO
from tests.e2e.computers import enrolled_desk
from tests.factories import ClinicData, Factory

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def lab(tmp_path: Path, tasks: Tasks, live_server: LiveServer, factory: Factory
        ) -> Iterator[tuple[ClinicData, Desk]]:
    clinic = factory.clinic(patients=2, providers=1)
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(patient).where(patient.c.id == clinic.patient_ids[0]).values(
            given_name="Valentina", family_name="Muñoz"))
        conn.execute(update(patient).where(patient.c.id == clinic.patient_ids[1]).values(
            given_name="Jorge", family_name="Fuentes"))
    http = httpx.Client(base_url=live_server.url, timeout=30)
    engine, session, link = enrolled_desk(http, factory, clinic, tmp_path / "lab.db",
                                          role=Role.LAB_TECH)
    yield clinic, Desk(tasks=tasks, engine=engine, session=session,
                       clock=HybridClock("lab"), clinic=SANTIAGO, server=link)
    tasks.wait(10_000)
    http.close()
    engine.dispose()


def _urgent(factory: Factory, clinic: ClinicData, order_id: uuid.UUID) -> None:
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(lab_order).where(lab_order.c.id == order_id).values(
            priority="urgent", clinical_info="Sospecha de sepsis urinaria"))


def _view(qtbot: QtBot, desk: Desk) -> LabView:
    view = LabView(desk)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitUntil(lambda: view.refresh_button.isEnabled(), timeout=10_000)
    return view


def _click(qtbot: QtBot, view: LabView, button: object) -> None:
    with qtbot.waitSignal(view.answered, timeout=10_000):
        qtbot.mouseClick(button, LEFT)  # type: ignore[arg-type]


def test_results_are_entered_and_the_abnormal_ones_show_their_flags(
    qtbot: QtBot, lab: tuple[ClinicData, Desk], factory: Factory
) -> None:
    clinic, desk = lab
    routine = factory.lab_order(clinic, tests=["cbc", "urinalysis", "glucose"])
    urgent = factory.lab_order(clinic, patient_id=clinic.patient_ids[1], tests=["glucose"])
    _urgent(factory, clinic, urgent)
    view = _view(qtbot, desk)
    assert [view.cell(r, "Priority") for r in range(2)] == ["URGENT", "routine"]
    assert view.cell(0, "Patient") == "Jorge Fuentes"
    assert view.cell(1, "Tests") == "Complete blood count, Urinalysis, Fasting glucose"

    view.select(routine)
    assert view.current is not None
    assert view.current.id == routine
    enabled = {s for s, b in view.step_buttons.items() if b.isEnabled()}
    assert enabled == {"sample_received", "cancelled"}
    assert not view.save_button.isEnabled()
    assert view.results.rowCount() == 5 + 6 + 1  # every analyte of the three tests
    assert view.result_cell("cbc", "hgb", "Unit") == "g/dL"
    assert view.result_cell("cbc", "hgb", "Reference") == "12–17.5"
    assert view.result_cell("urinalysis", "nitrite", "Reference") == "negative"

    _click(qtbot, view, view.step_buttons["sample_received"])
    assert view.status.text() == "Status: Sample received"
    assert view.cell(1, "Status") == "Sample received"
    assert view.save_button.isEnabled()
    view.set_value("cbc", "hgb", "6.5")
    view.set_value("cbc", "wbc", "12,4")
    view.set_value("cbc", "plt", "250")
    view.set_value("urinalysis", "nitrite", "positive")
    # A refresh, or a look at another order, keeps what was typed and not saved yet.
    with qtbot.waitSignal(view.loaded, timeout=10_000):
        qtbot.mouseClick(view.refresh_button, LEFT)
    view.select(urgent)
    assert view.result_cell("glucose", "glucose", "Value") == ""
    view.select(routine)
    assert view.result_cell("cbc", "wbc", "Value") == "12,4"
    assert view.result_cell("urinalysis", "nitrite", "Value") == "positive"
    _click(qtbot, view, view.save_button)
    assert view.result_cell("cbc", "hgb", "Flag") == "LL critical low"
    assert view.result_cell("cbc", "wbc", "Flag") == "H high"
    assert view.result_cell("cbc", "plt", "Flag") == "normal"
    assert view.result_cell("urinalysis", "nitrite", "Flag") == "A abnormal"
    assert view.result_cell("cbc", "hct", "Flag") == ""
    flag = view.results.item(view.result_row("cbc", "hgb"), 5)
    assert flag.foreground().color().name() == "#b00020"

    # Completing with tests still missing results: the server says which, in a dialog.
    _click(qtbot, view, view.step_buttons["processing"])
    _click(qtbot, view, view.step_buttons["completed"])
    box = view.findChild(QMessageBox, "lab_refused")
    assert box is not None
    assert box.text() == "Enter results for Fasting glucose before completing the order."
    assert view.status.text() == "Status: Processing"
    assert view.result_cell("cbc", "hgb", "Value") == "6.5"  # nothing typed is lost
    view.set_value("glucose", "glucose", "92")
    _click(qtbot, view, view.save_button)
    assert view.result_cell("glucose", "glucose", "Flag") == "normal"
    _click(qtbot, view, view.step_buttons["completed"])
    assert view.status.text() == "Status: Completed"
    assert not view.save_button.isEnabled()
    assert not any(b.isEnabled() for b in view.step_buttons.values())


def test_an_order_is_cancelled_with_the_labs_reason(
    qtbot: QtBot, lab: tuple[ClinicData, Desk], factory: Factory
) -> None:
    clinic, desk = lab
    factory.lab_order(clinic, tests=["glucose"], status="sample_received")
    view = _view(qtbot, desk)
    qtbot.mouseClick(view.step_buttons["cancelled"], LEFT)
    dialog = view.reason_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.reason, "Sample haemolysed")
    with qtbot.waitSignal(view.answered, timeout=10_000):
        qtbot.mouseClick(dialog.ok_button, LEFT)
    assert view.status.text() == "Status: Cancelled: Sample haemolysed"
    assert not any(b.isEnabled() for b in view.step_buttons.values())
    assert not view.save_button.isEnabled()


def test_the_worklist_reads_in_spanish(
    qtbot: QtBot, lab: tuple[ClinicData, Desk], factory: Factory
) -> None:
    clinic, desk = lab
    factory.lab_order(clinic, tests=["glucose"], status="sample_received")
    view = _view(qtbot, desk)
    i18n.set_language("es")
    assert view.cell(0, "Tests") == "Glucosa en ayuno"
    assert view.cell(0, "Status") == "Muestra recibida"
    assert view.save_button.text() == "Guardar resultados"
    assert view.result_cell("glucose", "glucose", "Analyte") == "Glucosa"


def test_offline_the_lab_says_it_works_online(qtbot: QtBot, desk: Desk) -> None:
    view = _view(qtbot, desk)
    assert view.note.text() == ("The lab works online, and this computer cannot reach the "
                                "server now. The worklist shows here again when it is back.")
    assert view.table.rowCount() == 0
