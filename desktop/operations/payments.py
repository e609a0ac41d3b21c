"""Taking payments on this computer, online or not.

A payment is written to the local copy at once, with a placeholder receipt number, and
queued for the server, which numbers it; the sync stores the numbered record over the
local one. Like on the server, a payment is never edited here: a mistake is voided, once.

What a receptionist types is read the way the clinic's country writes money: in Chile
"12.500" is twelve thousand five hundred pesos (the dot groups thousands, and pesos have
no cents); in Mexico "1,250.50" is one thousand two hundred fifty pesos and fifty
centavos. Anything that does not fit the convention ("12.5" for pesos, "1250,50" in
Mexico) is refused with an example rather than guessed, because a misread amount is
money taken wrongly.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, Row, insert, select, update

from desktop.store.local import outbox
from shared_models.clock import Hlc, HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.payments import (
    CURRENCIES,
    PAYABLE_STATUSES,
    PaymentCreate,
    PaymentVoid,
    format_amount,
    format_number,
    local_receipt_number,
)
from shared_models.tables import appointment, patient, payment

# A message for the form, in English with `{name}` placeholders, and their values: the
# screen translates the message and fills the values in.
Problem = tuple[str, dict[str, object]]


class PaymentInvalid(ValueError):
    """The payment cannot be taken (or voided) as given; `problems` says, per field
    ("amount", "method", "reference", "reason", or "payment" for the record itself),
    what to fix."""

    def __init__(self, problems: dict[str, Problem]) -> None:
        super().__init__("; ".join(f"{k}: {v[0].format(**v[1])}" for k, v in problems.items()))
        self.problems = problems


def _invalid(field: str, message: str, **values: object) -> PaymentInvalid:
    return PaymentInvalid({field: (message, values)})


def amount_example(currency: str) -> str:
    """How an amount is written in this currency, for a placeholder or a hint."""
    return format_number(1_250_050 if CURRENCIES[currency].decimals else 12_500, currency)


def read_amount(typed: str, currency: str) -> str:
    """What a person typed, read in the currency's convention, as the wire's decimal
    string ("12.500" CLP -> "12500", "1,250.5" MXN -> "1250.50"); PaymentInvalid for
    anything else."""
    unit = CURRENCIES[currency]
    text = typed.strip().removeprefix(unit.symbol).removesuffix(unit.code).strip()
    if not text:
        raise _invalid("amount", "Enter the amount.")
    if text.startswith("-"):
        raise _invalid("amount", "The amount must be more than zero.")
    whole, point, fraction = text.partition(unit.decimal_separator)
    group = re.escape(unit.group_separator)
    if not (re.fullmatch(r"[0-9]+", whole) or re.fullmatch(rf"[0-9]{{1,3}}({group}[0-9]{{3}})+",
                                                            whole)) \
            or (point and not re.fullmatch(r"[0-9]+", fraction)):
        raise _invalid("amount", "Write the amount like {example}.",
                       example=amount_example(currency))
    fraction = fraction.rstrip("0")
    if len(fraction) > unit.decimals:
        if unit.decimals == 0:
            raise _invalid("amount", "{currency} has no cents; enter a whole amount.",
                           currency=unit.code)
        raise _invalid("amount", "At most {n} decimals.", n=unit.decimals)
    digits = whole.replace(unit.group_separator, "").lstrip("0") or "0"
    value = Decimal(f"{digits}.{fraction or 0}")
    if value <= 0:
        raise _invalid("amount", "The amount must be more than zero.")
    if value > unit.max_amount:
        raise _invalid("amount", "At most {max} per payment; check the amount.",
                       max=format_amount(unit.max_amount * 10**unit.decimals, unit.code))
    return f"{digits}.{fraction}" if fraction else digits


def _schema_problems(exc: ValidationError) -> dict[str, Problem]:
    problems: dict[str, Problem] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "payment"
        if error["type"] == "string_too_long":
            problem: Problem = ("Too long (at most {n} characters).",
                                {"n": error["ctx"]["max_length"]})
        elif error["type"] in ("missing", "string_too_short"):
            problem = ("Required.", {})
        else:
            message = str(error.get("msg", "Not valid.")).removeprefix("Value error, ")
            problem = (message.replace("{", "(").replace("}", ")"), {})
        problems.setdefault(field, problem)
    return problems


def _stamp_time(stamp: Hlc) -> datetime:
    # The server records the payment at the wall time inside this stamp: the same instant
    # here, so the receipt printed offline and the synced record agree.
    return datetime.fromtimestamp(stamp.wall_ms / 1000, UTC)


def take_payment_offline(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                         appointment_id: uuid.UUID, amount: str, currency: str, method: str,
                         reference: str | None, received_by: uuid.UUID) -> uuid.UUID:
    """Record a payment for a visit on this computer and queue it for the server.

    `amount` is the wire's decimal string (see `read_amount`); it is checked by the
    server's own schema, so what is accepted here is accepted there."""
    try:
        data = PaymentCreate.model_validate({
            "appointment_id": appointment_id, "amount": amount, "currency": currency,
            "method": method, "reference": reference})
    except ValidationError as exc:
        raise PaymentInvalid(_schema_problems(exc)) from exc
    payment_id = uuid7()
    with engine.begin() as conn:
        visit = conn.execute(select(appointment.c.patient_id, appointment.c.status)
                             .where(appointment.c.id == appointment_id,
                                    appointment.c.deleted_at.is_(None))).first()
        if visit is None:
            raise _invalid("payment", "This appointment is not on this computer.")
        if visit.status not in PAYABLE_STATUSES:
            raise _invalid("payment", "This appointment is {status}; payments are taken for "
                           "booked, checked-in or completed visits.",
                           status=visit.status.replace("_", " "))
        stamp = clock.now()
        conn.execute(insert(payment).values(
            clinic_id=clinic_id, id=payment_id, appointment_id=appointment_id,
            patient_id=visit.patient_id, amount_minor=data.amount_minor,
            currency=data.currency, method=data.method, reference=data.reference,
            received_by=received_by, received_at=_stamp_time(stamp),
            receipt_number=local_receipt_number(payment_id)))
        conn.execute(insert(outbox).values(
            mutation_id=uuid7(), entity="payment", op="take", record_id=payment_id,
            base_version=None, changes=data.model_dump(mode="json"), base={},
            hlc=stamp.pack(), created_at=datetime.now(UTC)))
    return payment_id


