"""Registering and editing patients on this computer, online or not.

Each change is written to the local copy at once and queued in the outbox with the
values it started from, so the server can merge it field by field later.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from desktop.store.local import outbox
from desktop.store.records import to_json, to_row
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.search import search_document
from shared_models.tables import patient


def _queue(conn: Any, *, clock: HybridClock, op: str, record_id: uuid.UUID,
           base_version: int | None, changes: dict[str, Any], base: dict[str, Any]) -> None:
    conn.execute(insert(outbox).values(
        mutation_id=uuid7(), entity="patient", op=op, record_id=record_id,
        base_version=base_version, changes={k: to_json(v) for k, v in changes.items()},
        base={k: to_json(v) for k, v in base.items()}, hlc=clock.now().pack(),
        created_at=datetime.now(UTC)))


def register_patient(engine: Engine, clock: HybridClock, *, clinic_id: uuid.UUID,
                     fields: dict[str, Any]) -> uuid.UUID:
    """A new patient, born here with its own id; the server numbers the record later."""
    patient_id = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=clinic_id, id=patient_id, mrn=f"LOCAL-{patient_id.hex[-8:]}",
            preferred_channels=fields.get("preferred_channels", []),
            search_text=search_document(names=[fields.get("given_name"),
                                               fields.get("family_name")],
                                        phone=fields.get("phone"), mrn=None),
            **to_row(patient, {k: v for k, v in fields.items()
                               if k != "preferred_channels"})))
        _queue(conn, clock=clock, op="upsert", record_id=patient_id, base_version=None,
               changes=fields, base={})
    return patient_id


def edit_patient(engine: Engine, clock: HybridClock, patient_id: uuid.UUID,
                 changes: dict[str, Any]) -> None:
    with engine.begin() as conn:
        current = conn.execute(select(patient).where(patient.c.id == patient_id)).one()
        base = {name: getattr(current, name) for name in changes}
        conn.execute(update(patient).where(patient.c.id == patient_id)
                     .values(**to_row(patient, changes)))
        _queue(conn, clock=clock, op="upsert", record_id=patient_id,
               base_version=current.server_version, changes=changes, base=base)
