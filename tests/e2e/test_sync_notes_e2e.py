"""A doctor's note drafts on two computers and a front-desk computer, through the real
server: offline edits of one draft on both doctor computers both survive (the later is
the note, the other a draft attached to it), a signature is final everywhere, and the
front desk's store never holds a note."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from desktop.operations.notes import NoteError, save_draft, sign_note, start_note
from desktop.sync.client import SyncClient
from shared_models.enums import Role
from shared_models.tables import clinical_note
from tests.conftest import LiveServer
from tests.e2e.computers import Computer
from tests.factories import ClinicData, Factory


def notes(computer: Computer) -> dict[str, dict[str, Any]]:
    with computer.engine.connect() as conn:
        return {str(r.id): dict(r._mapping) for r in conn.execute(select(clinical_note))}


def begin(computer: Computer, clinic: ClinicData, body: str = "", *, patient: int = 0
          ) -> uuid.UUID:
    """The clinic's doctor starts a note on `computer`."""
    return start_note(computer.engine, computer.clock, clinic_id=clinic.id,
                      patient_id=clinic.patient_ids[patient],
                      author_id=clinic.users[Role.DOCTOR].id, body=body)


@pytest.fixture
def doctor_setup(tmp_path: Path, live_server: LiveServer, factory: Factory
                 ) -> Iterator[tuple[ClinicData, Computer, Computer, Computer]]:
    clinic = factory.clinic(patients=2, providers=1)
    doctor = factory.token(clinic.users[Role.DOCTOR])
    laptop = Computer(tmp_path / "laptop.db", "laptop", live_server, doctor)
    tablet = Computer(tmp_path / "tablet.db", "tablet", live_server, doctor)
    desk = Computer(tmp_path / "desk.db", "desk", live_server,
                    factory.token(clinic.users[Role.RECEPTIONIST]))
    yield clinic, laptop, tablet, desk
    for computer in (laptop, tablet, desk):
        computer.close()


def test_two_offline_edits_of_one_draft_both_survive_on_every_computer(
    doctor_setup: tuple[ClinicData, Computer, Computer, Computer], factory: Factory
) -> None:
    clinic, laptop, tablet, desk = doctor_setup
    note_id = begin(laptop, clinic, "Consulta por tos.")
    laptop.sync.sync()
    tablet.sync.sync()
    assert notes(tablet)[str(note_id)]["body"] == "Consulta por tos."

    # Offline: the laptop autosaves twice, then the tablet edits the same draft.
    assert save_draft(laptop.engine, laptop.clock, note_id, "Consulta por tos. Afebril.")
    assert save_draft(laptop.engine, laptop.clock, note_id,
                      "Consulta por tos. Afebril. Pulmones limpios.")
    assert not save_draft(laptop.engine, laptop.clock, note_id,
                          "Consulta por tos. Afebril. Pulmones limpios.")
    save_draft(tablet.engine, tablet.clock, note_id, "Consulta por tos seca de 5 días.")

    laptop.sync.sync()  # the laptop's saves apply in order, with no conflict between them
    tablet_sync = tablet.sync.sync()
    laptop.sync.sync()
    desk.sync.sync()
    assert tablet_sync.rejected == 0

    server = factory.row(clinical_note, clinic, note_id)
    assert server["body"] == "Consulta por tos seca de 5 días."  # the later edit
    for computer in (laptop, tablet):
        local = notes(computer)
        assert local[str(note_id)]["body"] == server["body"]
        [copy] = [n for n in local.values() if n["conflict_of"] == note_id]
        assert copy["body"] == "Consulta por tos. Afebril. Pulmones limpios."
        assert computer.pending() == 0
    assert notes(desk) == {}

    sign_note(tablet.engine, tablet.clock, note_id)
    tablet.sync.sync()
    laptop.sync.sync()
    assert notes(laptop)[str(note_id)]["status"] == "signed"
    assert factory.row(clinical_note, clinic, note_id)["signed_at"] is not None
    with pytest.raises(NoteError, match="addendum"):
        save_draft(laptop.engine, laptop.clock, note_id, "Cambio tardío.")


def test_an_edit_made_offline_after_the_note_was_signed_elsewhere_is_kept(
    doctor_setup: tuple[ClinicData, Computer, Computer, Computer], factory: Factory
) -> None:
    clinic, laptop, tablet, _desk = doctor_setup
    note_id = begin(laptop, clinic, "Control HTA.", patient=1)
    laptop.sync.sync()
    tablet.sync.sync()
    sign_note(laptop.engine, laptop.clock, note_id)
    save_draft(tablet.engine, tablet.clock, note_id, "Control HTA. Subir dosis.")
    laptop.sync.sync()
    result = tablet.sync.sync()
    tablet.sync.sync()

    assert result.rejected == 0
    local = notes(tablet)
    assert local[str(note_id)]["status"] == "signed"
    assert local[str(note_id)]["body"] == "Control HTA."
    [kept] = [n for n in local.values() if n["conflict_of"] == note_id]
    assert (kept["body"], kept["status"]) == ("Control HTA. Subir dosis.", "draft")
    [attention] = tablet.attention()
    assert attention["status"] == "conflict"
    assert factory.row(clinical_note, clinic, kept["id"])["body"] == kept["body"]


@pytest.mark.parametrize("body", ["x" * 100_001, "con \x00 nulo"])
def test_a_draft_that_cannot_be_stored_is_refused_before_anything_is_queued(
    doctor_setup: tuple[ClinicData, Computer, Computer, Computer], body: str
) -> None:
    clinic, laptop, _tablet, _desk = doctor_setup
    note_id = begin(laptop, clinic, "Bien.")
    with pytest.raises(NoteError):
        save_draft(laptop.engine, laptop.clock, note_id, body)
    empty = begin(laptop, clinic)
    with pytest.raises(NoteError, match="empty"):
        sign_note(laptop.engine, laptop.clock, empty)
    assert notes(laptop)[str(note_id)]["body"] == "Bien."
    assert laptop.pending() == 2  # the two new notes, nothing else


def test_a_doctor_signing_in_after_the_front_desk_on_one_computer_still_gets_the_notes(
    doctor_setup: tuple[ClinicData, Computer, Computer, Computer], factory: Factory
) -> None:
    clinic, laptop, _tablet, desk = doctor_setup
    note_id = begin(laptop, clinic, "Nota previa.")
    laptop.sync.sync()
    # The front desk computer syncs as a receptionist first (no notes for that role)...
    desk.sync.cursor_key = "pull_cursor:receptionist"
    desk.sync.sync()
    assert notes(desk) == {}
    # ...then a doctor signs in on the same computer: their pulls follow their own cursor.
    doctor = SyncClient(desk.engine, desk.http,
                        token=lambda: factory.token(clinic.users[Role.DOCTOR]), page=4,
                        cursor_key="pull_cursor:doctor")
    doctor.sync()
    assert notes(desk)[str(note_id)]["body"] == "Nota previa."
