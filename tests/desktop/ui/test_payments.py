"""The payment dialog: an amount typed the Chilean way is taken and queued, a problem
shows beside its field with nothing stored, clinical roles cannot take money, and the
receipt is written as a PDF on the database worker."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import Row, insert, select

from desktop import threads
from desktop.receipts import Receipt, receipt_html, write_receipt_pdf
from desktop.store.local import outbox
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.payments import PaymentDialog
from desktop.ui.qt import Qt
from shared_models.ids import uuid7
from shared_models.schemas.payments import local_receipt_number
from shared_models.tables import appointment, patient, payment
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton


def _visit(desk: Desk, *, receipt: str | None = None) -> Row[Any]:
    """A checked-in visit in the store (with a payment already numbered by the server,
    when `receipt` is given), as the calendar hands it to the dialog."""
    patient_id, appointment_id = uuid7(), uuid7()
    starts = datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    clinic_id = desk.session.clinic_id
    with setup_io(), desk.engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn="P-000007", given_name="Iñés",
            family_name="Núñez", preferred_channels=[]))
        conn.execute(insert(appointment).values(
            clinic_id=clinic_id, id=appointment_id, patient_id=patient_id, provider_id=uuid7(),
            starts_at=starts, ends_at=starts + timedelta(minutes=30), status="checked_in"))
        if receipt is not None:
            conn.execute(insert(payment).values(
                clinic_id=clinic_id, id=uuid7(), appointment_id=appointment_id,
                patient_id=patient_id, amount_minor=12500, currency="CLP", method="card",
                reference="VOUCHER-55", received_by=desk.session.user_id,
                received_at=starts + timedelta(minutes=2), receipt_number=receipt,
                server_version=41))
        return conn.execute(select(appointment).where(appointment.c.id == appointment_id)).one()


def _stored(desk: Desk) -> tuple[list[Any], list[Any]]:
    with desk.engine.connect() as conn:
        return (list(conn.execute(select(payment))),
                list(conn.execute(select(outbox.c.entity, outbox.c.op, outbox.c.changes))))


def _dialog(qtbot: QtBot, desk: Desk, visit: Row[Any], **kwargs: Any) -> PaymentDialog:
    dialog = PaymentDialog(desk, visit, **kwargs)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: "Núñez" in dialog.visit.text())  # loaded from the store
    return dialog


def test_a_payment_typed_the_chilean_way_is_taken_and_queued(qtbot: QtBot, desk: Desk) -> None:
    visit = _visit(desk)
    dialog = _dialog(qtbot, desk, visit)
    assert dialog.visit.text() == "Núñez, Iñés · 2026-03-09 10:30"  # in Santiago's zone
    assert dialog.amount.placeholderText() == "12.500"
    qtbot.keyClicks(dialog.amount, "12.500")
    dialog.method.setCurrentIndex(dialog.method.findData("card"))
    qtbot.keyClicks(dialog.reference, "VOUCHER-991")
    with qtbot.waitSignal(desk.data_changed, timeout=5000) as changed:
        qtbot.mouseClick(dialog.take_button, LEFT)
    assert changed.args == [frozenset({"payment"})]
    qtbot.waitUntil(lambda: dialog.list.count() == 1)
    assert dialog.list.item(0).text() == "Pending · $12.500 CLP · Card"
    assert dialog.receipt_button.isEnabled()
    assert not dialog.take_button.isEnabled()  # one payment per click, not two
    [row], [queued] = on_db_worker(qtbot, desk, lambda: _stored(desk))
    assert (row.amount_minor, row.currency, row.method, row.reference) == (
        12500, "CLP", "card", "VOUCHER-991")
    assert queued == ("payment", "take", {
        "appointment_id": str(visit.id), "amount": "12500", "currency": "CLP",
        "method": "card", "reference": "VOUCHER-991"})


@pytest.mark.parametrize(("typed", "shown"), [
    ("", "Enter the amount."),
    ("12,50", "CLP has no cents; enter a whole amount."),
    ("12.5", "Write the amount like 12.500."),
    ("0", "The amount must be more than zero."),
    ("-5000", "The amount must be more than zero."),
    ("999.999.999", "At most $100.000.000 CLP per payment; check the amount."),
])
def test_a_bad_amount_shows_beside_the_field_and_nothing_is_stored(
    qtbot: QtBot, desk: Desk, typed: str, shown: str
) -> None:
    dialog = _dialog(qtbot, desk, _visit(desk))
    qtbot.keyClicks(dialog.amount, typed)
    qtbot.mouseClick(dialog.take_button, LEFT)
    assert dialog.errors["amount"].text() == shown
    assert dialog.errors["amount"].isVisibleTo(dialog)
    assert not dialog.errors["reference"].isVisibleTo(dialog)
    assert dialog.take_button.isEnabled()
    assert on_db_worker(qtbot, desk, lambda: _stored(desk)) == ([], [])


def test_a_reference_too_long_shows_beside_its_field_in_spanish(
    qtbot: QtBot, desk: Desk
) -> None:
    i18n.set_language("es")
    dialog = _dialog(qtbot, desk, _visit(desk))
    qtbot.keyClicks(dialog.amount, "8.000")
    dialog.reference.setText("V" * 101)
    qtbot.mouseClick(dialog.take_button, LEFT)
    qtbot.waitUntil(lambda: dialog.errors["reference"].isVisibleTo(dialog))
    assert dialog.errors["reference"].text() == "Demasiado largo (máximo 100 caracteres)."
    assert not dialog.errors["amount"].isVisibleTo(dialog)
    assert dialog.take_button.isEnabled()
    assert on_db_worker(qtbot, desk, lambda: _stored(desk)) == ([], [])


def test_clinical_roles_cannot_take_money(qtbot: QtBot, desk: Desk) -> None:
    doctor = Desk(tasks=desk.tasks, engine=desk.engine, clock=desk.clock, clinic=desk.clinic,
                  session=dataclasses.replace(desk.session, role="doctor"))
    dialog = PaymentDialog(doctor, _visit(desk))
    qtbot.addWidget(dialog)
    assert not dialog.take_button.isEnabled()
    assert dialog.errors["payment"].text() == "Only the front desk takes payments."


def _pdf_text(path: Path) -> str | None:
    """The PDF's text, when poppler's pdftotext is installed (Qt compresses its streams)."""
    tool = shutil.which("pdftotext")
    if tool is None:
        return None
    return subprocess.run([tool, "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


def test_the_receipt_of_a_synced_payment_is_saved_as_a_pdf(
    qtbot: QtBot, desk: Desk, tmp_path: Path
) -> None:
    asked: list[str] = []

    def choose(suggested: str) -> Path:
        asked.append(suggested)
        return tmp_path / suggested

    dialog = _dialog(qtbot, desk, _visit(desk, receipt="R-000042"), choose_path=choose)
    qtbot.waitUntil(lambda: dialog.list.count() == 1)
    dialog.list.setCurrentRow(0)
    with qtbot.waitSignal(dialog.receipt_written, timeout=10_000) as written:
        qtbot.mouseClick(dialog.receipt_button, LEFT)
    assert asked == ["receipt-R-000042.pdf"]
    path = written.args[0]
    assert path == tmp_path / "receipt-R-000042.pdf"
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 1024
    assert b"R-000042" in data  # the document title
    assert not list(tmp_path.glob(".*.part"))
    text = _pdf_text(path)
    if text is not None:
        for expected in ("R-000042", "$12.500 CLP", "Iñés Núñez", "VOUCHER-55", "Card"):
            assert expected in text


def _receipt(**changes: Any) -> Receipt:
    """A receipt of a Mexican clinic, for a payment not yet numbered by the server."""
    return dataclasses.replace(Receipt(
        clinic_name="Clínica Andes", patient_name="Iñés Núñez",
        receipt_number=local_receipt_number(uuid7()),
        received_at=datetime(2026, 3, 9, 13, 32, tzinfo=UTC),
        zone=ZoneInfo("America/Mexico_City"), amount_minor=125050, currency="MXN",
        method="transfer", reference="SPEI 42", received_by="recepcion@andes.cl"), **changes)


def test_a_receipt_shows_a_pending_number_clearly_and_the_amount_as_the_country_writes_it(
) -> None:
    content = receipt_html(_receipt())
    for expected in ("Clínica Andes", "Pending (numbered when this computer syncs)",
                     "$1,250.50 MXN", "2026-03-09 07:32 (America/Mexico_City)", "Transfer",
                     "SPEI 42", "recepcion@andes.cl", "not a tax document"):
        assert expected in content, expected
    assert "local-" not in content
    assert "VOID" not in content
    i18n.set_language("es")
    voided = receipt_html(_receipt(receipt_number="R-000007", voided_at=datetime.now(UTC),
                                   void_reason="Monto equivocado"))
    for expected in ("Comprobante de pago", "R-000007", "ANULADO", "Monto equivocado",
                     "Transferencia"):
        assert expected in voided, expected


def test_writing_a_receipt_on_the_gui_thread_is_refused(tmp_path: Path) -> None:
    with pytest.raises(threads.GuiThreadIOError, match="GUI thread"):
        write_receipt_pdf(tmp_path / "r.pdf", _receipt())
    assert threads.violations == ["writing a receipt"]
    threads.violations.clear()  # this test made the violation on purpose
    assert not (tmp_path / "r.pdf").exists()
