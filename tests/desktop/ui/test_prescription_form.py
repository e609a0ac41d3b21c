"""The prescription form: an allergy warning keeps "Sign…" shut until the prescriber gives
a reason; the step-up with a real authenticator code opens the key and the prescription
is signed and queued as one mutation whose signature verifies; a wrong code is said in
the step-up and signs nothing; a prescriber without a usable key is told so plainly."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyotp
import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, select

from desktop.operations.signing import (
    confirm_key,
    create_key,
    mark_registered,
    unlock,
)
from desktop.store.local import outbox, signing_identity
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.prescription_form import PrescriptionForm
from desktop.ui.qt import QLabel, QLineEdit, QMessageBox, Qt
from desktop.ui.step_up import forget_signer, held_signer, keep_signer
from shared_models.ids import uuid7
from shared_models.schemas.prescriptions import PrescriptionSign
from shared_models.signing import verify_prescription
from shared_models.tables import allergy, medication, patient, pharmacy, prescription
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton
PASSWORD = "clave-de-la-doctora"


@dataclasses.dataclass
class Clinic:
    desk: Desk
    patient_id: uuid.UUID
    totp: pyotp.TOTP | None


@pytest.fixture(autouse=True)
def no_open_key() -> Iterator[None]:
    forget_signer()
    yield
    forget_signer()


def _doctor(desk: Desk) -> Desk:
    return Desk(tasks=desk.tasks, engine=desk.engine, clock=desk.clock, clinic=desk.clinic,
                session=dataclasses.replace(desk.session, role="doctor",
                                            email="dra.rojas@andes.cl"))


def _seed_patient(desk: Desk, *, allergic: bool = True) -> uuid.UUID:
    patient_id = uuid7()
    clinic_id = desk.session.clinic_id
    with setup_io(), desk.engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn="P-000042", given_name="Valentina",
            family_name="Muñoz", date_of_birth=date(1984, 5, 17), preferred_channels=[]))
        if allergic:
            conn.execute(insert(allergy).values(
                clinic_id=clinic_id, id=uuid7(), patient_id=patient_id, substance="Penicilina",
                formulary_ref="class:penicillin", reaction="Urticaria", severity="moderate",
                status="active"))
        conn.execute(insert(pharmacy).values(
            clinic_id=clinic_id, id=uuid7(), name="Farmacia Cruz Verde Providencia",
            address="Av. Providencia 2124, Santiago", registry_number="RF-13-0451",
            is_active=True))
    return patient_id


def _key(desk: Desk, status: str = "active") -> pyotp.TOTP:
    """A confirmed prescribing key for the desk's user, as the server last said it."""
    session = desk.session
    with setup_io():
        enrolment = create_key(desk.engine, clinic_id=session.clinic_id,
                               user_id=session.user_id, email=session.email, password=PASSWORD)
        totp = pyotp.TOTP(enrolment.totp_secret)
        confirm_key(desk.engine, session.user_id, totp.now())
        if status != "unregistered":
            mark_registered(desk.engine, session.user_id, status)
    return totp


def _next_code(totp: pyotp.TOTP) -> str:
    """A code the key has not accepted yet (the confirmation used the current one)."""
    return totp.at(datetime.now(UTC) + timedelta(seconds=30))


@pytest.fixture
def clinic(desk: Desk) -> Clinic:
    doctor = _doctor(desk)
    return Clinic(doctor, _seed_patient(doctor), _key(doctor))


def _form(qtbot: QtBot, clinic: Clinic) -> PrescriptionForm:
    form = PrescriptionForm(clinic.desk, clinic.patient_id)
    qtbot.addWidget(form)
    form.show()
    qtbot.waitUntil(lambda: form.key_loaded and "Muñoz" in form.patient_label.text())
    qtbot.waitUntil(lambda: form.pharmacy_results.count() == 2)
    return form


def _add(qtbot: QtBot, form: PrescriptionForm, typed: str) -> None:
    form.medicine_search.clear()
    qtbot.keyClicks(form.medicine_search, typed)
    assert form.medicine_results.count() >= 1
    with qtbot.waitSignal(form.checked, timeout=10_000):
        qtbot.mouseClick(form.add_button, LEFT)


def _fill(form: PrescriptionForm, number: int, *, dose: str, frequency: str, quantity: int,
          days: int | None = None) -> None:
    line = form.lines[number - 1]
    line.dose.setText(dose)
    line.frequency.setEditText(frequency)
    line.quantity.setValue(quantity)
    if days is not None:
        line.duration.setValue(days)


