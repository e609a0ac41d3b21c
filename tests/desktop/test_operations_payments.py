"""Payments on a computer, online or not: amounts read the way the clinic's country writes
them, a payment written locally with a placeholder receipt and queued once for the
server, refused beside its field with nothing stored, voided once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from desktop.operations.payments import (
    PaymentInvalid,
    payments_for,
    read_amount,
    receipt_details,
    take_payment_offline,
    void_payment_offline,
)
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import Hlc, HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.payments import is_local_receipt_number
from shared_models.tables import appointment, patient, payment

CLINIC = uuid7()
DESK_USER = uuid7()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("frontdesk")


def _visit(engine: Engine, *, status: str = "checked_in") -> tuple[uuid.UUID, uuid.UUID]:
    """A patient and one of their appointments in the local store: (appointment, patient)."""
    patient_id, appointment_id = uuid7(), uuid7()
    starts = datetime.now(UTC) + timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=patient_id, mrn=f"P-{patient_id.hex[-6:]}",
            given_name="Iñés", family_name="Núñez", preferred_channels=[]))
        conn.execute(insert(appointment).values(
            clinic_id=CLINIC, id=appointment_id, patient_id=patient_id, provider_id=uuid7(),
            starts_at=starts, ends_at=starts + timedelta(minutes=30), status=status))
    return appointment_id, patient_id


def _take(engine: Engine, clock: HybridClock, appointment_id: uuid.UUID, **given: Any
          ) -> uuid.UUID:
    fields: dict[str, Any] = {"amount": "12500", "currency": "CLP", "method": "cash",
                              "reference": None, **given}
    return take_payment_offline(engine, clock, clinic_id=CLINIC, appointment_id=appointment_id,
                                received_by=DESK_USER, **fields)


def _queued(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


def _stored(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(payment)))


@pytest.mark.parametrize(("typed", "currency", "amount"), [
    ("12500", "CLP", "12500"),
    ("12.500", "CLP", "12500"),
    ("$ 1.250.000", "CLP", "1250000"),
    ("12.500,00", "CLP", "12500"),
    (" 12500 CLP ", "CLP", "12500"),
    ("1250.5", "MXN", "1250.5"),
    ("1,250.50", "MXN", "1250.5"),
    ("$350", "MXN", "350"),
    ("0.50", "MXN", "0.5"),
])
def test_amounts_are_read_as_the_clinics_country_writes_them(
    typed: str, currency: str, amount: str
) -> None:
    assert read_amount(typed, currency) == amount


@pytest.mark.parametrize(("typed", "currency", "message"), [
    ("", "CLP", "Enter the amount."),
    ("12.5", "CLP", "Write the amount like {example}."),  # 12 and a half, or 125?
    ("12,50", "CLP", "{currency} has no cents; enter a whole amount."),
    ("1250,50", "MXN", "Write the amount like {example}."),
    ("10.505", "MXN", "At most {n} decimals."),
    ("0", "MXN", "The amount must be more than zero."),
    ("-300", "MXN", "The amount must be more than zero."),
    ("2.000.001", "MXN", "Write the amount like {example}."),
    ("2,000,001", "MXN", "At most {max} per payment; check the amount."),
    ("doce mil", "CLP", "Write the amount like {example}."),
    ("1e5", "MXN", "Write the amount like {example}."),
])
def test_an_amount_that_does_not_fit_the_convention_is_refused_not_guessed(
    typed: str, currency: str, message: str
) -> None:
    with pytest.raises(PaymentInvalid) as refused:
        read_amount(typed, currency)
    assert refused.value.problems["amount"][0] == message
    examples = {"CLP": "12.500", "MXN": "12,500.50"}
    if "{example}" in message:
        assert refused.value.problems["amount"][1] == {"example": examples[currency]}


def test_a_payment_is_stored_with_a_placeholder_receipt_and_queued_once(
    engine: Engine, clock: HybridClock
) -> None:
    appointment_id, patient_id = _visit(engine)
    payment_id = _take(engine, clock, appointment_id, amount="12500", method="card",
                       reference=" VOUCHER 77 ")
    [row] = _stored(engine)
    assert (row.id, row.patient_id, row.amount_minor, row.currency) == (
        payment_id, patient_id, 12500, "CLP")
    assert (row.method, row.reference, row.received_by) == ("card", "VOUCHER 77", DESK_USER)
    assert is_local_receipt_number(row.receipt_number)
    [queued] = _queued(engine)
    assert (queued.entity, queued.op, queued.record_id) == ("payment", "take", payment_id)
    assert queued.changes == {"appointment_id": str(appointment_id), "amount": "12500",
                              "currency": "CLP", "method": "card", "reference": "VOUCHER 77"}
    # The server records the time inside the stamp: the same instant as here.
    stamp = Hlc.parse(queued.hlc)
    assert row.received_at == datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)
    details = receipt_details(engine, payment_id)
    assert (details.given_name, details.family_name) == ("Iñés", "Núñez")


def test_cents_are_kept_exactly_in_a_currency_that_has_them(
    engine: Engine, clock: HybridClock
) -> None:
    appointment_id, _ = _visit(engine)
    _take(engine, clock, appointment_id, amount=read_amount("1,250.5", "MXN"), currency="MXN")
    [row] = _stored(engine)
    assert row.amount_minor == 125050
    assert _queued(engine)[0].changes["amount"] == "1250.50"


@pytest.mark.parametrize(("given", "field", "words"), [
    ({"amount": "0"}, "amount", "more than zero"),
    ({"amount": "12500.5"}, "amount", "no cents"),
    ({"method": "cheque"}, "method", "cash"),
    ({"reference": "V" * 101}, "reference", "Too long (at most {n} characters)."),
    ({"reference": "VOU\x00CHER"}, "reference", "NUL"),
    ({"currency": "XYZ"}, "currency", "not a currency"),
])
def test_a_payment_the_server_would_refuse_is_refused_here_and_nothing_is_stored(
    engine: Engine, clock: HybridClock, given: dict[str, Any], field: str, words: str
) -> None:
    appointment_id, _ = _visit(engine)
    with pytest.raises(PaymentInvalid) as refused:
        _take(engine, clock, appointment_id, **given)
    assert words in refused.value.problems[field][0]
    assert _stored(engine) == _queued(engine) == []


@pytest.mark.parametrize("status", ["cancelled", "no_show", "rejected"])
def test_a_visit_that_did_not_or_will_not_happen_takes_no_payment(
    engine: Engine, clock: HybridClock, status: str
) -> None:
    appointment_id, _ = _visit(engine, status=status)
    with pytest.raises(PaymentInvalid) as refused:
        _take(engine, clock, appointment_id)
    assert refused.value.problems["payment"][1] == {"status": status.replace("_", " ")}
    with pytest.raises(PaymentInvalid, match="not on this computer"):
        _take(engine, clock, uuid7())
    assert _stored(engine) == _queued(engine) == []


def test_a_visit_booked_offline_and_not_yet_confirmed_can_be_paid(
    engine: Engine, clock: HybridClock
) -> None:
    appointment_id, _ = _visit(engine, status="pending")
    _take(engine, clock, appointment_id)
    assert [(q.op, q.changes["appointment_id"]) for q in _queued(engine)] == [
        ("take", str(appointment_id))]


def test_a_payment_is_voided_once_with_its_reason_and_amount_kept(
    engine: Engine, clock: HybridClock
) -> None:
    appointment_id, _ = _visit(engine)
    payment_id = _take(engine, clock, appointment_id)
    with pytest.raises(PaymentInvalid) as blank:
        void_payment_offline(engine, clock, payment_id=payment_id, reason="  ",
                             voided_by=DESK_USER)
    assert blank.value.problems == {"reason": ("Required.", {})}
    void_payment_offline(engine, clock, payment_id=payment_id, reason="Monto equivocado",
                         voided_by=DESK_USER)
    with pytest.raises(PaymentInvalid, match="already voided"):
        void_payment_offline(engine, clock, payment_id=payment_id, reason="Otra vez",
                             voided_by=DESK_USER)
    [row] = _stored(engine)
    assert (row.void_reason, row.voided_by, row.amount_minor) == ("Monto equivocado",
                                                                   DESK_USER, 12500)
    assert row.voided_at is not None
    take, void = _queued(engine)
    assert (void.op, void.record_id, void.changes) == ("void", payment_id,
                                                       {"reason": "Monto equivocado"})
    assert take.seq < void.seq
    with pytest.raises(PaymentInvalid, match="not on this computer"):
        void_payment_offline(engine, clock, payment_id=uuid7(), reason="x",
                             voided_by=DESK_USER)


def test_a_visits_payments_are_listed_oldest_first(engine: Engine, clock: HybridClock) -> None:
    appointment_id, _ = _visit(engine)
    other, _ = _visit(engine)
    first = _take(engine, clock, appointment_id, amount="10000")
    second = _take(engine, clock, appointment_id, amount="2500")
    _take(engine, clock, other)
    assert [r.id for r in payments_for(engine, appointment_id)] == [first, second]
