"""Spanish for the doctor's workspace: the queue, the chart, notes, chart records and
lab orders (merged into `desktop.ui.i18n`)."""

from __future__ import annotations

SPANISH: dict[str, str] = {
}
