"""Pull: the changes a device has not seen yet, filtered by clinic (row-level security)
and by role (minimum necessary).

The cursor is built on transaction ids, not on server_version alone (see migration
0005). A pull first fixes a horizon H, the xmin of its snapshot: every transaction below
H has finished. It then delivers, page by page, every row version written by
transactions in [X, H), where X is the previous horizon, in (transaction, version)
order. That set cannot change between pages, so paging is exact; versions written at or
above H wait for the next pull. The next cursor is H. A transaction that was still open
at the last pull has an id of at least X, so it is never skipped.

A page is read in two statements, both walks of each table's (clinic_id, version_xid,
server_version) index in cursor order, so a page of a large clinic costs what a small
one does. The first finds where the page ends, merging at most limit + 1 keys per table
in SQL. The second has PostgreSQL render exactly the rows up to that end as the JSON the
wire carries, so no row is read, converted or serialised that the page does not send.
Rows written before transaction ids were recorded (NULL version_xid) come first in the
cursor order; they are a separate index range, read before the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Row,
    Select,
    Table,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
)

from shared_models.enums import Role
from shared_models.schemas.sync import PullResponse, SyncedEntity
from shared_models.tables import (
    allergy,
    appointment,
    availability_exception,
    availability_rule,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    payment,
    pharmacy,
    prescription,
    prescription_item,
    provider,
    signing_key,
    vital_signs,
)
from sync_server.actions import audit
from sync_server.core.errors import InvalidInput
from sync_server.lib.context import ClinicContext

TABLES: dict[SyncedEntity, Table] = {
    "patient": patient,
    "provider": provider,
    "availability_rule": availability_rule,
    "availability_exception": availability_exception,
    "appointment": appointment,
    "clinical_note": clinical_note,
    "payment": payment,
    "allergy": allergy,
    "condition": condition,
    "medication": medication,
    "vital_signs": vital_signs,
    "pharmacy": pharmacy,
    "signing_key": signing_key,
    "prescription": prescription,
    "prescription_item": prescription_item,
    "lab_order": lab_order,
    "lab_result": lab_result,
}
_SCHEDULE: tuple[SyncedEntity, ...] = ("patient", "provider", "availability_rule",
                                       "availability_exception", "appointment")
# The chart: what a doctor's computer needs to see and prescribe with no network.
_CHART: tuple[SyncedEntity, ...] = ("clinical_note", "allergy", "condition", "medication",
                                    "vital_signs", "prescription", "prescription_item",
                                    "lab_order", "lab_result", "pharmacy", "signing_key")
# What each role's device keeps a copy of (minimum necessary). The chart goes to doctors
# only: the front desk works with schedules and demographics, never with what a doctor
# wrote, prescribed or was sent by the lab. Payments go to the front desk only: clinical
# staff never see money. Lab technicians and pharmacists work online, through their own
# endpoints, which give them the orders and prescriptions addressed to them and no more.
PULLED_BY_ROLE: dict[Role, tuple[SyncedEntity, ...]] = {
    Role.ADMIN: (*_SCHEDULE, "payment"),
    Role.RECEPTIONIST: (*_SCHEDULE, "payment"),
    Role.DOCTOR: (*_SCHEDULE, *_CHART),
    Role.LAB_TECH: ("provider",),
    Role.PHARMACIST: ("provider",),
}
# Server bookkeeping that never leaves it.
INTERNAL_COLUMNS = frozenset({"search_text", "version_xid", "field_stamps"})
NO_XID = -1  # rows written before transaction ids were recorded


@dataclass(frozen=True, slots=True)
class Cursor:
    low: int  # X: everything below it was delivered
    high: int | None = None  # H while a pull is being paged
    after: tuple[int, int] | None = None  # the last (transaction, version) delivered

    def encode(self) -> str:
        if self.high is None or self.after is None:
            return str(self.low)
        return f"{self.low}.{self.high}.{self.after[0]}.{self.after[1]}"

    @classmethod
    def decode(cls, raw: str | None) -> Cursor:
        if not raw:
            return cls(NO_XID)
        try:
            parts = [int(p) for p in raw.split(".")]
        except ValueError:
            parts = []
        if len(parts) == 1:
            return cls(parts[0])
        if len(parts) == 4:
            return cls(parts[0], parts[1], (parts[2], parts[3]))
        raise InvalidInput("The sync cursor is not one this server issued. Start a full "
                           "sync by leaving `since` empty.", code="invalid_cursor",
                           details={"field": "since"})


def record_of(row: Row[Any]) -> dict[str, Any]:
    """A synced row as a device receives it: without the server's bookkeeping."""
    return {k: v for k, v in row._mapping.items() if k not in INTERNAL_COLUMNS}


Key = tuple[int, int]  # (transaction, version): the order a pull walks rows in


def _json_key(name: str) -> ColumnElement[Any]:
    # Names come from our own table metadata and entity names, never from a request.
    return literal_column(f"'{name}'")


