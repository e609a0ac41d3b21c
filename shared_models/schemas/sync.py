"""Sync wire schemas (DESIGN section 5): pushed mutations, their results, pulled changes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared_models.schemas.appointments import SlotPublic

MAX_BATCH = 500
MAX_PAGE = 1000

SyncedEntity = Literal["patient", "provider", "availability_rule", "availability_exception",
                       "appointment", "clinical_note", "payment", "allergy", "condition",
                       "medication", "vital_signs", "pharmacy", "signing_key", "prescription",
                       "prescription_item", "lab_order", "lab_result"]
# What a device may push: synced records, and `chart`, the record that a person opened a
# patient's chart on this computer (op `read`), so reads made offline reach the audit log.
PushedEntity = Literal[SyncedEntity, "chart"]
# Plain records are upserted or tombstoned; appointments travel as booking commands; a
# clinical note draft is upserted until it is signed; a payment is taken, or voided; a
# prescription is pushed once, signed, and can then be routed or cancelled; a lab order
# is created (upsert) and can be cancelled.
Operation = Literal["upsert", "delete", "book", "reschedule", "cancel", "check_in", "start",
                    "complete", "no_show", "sign", "take", "void", "route", "read"]


class Mutation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mutation_id: uuid.UUID = Field(description="Made on the device; the idempotency key.")
    entity: PushedEntity
    op: Operation
    record_id: uuid.UUID
    base_version: int | None = Field(
        default=None, description="The server_version the edit started from; None if new.")
    changes: dict[str, Any] = Field(default_factory=dict)
    base: dict[str, Any] = Field(
        default_factory=dict, description="The values of the changed fields before the edit.")
    hlc: str = Field(pattern=r"^\d{13}-\d{6}-[0-9a-z]{1,32}$")


class PushRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mutations: list[Mutation] = Field(min_length=1, max_length=MAX_BATCH)


class FieldConflictPublic(BaseModel):
    field: str
    kept: Any
    lost: Any
    winner: Literal["device", "server"]


class MutationResult(BaseModel):
    mutation_id: uuid.UUID
    status: Literal["applied", "merged", "conflict", "rejected"]
    server_version: int | None = None
    record: dict[str, Any] | None = None
    conflicts: list[FieldConflictPublic] = Field(default_factory=list)
    code: str | None = None
    reason: str | None = None
    alternatives: list[SlotPublic] = Field(default_factory=list)


class PushResponse(BaseModel):
    results: list[MutationResult]


class Change(BaseModel):
    entity: SyncedEntity
    id: uuid.UUID
    server_version: int
    deleted: bool
    record: dict[str, Any]


class PullResponse(BaseModel):
    changes: list[Change]
    next_cursor: str = Field(description="Opaque; send it back as `since` next time.")
    has_more: bool


class SyncConflictPublic(BaseModel):
    """A value that lost a merge. For a patient field, `kept` and `lost` are the values;
    for a note, `lost` names the draft that holds the other text."""

    id: uuid.UUID
    entity: str
    record_id: uuid.UUID
    field: str
    kept: Any
    lost: Any
    winner: Literal["device", "server"]
    device_id: uuid.UUID | None
    user_id: uuid.UUID | None
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None
    resolution: Literal["current", "lost"] | None


class SyncConflictsPublic(BaseModel):
    data: list[SyncConflictPublic]
    has_more: bool
    next_offset: int | None


class ConflictResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep: Literal["current", "lost"] = Field(
        description="`current` keeps what the record says now; `lost` restores the value "
                    "that lost (for a note: its text replaces the draft's).")
