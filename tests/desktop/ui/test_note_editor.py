"""The note editor on a real store with the real workers: it saves the draft after typing
stops and when it loses focus, keeps the text through a failed save and saves it on the
next edit, saves before closing (and stays open if that save fails), signs after asking,
is read-only once signed, turns to a new addendum, and shows both texts of a draft two
computers edited."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import insert, select

from desktop.operations import notes
from desktop.operations.notes import start_note
from desktop.store.local import outbox
from desktop.ui import i18n, note_editor
from desktop.ui.desk import Desk
from desktop.ui.main_window import MainWindow
from desktop.ui.note_editor import AUTOSAVE_MS, NoteEditor
from desktop.ui.qt import QMessageBox, QPushButton, Qt
from desktop.ui.sync_status import SyncController
from shared_models.ids import uuid7
from shared_models.tables import clinical_note, patient
from tests.desktop.ui.conftest import on_db_worker, setup_io

LEFT = Qt.MouseButton.LeftButton
FAST_MS = 100


@pytest.fixture
def doctor(desk: Desk) -> Desk:
    desk.session = dataclasses.replace(desk.session, role="doctor")
    return desk


@pytest.fixture
def patient_id(doctor: Desk) -> uuid.UUID:
    pid = uuid7()
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=doctor.session.clinic_id, id=pid, mrn="P-000031", given_name="Joaquín",
            family_name="Pérez Soto", preferred_channels=[]))
    return pid


def new_draft(qtbot: QtBot, desk: Desk, patient_id: uuid.UUID, body: str = "") -> uuid.UUID:
    return on_db_worker(qtbot, desk, lambda: start_note(
        desk.engine, desk.clock, clinic_id=desk.session.clinic_id, patient_id=patient_id,
        author_id=desk.session.user_id, body=body))


def editor_for(qtbot: QtBot, desk: Desk, note_id: uuid.UUID, *, autosave_ms: int = FAST_MS
               ) -> NoteEditor:
    editor = NoteEditor(desk, note_id, autosave_ms=autosave_ms)
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitUntil(lambda: editor.state is not None, timeout=10_000)
    return editor


def stored(desk: Desk, note_id: uuid.UUID) -> tuple[dict[str, Any], list[Any]]:
    with desk.engine.connect() as conn:
        note = conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)).one()
        queue = conn.execute(select(outbox.c.op, outbox.c.changes)
                             .where(outbox.c.record_id == note_id).order_by(outbox.c.seq))
        return dict(note._mapping), [(r.op, r.changes) for r in queue]


def saved(editor: NoteEditor) -> bool:
    return editor.status.text().startswith("Saved on this computer at ")


def test_the_draft_is_saved_after_typing_stops(qtbot: QtBot, doctor: Desk,
                                               patient_id: uuid.UUID) -> None:
    assert AUTOSAVE_MS == 1_500
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=AUTOSAVE_MS)
    assert editor.heading.text().startswith("Pérez Soto, Joaquín · Note of ")
    qtbot.keyClicks(editor.body, "Tos seca hace 5 dias")
    qtbot.wait(700)
    assert editor.status.text() == ""  # still typing, as far as the editor knows
    qtbot.waitUntil(lambda: saved(editor), timeout=5_000)
    now = datetime.now(UTC).astimezone(doctor.clinic.timezone)
    assert editor.status.text() in {
        f"Saved on this computer at {(now - timedelta(minutes=m)):%H:%M}" for m in (0, 1)}
    note, queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert note["body"] == "Tos seca hace 5 dias"
    assert queue[-1] == ("upsert", {"body": "Tos seca hace 5 dias"})
    assert len(queue) == 2  # the start, then one save for the whole burst of typing


def test_leaving_the_editor_saves_at_once(qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
                                          ) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=60_000)
    editor.body.setFocus()
    qtbot.waitUntil(editor.body.hasFocus, timeout=5_000)
    qtbot.keyClicks(editor.body, "Afebril.")
    editor.close_button.setFocus()
    qtbot.waitUntil(lambda: saved(editor), timeout=5_000)
    note, _queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert note["body"] == "Afebril."


def test_a_failed_save_keeps_the_text_and_the_next_edit_saves_it(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id)
    failures = ["The disk is full."]

    def flaky(*args: Any) -> bool:
        if failures:
            raise OSError(failures.pop())
        return notes.save_draft(*args)
    monkeypatch.setattr(note_editor, "save_draft", flaky)
    qtbot.keyClicks(editor.body, "Dolor abdominal")
    qtbot.waitUntil(lambda: editor.status.text() == "Not saved: The disk is full.",
                    timeout=5_000)
    assert editor.status.styleSheet() == "color: #b00020"
    assert editor.body.toPlainText() == "Dolor abdominal"
    assert not editor.body.isReadOnly()
    note, queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert (note["body"], len(queue)) == ("", 1)
    qtbot.keyClicks(editor.body, " difuso.")
    qtbot.waitUntil(lambda: saved(editor), timeout=5_000)
    note, queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert note["body"] == "Dolor abdominal difuso."
    assert queue[-1] == ("upsert", {"body": "Dolor abdominal difuso."})


def test_text_that_cannot_be_stored_stays_on_screen_with_the_reason(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id, "Bien.")
    editor = editor_for(qtbot, doctor, note_id)
    editor.body.setPlainText("Bien.\x00")
    qtbot.waitUntil(lambda: editor.status.text().startswith("Not saved"), timeout=5_000)
    assert editor.status.text() == ("Not saved: The text contains a NUL character, which "
                                    "cannot be stored.")
    assert editor.body.toPlainText() == "Bien.\x00"


def test_closing_with_a_change_not_yet_saved_saves_it_first(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=60_000)
    qtbot.keyClicks(editor.body, "Plan: reposo.")
    qtbot.mouseClick(editor.close_button, LEFT)
    assert editor.isVisible()  # waiting for the store's answer, without blocking
    qtbot.waitUntil(lambda: not editor.isVisible(), timeout=5_000)
    note, _queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert note["body"] == "Plan: reposo."


def test_a_close_whose_save_fails_stays_open_with_the_text(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=60_000)

    def broken(*_args: Any) -> bool:
        raise OSError("The store is locked by another program.")
    monkeypatch.setattr(note_editor, "save_draft", broken)
    editor.body.insertPlainText("Examen físico normal.")
    editor.close()  # the window's own close button
    qtbot.waitUntil(lambda: editor.findChild(QMessageBox, "error_message") is not None,
                    timeout=5_000)
    box = editor.findChild(QMessageBox, "error_message")
    assert box.text() == "Not saved: The store is locked by another program."
    assert editor.isVisible()
    assert editor.body.toPlainText() == "Examen físico normal."


def test_signing_asks_first_then_the_note_is_read_only(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=60_000)
    editor.body.insertPlainText("Diagnóstico: faringitis viral.")
    qtbot.mouseClick(editor.sign_button, LEFT)
    box = editor.findChild(QMessageBox, "confirm_message")
    assert box.text() == "A signed note cannot be changed; later changes are added as addenda."
    qtbot.mouseClick(box.findChild(QPushButton, "confirm_yes"), LEFT)
    qtbot.waitUntil(lambda: editor.addendum_button.isVisible(), timeout=5_000)
    assert editor.body.isReadOnly()
    assert not editor.sign_button.isVisible()
    assert editor.signed_line.text().startswith("Signed by you on ")
    note, queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert (note["status"], note["body"]) == ("signed", "Diagnóstico: faringitis viral.")
    assert [op for op, _changes in queue] == ["upsert", "upsert", "sign"]
    qtbot.mouseClick(editor.close_button, LEFT)  # nothing to save: closes at once
    assert not editor.isVisible()


def test_an_empty_note_is_not_signed(qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
                                     ) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id)
    editor.sign()
    qtbot.waitUntil(lambda: editor.findChild(QMessageBox, "error_message") is not None,
                    timeout=5_000)
    assert editor.findChild(QMessageBox, "error_message").text() == (
        "An empty note cannot be signed.")
    assert editor.editable
    assert editor.sign_button.isEnabled()


def test_a_signed_note_takes_an_addendum(qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
                                         ) -> None:
    note_id = new_draft(qtbot, doctor, patient_id, "Control anual.")
    on_db_worker(qtbot, doctor, lambda: notes.sign_note(doctor.engine, doctor.clock, note_id))
    editor = editor_for(qtbot, doctor, note_id)
    assert editor.body.isReadOnly()
    assert editor.addendum_button.isVisible()
    with qtbot.waitSignal(editor.note_opened, timeout=5_000) as opened:
        qtbot.mouseClick(editor.addendum_button, LEFT)
    addendum_id = opened.args[0]
    assert addendum_id != note_id
    assert editor.editable
    assert editor.body.toPlainText() == ""
    assert "Addendum to the note of" in editor.heading.text()
    qtbot.keyClicks(editor.body, "Se agrega resultado de TSH normal.")
    qtbot.waitUntil(lambda: saved(editor), timeout=5_000)
    addendum, queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, addendum_id))
    assert addendum["addendum_to"] == note_id
    assert queue[0][1]["addendum_to"] == str(note_id)
    assert queue[-1] == ("upsert", {"body": "Se agrega resultado de TSH normal."})


def test_both_texts_of_a_draft_edited_on_two_computers_are_shown(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
) -> None:
    note_id = new_draft(qtbot, doctor, patient_id, "Cefalea tensional.\nIbuprofeno.")
    copy_id = uuid7()
    with setup_io(), doctor.engine.begin() as conn:
        conn.execute(insert(clinical_note).values(
            clinic_id=doctor.session.clinic_id, id=copy_id, patient_id=patient_id,
            author_id=doctor.session.user_id, status="draft", conflict_of=note_id,
            body="Cefalea de 3 días.\nSin signos de alarma.", created_at=datetime.now(UTC)))
    editor = editor_for(qtbot, doctor, note_id, autosave_ms=60_000)
    assert editor.notice.isVisibleTo(editor)
    assert editor.notice.text().startswith(
        "Another computer changed this draft; both texts are kept.")
    assert editor.other_panel.isVisibleTo(editor)
    assert editor.other.toPlainText() == "Cefalea de 3 días.\nSin signos de alarma."
    cursor = editor.other.textCursor()
    cursor.movePosition(cursor.MoveOperation.Down)
    cursor.movePosition(cursor.MoveOperation.EndOfLine, cursor.MoveMode.KeepAnchor)
    editor.other.setTextCursor(cursor)
    editor.body.moveCursor(cursor.MoveOperation.End)
    editor.body.insertPlainText("\n")
    editor.copy_button.click()
    assert editor.body.toPlainText() == ("Cefalea tensional.\nIbuprofeno.\n"
                                         "Sin signos de alarma.")
    # The copy itself, opened on its own, points back at the note.
    other = editor_for(qtbot, doctor, copy_id)
    assert other.other.toPlainText() == "Cefalea tensional.\nIbuprofeno."


def test_the_editor_speaks_spanish(qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID) -> None:
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = editor_for(qtbot, doctor, note_id)
    qtbot.keyClicks(editor.body, "Hola")
    qtbot.waitUntil(lambda: saved(editor), timeout=5_000)
    i18n.set_language("es")
    assert editor.status.text().startswith("Guardado en este equipo a las ")
    assert editor.sign_button.text() == "Firmar…"
    assert editor.heading.text().startswith("Pérez Soto, Joaquín · Nota del ")


def test_locking_the_screen_saves_what_is_being_written(
    qtbot: QtBot, doctor: Desk, patient_id: uuid.UUID
) -> None:
    window = MainWindow(doctor, SyncController(doctor, None))
    qtbot.addWidget(window)
    note_id = new_draft(qtbot, doctor, patient_id)
    editor = NoteEditor(doctor, note_id, window, autosave_ms=60_000)
    qtbot.waitUntil(lambda: editor.editable, timeout=10_000)
    qtbot.keyClicks(editor.body, "Escrito justo antes del bloqueo")
    window.shut()  # what the app does when the screen locks, before closing the store
    assert doctor.tasks.db.wait(10_000)
    note, _queue = on_db_worker(qtbot, doctor, lambda: stored(doctor, note_id))
    assert note["body"] == "Escrito justo antes del bloqueo"
