"""The clinic's pharmacy directory: search for all staff, entries and their pharmacists
for the clinic admin.

Search folds accents and case with `shared_models.search.fold` on both sides, in Python
over one bounded read of the clinic's active pharmacies. A clinic's directory is a few
hundred rows, so reading it whole costs less than a round trip, and the embedded
PostgreSQL has no `unaccent`: folding in SQL would mean a second, hand-written copy of
the folding the desktop uses, which could drift from it. The directory is not patient
data; searching it is not audited, changing it is.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.pharmacies import (
    PharmaciesPublic,
    PharmacistPublic,
    PharmacyCreate,
    PharmacyPublic,
    PharmacyUpdate,
)
from shared_models.search import fold
from shared_models.tables import clinic, pharmacy, staff_user
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound
from sync_server.lib.context import ClinicContext
from sync_server.lib.patients import check_phone
from sync_server.lib.stamps import server_stamp, stamp_fields

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# The most pharmacies a search reads: far above any clinic's directory, a bound on a
# request's work all the same.
MAX_DIRECTORY = 5000
_REQUIRED = frozenset({"name", "address", "registry_number", "is_active"})


def to_public(row: Row[Any]) -> PharmacyPublic:
    return PharmacyPublic.model_validate(row._mapping)


async def access_pharmacy(ctx: ClinicContext, pharmacy_id: uuid.UUID, *,
                          for_update: bool = False) -> Row[Any]:
    """The pharmacy of the caller's clinic, or 404 (also for another clinic's id)."""
    stmt = select(pharmacy).where(pharmacy.c.id == pharmacy_id,
                                  pharmacy.c.deleted_at.is_(None))
    if for_update:
        stmt = stmt.with_for_update()
    row = (await ctx.conn.execute(stmt)).first()
    if row is None:
        raise NotFound(f"No pharmacy with id {pharmacy_id} in this clinic's directory.",
                       code="pharmacy_not_found")
    return row


def _compact(text: str) -> str:
    return fold(text).replace(" ", "")


def _rank(query: str, terms: list[str], row: Row[Any]) -> int | None:
    """Lower is better: the registry number exactly, a name prefix, then every term
    somewhere in the name, address or registry number. None: no match."""
    if _compact(row.registry_number) == query.replace(" ", ""):
        return 0
    name = fold(row.name)
    if name.startswith(query):
        return 1
    text = " ".join((name, fold(row.address), fold(row.registry_number),
                     _compact(row.registry_number)))
    if all(term in text for term in terms):
        return 2
    return None


async def search(ctx: ClinicContext, q: str, *, limit: int = DEFAULT_LIMIT,
                 include_inactive: bool = False) -> PharmaciesPublic:
    """Pharmacies matching `q` (name, address or registry number, accents and case
    ignored), best first; with an empty `q`, the first by name. Inactive ones only for
    the admin, on request (to find one again and reactivate it)."""
    stmt = select(pharmacy).where(pharmacy.c.deleted_at.is_(None))
    if not (include_inactive and ctx.role is Role.ADMIN):
        stmt = stmt.where(pharmacy.c.is_active)
    stmt = stmt.order_by(pharmacy.c.name, pharmacy.c.id)
    query = fold(q)
    if not query:
        rows = (await ctx.conn.execute(stmt.limit(limit))).all()
        return PharmaciesPublic(data=[to_public(r) for r in rows])
    terms = query.split(" ")
    ranked: list[tuple[int, str, Row[Any]]] = []
    for row in (await ctx.conn.execute(stmt.limit(MAX_DIRECTORY))).all():
        rank = _rank(query, terms, row)
        if rank is not None:
            ranked.append((rank, fold(row.name), row))
    # Stable: rows came in name order, so equal ranks stay in it.
    ranked.sort(key=lambda r: (r[0], r[1]))
    return PharmaciesPublic(data=[to_public(r) for _, _, r in ranked[:limit]])


async def _phone(ctx: ClinicContext, raw: str | None) -> str | None:
    if not raw:
        return None
    country = (await ctx.conn.execute(
        select(clinic.c.country).where(clinic.c.id == ctx.clinic_id))).scalar_one()
    return check_phone(raw, region=country)


async def _check_registry_free(ctx: ClinicContext, registry_number: str, *,
                               other_than: uuid.UUID | None = None) -> None:
    """409 if another entry has this registry number, however it was capitalised."""
    stmt = select(pharmacy.c.name).where(
        func.upper(pharmacy.c.registry_number) == registry_number.upper())
    if other_than is not None:
        stmt = stmt.where(pharmacy.c.id != other_than)
    if (await ctx.conn.execute(stmt)).first() is not None:
        raise _registry_taken(registry_number)


def _registry_taken(registry_number: str) -> Conflict:
    return Conflict(f"Another pharmacy in the directory already has registry number "
                    f"{registry_number}. Search for it and update that entry instead.",
                    code="registry_number_taken", details={"field": "registry_number"})


async def do_create_pharmacy(ctx: ClinicContext, data: PharmacyCreate) -> PharmacyPublic:
    phone = await _phone(ctx, data.phone)
    await _check_registry_free(ctx, data.registry_number)
    pharmacy_id = uuid7()
    values = {"clinic_id": ctx.clinic_id, "id": pharmacy_id, "name": data.name,
              "address": data.address, "registry_number": data.registry_number,
              "phone": phone, "is_active": True}
    try:
        async with ctx.conn.begin_nested():
            row = (await ctx.conn.execute(
                insert(pharmacy).values(**values, **stamp_fields(None, list(values),
                                                                 server_stamp()))
                .returning(pharmacy))).one()
    except IntegrityError as exc:
        # The same number added at the same moment by another request.
        raise _registry_taken(data.registry_number) from exc
    await audit.record(ctx, action="pharmacy.create", entity="pharmacy", entity_id=pharmacy_id)
    return to_public(row)


async def do_update_pharmacy(ctx: ClinicContext, pharmacy_id: uuid.UUID,
                             data: PharmacyUpdate) -> PharmacyPublic:
    """Change the fields given; a pharmacy is switched off with `is_active: false`, never
    deleted, since prescriptions point at it."""
    current = await access_pharmacy(ctx, pharmacy_id, for_update=True)
    changes: dict[str, Any] = data.model_dump(exclude_unset=True)
    emptied = sorted(name for name in _REQUIRED if name in changes and changes[name] is None)
    if emptied:
        raise InvalidInput(f"{', '.join(emptied)} cannot be emptied; leave the field out to "
                           "keep it as it is.", code="required_field",
                           details={"field": emptied[0]})
    if "phone" in changes:
        changes["phone"] = await _phone(ctx, changes["phone"])
    changes = {k: v for k, v in changes.items() if getattr(current, k) != v}
    if not changes:
        return to_public(current)
    if "registry_number" in changes:
        await _check_registry_free(ctx, changes["registry_number"], other_than=pharmacy_id)
    try:
        async with ctx.conn.begin_nested():
            row = (await ctx.conn.execute(
                update(pharmacy).where(pharmacy.c.id == pharmacy_id)
                .values(**changes, **stamp_fields(current.field_stamps, list(changes),
                                                  server_stamp()))
                .returning(pharmacy))).one()
    except IntegrityError as exc:
        raise _registry_taken(changes["registry_number"]) from exc
    await audit.record(ctx, action="pharmacy.update", entity="pharmacy", entity_id=pharmacy_id,
                       detail={"fields": sorted(changes)})
    return to_public(row)


async def do_link_pharmacist(ctx: ClinicContext, pharmacy_id: uuid.UUID,
                             user_id: uuid.UUID) -> PharmacistPublic:
    """Make `user_id` (a pharmacist) receive the prescriptions sent to this pharmacy. A
    pharmacist works for one pharmacy: linking moves them from any previous one."""
    place = await access_pharmacy(ctx, pharmacy_id)
    if not place.is_active:
        raise Conflict("This pharmacy is switched off in the directory; switch it on before "
                       "linking pharmacists to it.", code="pharmacy_inactive")
    user = (await ctx.conn.execute(
        select(staff_user).where(staff_user.c.id == user_id, staff_user.c.deleted_at.is_(None))
        .with_for_update())).first()
    if user is None:
        raise NotFound(f"No staff account with id {user_id} in this clinic.",
                       code="user_not_found")
    if user.role != Role.PHARMACIST:
        raise InvalidInput(f"This account's role is {user.role}; only pharmacists are linked "
                           "to a pharmacy.", code="not_a_pharmacist",
                           details={"field": "user_id"})
    if user.pharmacy_id != pharmacy_id:
        await ctx.conn.execute(
            update(staff_user).where(staff_user.c.id == user_id).values(
                pharmacy_id=pharmacy_id,
                **stamp_fields(user.field_stamps, ["pharmacy_id"], server_stamp())))
        await audit.record(ctx, action="pharmacy.link_pharmacist", entity="staff_user",
                           entity_id=user_id, detail={"pharmacy_id": str(pharmacy_id)})
    return PharmacistPublic(user_id=user_id, full_name=user.full_name, pharmacy_id=pharmacy_id)
