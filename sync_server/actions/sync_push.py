"""Push: apply a device's ordered batch of mutations exactly once.

Every mutation of a batch is first claimed in `sync_mutation` by its id, all in one
statement, before any is applied. A replay (the same batch sent again, even
concurrently: the second insert waits for the first transaction and then finds its rows)
is answered with the stored results and changes nothing. Each mutation runs in its own
savepoint, so one refused mutation does not undo the others; the results are stored
together at the end of the batch, in the same transaction.

What a batch's mutations share is read once per batch, not once per mutation: the
patients they edit (locked up front and kept current as the batch applies) and the
clinic's numbering plan for phone numbers. A batch is hundreds of mutations, and each
statement saved is saved hundreds of times.

Patients merge field by field (shared_models.conflicts); values that lose are kept in
`sync_conflict`. Appointments travel as commands through the booking service, so an
offline booking of a slot that was taken comes back `rejected` with alternatives.
Payments are taken once per payment id and voided once, at the time the device took them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from shared_models.clock import ClockDriftError, Hlc
from shared_models.conflicts import merge_fields
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.appointments import (
    AppointmentCancel,
    AppointmentCreate,
    AppointmentReschedule,
    SlotPublic,
)
from shared_models.schemas.notes import NoteDraft
from shared_models.schemas.patients import PatientCreate, PatientUpdate
from shared_models.schemas.payments import PaymentCreate, PaymentVoid
from shared_models.schemas.sync import (
    FieldConflictPublic,
    Mutation,
    MutationResult,
    PushRequest,
    PushResponse,
)
from shared_models.tables import (
    appointment,
    clinic,
    patient,
    payment,
    sync_conflict,
    sync_mutation,
)
from sync_server.actions import appointments as booking
from sync_server.actions import (
    chart,
    clinical_records,
    lab_orders,
    notes,
    payments,
    prescriptions,
)
from sync_server.actions import patients as patients_actions
from sync_server.actions.sync import PULLED_BY_ROLE, TABLES, record_of
from sync_server.core.errors import ConsultaError
from sync_server.lib.context import ClinicContext
from sync_server.lib.mutations import Rejected, Status, invalid_change
from sync_server.lib.patients import check_phone
from sync_server.lib.stamps import SERVER_CLOCK, WriteStamp, stamp_time

APPOINTMENT_COMMANDS = {"check_in", "start", "complete", "no_show"}
PATIENT_WRITERS = frozenset({Role.ADMIN, Role.RECEPTIONIST, Role.DOCTOR})


@dataclass
class _Batch:
    """What the mutations of one batch read once between them."""

    ctx: ClinicContext
    # Each patient the batch edits, as it stands before the next mutation: locked when
    # the batch starts, replaced by what each applied mutation left.
    patients: dict[uuid.UUID, Row[Any]] = field(default_factory=dict)
    country: str | None = None

    async def lock_patients(self, ids: list[uuid.UUID]) -> None:
        """Read the batch's patients, locked against other writers until it commits, so
        each merge starts from what the row really holds. In id order, so batches that
        share patients lock them in the same order; NO KEY UPDATE, so appointments that
        other requests book for these patients (a foreign-key check) do not wait."""
        if ids:
            rows = await self.ctx.conn.execute(
                select(patient).where(patient.c.id.in_(ids)).order_by(patient.c.id)
                .with_for_update(key_share=True))
            self.patients = {row.id: row for row in rows}

    async def phone(self, raw: str) -> str:
        """`raw` in E.164, read in the clinic's numbering plan (422 if invalid)."""
        if self.country is None:
            self.country = (await self.ctx.conn.execute(
                select(clinic.c.country).where(clinic.c.id == self.ctx.clinic_id))).scalar_one()
        return check_phone(raw, region=self.country)


async def _record(ctx: ClinicContext, entity: str, record_id: uuid.UUID) -> Row[Any] | None:
    table = TABLES[entity]  # type: ignore[index]
    return (await ctx.conn.execute(select(table).where(table.c.id == record_id))).first()