def _queued(desk: Desk) -> list[Any]:
    with desk.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.entity, outbox.c.op, outbox.c.record_id,
                                        outbox.c.changes).order_by(outbox.c.seq)))


def _public_key(desk: Desk) -> str:
    with desk.engine.connect() as conn:
        return str(conn.execute(select(signing_identity.c.public_key)).scalar_one())


def _step_up(qtbot: QtBot, form: PrescriptionForm, password: str, code: str) -> None:
    qtbot.waitUntil(lambda: form.step_up is not None and form.step_up.isVisible())
    dialog = form.step_up
    assert dialog is not None
    dialog.password.setText(password)
    qtbot.keyClicks(dialog.code, code)
    qtbot.mouseClick(dialog.unlock_button, LEFT)


def test_an_allergy_warning_blocks_signing_until_a_reason_then_the_step_up_signs_it(
    qtbot: QtBot, clinic: Clinic
) -> None:
    desk = clinic.desk
    form = _form(qtbot, clinic)
    assert "Penicilina" in form.patient_label.text()
    assert not form.key_banner.isVisibleTo(form)
    _add(qtbot, form, "amoxi")
    [line] = form.lines
    assert line.strength.currentText() == "250 mg/5 mL"
    assert [line.strength.itemText(i) for i in range(line.strength.count())] == [
        "250 mg/5 mL", "500 mg", "875 mg"]
    assert [line.form.itemData(i) for i in range(line.form.count())] == [
        "capsule", "tablet", "suspension"]
    assert line.route.currentData() == "oral"
    line.strength.setCurrentIndex(1)
    line.form.setCurrentIndex(0)
    _fill(form, 1, dose="1 capsule", frequency="every 8 hours", quantity=21, days=7)

    [row] = form.warning_rows
    assert row.severity.text() == "High"
    assert "#c62828" in row.severity.styleSheet()
    assert row.message.text().startswith("Recorded allergy to Penicillins")
    assert form.warnings_status.text() == (
        "1 warning still needs a reason (at least 3 characters).")
    assert not form.sign_button.isEnabled()
    qtbot.keyClicks(row.reason, "ok")
    assert not form.sign_button.isEnabled()  # two characters are not a reason
    qtbot.keyClicks(row.reason, ": tolerated amoxicillin in 2024 without reaction")
    assert form.warnings_status.text() == "Every warning has a reason."
    assert form.sign_button.isEnabled()
    form.choose_pharmacy(None)

    with qtbot.waitSignal(form.signed, timeout=20_000) as signed:
        qtbot.mouseClick(form.sign_button, LEFT)
        assert clinic.totp is not None
        _step_up(qtbot, form, PASSWORD, _next_code(clinic.totp))
    prescription_id = signed.args[0]
    assert not form.isVisible()

    queued = on_db_worker(qtbot, desk, lambda: _queued(desk))
    signs = [q for q in queued if q.op == "sign"]
    assert [(q.entity, q.record_id) for q in signs] == [("prescription", prescription_id)]
    assert [q.entity for q in queued] == ["prescription", "medication"]
    content = PrescriptionSign.model_validate(signs[0].changes)
    assert [(i.medicine_id, i.strength, i.form, i.dose, i.frequency, i.quantity,
             i.duration_days) for i in content.items] == [
        ("amoxicillin", "500 mg", "capsule", "1 capsule", "every 8 hours", 21, 7)]
    assert [(a.kind, a.medicines) for a in content.acknowledgements] == [
        ("allergy", ["amoxicillin", "class:penicillin"])]
    assert content.pharmacy_id is None
    record = {**signs[0].changes, "id": str(prescription_id),
              "clinic_id": str(desk.session.clinic_id),
              "prescriber_id": str(desk.session.user_id)}
    key = on_db_worker(qtbot, desk, lambda: _public_key(desk))
    assert verify_prescription(key, record, signs[0].changes["items"])
    tampered = [{**signs[0].changes["items"][0], "quantity": 210}]
    assert not verify_prescription(key, record, tampered)

    def stored() -> tuple[str, list[str]]:
        with desk.engine.connect() as conn:
            status = conn.execute(select(prescription.c.status)).scalar_one()
            active = conn.execute(select(medication.c.medicine_id)).scalars().all()
        return status, list(active)
    assert on_db_worker(qtbot, desk, stored) == ("signed", ["amoxicillin"])


