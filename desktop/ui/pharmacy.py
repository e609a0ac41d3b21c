"""The pharmacist's workspace, online: the prescriptions sent to their pharmacy, one
prescription in detail with its signature checked on this computer, and receiving,
dispensing or refusing it (desktop.operations.pharmacy_queue on the network worker).

The signature check is the first thing the detail shows: green with the prescriber and
their key when it holds, red with what to do when it does not, and then "Receive" and
"Dispense" stay shut. Offline the workspace says it works online and shows nothing old.
"""

from __future__ import annotations

import html
import uuid
from datetime import date

from desktop.operations.pharmacy_queue import (
    NOT_APPROVED,
    REVOKED,
    TAMPERED,
    Checked,
    IncomingPage,
    NotDispensable,
    PharmacyError,
    dispense,
    incoming,
    receive,
    refuse,
)
from desktop.sync.errors import RequestRefused, SyncAuthError, SyncNetworkError
from desktop.ui import i18n
from desktop.ui.desk import Desk
from desktop.ui.i18n import tr
from desktop.ui.qt import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    Qt,
    QTableWidget,
    QTableWidgetItem,
    QtGui,
    QVBoxLayout,
    QWidget,
    Signal,
)
from desktop.ui.worklist import OnlineWorklist, local_time
from shared_models import prescribing

VERIFIED_STYLE = ("QLabel { color: #1b5e20; background: #e8f5e9; border: 2px solid #2e7d32; "
                  "border-radius: 4px; padding: 8px; font-weight: bold; }")
FAILED_STYLE = ("QLabel { color: #b71c1c; background: #ffebee; border: 2px solid #c62828; "
                "border-radius: 4px; padding: 8px; font-weight: bold; }")
OFFLINE = ("The pharmacy works online, and this computer cannot reach the server now. "
           "Prescriptions show here again when it is back.")
# The status filter: label, and the status asked of the server (None: the open ones).
FILTERS = (("Open (new and received)", None), ("New", "sent"), ("Received", "received"),
           ("Dispensed", "dispensed"), ("Refused", "refused"))
# "sent" is a prescription that reached the pharmacy and is not taken in yet: new to it.
STATUS_LABELS = {"signed": "Signed", "sent": "New", "received": "Received",
                 "dispensed": "Dispensed", "refused": "Refused", "cancelled": "Cancelled"}
WARNING_KINDS = {"allergy": "Allergy", "interaction": "Interaction",
                 "duplicate_therapy": "Duplicate therapy"}
# The pharmacy_queue problems, said on screen as they are (translated).
PROBLEMS = (TAMPERED, REVOKED, NOT_APPROVED)
LIST_COLUMNS = ("Signed", "Patient", "Prescriber", "Status")
ITEM_COLUMNS = ("Medicine", "Strength", "Form", "Dose", "Route", "Frequency", "Days",
                "Quantity", "Refills", "Instructions")


def fingerprint_prefix(fingerprint: str) -> str:
    """The first 16 hex digits in groups of four, as the prescriber's key screen shows
    them."""
    head = fingerprint[:16]
    return " ".join(head[i:i + 4] for i in range(0, len(head), 4))


def signature_text(checked: Checked) -> str:
    if checked.problem is not None:
        return tr(checked.problem)
    return tr("Signature verified — {prescriber}, key {key}",
              prescriber=checked.prescription.prescriber_name,
              key=fingerprint_prefix(checked.fingerprint))


def reference_name(ref: str) -> str:
    """A medicine id or "class:" slug of the formulary as the pharmacist reads it."""
    spanish = i18n.language() == "es"
    try:
        if ref.startswith(prescribing.CLASS_PREFIX):
            cls = prescribing.therapeutic_class(ref)
            return cls.name_es if spanish else cls.name_en
        med = prescribing.medicine(ref)
        return med.name_es if spanish else med.name_en
    except prescribing.UnknownMedicineError:
        return ref  # from a newer formulary than this release bundles


def problem_text(exc: BaseException) -> str:
    """Why a step or the list did not work, for a person."""
    if isinstance(exc, SyncNetworkError):
        return tr(OFFLINE)
    if isinstance(exc, RequestRefused | PharmacyError):
        return tr(str(exc))
    if isinstance(exc, SyncAuthError):
        return tr("The server did not accept this session: {error}", error=str(exc))
    return tr("The prescriptions could not be loaded: {error}", error=str(exc))


