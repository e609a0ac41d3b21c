"""Prescribing through the screens, against a real server: the doctor makes a key in the
key dialog (registered with the server), the admin approves it, the doctor signs a
prescription in the form with no connection (acknowledging the penicillin allergy
warning) and syncs later; the server accepts it; the pharmacist's workspace verifies,
receives and dispenses it; the doctor's chart then shows it dispensed. Offscreen Qt with
the GUI-thread guard on."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pyotp
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import Engine, insert, update

from desktop.operations.chart import load_timeline
from desktop.server_link import ServerLink
from desktop.sync.client import SyncClient
from desktop.ui.chart import ChartView
from desktop.ui.desk import Desk
from desktop.ui.pharmacy import PharmacyView
from desktop.ui.prescription_form import PrescriptionForm
from desktop.ui.qt import Qt
from desktop.ui.signing_key import SigningKeyDialog
from desktop.ui.step_up import forget_signer
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import allergy, patient, prescription
from sync_server.actions.clinics import scope
from tests.conftest import LiveServer
from tests.desktop.ui.conftest import SANTIAGO, gui_thread_guard, on_db_worker, setup_io, tasks
from tests.e2e.computers import enrolled_desk
from tests.factories import PASSWORD, ClinicData, Factory

__all__ = ["gui_thread_guard", "tasks"]

LEFT = Qt.MouseButton.LeftButton
PHARMACY_NAME = "Farmacia Cruz Verde Providencia"


@dataclass
class Computer:
    desk: Desk
    link: ServerLink
    http: httpx.Client
    sync: SyncClient


def _computer(tmp_path: Path, tasks: Tasks, live: LiveServer, factory: Factory,
              clinic: ClinicData, role: Role) -> Computer:
    http = httpx.Client(base_url=live.url, timeout=30)
    engine, session, link = enrolled_desk(http, factory, clinic,
                                          tmp_path / f"{role.value}.db", role=role)
    desk = Desk(tasks=tasks, engine=engine, session=session,
                clock=HybridClock(role.value.replace("_", "")), clinic=SANTIAGO, server=link)
    sync = SyncClient(engine, http, token=link.token, page=50, backoff_s=0.01,
                      cursor_key=f"pull_cursor:{role.value}")
    return Computer(desk, link, http, sync)


@dataclass
class Clinic:
    data: ClinicData
    pharmacy_id: uuid.UUID
    laptop: Computer
    counter: Computer


@pytest.fixture
def clinic(tmp_path: Path, tasks: Tasks, live_server: LiveServer, factory: Factory
           ) -> Iterator[Clinic]:
    data = factory.clinic(patients=2, providers=1)
    patient_id = data.patient_ids[0]
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        conn.execute(update(patient).where(patient.c.id == patient_id).values(
            given_name="Valentina", family_name="Muñoz", date_of_birth=date(1984, 5, 17)))
        conn.execute(insert(allergy).values(
            clinic_id=data.id, id=uuid7(), patient_id=patient_id, substance="Penicilina",
            formulary_ref="class:penicillin", reaction="Urticaria", severity="moderate"))
    pharmacy_id = factory.pharmacy(data, name=PHARMACY_NAME,
                                   registry_number="RF-13-0451")
    with setup_io(), httpx.Client(base_url=live_server.url) as http:
        linked = http.put(
            f"/api/v1/pharmacies/{pharmacy_id}/pharmacists/{data.users[Role.PHARMACIST].id}",
            headers=factory.headers(data.users[Role.ADMIN]))
        assert linked.status_code == 200, linked.text
    laptop = _computer(tmp_path, tasks, live_server, factory, data, Role.DOCTOR)
    counter = _computer(tmp_path, tasks, live_server, factory, data, Role.PHARMACIST)
    yield Clinic(data, pharmacy_id, laptop, counter)
    forget_signer()
    tasks.wait(10_000)
    for computer in (laptop, counter):
        computer.http.close()
        computer.desk.engine.dispose()


def _key_from_the_dialog(qtbot: QtBot, desk: Desk) -> pyotp.TOTP:
    """The doctor makes a key in the key dialog; it registers with the server."""
    dialog = SigningKeyDialog(desk)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.state == "none", timeout=10_000)
    qtbot.mouseClick(dialog.create_button, LEFT)
    dialog.password.setText(PASSWORD)
    with qtbot.waitSignal(dialog.state_shown, timeout=10_000):
        qtbot.mouseClick(dialog.create_confirm, LEFT)
    totp = pyotp.TOTP(parse_qs(urlparse(dialog.totp_uri.text()).query)["secret"][0])
    qtbot.keyClicks(dialog.code, totp.now())
    with qtbot.waitSignal(dialog.state_shown, timeout=20_000,
                          check_params_cb=lambda state: state == "pending"):
        qtbot.mouseClick(dialog.confirm_button, LEFT)
    dialog.close()
    return totp


def test_a_prescription_signed_offline_in_the_form_is_dispensed_at_the_pharmacy(
    qtbot: QtBot, clinic: Clinic, factory: Factory, owner_engine: Engine
) -> None:
    laptop, counter, data = clinic.laptop, clinic.counter, clinic.data
    patient_id = data.patient_ids[0]
    totp = _key_from_the_dialog(qtbot, laptop.desk)
    admin = factory.headers(data.users[Role.ADMIN])
    with setup_io():
        [key] = laptop.http.get("/api/v1/signing-keys", headers=admin).json()["data"]
        approved = laptop.http.post(f"/api/v1/signing-keys/{key['id']}/approve",
                                    headers=admin)
        assert approved.status_code == 200, approved.text
    on_db_worker(qtbot, laptop.desk, laptop.sync.sync)  # approval, chart and directory

    # The connection drops; the doctor prescribes anyway.
    online = laptop.link.http
    laptop.link.http = httpx.Client(base_url="http://127.0.0.1:9", timeout=2)
    form = PrescriptionForm(laptop.desk, patient_id)
    qtbot.addWidget(form)
    form.show()
    qtbot.waitUntil(lambda: form.key_loaded and form.pharmacy_results.count() == 2,
                    timeout=10_000)
    assert not form.key_banner.isVisibleTo(form)
    qtbot.keyClicks(form.medicine_search, "amoxicilina")
    with qtbot.waitSignal(form.checked, timeout=10_000):
        qtbot.mouseClick(form.add_button, LEFT)
    line = form.lines[0]
    line.strength.setCurrentText("500 mg")
    line.dose.setText("1 capsule")
    line.frequency.setEditText("every 8 hours")
    line.duration.setValue(7)
    line.quantity.setValue(21)
    [warning] = form.warning_rows
    assert warning.warning.severity == "high"
    assert not form.sign_button.isEnabled()
    qtbot.keyClicks(warning.reason, "Tolerated amoxicillin in 2024; allergy ruled out")
    form.choose_pharmacy(clinic.pharmacy_id)
    with qtbot.waitSignal(form.signed, timeout=20_000) as signed:
        qtbot.mouseClick(form.sign_button, LEFT)
        qtbot.waitUntil(lambda: form.step_up is not None and form.step_up.isVisible())
        assert form.step_up is not None
        form.step_up.password.setText(PASSWORD)
        qtbot.keyClicks(form.step_up.code,
                        totp.at(datetime.now(UTC) + timedelta(seconds=30)))
        qtbot.mouseClick(form.step_up.unlock_button, LEFT)
    prescription_id = signed.args[0]
    assert factory.count(prescription, data) == 0  # nothing reached the server

    # Back online: the server checks the signature and the acknowledged warning.
    laptop.link.http.close()
    laptop.link.http = online
    progress = on_db_worker(qtbot, laptop.desk, laptop.sync.sync)
    assert progress.rejected == 0
    stored = factory.row(prescription, data, prescription_id)
    assert (stored["status"], stored["pharmacy_id"]) == ("sent", clinic.pharmacy_id)
    assert [a["kind"] for a in stored["acknowledgements"]] == ["allergy"]

    # At the counter: verified here, received, dispensed.
    view = PharmacyView(counter.desk)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=10_000)
    assert view.current is not None
    assert view.current.prescription.id == prescription_id
    assert view.signature.text().startswith("Signature verified — doctor user, key ")
    assert "Tolerated amoxicillin in 2024" in view.acknowledged.text()
    with qtbot.waitSignal(view.stepped, timeout=10_000):
        qtbot.mouseClick(view.receive_button, LEFT)
    with qtbot.waitSignal(view.stepped, timeout=10_000):
        qtbot.mouseClick(view.dispense_button, LEFT)
    assert view.cell(0, "Status") == "Dispensed"
    assert factory.row(prescription, data, prescription_id)["status"] == "dispensed"

    # The doctor's computer learns it at the next sync.
    on_db_worker(qtbot, laptop.desk, laptop.sync.sync)
    doctor_id = data.users[Role.DOCTOR].id
    timeline = on_db_worker(qtbot, laptop.desk, lambda: load_timeline(
        laptop.desk.engine, patient_id, viewer_id=doctor_id))
    [entry] = [e for e in timeline if e.kind == "prescription"]
    assert (entry.id, entry.status) == (prescription_id, "dispensed")
    assert [child["medicine_id"] for child in entry.children] == ["amoxicillin"]
    # And the chart on the doctor's screen says so.
    chart = ChartView(laptop.desk)
    qtbot.addWidget(chart)
    with qtbot.waitSignal(chart.timeline_loaded, timeout=10_000):
        chart.open_patient(patient_id)
    statuses = [chart.timeline.topLevelItem(i).text(2)
                for i in range(chart.timeline.topLevelItemCount())]
    assert [s for s in statuses if s.startswith("Dispensed by ")] == [
        f"Dispensed by {PHARMACY_NAME}"]
