"""Clinical note drafts written on doctors' computers, and signing them.

A draft belongs to its author: only they edit, sign or discard it. When two of the
author's computers edited one draft offline, both texts survive (DESIGN section 5): the
later edit becomes the note, the other is kept as a draft of its own attached to it
(`conflict_of`), and a `sync_conflict` row points at that copy. The conflict row holds
ids only, so the note's text never reaches staff who review demographics conflicts.
Signing fixes the text the doctor saw; the database refuses any later change, and an
edit that arrives after the signature is kept as a draft beside the note, not dropped.

What is added to a signed note goes in an addendum: a note of its own (`addendum_to`),
a draft of whichever doctor writes it until they sign it. It names its note on its first
push, and stays attached to that note.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.conflicts import merge_note_draft
from shared_models.ids import uuid7
from shared_models.schemas.notes import NoteDraft
from shared_models.tables import clinical_note, sync_conflict
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.stamps import WriteStamp, server_stamp, stamp_fields


@dataclass(frozen=True, slots=True)
class NoteWrite:
    status: Literal["applied", "conflict"]
    conflict_copy: uuid.UUID | None = None  # the text that lost, kept as its own draft
    winner: Literal["device", "server"] = "device"


async def _create(ctx: ClinicContext, note_id: uuid.UUID, draft: NoteDraft, *, sign: bool,
                  stamp: WriteStamp) -> None:
    if draft.patient_id is None:
        raise InvalidInput("A new note needs the patient it belongs to.",
                           code="patient_required", details={"field": "patient_id"})
    if draft.addendum_to is not None:
        await _check_addendum_target(ctx, draft.addendum_to, patient_id=draft.patient_id)
    values: dict[str, Any] = {
        "clinic_id": ctx.clinic_id, "id": note_id, "patient_id": draft.patient_id,
        "author_id": ctx.user_id, "appointment_id": draft.appointment_id,
        "addendum_to": draft.addendum_to, "body": draft.body or "",
        **stamp_fields(None, ["body"], stamp),
    }
    if sign:
        values.update(status="signed", signed_at=datetime.now(UTC))
    try:
        async with ctx.conn.begin_nested():
            await ctx.conn.execute(insert(clinical_note).values(**values))
    except IntegrityError as exc:
        raise InvalidInput("The note's patient or visit does not exist in this clinic.",
                           code="unknown_reference") from exc


async def _check_addendum_target(ctx: ClinicContext, target_id: uuid.UUID, *,
                                 patient_id: uuid.UUID) -> None:
    """An addendum adds to a signed note of the same patient; a draft can still be edited
    itself, and a discarded note is no longer part of the chart."""
    target = (await ctx.conn.execute(
        select(clinical_note.c.patient_id, clinical_note.c.status, clinical_note.c.deleted_at)
        .where(clinical_note.c.id == target_id))).first()
    problem = None
    if target is None or target.deleted_at is not None:
        problem = "the note it adds to does not exist in this clinic"
    elif target.patient_id != patient_id:
        problem = "the note it adds to belongs to another patient"
    elif target.status != "signed":
        problem = "the note it adds to is still a draft; edit that draft instead"
    if problem is not None:
        raise InvalidInput(f"The addendum was not accepted: {problem}.",
                           code="addendum_target", details={"field": "addendum_to"})


async def _keep_copy(ctx: ClinicContext, note: Row[Any], text: str, *, winner: str,
                     mutation_id: uuid.UUID, stamp: WriteStamp) -> uuid.UUID:
    """The text that lost, as a draft attached to the note, and the conflict record."""
    copy_id = uuid7()
    await ctx.conn.execute(insert(clinical_note).values(
        clinic_id=ctx.clinic_id, id=copy_id, patient_id=note.patient_id,
        author_id=note.author_id, appointment_id=note.appointment_id, body=text,
        conflict_of=note.id, **stamp_fields(None, ["body"], stamp)))
    await ctx.conn.execute(insert(sync_conflict).values(
        clinic_id=ctx.clinic_id, id=uuid7(), entity="clinical_note", record_id=note.id,
        field="body", kept=None, lost={"conflict_copy": str(copy_id)}, winner=winner,
        mutation_id=mutation_id, device_id=ctx.device_id, user_id=ctx.user_id))
    return copy_id


async def write(ctx: ClinicContext, note_id: uuid.UUID, draft: NoteDraft, *, sign: bool,
                base_text: str | None, base_version: int | None, mutation_id: uuid.UUID,
                stamp: WriteStamp) -> NoteWrite:
    """Create or edit a draft, and sign it when `sign`.

    `base_text` is the text the edit started from. When the device sends it, "someone
    else changed the draft" means the stored text differs from it, so a computer's own
    successive saves never conflict with each other; without it, any newer version does.
    """
    note = (await ctx.conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)
                                   .with_for_update())).first()
    if note is None:
        await _create(ctx, note_id, draft, sign=sign, stamp=stamp)
        await audit.record(ctx, action="note.sign" if sign else "note.create",
                           entity="clinical_note", entity_id=note_id,
                           detail=None if draft.addendum_to is None
                           else {"addendum_to": str(draft.addendum_to)})
        return NoteWrite("applied")
    if note.deleted_at is not None:
        raise Conflict("This draft was discarded; the change was not applied.",
                       code="record_deleted")
    if note.author_id != ctx.user_id:
        raise PermissionDenied("Only the note's author can change or sign it.", code="not_author")
    if draft.patient_id is not None and draft.patient_id != note.patient_id:
        raise InvalidInput("A note cannot move to another patient.", code="patient_immutable",
                           details={"field": "patient_id"})
    if draft.addendum_to is not None and draft.addendum_to != note.addendum_to:
        raise InvalidInput("A note cannot become an addendum, or an addendum of another "
                           "note, once it is written; start a new addendum on that note.",
                           code="addendum_target", details={"field": "addendum_to"})
    incoming = note.body if draft.body is None else draft.body
    if note.status == "signed":
        if incoming == note.body:  # signed elsewhere with the same text: nothing to do
            return NoteWrite("applied")
        # Written on another computer before it learnt the note was signed: the note
        # stays as signed, and the text is kept beside it, ready to become an addendum.
        kept_id = await _keep_copy(ctx, note, incoming, winner="server",
                                   mutation_id=mutation_id, stamp=stamp)
        await audit.record(ctx, action="note.update", entity="clinical_note",
                           entity_id=note_id)
        return NoteWrite("conflict", kept_id, "server")
    if base_text is not None:
        changed_since_base = base_text != note.body
    else:
        changed_since_base = base_version is None or base_version != note.server_version
    merge = merge_note_draft(
        current_text=note.body, current_stamp=note.updated_hlc or "", signed=False,
        changed_since_base=changed_since_base, incoming_text=incoming,
        incoming_stamp=stamp.hlc)
    text, copy = merge.text, merge.conflict_copy
    if sign and text != incoming:
        # What is signed is what the doctor read on screen; the newer draft is kept.
        text, copy = incoming, text
    values: dict[str, Any] = {}
    if text != note.body:
        values.update(body=text, **stamp_fields(note.field_stamps, ["body"], stamp))
    if sign:
        values.update(status="signed", signed_at=datetime.now(UTC))
    copy_id: uuid.UUID | None = None
    winner: Literal["device", "server"] = "device"
    if copy is not None:
        winner = "server" if text == note.body and not sign else "device"
        copy_id = await _keep_copy(ctx, note, copy, winner=winner, mutation_id=mutation_id,
                                   stamp=stamp)
    if values:
        await ctx.conn.execute(update(clinical_note).where(clinical_note.c.id == note_id)
                               .values(**values))
    await audit.record(ctx, action="note.sign" if sign else "note.update",
                       entity="clinical_note", entity_id=note_id)
    if copy_id is None:
        return NoteWrite("applied")
    return NoteWrite("conflict", copy_id, winner)


async def discard(ctx: ClinicContext, note_id: uuid.UUID) -> None:
    """Tombstone a draft; a signed note stays."""
    note = (await ctx.conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)
                                   .with_for_update())).first()
    if note is None or note.deleted_at is not None:
        return
    if note.author_id != ctx.user_id:
        raise PermissionDenied("Only the note's author can discard it.", code="not_author")
    if note.status == "signed":
        raise Conflict("A signed note cannot be discarded; add an addendum.",
                       code="note_signed")
    await ctx.conn.execute(update(clinical_note).where(clinical_note.c.id == note_id)
                           .values(deleted_at=datetime.now(UTC)))
    await audit.record(ctx, action="note.discard", entity="clinical_note", entity_id=note_id)


async def restore_copy(ctx: ClinicContext, note_id: uuid.UUID, copy_id: uuid.UUID) -> None:
    """Make a kept text the draft's text again, and retire the copy."""
    note = (await ctx.conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)
                                   .with_for_update())).first()
    copy = (await ctx.conn.execute(select(clinical_note).where(clinical_note.c.id == copy_id)
                                   )).first()
    if note is None or copy is None or note.deleted_at is not None:
        raise NotFound("The note or its kept text no longer exists.", code="note_not_found")
    if note.author_id != ctx.user_id:
        raise PermissionDenied("Only the note's author can change it.", code="not_author")
    if note.status == "signed":
        raise Conflict("The note is signed and cannot change; add the kept text as an "
                       "addendum instead.", code="note_signed")
    await ctx.conn.execute(update(clinical_note).where(clinical_note.c.id == note_id).values(
        body=copy.body, **stamp_fields(note.field_stamps, ["body"], server_stamp())))
    await discard(ctx, copy_id)
