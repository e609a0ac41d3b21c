"""Pull: the changes a device has not seen yet, filtered by clinic (row-level security)
and by role (minimum necessary).

The cursor is built on transaction ids, not on server_version alone (see migration
0005). A pull first fixes a horizon H, the xmin of its snapshot: every transaction below
H has finished. It then delivers, page by page, every row version written by
transactions in [X, H), where X is the previous horizon, in (transaction, version)
order. That set cannot change between pages, so paging is exact; versions written at or
above H wait for the next pull. The next cursor is H. A transaction that was still open
at the last pull has an id of at least X, so it is never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, and_, func, literal, or_, select, text, tuple_

from shared_models.enums import Role
from shared_models.schemas.sync import Change, PullResponse, SyncedEntity
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    clinical_note,
    patient,
    provider,
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
}
_SCHEDULE: tuple[SyncedEntity, ...] = ("patient", "provider", "availability_rule",
                                       "availability_exception", "appointment")
# What each role's device keeps a copy of. Notes go to doctors only: the front desk works
# with schedules and demographics, never with what a doctor wrote.
PULLED_BY_ROLE: dict[Role, tuple[SyncedEntity, ...]] = {
    Role.ADMIN: _SCHEDULE,
    Role.RECEPTIONIST: _SCHEDULE,
    Role.DOCTOR: (*_SCHEDULE, "clinical_note"),
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


def _entry(entity: SyncedEntity, row: Row[Any]) -> tuple[tuple[int, int], Change]:
    record = record_of(row)
    deleted = record.get("deleted_at") is not None
    if deleted:
        # A tombstone carries no more than it needs to remove the record.
        record = {"id": record["id"], "deleted_at": record["deleted_at"]}
    key = (row.version_xid if row.version_xid is not None else NO_XID, row.server_version)
    return key, Change(entity=entity, id=row.id, server_version=row.server_version,
                       deleted=deleted, record=record)


async def pull(ctx: ClinicContext, *, since: str | None, limit: int) -> PullResponse:
    cursor = Cursor.decode(since)
    high = cursor.high
    if high is None:
        high = int((await ctx.conn.execute(
            text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))).scalar_one())
    entities = PULLED_BY_ROLE.get(ctx.role, ()) if ctx.role else ()
    found: list[tuple[tuple[int, int], Change]] = []
    for entity in entities:
        table = TABLES[entity]
        xid = func.coalesce(table.c.version_xid, literal(NO_XID))
        window = and_(table.c.version_xid < high, table.c.version_xid >= cursor.low)
        if cursor.low == NO_XID:
            window = or_(table.c.version_xid.is_(None), table.c.version_xid < high)
        stmt = select(table).where(window)
        if cursor.after is not None:
            stmt = stmt.where(tuple_(xid, table.c.server_version) > tuple_(*cursor.after))
        stmt = stmt.order_by(xid, table.c.server_version).limit(limit + 1)
        found.extend(_entry(entity, row) for row in await ctx.conn.execute(stmt))
    found.sort(key=lambda item: item[0])
    page = found[:limit]
    has_more = len(found) > limit
    next_cursor = (Cursor(cursor.low, high, page[-1][0]) if has_more else Cursor(high)).encode()
    if page:
        counts: dict[str, int] = {}
        for _key, change in page:
            counts[change.entity] = counts.get(change.entity, 0) + 1
        await audit.record(ctx, action="sync.pull", entity="sync", detail={"counts": counts})
    return PullResponse(changes=[c for _k, c in page], next_cursor=next_cursor,
                        has_more=has_more)