def _rendered(entity: SyncedEntity, table: Table) -> ColumnElement[str]:
    """One change as the wire carries it (the shape of `Change`), as JSON text.

    json_build_object rather than to_jsonb(row) minus the internal columns: the record
    keeps its column order and is built once, not built and then trimmed."""
    record = func.json_build_object(*chain.from_iterable(
        (_json_key(c.name), c) for c in table.c if c.name not in INTERNAL_COLUMNS))
    # A tombstone carries no more than it needs to remove the record.
    tombstone = func.json_build_object(_json_key("id"), table.c.id, _json_key("deleted_at"),
                                       table.c.deleted_at)
    deleted = table.c.deleted_at.is_not(None)
    change = func.json_build_object(
        _json_key("entity"), _json_key(entity), _json_key("id"), table.c.id,
        _json_key("server_version"), table.c.server_version, _json_key("deleted"), deleted,
        _json_key("record"), case((deleted, tombstone), else_=record))
    return cast(change, Text)


RENDERED = {entity: _rendered(entity, table) for entity, table in TABLES.items()}


def _ranges(table: Table, *, low: int, high: int, after: Key | None, end: Key | None
            ) -> list[tuple[ColumnElement[int], ColumnElement[bool]]]:
    """The rows of `table` in the pull's window with keys in (after, end], as index ranges
    in cursor order: (the key's transaction, the range's condition).

    Rows without a transaction id sort first (as NO_XID) but sit last in the index, so
    they are their own range; every recorded transaction id is above NO_XID."""
    xid, version = table.c.version_xid, table.c.server_version
    ranges: list[tuple[ColumnElement[int], ColumnElement[bool]]] = []
    if low == NO_XID and (after is None or after[0] == NO_XID):
        unrecorded: list[ColumnElement[bool]] = [xid.is_(None)]
        if after is not None:
            unrecorded.append(version > after[1])
        if end is not None and end[0] == NO_XID:
            unrecorded.append(version <= end[1])
        ranges.append((literal(NO_XID, BigInteger), and_(*unrecorded)))
    if end is None or end[0] != NO_XID:
        recorded: list[ColumnElement[bool]] = [xid >= low, xid < high]
        if after is not None and after[0] != NO_XID:
            recorded.append(tuple_(xid, version) > tuple_(*after))
        if end is not None:
            recorded.append(tuple_(xid, version) <= tuple_(*end))
        ranges.append((xid, and_(*recorded)))
    return ranges


def _page_end(entities: tuple[SyncedEntity, ...], *, low: int, high: int,
              after: Key | None, limit: int) -> Select[tuple[int, int]]:
    """The keys of the page's last row and of the first row after it (fewer when the
    window holds no more): the first limit + 1 keys are among each range's first
    limit + 1, so no range is read further than that."""
    leaves = []
    for entity in entities:
        table = TABLES[entity]
        for xid, where in _ranges(table, low=low, high=high, after=after, end=None):
            leaves.append(
                select(xid.label("xid"), table.c.server_version.label("version"))
                .where(where)
                .order_by(table.c.version_xid, table.c.server_version)
                .limit(limit + 1))
    keys = union_all(*leaves).subquery()
    return (select(keys.c.xid, keys.c.version).order_by(keys.c.xid, keys.c.version)
            .offset(limit - 1).limit(2))


def _page(entities: tuple[SyncedEntity, ...], *, low: int, high: int, after: Key | None,
          end: Key | None) -> Select[tuple[str, str]]:
    """The page's changes, rendered, in cursor order: (entity, change JSON)."""
    leaves = []
    for entity in entities:
        table = TABLES[entity]
        for xid, where in _ranges(table, low=low, high=high, after=after, end=end):
            leaves.append(select(_json_key(entity).label("entity"), xid.label("xid"),
                                 table.c.server_version.label("version"),
                                 RENDERED[entity].label("change")).where(where))
    changes = union_all(*leaves).subquery()
    return (select(changes.c.entity, changes.c.change)
            .order_by(changes.c.xid, changes.c.version))


async def pull(ctx: ClinicContext, *, since: str | None, limit: int) -> PullResponse:
    cursor = Cursor.decode(since)
    high = cursor.high
    if high is None:
        high = int((await ctx.conn.execute(
            text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))).scalar_one())
    entities = PULLED_BY_ROLE.get(ctx.role, ()) if ctx.role else ()
    ends: list[Key] = []
    rows: list[Row[tuple[str, str]]] = []
    if entities:
        ends = [(row.xid, row.version) for row in (await ctx.conn.execute(
            _page_end(entities, low=cursor.low, high=high, after=cursor.after, limit=limit)
        )).all()]
        # Timestamps render in the session's zone; the wire speaks UTC whatever the
        # server's configuration says.
        await ctx.conn.execute(text("SET LOCAL TimeZone = 'UTC'"))
        rows = list((await ctx.conn.execute(
            _page(entities, low=cursor.low, high=high, after=cursor.after,
                  end=ends[0] if ends else None))).all())
    has_more = len(ends) == 2
    next_cursor = (Cursor(cursor.low, high, ends[0]) if has_more else Cursor(high)).encode()
    if rows:
        counts: dict[str, int] = {}
        for row in rows:
            counts[row.entity] = counts.get(row.entity, 0) + 1
        await audit.record(ctx, action="sync.pull", entity="sync", detail={"counts": counts})
    # Validated on the way in, so the response is a PullResponse like any other; the
    # changes are parsed straight from PostgreSQL's JSON, without a row object per change.
    return PullResponse.model_validate_json(
        f'{{"changes":[{",".join(row.change for row in rows)}],'
        f'"next_cursor":{json.dumps(next_cursor)},"has_more":{json.dumps(has_more)}}}')
