"""Writing a clinical note: a plain text editor that keeps the draft on this computer as
the doctor types, signs it, and adds addenda to a signed note.

Nothing typed is lost. The draft is saved on the database worker 1.5 s after typing
stops, when the editor loses focus and before it closes; a save that fails leaves the
text on screen, says why, and is tried again on the next edit. Closing with a change not
yet stored saves it first and closes when the store has answered (the GUI thread never
waits). A signed note opens read-only; what comes later goes in an addendum. When two
computers edited one draft offline, both texts are kept: the editor shows the other one
beside this one, with a way to copy from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from desktop.operations.notes import NoteError, save_draft, sign_note, start_addendum
from desktop.ui import i18n
from desktop.ui.chart_records import ask, error_message, show_error, staff_names
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QCloseEvent,
    QDialog,
    QEvent,
    QHBoxLayout,
    QLabel,
    QObject,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    Qt,
    QTimer,
    QVBoxLayout,
    QWidget,
    Signal,
)
from shared_models.tables import clinical_note, patient

AUTOSAVE_MS = 1_500
ERROR_STYLE = "color: #b00020"
SAVED_STYLE = "color: #2e7d32"
NOTICE_STYLE = ("background: #FFF8E1; color: #5D4037; border: 1px solid #FFB300; "
                "padding: 6px")
DATE_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class NoteState:
    """A note as the editor shows it, read in one go on the worker."""

    note: Mapping[str, Any]
    patient_name: str
    # The other text of a draft two computers edited: the note this copy was split from,
    # or the newest copy split from this note.
    other: Mapping[str, Any] | None
    adds_to: Mapping[str, Any] | None
    names: dict[uuid.UUID, str]


def read_note(engine: Engine, note_id: uuid.UUID, viewer_id: uuid.UUID) -> NoteState:
    with engine.connect() as conn:
        row = conn.execute(select(clinical_note).where(clinical_note.c.id == note_id)).first()
        if row is None or row.deleted_at is not None:
            raise NoteError("This note is not on this computer; sync, then open it again.")
        note = dict(row._mapping)
        person = conn.execute(select(patient.c.given_name, patient.c.family_name)
                              .where(patient.c.id == note["patient_id"])).first()
        if note["conflict_of"] is not None:
            other = conn.execute(select(clinical_note).where(
                clinical_note.c.id == note["conflict_of"])).first()
        else:
            other = conn.execute(
                select(clinical_note).where(clinical_note.c.conflict_of == note_id,
                                            clinical_note.c.author_id == viewer_id,
                                            clinical_note.c.deleted_at.is_(None))
                .order_by(clinical_note.c.created_at.desc()).limit(1)).first()
        adds_to = None
        if note["addendum_to"] is not None:
            adds_to = conn.execute(select(clinical_note).where(
                clinical_note.c.id == note["addendum_to"])).first()
        names = staff_names(conn, {note["author_id"]})
    return NoteState(
        note=note,
        patient_name=f"{person.family_name}, {person.given_name}" if person else "",
        other=dict(other._mapping) if other is not None else None,
        adds_to=dict(adds_to._mapping) if adds_to is not None else None, names=names)


class NoteEditor(QDialog):
    """The editor of one note (a draft, a signed note, or an addendum)."""

    # The note now shown: after "Add addendum" it is the new addendum.
    note_opened = Signal(object)

    def __init__(self, desk: Desk, note_id: uuid.UUID, parent: QWidget | None = None, *,
                 autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(parent)
        self.desk = desk
        self.note_id = note_id
        self.state: NoteState | None = None
        self._stored = ""  # the text the store holds
        self._saving: str | None = None  # the text a save on the worker is writing
        self._closing = False
        self._signing = False
        self._may_close = False
        self._filling = False
        self._status_key: tuple[str, dict[str, object]] | None = None
        self.setObjectName("note_editor")
        self.resize(820, 620)

        self.heading = QLabel()
        self.heading.setObjectName("note_heading")
        self.heading.setStyleSheet("font-weight: bold; font-size: 14px")
        self.heading.setTextFormat(Qt.TextFormat.PlainText)
        self.signed_line = QLabel()
        self.signed_line.setObjectName("note_signed")
        self.signed_line.setVisible(False)
        self.notice = QLabel()
        self.notice.setObjectName("conflict_notice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet(NOTICE_STYLE)
        self.notice.setVisible(False)
        self.body = QPlainTextEdit()
        self.body.setObjectName("note_body")
        self.body.setReadOnly(True)  # until the note is loaded
        self.body.setTabChangesFocus(True)
        self.other = QPlainTextEdit()
        self.other.setObjectName("other_text")
        self.other.setReadOnly(True)
        self.other_label = QLabel()
        self.copy_button = QPushButton()
        self.copy_button.setObjectName("copy_across")
        self.other_panel = QWidget()
        self.other_panel.setObjectName("other_panel")
        side = QVBoxLayout(self.other_panel)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.other_label)
        side.addWidget(self.other, 1)
        side.addWidget(self.copy_button)
        self.other_panel.setVisible(False)
        split = QSplitter()
        split.addWidget(self.body)
        split.addWidget(self.other_panel)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.status = QLabel()
        self.status.setObjectName("save_status")
        self.status.setWordWrap(True)
        self.sign_button = QPushButton()
        self.sign_button.setObjectName("sign_note")
        self.sign_button.setVisible(False)
        self.addendum_button = QPushButton()
        self.addendum_button.setObjectName("add_addendum")
        self.addendum_button.setVisible(False)
        self.close_button = QPushButton()
        self.close_button.setObjectName("close_note")
        row = QHBoxLayout()
        row.addWidget(self.status, 1)
        row.addWidget(self.sign_button)
        row.addWidget(self.addendum_button)
        row.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.signed_line)
        layout.addWidget(self.notice)
        layout.addWidget(split, 1)
        layout.addLayout(row)

        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(autosave_ms)
        self.timer.timeout.connect(self.save)
        self.body.textChanged.connect(self._typed)
        self.body.installEventFilter(self)
        self.sign_button.clicked.connect(self.ask_to_sign)
        self.addendum_button.clicked.connect(self.add_addendum)
        self.copy_button.clicked.connect(self.copy_across)
        self.close_button.clicked.connect(self.request_close)
        i18n.language_changed.connect(self.retranslate)
        self.retranslate()
        self.load()

    # --- reading ------------------------------------------------------------------------

    @property
    def editable(self) -> bool:
        note = self.state.note if self.state else None
        return (note is not None and note["status"] == "draft"
                and note["author_id"] == self.desk.session.user_id)

    @property
    def dirty(self) -> bool:
        return self.editable and self.body.toPlainText() != self._stored

    def load(self) -> None:
        desk, note_id = self.desk, self.note_id
        desk.tasks.db.run(lambda: read_note(desk.engine, note_id, desk.session.user_id),
                          on_done=self._show, on_error=self._load_failed, owner=self)

    def _load_failed(self, exc: BaseException) -> None:
        self.heading.setText(error_message(exc))
        show_error(self, tr("Note"), error_message(exc))

    def _show(self, state: NoteState) -> None:
        self.state = state
        self._stored = state.note["body"]
        self._filling = True
        try:
            if self.body.toPlainText() != self._stored:
                self.body.setPlainText(self._stored)
        finally:
            self._filling = False
        self.body.setReadOnly(not self.editable)
        self.sign_button.setVisible(self.editable)
        self.addendum_button.setVisible(state.note["status"] == "signed")
        self.other_panel.setVisible(state.other is not None)
        if state.other is not None:
            self.other.setPlainText(state.other["body"])
        self.copy_button.setEnabled(self.editable)
        self.retranslate()
        if self.editable:
            self.body.setFocus()
            self.body.moveCursor(self.body.textCursor().MoveOperation.End)
        self.note_opened.emit(self.note_id)

    # --- saving -------------------------------------------------------------------------

    def _typed(self) -> None:
        if self._filling or not self.editable:
            return
        self.timer.start()  # also the retry of a save that failed

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # Qt names it
        if watched is self.body and event.type() == QEvent.Type.FocusOut and self.dirty:
            self.save()
        return False

    def save(self) -> None:
        """Store the text as it stands (on the worker), unless it is stored already."""
        self.timer.stop()
        if not self.editable or self._saving is not None:
            return  # a save under way is followed by another if the text moved on
        text = self.body.toPlainText()
        if text == self._stored:
            self._carry_on()
            return
        self._saving = text
        self._set_status("Saving…")
        desk, note_id = self.desk, self.note_id
        desk.tasks.db.run(lambda: save_draft(desk.engine, desk.clock, note_id, text),
                          on_done=self._saved, on_error=self._save_failed, owner=self)

    def _saved(self, changed: bool) -> None:
        assert self._saving is not None
        self._stored, self._saving = self._saving, None
        at = datetime.now(UTC).astimezone(self.desk.clinic.timezone)
        self._set_status("Saved on this computer at {time}", time=at.strftime("%H:%M"))
        if changed:
            self.desk.changed("clinical_note")
        if self.dirty:
            if self._closing or self._signing:
                self.save()
            else:
                self.timer.start()
            return
        self._carry_on()

    def _save_failed(self, exc: BaseException) -> None:
        self._saving = None
        reason = error_message(exc)
        self._set_status("Not saved: {reason}", reason=reason)
        if self._closing or self._signing:
            # The doctor asked to leave or sign; neither happens over text not stored.
            self._closing = self._signing = False
            show_error(self, tr("Note"), tr("Not saved: {reason}", reason=reason))

    def _carry_on(self) -> None:
        """With everything stored: sign or close, if that is what waits."""
        if self._saving is not None or self.dirty:
            return
        if self._signing:
            self._sign()
        elif self._closing:
            self._finish()

    def _set_status(self, text: str, **values: object) -> None:
        self._status_key = (text, values)
        self.status.setText(tr(text, **values))
        failed = text.startswith("Not saved")
        self.status.setStyleSheet(ERROR_STYLE if failed else SAVED_STYLE
                                  if text.startswith("Saved") else "")

    # --- closing ------------------------------------------------------------------------

    def request_close(self) -> None:
        if self.dirty or self._saving is not None:
            self._closing = True
            self.save()
            return
        self._finish()

    def _finish(self) -> None:
        self._may_close = True
        self.timer.stop()
        super().reject()

    def reject(self) -> None:  # Escape, and the window's close button through closeEvent
        self.request_close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            super().closeEvent(event)
            return
        event.ignore()
        self.request_close()

    # --- signing and addenda ------------------------------------------------------------

    def ask_to_sign(self) -> None:
        ask(self, tr("Sign note"),
            tr("A signed note cannot be changed; later changes are added as addenda."),
            tr("Sign"), self.sign)

    def sign(self) -> None:
        self._signing = True
        self.sign_button.setEnabled(False)
        self.save()

    def _sign(self) -> None:
        self._signing = False
        desk, note_id = self.desk, self.note_id
        desk.tasks.db.run(lambda: sign_note(desk.engine, desk.clock, note_id),
                          on_done=self._signed, on_error=self._sign_failed, owner=self)

    def _signed(self, _result: object) -> None:
        self.sign_button.setEnabled(True)
        self.desk.changed("clinical_note")
        self.load()

    def _sign_failed(self, exc: BaseException) -> None:
        self.sign_button.setEnabled(True)
        show_error(self, tr("Sign note"), error_message(exc))

    def add_addendum(self) -> None:
        self.addendum_button.setEnabled(False)
        desk, note_id = self.desk, self.note_id

        def work() -> uuid.UUID:
            return start_addendum(desk.engine, desk.clock, clinic_id=desk.session.clinic_id,
                                  note_id=note_id, author_id=desk.session.user_id)
        desk.tasks.db.run(work, on_done=self._addendum_started,
                          on_error=self._addendum_failed, owner=self)

    def _addendum_started(self, addendum_id: uuid.UUID) -> None:
        self.addendum_button.setEnabled(True)
        self.desk.changed("clinical_note")
        self.note_id = addendum_id
        self.state = None
        self._status_key = None
        self.status.clear()
        self.load()

    def _addendum_failed(self, exc: BaseException) -> None:
        self.addendum_button.setEnabled(True)
        show_error(self, tr("Add addendum"), error_message(exc))

    # --- the other text of a draft two computers edited ----------------------------------

    def copy_across(self) -> None:
        """The selected part of the other text (all of it, with nothing selected) goes in
        at the cursor; the autosave stores it like anything typed."""
        if not self.editable:
            return
        chosen = self.other.textCursor().selectedText().replace("\u2029", "\n")
        self.body.insertPlainText(chosen or self.other.toPlainText())
        self.body.setFocus()

    # --- words --------------------------------------------------------------------------

    def retranslate(self) -> None:
        zone = self.desk.clinic.timezone
        self.sign_button.setText(tr("Sign…"))
        self.addendum_button.setText(tr("Add addendum"))
        self.close_button.setText(tr("Close"))
        self.copy_button.setText(tr("Copy into this note"))
        if self._status_key is not None:
            self._set_status(self._status_key[0], **self._status_key[1])
        state = self.state
        if state is None:
            self.setWindowTitle(tr("Note"))
            self.heading.setText(tr("Loading…"))
            return
        note = state.note
        if state.adds_to is not None:
            title = tr("Addendum to the note of {when}",
                       when=state.adds_to["created_at"].astimezone(zone).strftime(DATE_FORMAT))
        else:
            title = tr("Note of {when}",
                       when=note["created_at"].astimezone(zone).strftime(DATE_FORMAT))
        self.setWindowTitle(f"{title} · {state.patient_name}")
        self.heading.setText(f"{state.patient_name} · {title}")
        signed = note["status"] == "signed"
        if signed:
            author = state.names.get(note["author_id"]) or (
                tr("you") if note["author_id"] == self.desk.session.user_id
                else tr("another doctor"))
            self.signed_line.setText(tr(
                "Signed by {author} on {when}. A signed note cannot change; add an addendum.",
                author=author,
                when=note["signed_at"].astimezone(zone).strftime(DATE_FORMAT)))
        self.signed_line.setVisible(signed)
        if state.other is not None:
            self.notice.setText(tr("Another computer changed this draft; both texts are "
                                   "kept.") + " " + tr(
                "The text beside this one is the other version; copy what is still needed."))
            self.other_label.setText(tr("The other version"))
        self.notice.setVisible(state.other is not None)
