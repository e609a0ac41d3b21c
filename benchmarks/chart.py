"""How fast a doctor's computer opens a long chart from its encrypted local store.

A real SQLCipher store in a temporary folder holds one patient with 200 notes (some with
addenda), 100 prescriptions (1-3 items each) and 50 lab orders with results (some out of
range), beside 2,000 other patients with a few notes each. Measured over RUNS runs each,
after a warm-up:

- first paint: `load_summary` plus the rows the chart shows first (the title and status
  of the first 20 entries), the data half of opening a chart;
- full timeline: `load_timeline`, every entry with its addenda, items or results;
- the naive timeline: the same entries with one SELECT per entry for its children
  (N+1 statements), the baseline the ratio is measured against.

Runs with no arguments and prints one JSON object as its last line (`first_paint_ms`,
`full_timeline_ms` medians, their p95, `naive_timeline_ms`, `ratio` and more).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/chart.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.chart_data import (  # noqa: E402 - needs the repository root on sys.path
    ChartFill,
    fill_chart,
    fill_other_patients,
)
from desktop.operations.chart import (  # noqa: E402
    FIRST_PAINT_ENTRIES,
    load_summary,
    load_timeline,
)
from desktop.store.database import KEY_BYTES, open_store  # noqa: E402
from shared_models.ids import uuid7  # noqa: E402
from shared_models.tables import (  # noqa: E402
    clinical_note,
    lab_order,
    lab_result,
    prescription,
    prescription_item,
)

RUNS = 30
WARMUP = 3
OTHER_PATIENTS = 2000
TARGET_MS = 150.0


def first_paint(engine: Engine, patient_id: uuid.UUID, viewer_id: uuid.UUID
                ) -> list[tuple[str, str, str]]:
    """What the chart needs before it can paint: the summary and its first rows."""
    summary = load_summary(engine, patient_id, viewer_id=viewer_id)
    return [(entry.kind, entry.title, entry.status)
            for entry in summary.recent[:FIRST_PAINT_ENTRIES]]


def naive_timeline(engine: Engine, patient_id: uuid.UUID, viewer_id: uuid.UUID
                   ) -> list[tuple[Any, Sequence[Any]]]:
    """The timeline the obvious way: the entries, then one SELECT per entry for its
    children."""
    out: list[tuple[Any, Sequence[Any]]] = []
    with engine.connect() as conn:
        notes = conn.execute(select(clinical_note).where(
            clinical_note.c.patient_id == patient_id, clinical_note.c.addendum_to.is_(None),
            clinical_note.c.deleted_at.is_(None))).all()
        for note in notes:
            if note.status != "signed" and note.author_id != viewer_id:
                continue
            out.append((note, conn.execute(select(clinical_note).where(
                clinical_note.c.addendum_to == note.id)).all()))
        for script in conn.execute(select(prescription).where(
                prescription.c.patient_id == patient_id)).all():
            out.append((script, conn.execute(select(prescription_item).where(
                prescription_item.c.prescription_id == script.id)).all()))
        for order in conn.execute(select(lab_order).where(
                lab_order.c.patient_id == patient_id)).all():
            out.append((order, conn.execute(select(lab_result).where(
                lab_result.c.lab_order_id == order.id)).all()))
    return out


def _timed(call: Callable[[], object]) -> list[float]:
    for _ in range(WARMUP):
        call()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _p95(times: list[float]) -> float:
    return sorted(times)[max(0, round(0.95 * len(times)) - 1)]


def _statements(engine: Engine, call: Callable[[], object]) -> int:
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="consulta-chart-") as folder:
        engine = open_store(Path(folder) / "local.db", os.urandom(KEY_BYTES))
        try:
            clinic_id, patient_id = uuid7(), uuid7()
            started = time.perf_counter()
            fill: ChartFill = fill_chart(engine, clinic_id, patient_id)
            fill_other_patients(engine, clinic_id, count=OTHER_PATIENTS)
            filled_s = time.perf_counter() - started
            viewer = fill.doctor_id
            paint = _timed(lambda: first_paint(engine, patient_id, viewer))
            full = _timed(lambda: load_timeline(engine, patient_id, viewer_id=viewer))
            naive = _timed(lambda: naive_timeline(engine, patient_id, viewer))
            entries = len(load_timeline(engine, patient_id, viewer_id=viewer))
            statements = {
                "first_paint": _statements(engine, lambda: first_paint(engine, patient_id,
                                                                       viewer)),
                "full_timeline": _statements(engine, lambda: load_timeline(
                    engine, patient_id, viewer_id=viewer)),
                "naive_timeline": _statements(engine, lambda: naive_timeline(
                    engine, patient_id, viewer)),
            }
        finally:
            engine.dispose()
    _report(fill, filled_s, entries, paint, full, naive, statements)


def _report(fill: ChartFill, filled_s: float, entries: int, paint: list[float],
            full: list[float], naive: list[float], statements: dict[str, int]) -> None:
    summary = {
        "first_paint_ms": round(statistics.median(paint), 2),
        "first_paint_p95_ms": round(_p95(paint), 2),
        "full_timeline_ms": round(statistics.median(full), 2),
        "full_timeline_p95_ms": round(_p95(full), 2),
        "naive_timeline_ms": round(statistics.median(naive), 2),
        "naive_timeline_p95_ms": round(_p95(naive), 2),
        "ratio": round(statistics.median(naive) / statistics.median(full), 2),
        "entries": entries,
        "statements": statements,
        "runs": RUNS,
        "target_ms": TARGET_MS,
    }
    print(f"Consulta chart on a SQLCipher store: one patient with {fill.notes} notes "
          f"({fill.addenda} addenda), {fill.prescriptions} prescriptions ({fill.items} items), "
          f"{fill.labs} lab orders ({fill.results} results), beside {OTHER_PATIENTS:,} other "
          f"patients; filled in {filled_s:.1f} s")
    print(f"{RUNS} runs each after {WARMUP} warm-up runs")
    print(f"  {'':<34}{'median ms':>10}{'p95 ms':>9}{'statements':>12}")
    for label, key, times in (("first paint (summary + 20 rows)", "first_paint", paint),
                              ("full timeline", "full_timeline", full),
                              ("naive timeline (N+1)", "naive_timeline", naive)):
        print(f"  {label:<34}{statistics.median(times):>10.1f}{_p95(times):>9.1f}"
              f"{statements[key]:>12}")
    verdict = max(_p95(paint), _p95(full)) <= TARGET_MS
    print(f"naive / full timeline: {summary['ratio']:.1f}x; both p95 under {TARGET_MS:g} ms: "
          f"{'yes' if verdict else 'NO'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
