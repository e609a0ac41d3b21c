"""Taking payments for visits at the front desk, voiding them, and listing them.

A payment is taken once and never edited or deleted: a mistake is voided (with a reason,
once) and the right amount taken again, so what the desk received stays on record. The
database enforces this too (migration 0010). Receipt numbers come from a per-clinic
counter drawn in the paying transaction, so they have no gaps. Only the front desk
(admins and receptionists) handles money; clinical roles are turned away here, whatever
path the request came by. Audit events hold ids only, never amounts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.ids import uuid7
from shared_models.schemas.payments import (
    PAYABLE_STATUSES,
    PAYMENT_ROLES,
    PaymentCreate,
    PaymentPublic,
    PaymentsPublic,
    PaymentVoid,
    decimal_text,
)
from shared_models.tables import appointment, clinic, payment
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields

RECEIPT_PREFIX = "R-"
MAX_PAGE = 500
# The days a listing may ask for: any clinic's payments, with room for dates typed wrong.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2199, 12, 31)
# What the record says was taken; the void fields are the only ones written later.
_TAKEN_FIELDS = ["appointment_id", "patient_id", "amount_minor", "currency", "method",
                 "reference", "received_by", "received_at", "receipt_number"]


def to_public(row: Row[Any]) -> PaymentPublic:
    return PaymentPublic.model_validate(
        {**row._mapping, "amount": decimal_text(row.amount_minor, row.currency)})


def check_role(ctx: ClinicContext) -> None:
    if ctx.role not in PAYMENT_ROLES:
        raise PermissionDenied(f"Your role ({ctx.role}) does not handle payments; the front "
                               "desk does.", code="role_not_allowed")


async def access_payment(ctx: ClinicContext, payment_id: uuid.UUID, *,
                         for_update: bool = False) -> Row[Any]:
    """The payment of the caller's clinic, or 404 (also for another clinic's id)."""
    stmt = select(payment).where(payment.c.id == payment_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await ctx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"No payment with id {payment_id} in this clinic.",
                       code="payment_not_found")
    return row


async def _payable_appointment(ctx: ClinicContext, appointment_id: uuid.UUID
                               ) -> Row[uuid.UUID, str]:
    row = (await ctx.conn.execute(
        select(appointment.c.patient_id, appointment.c.status)
        .where(appointment.c.id == appointment_id, appointment.c.deleted_at.is_(None))
    )).first()
    if row is None:
        raise NotFound(f"No appointment with id {appointment_id} in this clinic.",
                       code="appointment_not_found", details={"field": "appointment_id"})
    if row.status not in PAYABLE_STATUSES:
        raise InvalidInput(f"This appointment is {row.status.replace('_', ' ')}; payments are "
                       "taken for booked, checked-in or completed visits.",
                       code="appointment_not_payable",
                       details={"field": "appointment_id", "current_status": row.status})
    return row


async def _next_receipt(ctx: ClinicContext) -> str:
    number = (await ctx.conn.execute(
        update(clinic).where(clinic.c.id == ctx.clinic_id)
        .values(next_receipt=clinic.c.next_receipt + 1)
        .returning(clinic.c.next_receipt - 1)
    )).scalar_one()
    return f"{RECEIPT_PREFIX}{number:06d}"


async def do_take_payment(
    ctx: ClinicContext, data: PaymentCreate, payment_id: uuid.UUID | None = None,
    stamp: WriteStamp | None = None, *, received_at: datetime | None = None,
) -> PaymentPublic:
    """Take a payment for a visit. A device pushing one taken offline brings its own id,
    stamp and the time it was taken."""
    check_role(ctx)
    currency = (await ctx.conn.execute(
        select(clinic.c.currency).where(clinic.c.id == ctx.clinic_id))).scalar_one()
    if data.currency != currency:
        raise InvalidInput(f"This clinic takes payments in {currency}, not {data.currency}.",
                           code="currency_mismatch", details={"field": "currency"})
    visit = await _payable_appointment(ctx, data.appointment_id)
    payment_id = payment_id or uuid7()
    values = {
        "clinic_id": ctx.clinic_id, "id": payment_id, "appointment_id": data.appointment_id,
        "patient_id": visit.patient_id, "amount_minor": data.amount_minor,
        "currency": data.currency, "method": data.method, "reference": data.reference,
        "received_by": ctx.user_id, "received_at": received_at or datetime.now(UTC),
        "receipt_number": await _next_receipt(ctx),
        **stamp_fields(None, _TAKEN_FIELDS, stamp or server_stamp()),
    }
    try:
        async with ctx.conn.begin_nested():
            row = (await ctx.conn.execute(insert(payment).values(**values)
                                          .returning(payment))).one()
    except IntegrityError as exc:
        # The same payment pushed twice at once: the second waited for the first's receipt
        # number, and finds its id taken.
        if "pk_payment" not in str(exc.orig):
            raise
        raise Conflict("A payment with this id was already taken; it was not taken again.",
                       code="already_exists") from exc
    await audit.record(ctx, action="payment.take", entity="payment", entity_id=payment_id,
                       detail={"appointment_id": str(data.appointment_id),
                               "patient_id": str(visit.patient_id)})
    return to_public(row)


async def do_void_payment(
    ctx: ClinicContext, payment_id: uuid.UUID, data: PaymentVoid, *,
    stamp: WriteStamp | None = None, voided_at: datetime | None = None,
) -> PaymentPublic:
    """Void a payment taken by mistake, once; the record and its amount stay."""
    check_role(ctx)
    current = await access_payment(ctx, payment_id, for_update=True)
    if current.voided_at is not None:
        raise Conflict(f"Payment {current.receipt_number} was already voided; a void is "
                       "final.", code="already_voided")
    row = (await ctx.conn.execute(
        update(payment).where(payment.c.id == payment_id).values(
            voided_at=voided_at or datetime.now(UTC), voided_by=ctx.user_id,
            void_reason=data.reason,
            **stamp_fields(current.field_stamps, ["voided_at", "voided_by", "void_reason"],
                           stamp or server_stamp()))
        .returning(payment)
    )).one()
    await audit.record(ctx, action="payment.void", entity="payment", entity_id=payment_id,
                       detail={"appointment_id": str(current.appointment_id)})
    return to_public(row)


async def list_payments(
    ctx: ClinicContext, *, appointment_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None, day: date | None = None, limit: int = 100,
) -> PaymentsPublic:
    """Payments matching every filter given (`day` in the clinic's zone), newest first;
    with none, the clinic's latest."""
    check_role(ctx)
    stmt = select(payment)
    if appointment_id is not None:
        stmt = stmt.where(payment.c.appointment_id == appointment_id)
    if patient_id is not None:
        stmt = stmt.where(payment.c.patient_id == patient_id)
    if day is not None:
        if not FIRST_DAY <= day <= LAST_DAY:
            raise InvalidInput(f"Pick a day between {FIRST_DAY} and {LAST_DAY}.",
                               code="day_out_of_range", details={"field": "day"})
        zone = ZoneInfo((await ctx.conn.execute(
            select(clinic.c.timezone).where(clinic.c.id == ctx.clinic_id))).scalar_one())
        start = datetime.combine(day, time(), zone)
        end = datetime.combine(day + timedelta(days=1), time(), zone)
        stmt = stmt.where(payment.c.received_at >= start, payment.c.received_at < end)
    rows = (await ctx.conn.execute(
        stmt.order_by(payment.c.received_at.desc(), payment.c.id.desc()).limit(limit + 1)
    )).all()
    page = [to_public(r) for r in rows[:limit]]
    await audit.record(ctx, action="payment.list", entity="payment",
                       detail={"returned": [str(p.id) for p in page]})
    return PaymentsPublic(data=page, has_more=len(rows) > limit)