def test_an_open_key_signs_the_next_prescription_without_asking_again(
    qtbot: QtBot, clinic: Clinic
) -> None:
    desk = clinic.desk
    assert clinic.totp is not None
    code = _next_code(clinic.totp)
    signer = on_db_worker(qtbot, desk, lambda: unlock(
        desk.engine, user_id=desk.session.user_id, password=PASSWORD, code=code))
    keep_signer(desk, signer)
    form = _form(qtbot, clinic)
    _add(qtbot, form, "paracetamol")
    assert form.warning_rows == []
    assert form.warnings_status.text() == "No safety warnings."
    _fill(form, 1, dose="1 tablet", frequency="every 6 hours", quantity=20)
    [(pharmacy_id, name)] = [(r["id"], r["name"]) for r in form.pharmacies]
    qtbot.keyClicks(form.pharmacy_search, "rf-13-0451")
    qtbot.waitUntil(lambda: form.pharmacy_results.count() == 2)
    form.choose_pharmacy(pharmacy_id)
    assert form.pharmacy_chosen.text() == f"Sent to {name}."
    with qtbot.waitSignal(form.signed, timeout=20_000):
        qtbot.mouseClick(form.sign_button, LEFT)
    assert form.step_up is None
    [sign] = [q for q in on_db_worker(qtbot, desk, lambda: _queued(desk)) if q.op == "sign"]
    assert sign.changes["pharmacy_id"] == str(pharmacy_id)


def test_a_wrong_code_is_said_in_the_step_up_and_nothing_is_signed(
    qtbot: QtBot, clinic: Clinic
) -> None:
    desk = clinic.desk
    form = _form(qtbot, clinic)
    _add(qtbot, form, "paracetamol")
    _fill(form, 1, dose="1 tablet", frequency="every 6 hours", quantity=20)
    qtbot.mouseClick(form.sign_button, LEFT)
    _step_up(qtbot, form, PASSWORD, "000000")
    dialog = form.step_up
    assert dialog is not None
    error = dialog.findChild(QLabel, "step_up_error")
    qtbot.waitUntil(lambda: error.isVisibleTo(dialog))
    assert error.text() == "The password or the code is wrong."
    assert dialog.code.text() == ""
    assert dialog.password.text() == PASSWORD  # only the code is typed again
    assert dialog.isVisible()
    assert on_db_worker(qtbot, desk, lambda: _queued(desk)) == []
    assert form.lines[0].dose.text() == "1 tablet"  # nothing typed is lost


def test_five_wrong_tries_lock_unlocking_and_the_step_up_says_until_when(
    qtbot: QtBot, clinic: Clinic
) -> None:
    form = _form(qtbot, clinic)
    _add(qtbot, form, "paracetamol")
    _fill(form, 1, dose="1 tablet", frequency="every 6 hours", quantity=20)
    qtbot.mouseClick(form.sign_button, LEFT)
    qtbot.waitUntil(lambda: form.step_up is not None and form.step_up.isVisible())
    dialog = form.step_up
    assert dialog is not None
    error = dialog.findChild(QLabel, "step_up_error")
    for _ in range(5):
        dialog.password.setText("not-the-password")
        dialog.code.setText("123456")
        qtbot.mouseClick(dialog.unlock_button, LEFT)
        qtbot.waitUntil(lambda: dialog.unlock_button.isEnabled(), timeout=10_000)
    assert error.text().startswith("Too many wrong tries: unlocking your prescribing key is "
                                   "blocked until ")
    assert error.text().endswith(". Try again then.")


@pytest.mark.parametrize(("status", "said"), [
    (None, "You have no prescribing key on this computer yet. Create one to sign "
           "prescriptions."),
    ("pending", "Your prescribing key is waiting for the clinic admin's approval. You can "
                "sign once it is approved and this computer has synced."),
    ("revoked", "Your prescribing key was revoked. Create a new one to sign prescriptions."),
    ("unregistered", "Your prescribing key has not reached the server yet: it registers "
                     "when this computer is online, then the clinic admin approves it."),
])
def test_a_prescriber_without_a_usable_key_is_told_so_and_cannot_sign(
    qtbot: QtBot, desk: Desk, status: str | None, said: str
) -> None:
    doctor = _doctor(desk)
    clinic = Clinic(doctor, _seed_patient(doctor, allergic=False),
                    _key(doctor, status) if status else None)
    form = _form(qtbot, clinic)
    assert form.key_banner.isVisibleTo(form)
    assert form.key_text.text() == said
    _add(qtbot, form, "paracetamol")
    _fill(form, 1, dose="1 tablet", frequency="every 6 hours", quantity=20)
    assert form.warning_rows == []
    assert not form.sign_button.isEnabled()
    qtbot.mouseClick(form.key_button, LEFT)
    dialog = form.findChild(QLineEdit, "key_password")
    assert dialog is not None  # the key dialog opened from the form