async def _push_patient(batch: _Batch, m: Mutation, stamp: WriteStamp
                        ) -> tuple[Status, list[FieldConflictPublic]]:
    ctx = batch.ctx
    current = batch.patients.get(m.record_id)
    if m.op == "delete":
        if current is not None and current.deleted_at is None:
            await ctx.conn.execute(update(patient).where(patient.c.id == m.record_id)
                                   .values(deleted_at=datetime.now(UTC)))
        return "applied", []
    if m.op != "upsert":
        raise Rejected(f"'{m.op}' does not apply to patients.", code="invalid_operation")
    if current is None:
        try:
            data = PatientCreate.model_validate(m.changes)
        except ValidationError as exc:
            raise invalid_change(exc) from exc
        await patients_actions.do_create_patient(ctx, data, patient_id=m.record_id,
                                                 stamp=stamp)
        return "applied", []
    if current.deleted_at is not None:
        raise Rejected("This patient was deleted on the server; the change was not applied.",
                       code="record_deleted")
    try:
        changes = PatientUpdate.model_validate(m.changes).model_dump(exclude_unset=True)
        base = PatientUpdate.model_validate(m.base).model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    if changes.get("phone"):
        changes["phone"] = await batch.phone(changes["phone"])
    merge = merge_fields(
        current=dict(current._mapping), current_stamps=current.field_stamps or {},
        changed_since_base=m.base_version is None or m.base_version != current.server_version,
        base=base, changes=changes, stamp=m.hlc,
    )
    if merge.apply:
        await patients_actions.do_update_patient(
            ctx, m.record_id, PatientUpdate.model_validate(merge.apply), stamp=stamp)
    conflicts = [FieldConflictPublic(field=c.field, kept=c.kept, lost=c.lost,
                                     winner=c.winner.value) for c in merge.conflicts]
    for c in conflicts:
        await ctx.conn.execute(insert(sync_conflict).values(
            clinic_id=ctx.clinic_id, id=uuid7(), entity="patient", record_id=m.record_id,
            field=c.field, kept=c.model_dump(mode="json")["kept"],
            lost=c.model_dump(mode="json")["lost"], winner=c.winner, mutation_id=m.mutation_id,
            device_id=ctx.device_id, user_id=ctx.user_id))
    status: Status = merge.outcome.value
    return status, conflicts


async def _push_appointment(ctx: ClinicContext, m: Mutation) -> Status:
    try:
        if m.op == "book":
            exists = (await ctx.conn.execute(
                select(appointment.c.id).where(appointment.c.id == m.record_id))).first()
            if exists is not None:
                raise Rejected("An appointment with this id already exists.",
                               code="already_exists")
            await booking.do_book(ctx, AppointmentCreate.model_validate(m.changes),
                                  appointment_id=m.record_id, source="device")
        elif m.op == "reschedule":
            await booking.do_reschedule(ctx, m.record_id,
                                        AppointmentReschedule.model_validate(m.changes))
        elif m.op == "cancel":
            reason = AppointmentCancel.model_validate(m.changes).reason
            await booking.do_transition(ctx, m.record_id, "cancel", cancel_reason=reason)
        elif m.op in APPOINTMENT_COMMANDS:
            await booking.do_transition(ctx, m.record_id, m.op)
        else:
            raise Rejected(f"'{m.op}' does not apply to appointments.",
                           code="invalid_operation")
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    return "applied"


async def _push_note(ctx: ClinicContext, m: Mutation, stamp: WriteStamp
                     ) -> tuple[Status, list[FieldConflictPublic]]:
    if ctx.role is not Role.DOCTOR:
        raise Rejected("Only doctors write clinical notes.", code="role_not_allowed")
    if m.op == "delete":
        await notes.discard(ctx, m.record_id)
        return "applied", []
    if m.op not in ("upsert", "sign"):
        raise Rejected(f"'{m.op}' does not apply to clinical notes.", code="invalid_operation")
    try:
        draft = NoteDraft.model_validate(m.changes)
        base = NoteDraft.model_validate(m.base)
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    written = await notes.write(
        ctx, m.record_id, draft, sign=m.op == "sign", base_text=base.body,
        base_version=m.base_version, mutation_id=m.mutation_id, stamp=stamp)
    if written.conflict_copy is None:
        return written.status, []
    return written.status, [FieldConflictPublic(
        field="body", kept=None, winner=written.winner,
        lost={"conflict_copy": str(written.conflict_copy)})]


async def _push_payment(ctx: ClinicContext, m: Mutation, stamp: WriteStamp) -> Status:
    """A payment taken, or voided, on a computer (offline or not), at the time it was.

    The id is the device's, so a `take` is applied once even when sent again under a new
    mutation id: a second one for a known id is refused, and the money is not taken twice.
    """
    payments.check_role(ctx)
    try:
        if m.op == "take":
            exists = (await ctx.conn.execute(
                select(payment.c.id).where(payment.c.id == m.record_id))).first()
            if exists is not None:
                raise Rejected("A payment with this id was already taken; it was not taken "
                               "again.", code="already_exists")
            await payments.do_take_payment(ctx, PaymentCreate.model_validate(m.changes),
                                           m.record_id, stamp, received_at=stamp_time(m.hlc))
        elif m.op == "void":
            await payments.do_void_payment(ctx, m.record_id,
                                           PaymentVoid.model_validate(m.changes), stamp=stamp,
                                           voided_at=stamp_time(m.hlc))
        else:
            raise Rejected(f"'{m.op}' does not apply to payments; they are taken or voided.",
                           code="invalid_operation")
    except ValidationError as exc:
        raise invalid_change(exc) from exc
    return "applied"


