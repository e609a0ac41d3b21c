"""Printable payment receipts, written as PDF files.

The receipt is laid out by Qt's rich-text engine and written by its PDF writer, so any
name prints in full (the fonts are embedded) and nothing else is needed on the computer.
Writing the file is disk work: it runs on the database worker, never on the GUI thread,
and it needs the application's QGuiApplication for fonts. A payment not yet numbered by
the server says so on the receipt instead of showing a number that will change.

This is proof of payment for the patient, not a tax document (a boleta or CFDI is issued
by the clinic's invoicing system).
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from desktop.threads import check_not_gui_thread
from desktop.ui.i18n import tr
from desktop.ui.qt import QtGui
from shared_models.schemas.payments import format_amount, is_local_receipt_number

METHOD_LABELS = {"cash": "Cash", "card": "Card", "transfer": "Transfer"}
PAGE = QtGui.QPageSize.PageSizeId.A5
RESOLUTION_DPI = 300


class ReceiptError(Exception):
    """The receipt could not be written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Receipt:
    clinic_name: str
    patient_name: str
    receipt_number: str  # a local placeholder until the server numbers the payment
    received_at: datetime
    zone: ZoneInfo
    amount_minor: int
    currency: str
    method: str
    reference: str | None
    received_by: str
    voided_at: datetime | None = None
    void_reason: str | None = None

    @property
    def number_shown(self) -> str:
        if is_local_receipt_number(self.receipt_number):
            return tr("Pending (numbered when this computer syncs)")
        return self.receipt_number

    @property
    def when(self) -> str:
        local = self.received_at.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} ({self.zone.key})"


def receipt_html(receipt: Receipt) -> str:
    """The receipt's content, in the current language."""
    rows = [
        (tr("Receipt number"), receipt.number_shown),
        (tr("Date"), receipt.when),
        (tr("Patient"), receipt.patient_name),
        (tr("Amount"), format_amount(receipt.amount_minor, receipt.currency)),
        (tr("Method"), tr(METHOD_LABELS.get(receipt.method, receipt.method))),
        (tr("Reference"), receipt.reference or "—"),
        (tr("Received by"), receipt.received_by),
    ]
    cells = "".join(
        f"<tr><td style='padding:4px 12px 4px 0; color:#555'>{html.escape(label)}</td>"
        f"<td style='padding:4px 0'><b>{html.escape(value)}</b></td></tr>"
        for label, value in rows)
    void = ""
    if receipt.voided_at is not None:
        void = (f"<p style='color:#b00020; font-size:16pt'><b>{html.escape(tr('VOID'))}</b>: "
                f"{html.escape(receipt.void_reason or '')}</p>")
    return (
        f"<h2>{html.escape(receipt.clinic_name)}</h2>"
        f"<h3>{html.escape(tr('Payment receipt'))}</h3>{void}"
        f"<table>{cells}</table>"
        f"<p style='color:#555; font-size:8pt'>"
        f"{html.escape(tr('Proof of payment; not a tax document.'))}</p>"
    )


def write_receipt_pdf(path: Path, receipt: Receipt) -> Path:
    """Write `receipt` to `path` as a one-page PDF. The file appears whole or not at all:
    it is written beside the target and moved into place."""
    check_not_gui_thread("writing a receipt")
    partial = path.with_name(f".{path.name}.part")
    writer = QtGui.QPdfWriter(str(partial))
    writer.setPageSize(QtGui.QPageSize(PAGE))
    writer.setResolution(RESOLUTION_DPI)
    writer.setTitle(f"{tr('Payment receipt')} {receipt.number_shown}")
    writer.setCreator("Consulta")
    document = QtGui.QTextDocument()
    document.setHtml(receipt_html(receipt))
    document.print_(writer)  # closes the file when the page is done
    try:
        data = partial.read_bytes()
    except OSError:
        data = b""
    # Qt reports no failure (an unwritable folder, a full disk): the file itself tells.
    complete = data.startswith(b"%PDF-") and b"%%EOF" in data[-32:]
    if not complete:
        partial.unlink(missing_ok=True)
        raise ReceiptError(f"The receipt could not be written to {path}. Choose another "
                           "folder and try again.")
    try:
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ReceiptError(f"The receipt could not be saved as {path}: {exc.strerror}.") from exc
    return path
