"""A payment taken offline at the front desk reaches the real server once, comes back
with its real receipt number, reaches the other front desk computers, and never reaches a
doctor's computer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from desktop.operations.payments import take_payment_offline, void_payment_offline
from shared_models.enums import Role
from shared_models.schemas.payments import is_local_receipt_number
from shared_models.tables import payment
from tests.conftest import LiveServer
from tests.e2e.computers import Computer
from tests.factories import ClinicData, Factory


@pytest.fixture
def clinic_and_computers(tmp_path: Path, live_server: LiveServer, factory: Factory
                         ) -> Iterator[tuple[ClinicData, dict[Role, Computer]]]:
    clinic = factory.clinic(patients=2, providers=1)
    computers = {role: Computer(tmp_path / f"{role.value}.db", role.value.replace("_", ""),
                                live_server, factory.token(clinic.users[role]))
                 for role in (Role.RECEPTIONIST, Role.ADMIN, Role.DOCTOR)}
    yield clinic, computers
    for computer in computers.values():
        computer.close()


def _payments(computer: Computer) -> list[dict[str, Any]]:
    with computer.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(payment))]


def test_a_payment_taken_offline_is_numbered_by_the_server_once_and_kept_from_doctors(
    clinic_and_computers: tuple[ClinicData, dict[Role, Computer]], factory: Factory
) -> None:
    clinic, computers = clinic_and_computers
    desk, office, doctor = (computers[r] for r in (Role.RECEPTIONIST, Role.ADMIN, Role.DOCTOR))
    visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[0],
                                starts_at=datetime.now(UTC) + timedelta(minutes=10),
                                status="checked_in")
    desk.sync.sync()

    # Offline: the patient pays at the desk; the receipt number is a placeholder for now.
    payment_id = take_payment_offline(
        desk.engine, desk.clock, clinic_id=clinic.id, appointment_id=visit, amount="25000",
        currency="CLP", method="card", reference="VOUCHER 8812",
        received_by=clinic.users[Role.RECEPTIONIST].id)
    [local] = _payments(desk)
    assert is_local_receipt_number(local["receipt_number"])

    # Back online, the connection drops just after the server has taken the payment: the
    # push is sent again, and the money is still taken once.
    real_send = desk.http.send
    dropped = {"n": 0}

    def answer_lost(request: httpx.Request, **kwargs: object) -> httpx.Response:
        response = real_send(request, **kwargs)  # type: ignore[arg-type]
        if request.url.path.endswith("/sync/push") and dropped["n"] == 0:
            dropped["n"] += 1
            raise httpx.ReadError("connection dropped after the server committed")
        return response

    desk.http.send = answer_lost  # type: ignore[method-assign]
    progress = desk.sync.sync()
    assert (dropped["n"], progress.rejected, desk.pending()) == (1, 0, 0)
    assert factory.count(payment, clinic) == 1
    server = factory.row(payment, clinic, payment_id)
    assert server["receipt_number"] == "R-000001"
    assert (server["amount_minor"], server["currency"], server["reference"]) == (
        25000, "CLP", "VOUCHER 8812")
    assert server["received_at"] == local["received_at"]  # when it was taken, not synced
    [synced] = _payments(desk)
    assert synced["receipt_number"] == "R-000001"
    assert synced["server_version"] == server["server_version"]

    # A void made on the desk reaches the server and the admin's computer.
    void_payment_offline(desk.engine, desk.clock, payment_id=payment_id,
                         reason="Cobro a la tarjeta equivocada",
                         voided_by=clinic.users[Role.RECEPTIONIST].id)
    assert desk.sync.sync().rejected == 0
    assert factory.row(payment, clinic, payment_id)["void_reason"] == \
        "Cobro a la tarjeta equivocada"
    office.sync.sync()
    [seen] = _payments(office)
    assert (seen["receipt_number"], seen["amount_minor"], seen["void_reason"]) == (
        "R-000001", 25000, "Cobro a la tarjeta equivocada")

    # The doctor's computer syncs everything it may have, and no payment is among it.
    assert doctor.sync.sync().pulled > 0
    assert _payments(doctor) == []
    assert doctor.appointment(visit)["status"] == "checked_in"
