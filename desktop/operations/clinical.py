"""Recording allergies, conditions, medications and vital signs on a doctor's computer,
online or not.

Each entry is checked with the shapes the server checks (shared_models.schemas.clinical),
written to the local chart at once and queued in the outbox: a new entry with all its
fields, an edit with only the changed fields and the values they had (so the server can
merge it field by field), a removal as a tombstone. A refused change writes nothing.

    ClinicalError   the message says what to fix, for a dialog
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine, Row, Table, insert, select, update

from desktop.store.local import outbox
from desktop.store.records import to_json
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.clinical import RECORD_SCHEMAS
from shared_models.tables import allergy, condition, medication, patient, vital_signs

ChartRecord = Literal["allergy", "condition", "medication", "vital_signs"]
TABLES: dict[str, Table] = {"allergy": allergy, "condition": condition,
                            "medication": medication, "vital_signs": vital_signs}
# How each entry is named inside a sentence.
LABELS = {"allergy": "allergy", "condition": "condition", "medication": "medication",
          "vital_signs": "vital signs reading"}


class ClinicalError(Exception):
    """A chart entry that cannot be written; the message says why, for a dialog."""


def problems(exc: ValidationError) -> str:
    """The validation errors as one sentence a person can act on."""
    return "; ".join(_problem(error) for error in exc.errors()[:5])


def _problem(error: Any) -> str:
    fields = [part for part in error["loc"] if isinstance(part, str)]
    label = fields[0].replace("_", " ") if fields else ""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "missing":
        return f"{label} is required"
    if kind == "string_too_short":
        if ctx.get("min_length", 1) <= 1:
            return f"{label} cannot be empty"
        return f"{label} needs at least {ctx['min_length']} characters"
    if kind == "string_too_long":
        return f"{label} is too long (at most {ctx['max_length']} characters)"
    if kind == "too_short":
        return f"{label} needs at least {ctx['min_length']}"
    if kind == "too_long":
        return f"{label} takes at most {ctx['max_length']}"
    if kind == "extra_forbidden":
        return f"{label} cannot be set here"
    if kind == "literal_error":
        return f"{label} must be {ctx['expected']}"
    if kind == "string_pattern_mismatch":
        if fields == ["code"]:
            return "code must be an ICD-10 code, such as I10 or E11.9"
        return f"{label} is not written in the expected form"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{label}: {message}" if label else message


def _queue(conn: Connection, clock: HybridClock, entity: str, *, op: str,
           record_id: uuid.UUID, base_version: int | None, changes: dict[str, Any],
           base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity=entity, op=op, record_id=record_id,
        base_version=base_version, changes={k: to_json(v) for k, v in changes.items()},
        base={k: to_json(v) for k, v in base.items()}, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    """ICD-10 codes are upper case; the shared shape checks the pattern before it
    upper-cases, so a code typed in lower case is raised here first."""
    code = values.get("code")
    if isinstance(code, str):
        return {**values, "code": code.strip().upper()}
    return values


def _schemas(entity: str) -> tuple[type[BaseModel], type[BaseModel]]:
    if entity not in RECORD_SCHEMAS:
        raise ClinicalError(f"'{entity}' is not a chart entry; the chart records allergies, "
                            "conditions, medications and vital signs.")
    return RECORD_SCHEMAS[entity]


def add_record(engine: Engine, clock: HybridClock, entity: ChartRecord, *,
               clinic_id: uuid.UUID, user_id: uuid.UUID, values: dict[str, Any]) -> uuid.UUID:
    """A new entry on a patient's chart (`values` names the patient)."""
    create, _ = _schemas(entity)
    try:
        data = create.model_validate(_typed(values))
    except ValidationError as exc:
        raise ClinicalError(f"The {LABELS[entity]} was not saved: {problems(exc)}.") from exc
    fields = data.model_dump()
    record_id = uuid7()
    with engine.begin() as conn:
        person = conn.execute(select(patient.c.deleted_at)
                              .where(patient.c.id == fields["patient_id"])).first()
        if person is None or person.deleted_at is not None:
            raise ClinicalError(f"The {LABELS[entity]} was not saved: this patient is not on "
                                "this computer; sync, then try again.")
        now = datetime.now(UTC)
        conn.execute(insert(TABLES[entity]).values(
            clinic_id=clinic_id, id=record_id, recorded_by=user_id, created_at=now,
            updated_at=now, **fields))
        _queue(conn, clock, entity, op="upsert", record_id=record_id, base_version=None,
               changes=data.model_dump(mode="json"), base={})
    return record_id


def _current(conn: Connection, entity: str, record_id: uuid.UUID) -> Row[Any]:
    table = TABLES[entity]
    row = conn.execute(select(table).where(table.c.id == record_id)).first()
    if row is None:
        raise ClinicalError(f"This {LABELS[entity]} is not on this computer; sync, then "
                            "try again.")
    if row.deleted_at is not None:
        raise ClinicalError(f"This {LABELS[entity]} was removed from the chart; record it "
                            "again if it still holds.")
    return row


def update_record(engine: Engine, clock: HybridClock, entity: ChartRecord,
                  record_id: uuid.UUID, changes: dict[str, Any]) -> bool:
    """Change some fields of an entry; False when none of them changed (nothing is
    queued)."""
    create, update_schema = _schemas(entity)
    try:
        wanted = update_schema.model_validate(_typed(changes)).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise ClinicalError(f"The {LABELS[entity]} was not changed: {problems(exc)}.") from exc
    table = TABLES[entity]
    with engine.begin() as conn:
        current = _current(conn, entity, record_id)
        changed = {k: v for k, v in wanted.items() if getattr(current, k) != v}
        if not changed:
            return False
        # The entry as the change leaves it must still be a valid entry, as the server
        # checks it after merging (no diastolic above systolic, no required field cleared).
        whole = {k: v for k, v in current._mapping.items() if k in create.model_fields}
        try:
            create.model_validate({**whole, **changed})
        except ValidationError as exc:
            raise ClinicalError(f"The {LABELS[entity]} was not changed: "
                                f"{problems(exc)}.") from exc
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(**changed, updated_at=datetime.now(UTC)))
        _queue(conn, clock, entity, op="upsert", record_id=record_id,
               base_version=current.server_version, changes=changed,
               base={k: getattr(current, k) for k in changed})
    return True


def remove_record(engine: Engine, clock: HybridClock, entity: ChartRecord,
                  record_id: uuid.UUID) -> None:
    """Take an entry made in error off the chart; it is kept as a tombstone."""
    _schemas(entity)
    table = TABLES[entity]
    with engine.begin() as conn:
        current = _current(conn, entity, record_id)
        now = datetime.now(UTC)
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(deleted_at=now, updated_at=now))
        _queue(conn, clock, entity, op="delete", record_id=record_id,
               base_version=current.server_version, changes={}, base={})