class PharmacyView(OnlineWorklist[Checked]):
    """Incoming prescriptions and the one selected. `loaded` fires when a list is on
    screen, `stepped` when a step's answer is (tests and screenshots wait on them)."""

    stepped = Signal()

    def __init__(self, desk: Desk, parent: QWidget | None = None) -> None:
        super().__init__(desk, name="pharmacy", list_name="pharmacy_list",
                         columns=LIST_COLUMNS, filters=FILTERS, problem=problem_text,
                         parent=parent)
        self.has_more = False
        self.more_button = QPushButton()
        self.more_button.setObjectName("pharmacy_more")
        self.more_button.setVisible(False)
        self.more_button.clicked.connect(self.load_more)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.table, 1)
        left_layout.addWidget(self.more_button)
        self._lay_out(left, self._detail())

    def _detail(self) -> QWidget:
        pane = QFrame()
        pane.setObjectName("pharmacy_detail")
        self.signature = QLabel()
        self.signature.setObjectName("signature_check")
        self.signature.setWordWrap(True)
        self.signature.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QtGui.QFont(self.signature.font())
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.signature.setFont(font)
        self.patient = QLabel()
        self.patient.setObjectName("prescription_patient")
        self.patient.setWordWrap(True)
        self.prescriber = QLabel()
        self.prescriber.setObjectName("prescription_prescriber")
        self.prescriber.setWordWrap(True)
        self.items = QTableWidget(0, len(ITEM_COLUMNS))
        self.items.setObjectName("prescription_items")
        self.items.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.items.verticalHeader().setVisible(False)
        self.items.horizontalHeader().setStretchLastSection(True)
        self.notes = QLabel()
        self.notes.setObjectName("prescription_notes")
        self.notes.setWordWrap(True)
        self.acknowledged = QLabel()
        self.acknowledged.setObjectName("prescription_warnings")
        self.acknowledged.setWordWrap(True)
        self.status = QLabel()
        self.status.setObjectName("prescription_status")
        self.status.setWordWrap(True)
        self.receive_button = QPushButton()
        self.receive_button.setObjectName("receive_button")
        self.receive_button.clicked.connect(lambda: self._step("receive"))
        self.dispense_button = QPushButton()
        self.dispense_button.setObjectName("dispense_button")
        self.dispense_button.clicked.connect(lambda: self._step("dispense"))
        self.refuse_button = QPushButton()
        self.refuse_button.setObjectName("refuse_button")
        self.refuse_button.clicked.connect(self.ask_refusal)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.receive_button, self.dispense_button, self.refuse_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(pane)
        layout.addWidget(self.signature)
        layout.addWidget(self.patient)
        layout.addWidget(self.prescriber)
        layout.addWidget(self.items, 1)
        layout.addWidget(self.notes)
        layout.addWidget(self.acknowledged)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._show_detail(None)
        return pane

    def retranslate(self) -> None:
        self._retranslate_list(tr("Prescriptions for your pharmacy"))
        self.more_button.setText(tr("Show more"))
        self.items.setHorizontalHeaderLabels([tr(c) for c in ITEM_COLUMNS])
        self.receive_button.setText(tr("Receive"))
        self.dispense_button.setText(tr("Dispense"))
        self.refuse_button.setText(tr("Refuse…"))
        self._show_list()
        self._show_detail(self.current)

    # --- the list -------------------------------------------------------------------------

    def refresh(self) -> None:
        self._load(offset=0)

    def load_more(self) -> None:
        self._load(offset=len(self.rows))

    def _load(self, *, offset: int) -> None:
        def take(page: IncomingPage) -> str:
            self.rows = [*self.rows[:offset], *page.data]
            self.has_more = page.has_more
            return "" if page.data or offset else tr("No prescriptions here.")
        self._fetch(lambda server, status: incoming(server, status=status, offset=offset),
                    take)

    def _drop_rows(self) -> None:
        super()._drop_rows()
        self.has_more = False

    def row_id(self, row: Checked) -> uuid.UUID:
        return row.prescription.id

    def _list_items(self, row: Checked) -> list[QTableWidgetItem]:
        p = row.prescription
        cells = (local_time(p.signed_at, self.desk), p.patient_name, p.prescriber_name,
                 tr(STATUS_LABELS[p.status]))
        items = []
        for text in cells:
            item = QTableWidgetItem(text)
            if row.problem is not None:
                item.setForeground(QtGui.QColor("#b00020"))
                item.setToolTip(tr(row.problem))
            items.append(item)
        return items

    def _show_list(self) -> None:
        super()._show_list()
        self.more_button.setVisible(self.has_more)

    # --- one prescription -----------------------------------------------------------------

    def _show_detail(self, checked: Checked | None) -> None:
        self.current = checked
        for widget in (self.signature, self.patient, self.prescriber, self.notes,
                       self.acknowledged, self.status):
            widget.setVisible(checked is not None)
        self.items.setRowCount(0)
        self._enable()
        if checked is None:
            return
        p = checked.prescription
        self.signature.setText(signature_text(checked))
        self.signature.setStyleSheet(VERIFIED_STYLE if checked.problem is None
                                     else FAILED_STYLE)
        born = (tr("born {date}", date=p.patient_date_of_birth.isoformat())
                if isinstance(p.patient_date_of_birth, date) else tr("date of birth unknown"))
        self.patient.setText(f"<b style='font-size:13pt'>{html.escape(p.patient_name)}</b>"
                             f" · {html.escape(born)}")
        self.prescriber.setText(tr("Prescribed by {prescriber} on {when}",
                                   prescriber=p.prescriber_name,
                                   when=local_time(p.signed_at, self.desk)))
        self.items.setRowCount(len(p.items))
        for row, line in enumerate(p.items):
            cells = (line.medicine_name[:1].upper() + line.medicine_name[1:], line.strength,
                     tr(line.form.replace("_", " ")), line.dose,
                     tr(line.route), line.frequency,
                     str(line.duration_days) if line.duration_days else "—",
                     str(line.quantity), str(line.refills), line.instructions or "")
            for column, text in enumerate(cells):
                self.items.setItem(row, column, QTableWidgetItem(text))
        self.items.resizeColumnsToContents()
        self.items.horizontalHeader().setStretchLastSection(True)
        self.notes.setText(f"{tr('Notes')}: {p.notes}" if p.notes else "")
        self.notes.setVisible(bool(p.notes))
        if p.acknowledgements:
            lines = "".join(
                f"<li><b>{html.escape(tr(WARNING_KINDS[a.kind]))}</b> "
                f"({html.escape(', '.join(reference_name(m) for m in a.medicines))}): "
                f"{html.escape(a.reason)}</li>"
                for a in p.acknowledgements)
            self.acknowledged.setText(
                f"{html.escape(tr('Warnings the prescriber acknowledged'))}:<ul>{lines}</ul>")
        self.acknowledged.setVisible(bool(p.acknowledgements))
        status = tr(STATUS_LABELS[p.status])
        if p.status_reason:
            status = f"{status}: {p.status_reason}"
        self.status.setText(f"{tr('Status')}: {status}")

    def _enable(self) -> None:
        checked, busy = self.current, self.busy
        self.receive_button.setEnabled(bool(checked and checked.can_receive and not busy))
        self.dispense_button.setEnabled(bool(checked and checked.can_dispense and not busy))
        self.refuse_button.setEnabled(bool(checked and checked.can_refuse and not busy))

    # --- the steps ------------------------------------------------------------------------

    def ask_refusal(self) -> None:
        if self.current is None:
            return
        self._ask_reason(tr("Refuse"), tr("Why does the pharmacy refuse this "
                                          "prescription? The prescriber sees the reason."),
                         lambda reason: self._step("refuse", reason))

    def _step(self, step: str, reason: str | None = None) -> None:
        ready = self._ready()
        if ready is None:
            return
        server, checked = ready
        prescription_id = checked.prescription.id

        def work() -> Checked:
            if step == "receive":
                return receive(server, prescription_id)
            if step == "dispense":
                return dispense(server, prescription_id)
            return refuse(server, prescription_id, reason or "")
        self._run(work, self._stepped)

    def _replace(self, checked: Checked) -> None:
        self._put(checked)
        self.select(checked.prescription.id)

    def _stepped(self, checked: Checked) -> None:
        self.busy = False
        self._say("")
        self._replace(checked)
        self.stepped.emit()

    def _refused(self, exc: BaseException) -> None:
        self.busy = False
        if isinstance(exc, NotDispensable):
            self._replace(exc.check)
        self._enable()
        self._warn(tr("Pharmacy"), exc)
        self.stepped.emit()
