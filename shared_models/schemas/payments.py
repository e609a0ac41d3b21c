"""Payments taken at the front desk: the currencies a clinic can take, how an amount
travels, and the wire schemas.

Money never travels or rests as a float. On the wire an amount is a decimal string in
the currency's units with "." as the decimal point ("350.50" MXN, "12500" CLP); in both
databases it is an integer of minor units (`amount_minor`: centavos for MXN, pesos for
CLP, which has none) beside its currency code. Both sides read the string with
`to_minor`, so a desktop and the server can never disagree about what was taken.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from shared_models.enums import AppointmentStatus, Role
from shared_models.schemas.common import NoNul


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    # The fractions the clinic takes in practice: none for Chilean and Colombian pesos.
    decimals: int
    symbol: str
    # How the country writes amounts: Chile and Colombia "12.500,50", Mexico "1,250.50".
    group_separator: str
    decimal_separator: str
    # Per payment, in whole units (about US$100,000): beyond it the amount is a typing
    # slip (a few zeros too many), not a visit.
    max_amount: int


CURRENCIES: dict[str, Currency] = {c.code: c for c in (
    Currency("MXN", 2, "$", ",", ".", 2_000_000),
    Currency("CLP", 0, "$", ".", ",", 100_000_000),
    Currency("COP", 0, "$", ".", ",", 400_000_000),
    Currency("PEN", 2, "S/", ",", ".", 400_000),
    Currency("ARS", 2, "$", ".", ",", 100_000_000),
    Currency("USD", 2, "US$", ",", ".", 100_000),
)}
COUNTRY_CURRENCY = {"MX": "MXN", "CL": "CLP", "CO": "COP", "PE": "PEN", "AR": "ARS",
                    "US": "USD", "EC": "USD", "SV": "USD", "PA": "USD"}
# The clinic column's default, like its country's ("MX").
DEFAULT_CURRENCY = "MXN"

PaymentMethod = Literal["cash", "card", "transfer"]
PAYMENT_METHODS: tuple[PaymentMethod, ...] = ("cash", "card", "transfer")
# Money is the front desk's business; clinical staff never see payments.
PAYMENT_ROLES = frozenset({Role.ADMIN, Role.RECEPTIONIST})
# A visit can be paid in advance (booked), at check-in, during or after it. A pending
# appointment is one booked on a computer while offline: its payment is queued after the
# booking, so the server sees the booking first (and refuses both if the slot was gone).
PAYABLE_STATUSES = frozenset({
    AppointmentStatus.PENDING, AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN,
    AppointmentStatus.IN_PROGRESS, AppointmentStatus.COMPLETED,
})
# A payment taken offline carries this until the server numbers it.
LOCAL_RECEIPT_PREFIX = "local-"
MAX_REFERENCE = 100
MAX_VOID_REASON = 500

_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")
# Whole digits read at most: past every currency's maximum, inside Decimal's exact range.
_MAX_WHOLE_DIGITS = 12


def currency_for_country(country: str) -> str:
    return COUNTRY_CURRENCY.get(country.upper(), DEFAULT_CURRENCY)


def local_receipt_number(payment_id: uuid.UUID) -> str:
    return f"{LOCAL_RECEIPT_PREFIX}{payment_id.hex}"


def is_local_receipt_number(receipt_number: str) -> bool:
    return receipt_number.startswith(LOCAL_RECEIPT_PREFIX)


def check_currency(code: str) -> Currency:
    currency = CURRENCIES.get(code)
    if currency is None:
        raise ValueError(f"'{code}' is not a currency payments are taken in; use one of "
                         f"{', '.join(CURRENCIES)}")
    return currency


def to_minor(amount: str, currency: str) -> int:
    """`amount` (a decimal string with "." for the point) in minor units of `currency`;
    ValueError, with a message a person can act on, for anything that is not a positive
    amount this currency can hold."""
    unit = check_currency(currency)
    too_much = (f"at most {format_amount(unit.max_amount * 10**unit.decimals, unit.code)} "
                "per payment; check the amount")
    if amount.startswith("-"):
        raise ValueError("the amount must be more than zero")
    match = _DECIMAL.fullmatch(amount)
    if match is None:
        raise ValueError("write the amount with digits and an optional decimal point, "
                         "e.g. 350.50")
    whole, fraction = match[1], (match[2] or "").rstrip("0")
    if len(fraction) > unit.decimals:
        if unit.decimals == 0:
            raise ValueError(f"{unit.code} has no cents; enter a whole amount")
        raise ValueError(f"{unit.code} amounts have at most {unit.decimals} decimals")
    if len(whole.lstrip("0")) > _MAX_WHOLE_DIGITS:
        raise ValueError(too_much)
    value = Decimal(f"{whole}.{fraction or 0}")
    if value <= 0:
        raise ValueError("the amount must be more than zero")
    if value > unit.max_amount:
        raise ValueError(too_much)
    return int(value.scaleb(unit.decimals))


def decimal_text(amount_minor: int, currency: str) -> str:
    """Minor units back as the wire's decimal string ("350.50", "12500")."""
    decimals = check_currency(currency).decimals
    if decimals == 0:
        return str(amount_minor)
    whole, fraction = divmod(amount_minor, 10**decimals)
    return f"{whole}.{fraction:0{decimals}d}"


def format_number(amount_minor: int, currency: str) -> str:
    """The number as the currency's country writes it: "12.500" (CLP), "1,250.50" (MXN)."""
    unit = check_currency(currency)
    whole, fraction = divmod(amount_minor, 10**unit.decimals)
    text = f"{whole:,}".replace(",", unit.group_separator)
    if unit.decimals:
        text += f"{unit.decimal_separator}{fraction:0{unit.decimals}d}"
    return text


def format_amount(amount_minor: int, currency: str) -> str:
    """For people, with symbol and code: "$12.500 CLP", "$1,250.50 MXN"."""
    unit = check_currency(currency)
    return f"{unit.symbol}{format_number(amount_minor, currency)} {unit.code}"


Reference = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_REFERENCE),
                      NoNul]


class PaymentCreate(BaseModel):
    """A payment for a visit: the patient is the appointment's."""

    model_config = ConfigDict(extra="forbid")

    appointment_id: uuid.UUID
    currency: str = Field(description="ISO 4217 code; must be the clinic's currency.")
    amount: str = Field(max_length=32, description="Decimal string in the currency's units, "
                        "'.' as the decimal point: '350.50' (MXN), '12500' (CLP).")
    method: PaymentMethod
    reference: Reference | None = Field(
        default=None, description="Card voucher or transfer number, when there is one.")

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        return check_currency(value).code

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str, info: ValidationInfo) -> str:
        currency = info.data.get("currency")
        if currency is None:  # refused already, with its own message
            return value
        return decimal_text(to_minor(value.strip(), currency), currency)

    @field_validator("reference")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def amount_minor(self) -> int:
        return to_minor(self.amount, self.currency)


class PaymentVoid(BaseModel):
    """Voiding a payment taken by mistake; the reason stays on the record."""

    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=MAX_VOID_REASON), NoNul]


class PaymentPublic(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    amount_minor: int
    amount: str = Field(description="amount_minor as a decimal string in the currency's units")
    currency: str
    method: PaymentMethod
    reference: str | None
    received_by: uuid.UUID
    received_at: datetime
    receipt_number: str
    voided_at: datetime | None
    voided_by: uuid.UUID | None
    void_reason: str | None
    server_version: int


class PaymentsPublic(BaseModel):
    data: list[PaymentPublic]
    has_more: bool
