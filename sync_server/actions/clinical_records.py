"""Allergies, conditions, active medications and vital signs pushed from doctors'
computers.

They are plain records (DESIGN section 5): a new one is created with the device's id, an
edit merges field by field like demographics (a field changed on both sides goes to the
later clock stamp, and the value that lost is kept in `sync_conflict`), and a removal is a
tombstone. Only doctors write them. After a merge the whole record is checked again with
the entity's create shape, so two edits that are each valid cannot combine into a record
that is not (a diastolic pressure above the systolic, a medication stopped before it
started, a reading set with no value left).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Row, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.conflicts import merge_fields
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.clinical import RECORD_SCHEMAS
from shared_models.schemas.sync import FieldConflictPublic, Mutation
from shared_models.tables import (
    allergy,
    condition,
    medication,
    prescription,
    sync_conflict,
    vital_signs,
)
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput
from sync_server.lib.context import ClinicContext
from sync_server.lib.mutations import Rejected, Status, invalid_change
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields

TABLES: dict[str, Table] = {
    "allergy": allergy,
    "condition": condition,
    "medication": medication,
    "vital_signs": vital_signs,
}
ENTITIES = frozenset(TABLES)
UNIQUE_VIOLATION = "23505"
# What a person reads in a refusal: one entry, and the kind.
_ONE = {"allergy": "allergy", "condition": "condition", "medication": "medication",
        "vital_signs": "vital signs reading"}
_NAMES = {"allergy": "allergies", "condition": "conditions", "medication": "medications",
          "vital_signs": "vital signs"}


async def push_record(ctx: ClinicContext, m: Mutation, stamp: WriteStamp
                      ) -> tuple[Status, list[FieldConflictPublic]]:
    if ctx.role is not Role.DOCTOR:
        raise Rejected(f"Only doctors record {_NAMES[m.entity]}; your role ({ctx.role}) "
                       "cannot change a patient's chart.", code="role_not_allowed")
    table = TABLES[m.entity]
    current = (await ctx.conn.execute(
        select(table).where(table.c.id == m.record_id).with_for_update())).first()
    if m.op == "delete":
        await _tombstone(ctx, m, current, stamp)
        return "applied", []
    if m.op != "upsert":
        raise Rejected(f"'{m.op}' does not apply to {_NAMES[m.entity]}; they are upserted or "
                       "deleted.", code="invalid_operation")
    if current is None:
        await _create(ctx, m, stamp)
        return "applied", []
    if current.deleted_at is not None:
        raise Rejected(f"This {_ONE[m.entity]} was removed from the chart on the server; "
                       "the change was not applied. Record it again if it still holds.",
                       code="record_deleted")
    return await _update(ctx, m, current, stamp)


async def _tombstone(ctx: ClinicContext, m: Mutation, current: Row[Any] | None,
                     stamp: WriteStamp) -> None:
    # Removing what is already gone (or was never synced) is done: a resent removal,
    # or one from a second computer, changes nothing.
    if current is None or current.deleted_at is not None:
        return
    table = TABLES[m.entity]
    await ctx.conn.execute(update(table).where(table.c.id == m.record_id).values(
        deleted_at=datetime.now(UTC), **stamp_fields(current.field_stamps, [], stamp)))
    await audit.record(ctx, action=f"{m.entity}.delete", entity=m.entity,
                       entity_id=m.record_id, detail={"patient_id": str(current.patient_id)})


async def _create(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> None:
    create_schema, _ = RECORD_SCHEMAS[m.entity]
    try:
        data = create_schema.model_validate(m.changes).model_dump()
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    if data.get("prescription_id") is not None:
        await _check_prescription(ctx, data)
    table = TABLES[m.entity]
    values = {**data, "clinic_id": ctx.clinic_id, "id": m.record_id,
              "recorded_by": ctx.user_id, **stamp_fields(None, sorted(data), stamp)}
    try:
        async with ctx.conn.begin_nested():
            await ctx.conn.execute(insert(table).values(**values))
    except IntegrityError as exc:
        if getattr(exc.orig, "sqlstate", None) == UNIQUE_VIOLATION:
            # Another request created this id between our read and our insert.
            raise Rejected(f"This {_ONE[m.entity]} was already recorded; sync again to "
                           "see it.", code="already_exists") from exc
        raise InvalidInput(f"The patient or visit this {_ONE[m.entity]} names does not "
                           "exist in this clinic.", code="unknown_reference") from exc
    await audit.record(ctx, action=f"{m.entity}.create", entity=m.entity,
                       entity_id=m.record_id, detail={"patient_id": str(data["patient_id"])})


async def _check_prescription(ctx: ClinicContext, data: dict[str, Any]) -> None:
    """A medication taken from a prescription names one of this patient's prescriptions
    (the table has no foreign key to it: prescriptions live in their own lifecycle)."""
    found = (await ctx.conn.execute(select(prescription.c.id).where(
        prescription.c.id == data["prescription_id"],
        prescription.c.patient_id == data["patient_id"]))).first()
    if found is None:
        raise InvalidInput("The medication's prescription does not exist for this patient "
                           "in this clinic.", code="unknown_reference",
                           details={"field": "prescription_id"})


def _same_id(sent: Any, stored: uuid.UUID | None) -> bool:
    try:
        return (None if sent is None else uuid.UUID(str(sent))) == stored
    except ValueError:
        return False


def _without_fixed(values: dict[str, Any], current: Row[Any], fixed: set[str]
                  ) -> dict[str, Any]:
    """`values` without the fields fixed when the entry was recorded (its patient, its
    visit, its prescription), which a device may send along but can never change."""
    rest = {k: v for k, v in values.items() if k not in fixed}
    for name in sorted(fixed & set(values)):
        if _same_id(values[name], getattr(current, name)):
            continue
        if name == "patient_id":
            raise InvalidInput("A chart entry cannot move to another patient; remove it and "
                               "record it for the right patient.", code="patient_immutable",
                               details={"field": name})
        raise InvalidInput(f"{name} is fixed once the entry is recorded; remove the entry "
                           "and record it again.", code="field_immutable",
                           details={"field": name})
    return rest


async def _update(ctx: ClinicContext, m: Mutation, current: Row[Any], stamp: WriteStamp
                  ) -> tuple[Status, list[FieldConflictPublic]]:
    create_schema, update_schema = RECORD_SCHEMAS[m.entity]
    fixed = set(create_schema.model_fields) - set(update_schema.model_fields)
    try:
        changes = update_schema.model_validate(_without_fixed(m.changes, current, fixed)
                                               ).model_dump(exclude_unset=True)
        base = update_schema.model_validate({k: v for k, v in m.base.items()
                                             if k not in fixed}).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    merge = merge_fields(
        current=dict(current._mapping), current_stamps=current.field_stamps or {},
        changed_since_base=m.base_version is None or m.base_version != current.server_version,
        base=base, changes=changes, stamp=m.hlc,
    )
    table = TABLES[m.entity]
    if merge.apply:
        _check_whole(create_schema, current, merge.apply)
        await ctx.conn.execute(update(table).where(table.c.id == m.record_id).values(
            **merge.apply,
            **stamp_fields(current.field_stamps, sorted(merge.apply), stamp)))
    conflicts = [FieldConflictPublic(field=c.field, kept=c.kept, lost=c.lost,
                                     winner=c.winner.value) for c in merge.conflicts]
    for c in conflicts:
        kept_lost = c.model_dump(mode="json", include={"kept", "lost"})
        await ctx.conn.execute(insert(sync_conflict).values(
            clinic_id=ctx.clinic_id, id=uuid7(), entity=m.entity, record_id=m.record_id,
            field=c.field, kept=kept_lost["kept"], lost=kept_lost["lost"], winner=c.winner,
            mutation_id=m.mutation_id, device_id=ctx.device_id, user_id=ctx.user_id))
    if merge.apply or conflicts:
        await audit.record(ctx, action=f"{m.entity}.update", entity=m.entity,
                           entity_id=m.record_id,
                           detail={"patient_id": str(current.patient_id),
                                   "fields": sorted(merge.apply),
                                   "conflicts": len(conflicts)})
    status: Status = merge.outcome.value
    return status, conflicts


def _check_whole(create_schema: type[BaseModel], current: Row[Any],
                 apply: dict[str, Any]) -> None:
    """The record as the merge leaves it, checked like a new one."""
    fields = set(create_schema.model_fields)
    merged = {k: v for k, v in current._mapping.items() if k in fields}
    merged.update(apply)
    try:
        create_schema.model_validate(merged)
    except ValidationError as exc:
        raise invalid_change(exc) from exc


async def restore_value(ctx: ClinicContext, entity: str, record_id: uuid.UUID, field: str,
                        value: Any) -> None:
    """Put back a value that lost a merge (a reviewer chose it), checked like an edit."""
    table = TABLES[entity]
    current = (await ctx.conn.execute(select(table).where(table.c.id == record_id)
                                      .with_for_update())).first()
    if current is None or current.deleted_at is not None:
        raise Conflict(f"This {_ONE[entity].replace('_', ' ')} was removed; the kept value "
                       "cannot be restored.", code="record_deleted")
    create_schema, update_schema = RECORD_SCHEMAS[entity]
    try:
        apply = update_schema.model_validate({field: value}).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise InvalidInput(f"The kept value of {field} is no longer valid; edit the entry "
                           "instead.", code="invalid_restore") from exc
    _check_whole(create_schema, current, apply)
    await ctx.conn.execute(update(table).where(table.c.id == record_id).values(
        **apply, **stamp_fields(current.field_stamps, sorted(apply), server_stamp())))
    await audit.record(ctx, action=f"{entity}.update", entity=entity, entity_id=record_id,
                       detail={"patient_id": str(current.patient_id), "fields": sorted(apply),
                               "restored": True})