async def _apply(batch: _Batch, m: Mutation) -> tuple[MutationResult, Row[Any] | None]:
    """The mutation's result and the record it leaves (None if there is none)."""
    ctx = batch.ctx
    try:
        SERVER_CLOCK.observe(Hlc.parse(m.hlc))
    except ClockDriftError as exc:
        raise Rejected(str(exc), code="clock_drift") from exc
    stamp = WriteStamp(m.hlc, ctx.device_id)
    conflicts: list[FieldConflictPublic] = []
    status: Status
    if m.entity == "patient":
        if ctx.role not in PATIENT_WRITERS:
            raise Rejected(f"Your role ({ctx.role}) cannot change patients.",
                           code="role_not_allowed")
        status, conflicts = await _push_patient(batch, m, stamp)
    elif m.entity == "appointment":
        status = await _push_appointment(ctx, m)
    elif m.entity == "clinical_note":
        status, conflicts = await _push_note(ctx, m, stamp)
    elif m.entity == "payment":
        status = await _push_payment(ctx, m, stamp)
    elif m.entity in clinical_records.ENTITIES:
        status, conflicts = await clinical_records.push_record(ctx, m, stamp)
    elif m.entity == "prescription":
        status = await prescriptions.push_prescription(ctx, m, stamp)
    elif m.entity == "lab_order":
        status = await lab_orders.push_lab_order(ctx, m, stamp)
    elif m.entity == "chart":
        await chart.push_chart_read(ctx, m)
        return MutationResult(mutation_id=m.mutation_id, status="applied"), None
    else:
        raise Rejected(f"Changes to {m.entity.replace('_', ' ')} are made by the clinic admin "
                       "on the server, not pushed from devices.", code="not_syncable")
    row = await _record(ctx, m.entity, m.record_id)
    return MutationResult(
        mutation_id=m.mutation_id, status=status,
        server_version=None if row is None else row.server_version,
        record=None if row is None else record_of(row), conflicts=conflicts), row


def _rejection(m: Mutation, exc: ConsultaError) -> MutationResult:
    alternatives = [SlotPublic.model_validate(a) for a in exc.details.get("alternatives", [])]
    return MutationResult(mutation_id=m.mutation_id, status="rejected", code=exc.code,
                          reason=exc.message, alternatives=alternatives)


async def _push_one(batch: _Batch, m: Mutation) -> MutationResult:
    try:
        async with batch.ctx.conn.begin_nested():
            result, row = await _apply(batch, m)
    except ConsultaError as exc:
        return _rejection(m, exc)
    # Only once the savepoint is released: a refused mutation left nothing behind.
    if m.entity == "patient" and row is not None:
        batch.patients[m.record_id] = row
    return result


async def push(ctx: ClinicContext, request: PushRequest) -> PushResponse:
    mutations = request.mutations
    claimed = set((await ctx.conn.execute(
        pg_insert(sync_mutation)
        .values([{"clinic_id": ctx.clinic_id, "mutation_id": m.mutation_id,
                  "device_id": ctx.device_id, "user_id": ctx.user_id} for m in mutations])
        .on_conflict_do_nothing()
        .returning(sync_mutation.c.mutation_id)
    )).scalars())
    stored: dict[uuid.UUID, Any] = {}
    if len(claimed) < len({m.mutation_id for m in mutations}):
        stored = dict((await ctx.conn.execute(
            select(sync_mutation.c.mutation_id, sync_mutation.c.result)
            .where(sync_mutation.c.mutation_id.in_(
                [m.mutation_id for m in mutations if m.mutation_id not in claimed]))
        )).all())
    batch = _Batch(ctx)
    await batch.lock_patients(sorted({m.record_id for m in mutations
                                      if m.entity == "patient" and m.mutation_id in claimed}))
    results: list[MutationResult] = []
    replayed: list[int] = []
    for m in mutations:
        if m.mutation_id in stored:
            replayed.append(len(results))
            results.append(MutationResult.model_validate(stored[m.mutation_id]))
            continue
        result = await _push_one(batch, m)
        # A mutation id repeated later in this batch is a replay of this one.
        stored[m.mutation_id] = result.model_dump(mode="json")
        results.append(result)
    applied = [{"m_id": m_id, "m_result": stored[m_id]} for m_id in claimed]
    if applied:
        await ctx.conn.execute(
            update(sync_mutation).where(sync_mutation.c.mutation_id == bindparam("m_id"))
            .values(result=bindparam("m_result")), applied)
    stale = sorted({*replayed, *(i for i, r in enumerate(results) if r.status == "rejected")})
    for i in stale:
        results[i] = await _with_current_record(ctx, mutations[i], results[i])
    return PushResponse(results=results)


async def _with_current_record(ctx: ClinicContext, m: Mutation, result: MutationResult
                               ) -> MutationResult:
    """A replayed or refused mutation's answer, carrying the record as it is now.

    A device does not take pulled versions of a record while its own change to it waits
    in the outbox, and its pull cursor moves on; the answer to that change is how it
    catches up. A stored answer (a replay after a lost connection) or a refusal would
    otherwise leave it with an old copy for good.
    """
    readable = PULLED_BY_ROLE.get(ctx.role, ()) if ctx.role is not None else ()
    if m.entity not in readable:
        return result
    row = await _record(ctx, m.entity, m.record_id)
    if row is None:
        return result
    return result.model_copy(update={"server_version": row.server_version,
                                     "record": record_of(row)})
