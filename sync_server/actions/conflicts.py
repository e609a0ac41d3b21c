"""Values that lost a merge, for staff to review: keep the record as it is, or restore
the lost value (DESIGN section 5: nothing typed by a person is silently lost).

Who sees which: demographics conflicts go to the staff who edit patients; a note's
conflicts only to its author, the one person who may change that draft; conflicts on the
chart's entries (allergies, conditions, medications, vital signs) to doctors only, as the
values are clinical.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import ColumnElement, Row, and_, or_, select, update

from shared_models.enums import Role
from shared_models.schemas.patients import PatientUpdate
from shared_models.schemas.sync import SyncConflictPublic, SyncConflictsPublic
from shared_models.tables import sync_conflict
from sync_server.actions import audit, clinical_records, notes
from sync_server.actions import patients as patients_actions
from sync_server.core.errors import Conflict, InvalidInput, NotFound
from sync_server.lib.context import ClinicContext

MAX_PAGE = 100
State = Literal["open", "resolved", "all"]


def _visible(ctx: ClinicContext) -> ColumnElement[bool]:
    patients = sync_conflict.c.entity == "patient"
    if ctx.role is Role.DOCTOR:
        return or_(patients, sync_conflict.c.entity.in_(sorted(clinical_records.ENTITIES)),
                   and_(sync_conflict.c.entity == "clinical_note",
                        sync_conflict.c.user_id == ctx.user_id))
    if ctx.role in (Role.ADMIN, Role.RECEPTIONIST):
        return patients
    return sync_conflict.c.id.is_(None)  # nothing


def _public(row: Row[Any]) -> SyncConflictPublic:
    return SyncConflictPublic.model_validate(row, from_attributes=True)


async def list_conflicts(ctx: ClinicContext, *, state: State, record_id: uuid.UUID | None,
                         limit: int, offset: int) -> SyncConflictsPublic:
    stmt = select(sync_conflict).where(_visible(ctx))
    if state == "open":
        stmt = stmt.where(sync_conflict.c.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(sync_conflict.c.resolved_at.is_not(None))
    if record_id is not None:
        stmt = stmt.where(sync_conflict.c.record_id == record_id)
    stmt = (stmt.order_by(sync_conflict.c.created_at.desc(), sync_conflict.c.id)
            .limit(limit + 1).offset(offset))
    rows = (await ctx.conn.execute(stmt)).all()
    page = rows[:limit]
    await audit.record(ctx, action="sync_conflict.list", entity="sync_conflict",
                       detail={"count": len(page)})
    return SyncConflictsPublic(data=[_public(r) for r in page], has_more=len(rows) > limit,
                               next_offset=offset + limit if len(rows) > limit else None)


async def _restore_patient_value(ctx: ClinicContext, row: Row[Any]) -> None:
    try:
        data = PatientUpdate.model_validate({row.field: row.lost})
    except ValidationError as exc:
        raise InvalidInput(f"The kept value of {row.field} is no longer valid; edit the "
                           "patient instead.", code="invalid_restore") from exc
    await patients_actions.do_update_patient(ctx, row.record_id, data)


async def resolve(ctx: ClinicContext, conflict_id: uuid.UUID,
                  keep: Literal["current", "lost"]) -> SyncConflictPublic:
    row = (await ctx.conn.execute(select(sync_conflict).where(
        sync_conflict.c.id == conflict_id, _visible(ctx)).with_for_update())).first()
    if row is None:
        raise NotFound(f"No conflict with id {conflict_id} for you in this clinic.",
                       code="conflict_not_found")
    if row.resolved_at is not None:
        raise Conflict("This conflict was already resolved.", code="already_resolved",
                       details={"resolution": row.resolution})
    if row.entity == "patient" and keep == "lost":
        await _restore_patient_value(ctx, row)
    elif row.entity in clinical_records.ENTITIES and keep == "lost":
        await clinical_records.restore_value(ctx, row.entity, row.record_id, row.field,
                                             row.lost)
    elif row.entity == "clinical_note":
        copy_id = uuid.UUID(row.lost["conflict_copy"])
        if keep == "lost":
            await notes.restore_copy(ctx, row.record_id, copy_id)
        else:
            await notes.discard(ctx, copy_id)
    resolved = (await ctx.conn.execute(
        update(sync_conflict).where(sync_conflict.c.id == conflict_id)
        .values(resolved_at=datetime.now(UTC), resolved_by=ctx.user_id, resolution=keep)
        .returning(sync_conflict))).one()
    await audit.record(ctx, action="sync_conflict.resolve", entity=row.entity,
                       entity_id=row.record_id, detail={"keep": keep})
    return _public(resolved)
