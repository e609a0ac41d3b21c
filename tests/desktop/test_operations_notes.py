"""Clinical notes on a doctor's computer with no server, over a real encrypted store: a
draft is saved and signed locally and queued step by step; a signed note never changes;
an addendum is a draft of its own attached to a signed note of the same patient, and one
to a note that is not signed (or not there) is refused with nothing written."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from desktop.operations.chart import load_timeline
from desktop.operations.notes import (
    NoteError,
    save_draft,
    sign_note,
    start_addendum,
    start_note,
)
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.notes import MAX_NOTE_CHARS, NoteDraft
from shared_models.tables import clinical_note, patient

CLINIC = uuid7()
DOCTOR = uuid7()
COLLEAGUE = uuid7()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("doctorpc")


@pytest.fixture
def patient_id(engine: Engine) -> uuid.UUID:
    pid = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=pid, mrn="P-1", given_name="Rosario", family_name="Quispe",
            preferred_channels=[]))
    return pid


def _queued(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


def _notes(engine: Engine) -> dict[uuid.UUID, Any]:
    with engine.connect() as conn:
        return {row.id: row for row in conn.execute(select(clinical_note))}


def _signed_note(engine: Engine, clock: HybridClock, patient_id: uuid.UUID,
                 body: str = "Faringitis aguda; amoxicilina 7 días.") -> uuid.UUID:
    note_id = start_note(engine, clock, clinic_id=CLINIC, patient_id=patient_id,
                         author_id=COLLEAGUE, body=body)
    sign_note(engine, clock, note_id)
    with engine.begin() as conn:
        conn.execute(outbox.delete())
    return note_id


def test_a_draft_is_saved_and_signed_locally_and_queued_step_by_step(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    note_id = start_note(engine, clock, clinic_id=CLINIC, patient_id=patient_id,
                         author_id=DOCTOR, body="Cefalea")
    assert save_draft(engine, clock, note_id, "Cefalea tensional") is True
    assert save_draft(engine, clock, note_id, "Cefalea tensional") is False
    sign_note(engine, clock, note_id)

    note = _notes(engine)[note_id]
    assert (note.status, note.body, note.addendum_to) == ("signed", "Cefalea tensional", None)
    assert note.signed_at is not None
    assert note.created_at <= datetime.now(UTC)
    queued = _queued(engine)
    assert [(q.op, q.changes.get("body"), q.base.get("body")) for q in queued] == [
        ("upsert", "Cefalea", None), ("upsert", "Cefalea tensional", "Cefalea"),
        ("sign", "Cefalea tensional", "Cefalea tensional")]
    with pytest.raises(NoteError, match="signed and cannot change; add an addendum"):
        save_draft(engine, clock, note_id, "Migraña")
    assert len(_queued(engine)) == 3


def test_an_addendum_is_a_draft_attached_to_the_signed_note_of_the_same_patient(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    note_id = _signed_note(engine, clock, patient_id)

    addendum_id = start_addendum(engine, clock, clinic_id=CLINIC, note_id=note_id,
                                 author_id=DOCTOR, body="Cultivo faríngeo negativo.")

    notes = _notes(engine)
    addendum = notes[addendum_id]
    assert (addendum.addendum_to, addendum.patient_id, addendum.author_id) == (
        note_id, patient_id, DOCTOR)
    assert (addendum.status, addendum.body, addendum.clinic_id) == (
        "draft", "Cultivo faríngeo negativo.", CLINIC)
    assert notes[note_id].body == "Faringitis aguda; amoxicilina 7 días."
    [queued] = _queued(engine)
    assert (queued.entity, queued.op, queued.record_id, queued.base_version, queued.base) == (
        "clinical_note", "upsert", addendum_id, None, {})
    assert queued.changes["addendum_to"] == str(note_id)
    draft = NoteDraft.model_validate(queued.changes)  # what the server reads
    assert (draft.addendum_to, draft.patient_id, draft.body) == (
        note_id, patient_id, "Cultivo faríngeo negativo.")


def test_an_addendum_is_saved_and_signed_like_a_note_and_shows_under_its_note(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    note_id = _signed_note(engine, clock, patient_id)
    addendum_id = start_addendum(engine, clock, clinic_id=CLINIC, note_id=note_id,
                                 author_id=DOCTOR)
    save_draft(engine, clock, addendum_id, "Resultado de cultivo: negativo.")

    [mine] = load_timeline(engine, patient_id, viewer_id=DOCTOR)
    [theirs] = load_timeline(engine, patient_id, viewer_id=COLLEAGUE)
    assert [a["id"] for a in mine.children] == [addendum_id]
    assert theirs.children == ()  # another doctor's draft addendum is theirs alone

    sign_note(engine, clock, addendum_id)

    [theirs] = load_timeline(engine, patient_id, viewer_id=COLLEAGUE)
    assert [(a["id"], a["status"]) for a in theirs.children] == [(addendum_id, "signed")]
    assert [q.op for q in _queued(engine)] == ["upsert", "upsert", "sign"]


def test_an_addendum_to_an_addendum_is_attached_to_the_note_they_add_to(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    note_id = _signed_note(engine, clock, patient_id)
    first = start_addendum(engine, clock, clinic_id=CLINIC, note_id=note_id,
                           author_id=DOCTOR, body="Primera")
    sign_note(engine, clock, first)

    second = start_addendum(engine, clock, clinic_id=CLINIC, note_id=first,
                            author_id=DOCTOR, body="Segunda")

    assert _notes(engine)[second].addendum_to == note_id
    assert _queued(engine)[-1].changes["addendum_to"] == str(note_id)
    [entry] = load_timeline(engine, patient_id, viewer_id=DOCTOR)
    assert [a["id"] for a in entry.children] == [first, second]


def _refused(engine: Engine, clock: HybridClock, note_id: uuid.UUID, words: str,
             body: str = "Texto") -> None:
    before_notes, before_queue = _notes(engine), _queued(engine)
    with pytest.raises(NoteError, match=words):
        start_addendum(engine, clock, clinic_id=CLINIC, note_id=note_id, author_id=DOCTOR,
                       body=body)
    assert _notes(engine) == before_notes
    assert _queued(engine) == before_queue


def test_an_addendum_only_goes_on_a_signed_note_that_is_there(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    draft = start_note(engine, clock, clinic_id=CLINIC, patient_id=patient_id,
                       author_id=DOCTOR, body="Aún escribiendo")
    discarded = _signed_note(engine, clock, patient_id)
    with engine.begin() as conn:
        conn.execute(update(clinical_note).where(clinical_note.c.id == discarded)
                     .values(deleted_at=datetime.now(UTC)))

    _refused(engine, clock, draft, "Only a signed note takes an addendum")
    _refused(engine, clock, discarded, "was discarded")
    _refused(engine, clock, uuid7(), "not on this computer")


def test_an_addendum_with_text_the_server_would_refuse_is_refused_here(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    note_id = _signed_note(engine, clock, patient_id)
    _refused(engine, clock, note_id, f"at most {MAX_NOTE_CHARS:,} characters",
             body="x" * (MAX_NOTE_CHARS + 1))
    _refused(engine, clock, note_id, "NUL character", body="Texto\x00")


def test_a_note_not_on_this_computer_cannot_be_saved_or_signed(
        engine: Engine, clock: HybridClock) -> None:
    with pytest.raises(NoteError, match="not on this computer"):
        save_draft(engine, clock, uuid7(), "Texto")
    with pytest.raises(NoteError, match="not on this computer"):
        sign_note(engine, clock, uuid7())
    assert _queued(engine) == []
    assert _notes(engine) == {}