def test_a_line_with_something_missing_is_said_before_the_step_up(
    qtbot: QtBot, clinic: Clinic
) -> None:
    form = _form(qtbot, clinic)
    _add(qtbot, form, "ibuprofeno")
    _add(qtbot, form, "paracetamol")
    _fill(form, 2, dose="1 tablet", frequency="every 6 hours", quantity=20)
    qtbot.mouseClick(form.sign_button, LEFT)
    box = form.findChild(QMessageBox, "prescription_message")
    assert box is not None
    assert box.text() == ("Line 1: enter the dose (for example 1 tablet).\n"
                          "Line 1: enter how often it is taken.\n"
                          "Line 1: enter the quantity to dispense.")
    assert form.step_up is None
    qtbot.mouseClick(form.lines[0].remove_button, LEFT)
    qtbot.waitUntil(lambda: len(form.lines) == 1 and not form.checking)
    assert form.lines[0].title.text().startswith("<b>1. Paracetamol")


def test_a_refusal_at_signing_keeps_the_form_and_what_was_typed(
    qtbot: QtBot, clinic: Clinic
) -> None:
    desk = clinic.desk
    assert clinic.totp is not None
    code = _next_code(clinic.totp)
    keep_signer(desk, on_db_worker(qtbot, desk, lambda: unlock(
        desk.engine, user_id=desk.session.user_id, password=PASSWORD, code=code)))
    form = _form(qtbot, clinic)
    _add(qtbot, form, "paracetamol")
    _fill(form, 1, dose="1 tablet", frequency="every 6 hours", quantity=20)
    form.notes.setPlainText("Entregar en caja sellada.")
    # The admin revoked the key after the form opened; the next sync brought it down.
    on_db_worker(qtbot, desk, lambda: mark_registered(desk.engine, desk.session.user_id,
                                                      "revoked"))
    qtbot.mouseClick(form.sign_button, LEFT)
    qtbot.waitUntil(lambda: form.findChild(QMessageBox, "prescription_message") is not None)
    box = form.findChild(QMessageBox, "prescription_message")
    assert box.text().startswith("Your prescribing key was revoked")
    assert form.isVisible()
    assert form.notes.toPlainText() == "Entregar en caja sellada."
    assert form.lines[0].dose.text() == "1 tablet"
    qtbot.waitUntil(lambda: form.key_banner.isVisibleTo(form))
    assert not form.sign_button.isEnabled()
    assert on_db_worker(qtbot, desk, lambda: _queued(desk)) == []


def test_the_form_reads_in_spanish(qtbot: QtBot, clinic: Clinic) -> None:
    i18n.set_language("es")
    form = _form(qtbot, clinic)
    assert form.sign_button.text() == "Firmar…"
    form.medicine_search.setText("amoxi")
    assert form.medicine_results.item(0).text() == (
        "Amoxicilina — Penicilinas · J01CA04")
    with qtbot.waitSignal(form.checked, timeout=10_000):
        qtbot.mouseClick(form.add_button, LEFT)
    [row] = form.warning_rows
    assert row.severity.text() == "Alta"
    assert row.message.text().startswith("Alergia registrada a Penicilinas")
    assert form.warnings_status.text() == (
        "Falta el motivo de 1 advertencia (al menos 3 caracteres).")
    assert form.lines[0].form.itemText(0) == "cápsula"


def test_an_opened_key_is_held_for_its_desk_only_and_dropped_on_lock(
    qtbot: QtBot, clinic: Clinic
) -> None:
    desk = clinic.desk
    assert clinic.totp is not None
    code = _next_code(clinic.totp)
    signer = on_db_worker(qtbot, desk, lambda: unlock(
        desk.engine, user_id=desk.session.user_id, password=PASSWORD, code=code))
    keep_signer(desk, signer)
    assert held_signer(desk) is signer
    assert held_signer(desk, now=signer.expires_at) is None  # its minutes are up
    assert signer.expired()
    keep_signer(desk, signer)
    signed_in_again = _doctor(desk)  # a new sign-in after the lock makes a new desk
    assert held_signer(signed_in_again) is None
    assert held_signer(desk) is None  # and the one opened before is gone
