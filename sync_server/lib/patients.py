"""Patient helpers: permission-checked fetch and input checks."""

from __future__ import annotations

import uuid
from typing import Any

import phonenumbers
from sqlalchemy import Row, Select, select

from shared_models.search import prefix_range
from shared_models.tables import patient, patient_search_token
from sync_server.core.errors import InvalidInput, NotFound
from sync_server.lib.context import ClinicContext


async def access_patient(ctx: ClinicContext, patient_id: uuid.UUID, *, for_update: bool = False
                         ) -> Row[Any]:
    """The patient of the caller's clinic, or 404 (also for another clinic's id)."""
    stmt = select(patient).where(patient.c.id == patient_id, patient.c.deleted_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await ctx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(
            f"No patient with id {patient_id} in this clinic.", code="patient_not_found"
        )
    return row


def check_phone(raw: str, *, region: str) -> str:
    """Normalise a phone number to E.164, reading numbers without '+' in `region`'s plan."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput(
            f"'{raw}' is not a phone number. Write it with its area code, or in "
            "international form such as +52 55 1234 5678.",
            code="invalid_phone",
            details={"field": "phone"},
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput(
            f"'{raw}' is not a valid phone number for its country. Check the digits and "
            "the area code.",
            code="invalid_phone",
            details={"field": "phone"},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def search_statement(terms: list[str], *, limit: int, offset: int) -> Select[Any]:
    """Live patients whose tokens start with every term, in name order, one page (+1 row
    to tell whether more follow).

    The page is chosen inside the token index (names travel with the tokens), so only
    the page's patients are read from the patient table, however many match.
    """
    if not terms:
        return (
            select(patient)
            .where(patient.c.deleted_at.is_(None))
            .order_by(patient.c.family_name, patient.c.given_name, patient.c.id)
            .limit(limit + 1)
            .offset(offset)
        )
    # The longest term is usually the most selective: it drives the scan.
    first, *rest = sorted(terms, key=len, reverse=True)
    hit = patient_search_token
    low, high = prefix_range(first)
    matches = select(hit.c.patient_id, hit.c.family_name, hit.c.given_name).where(
        hit.c.token >= low, hit.c.token < high
    )
    for term in rest:
        other = patient_search_token.alias()
        low, high = prefix_range(term)
        matches = matches.where(
            hit.c.patient_id.in_(
                select(other.c.patient_id).where(other.c.token >= low, other.c.token < high)
            )
        )
    page = (
        matches.distinct()
        .order_by(hit.c.family_name, hit.c.given_name, hit.c.patient_id)
        .limit(limit + 1)
        .offset(offset)
        .subquery()
    )
    return (
        select(patient)
        .join(page, patient.c.id == page.c.patient_id)
        .where(patient.c.deleted_at.is_(None))
        .order_by(page.c.family_name, page.c.given_name, page.c.patient_id)
    )
