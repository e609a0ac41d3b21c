"""The pharmacist's workspace against a real server: the prescriptions sent to their
pharmacy, each with its signature checked on this computer; receive, dispense and refuse
with a reason; a prescription altered in the database after signing shows the red
warning and cannot be dispensed; offline the workspace says it works online."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import Engine, text, update

from desktop.session import Session
from desktop.store.database import open_store
from desktop.ui.desk import Desk
from desktop.ui.pharmacy import PharmacyView, fingerprint_prefix
from desktop.ui.qt import QMessageBox, Qt
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import patient, prescription_item
from sync_server.actions.clinics import scope
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import SANTIAGO, setup_io
from tests.e2e.computers import enrolled_desk
from tests.factories import ClinicData, Factory, SigningKey, item

LEFT = Qt.MouseButton.LeftButton
TAMPERED = ("This prescription's signature does not match its content; it may have been "
            "altered. Do not dispense it; contact the prescriber.")


class Pharmacy:
    def __init__(self, clinic: ClinicData, pharmacy_id: uuid.UUID, key: SigningKey,
                 desk: Desk) -> None:
        self.clinic = clinic
        self.pharmacy_id = pharmacy_id
        self.key = key
        self.desk = desk


@pytest.fixture
def pharmacy(tmp_path: Path, tasks: Tasks, live_server: LiveServer, factory: Factory
             ) -> Iterator[Pharmacy]:
    clinic = factory.clinic(patients=2, providers=1)
    with factory.engine.begin() as conn:
        scope(conn, clinic.id)
        conn.execute(update(patient).where(patient.c.id == clinic.patient_ids[0]).values(
            given_name="Valentina", family_name="Muñoz", date_of_birth=date(1984, 5, 17)))
    pharmacy_id = factory.pharmacy(clinic, name="Farmacia Cruz Verde Providencia")
    key = factory.signing_key(clinic)
    http = httpx.Client(base_url=live_server.url, timeout=30)
    pharmacist = clinic.users[Role.PHARMACIST]
    with setup_io():
        linked = http.put(f"/api/v1/pharmacies/{pharmacy_id}/pharmacists/{pharmacist.id}",
                          headers=factory.headers(clinic.users[Role.ADMIN]))
        assert linked.status_code == 200, linked.text
    engine, session, link = enrolled_desk(http, factory, clinic, tmp_path / "farmacia.db",
                                          role=Role.PHARMACIST)
    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("farmacia"),
                clinic=SANTIAGO, server=link)
    yield Pharmacy(clinic, pharmacy_id, key, desk)
    tasks.wait(10_000)
    http.close()
    engine.dispose()


def _sent(factory: Factory, pharmacy: Pharmacy, **values: object) -> uuid.UUID:
    return factory.prescription(pharmacy.clinic, pharmacy.key, status="sent",
                                pharmacy_id=pharmacy.pharmacy_id, **values)  # type: ignore[arg-type]


def _view(qtbot: QtBot, desk: Desk) -> PharmacyView:
    view = PharmacyView(desk)
    qtbot.addWidget(view)
    view.resize(1280, 800)
    view.show()
    qtbot.waitUntil(lambda: view.refresh_button.isEnabled(), timeout=10_000)
    return view


def _step(qtbot: QtBot, view: PharmacyView, button: object) -> None:
    with qtbot.waitSignal(view.stepped, timeout=10_000):
        qtbot.mouseClick(button, LEFT)  # type: ignore[arg-type]


def test_a_prescription_is_listed_verified_received_and_dispensed(
    qtbot: QtBot, pharmacy: Pharmacy, factory: Factory
) -> None:
    prescription_id = _sent(factory, pharmacy, acknowledgements=[
        {"kind": "allergy", "medicines": ["amoxicillin", "class:penicillin"],
         "reason": "Tolerated amoxicillin in 2024"}], notes="Entregar con jeringa dosificadora.",
        items=[item(1), item(2, medicine_id="paracetamol", medicine_name="paracetamol",
                             strength="500 mg", form="tablet", dose="1 tablet",
                             frequency="every 6 hours", quantity=20, duration_days=None)])
    view = _view(qtbot, pharmacy.desk)
    assert view.table.rowCount() == 1
    assert view.cell(0, "Patient") == "Valentina Muñoz"
    assert view.cell(0, "Status") == "New"
    assert view.current is not None
    assert view.current.prescription.id == prescription_id
    assert view.signature.text() == (
        f"Signature verified — doctor user, key {fingerprint_prefix(pharmacy.key.fingerprint)}")
    assert "#2e7d32" in view.signature.styleSheet()
    assert "Valentina Muñoz" in view.patient.text()
    assert "born 1984-05-17" in view.patient.text()
    assert view.items.rowCount() == 2
    assert view.items.item(0, 0).text() == "Amoxicillin"
    assert view.items.item(1, 7).text() == "20"
    assert "Tolerated amoxicillin in 2024" in view.acknowledged.text()
    assert view.notes.text() == "Notes: Entregar con jeringa dosificadora."
    assert (view.receive_button.isEnabled(), view.dispense_button.isEnabled(),
            view.refuse_button.isEnabled()) == (True, False, True)

    _step(qtbot, view, view.receive_button)
    assert view.cell(0, "Status") == "Received"
    assert (view.receive_button.isEnabled(), view.dispense_button.isEnabled()) == (False, True)
    _step(qtbot, view, view.dispense_button)
    assert view.cell(0, "Status") == "Dispensed"
    assert view.status.text() == "Status: Dispensed"
    assert not any(b.isEnabled() for b in (view.receive_button, view.dispense_button,
                                           view.refuse_button))

    view.filter.setCurrentIndex(view.filter.findData("dispensed"))
    qtbot.waitUntil(lambda: view.refresh_button.isEnabled() and view.table.rowCount() == 1)
    view.filter.setCurrentIndex(0)  # the open ones: nothing left
    qtbot.waitUntil(lambda: view.refresh_button.isEnabled() and view.table.rowCount() == 0)
    assert view.note.text() == "No prescriptions here."


def test_a_prescription_is_refused_with_the_pharmacists_reason(
    qtbot: QtBot, pharmacy: Pharmacy, factory: Factory
) -> None:
    _sent(factory, pharmacy)
    view = _view(qtbot, pharmacy.desk)
    qtbot.mouseClick(view.refuse_button, LEFT)
    dialog = view.reason_dialog
    assert dialog is not None
    qtbot.keyClicks(dialog.reason, "no")
    qtbot.mouseClick(dialog.ok_button, LEFT)
    assert dialog.error.isVisibleTo(dialog)  # too short: asked again, nothing sent
    assert view.cell(0, "Status") == "New"
    qtbot.keyClicks(dialog.reason, " stock of amoxicillin 500 mg")
    with qtbot.waitSignal(view.stepped, timeout=10_000):
        qtbot.mouseClick(dialog.ok_button, LEFT)
    assert view.cell(0, "Status") == "Refused"
    assert view.status.text() == "Status: Refused: no stock of amoxicillin 500 mg"


def test_an_altered_prescription_shows_the_red_warning_and_cannot_be_dispensed(
    qtbot: QtBot, pharmacy: Pharmacy, factory: Factory, owner_engine: Engine
) -> None:
    prescription_id = _sent(factory, pharmacy)
    with owner_engine.begin() as conn:
        scope(conn, pharmacy.clinic.id)
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(update(prescription_item)
                     .where(prescription_item.c.prescription_id == prescription_id)
                     .values(quantity=210))
    view = _view(qtbot, pharmacy.desk)
    assert view.signature.text() == TAMPERED
    assert "#c62828" in view.signature.styleSheet()
    assert view.items.item(0, 7).text() == "210"
    assert not view.receive_button.isEnabled()
    assert not view.dispense_button.isEnabled()
    assert view.refuse_button.isEnabled()  # it can still be refused
    assert view.table.item(0, 0).toolTip() == TAMPERED


def test_the_received_prescription_altered_meanwhile_is_not_dispensed(
    qtbot: QtBot, pharmacy: Pharmacy, factory: Factory, owner_engine: Engine
) -> None:
    prescription_id = _sent(factory, pharmacy)
    view = _view(qtbot, pharmacy.desk)
    _step(qtbot, view, view.receive_button)
    assert view.dispense_button.isEnabled()
    with owner_engine.begin() as conn:  # altered after the screen checked it
        scope(conn, pharmacy.clinic.id)
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(update(prescription_item)
                     .where(prescription_item.c.prescription_id == prescription_id)
                     .values(dose="3 capsules"))
    _step(qtbot, view, view.dispense_button)
    box = view.findChild(QMessageBox, "pharmacy_refused")
    assert box is not None
    assert box.text() == TAMPERED
    assert view.signature.text() == TAMPERED
    assert view.cell(0, "Status") == "Received"
    assert not view.dispense_button.isEnabled()


def test_offline_the_pharmacy_says_it_works_online(
    qtbot: QtBot, tmp_path: Path, tasks: Tasks, factory: Factory
) -> None:
    with setup_io():
        engine = open_store(tmp_path / "offline.db", os.urandom(32))
    session = Session(email="farmacia@andes.cl", user_id=uuid7(), clinic_id=uuid7(),
                      role="pharmacist", online=False)
    desk = Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("f"),
                clinic=SANTIAGO)
    view = _view(qtbot, desk)
    assert view.note.text() == (
        "The pharmacy works online, and this computer cannot reach the server now. "
        "Prescriptions show here again when it is back.")
    assert view.table.rowCount() == 0
    assert not view.receive_button.isEnabled()
    tasks.wait(10_000)
    engine.dispose()