def void_payment_offline(engine: Engine, clock: HybridClock, *, payment_id: uuid.UUID,
                         reason: str, voided_by: uuid.UUID) -> None:
    """Void a payment taken by mistake, here at once and on the server after the sync."""
    try:
        data = PaymentVoid.model_validate({"reason": reason})
    except ValidationError as exc:
        raise PaymentInvalid(_schema_problems(exc)) from exc
    with engine.begin() as conn:
        current = conn.execute(select(payment).where(payment.c.id == payment_id)).first()
        if current is None:
            raise _invalid("payment", "This payment is not on this computer.")
        if current.voided_at is not None:
            raise _invalid("payment", "This payment was already voided.")
        stamp = clock.now()
        conn.execute(update(payment).where(payment.c.id == payment_id).values(
            voided_at=_stamp_time(stamp), voided_by=voided_by, void_reason=data.reason))
        conn.execute(insert(outbox).values(
            mutation_id=uuid7(), entity="payment", op="void", record_id=payment_id,
            base_version=current.server_version, changes=data.model_dump(mode="json"),
            base={}, hlc=stamp.pack(), created_at=datetime.now(UTC)))


def payments_for(engine: Engine, appointment_id: uuid.UUID) -> list[Row[Any]]:
    """A visit's payments, oldest first, voided ones included."""
    with engine.connect() as conn:
        return list(conn.execute(
            select(payment).where(payment.c.appointment_id == appointment_id)
            .order_by(payment.c.received_at, payment.c.id)))


def receipt_details(engine: Engine, payment_id: uuid.UUID) -> Row[Any]:
    """The payment as stored now (numbered, if it has synced) with its patient's name."""
    with engine.connect() as conn:
        return conn.execute(
            select(payment, patient.c.given_name, patient.c.family_name)
            .select_from(payment.outerjoin(patient, patient.c.id == payment.c.patient_id))
            .where(payment.c.id == payment_id)).one()
