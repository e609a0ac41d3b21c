"""How fast a doctor's computer opens a long chart from its encrypted local store.

A real SQLCipher store in a temporary folder holds two patients with a long history each
(200 notes, some with addenda, 100 prescriptions with 1-3 items each and 50 lab orders
with results, some out of range), beside 2,000 other patients with a few notes each.

The screen: the chart itself (`desktop.ui.chart.ChartView`, 1280x800, offscreen Qt) on a
desk with the app's real workers. Each run opens the other long chart than the run before
(so nothing is reused between opens), after a warm-up, and measures from asking the view
to open the patient until

- first paint: the first rows of the timeline and the allergy banner have been painted;
- full timeline: every entry is in the timeline and has been painted.

The data under it, over DATA_RUNS runs each after a warm-up, on the first long chart:

- first paint: `load_summary` plus the rows the chart shows first (the title and status
  of the first 20 entries);
- full timeline: `load_timeline`, every entry with its addenda, items or results;
- the naive timeline: the same entries with one SELECT per entry for its children
  (N+1 statements), the baseline the ratio is measured against.

Runs with no arguments and prints one JSON object as its last line: `first_paint_ms` and
`full_timeline_ms` are the screen's medians (their p95 beside them), the data figures are
under `data_first_paint_ms`, `data_full_timeline_ms`, `naive_timeline_ms` and `ratio`.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# Before Qt is imported: the chart is drawn into memory, with no display needed.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

from sqlalchemy import Engine, event, select

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python benchmarks/chart.py
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.chart_data import (  # noqa: E402 - needs the repository root on sys.path
    ChartFill,
    fill_chart,
    fill_other_patients,
)
from desktop import threads  # noqa: E402
from desktop.operations.chart import (  # noqa: E402
    FIRST_PAINT_ENTRIES,
    load_summary,
    load_timeline,
)
from desktop.session import Session  # noqa: E402
from desktop.store.database import KEY_BYTES, open_store  # noqa: E402
from desktop.ui import i18n  # noqa: E402
from desktop.ui.chart import ChartView  # noqa: E402
from desktop.ui.desk import ClinicInfo, Desk  # noqa: E402
from desktop.ui.qt import QApplication, QEvent, QObject, QtCore, QTimer  # noqa: E402
from desktop.ui.tasks import Tasks  # noqa: E402
from shared_models.clock import HybridClock  # noqa: E402
from shared_models.ids import uuid7  # noqa: E402
from shared_models.tables import (  # noqa: E402
    clinical_note,
    lab_order,
    lab_result,
    prescription,
    prescription_item,
)

DATA_RUNS = 30
WARMUP = 3
SCREEN_RUNS = 20
SCREEN_WARMUP = 2
OTHER_PATIENTS = 2000
TARGET_MS = 150.0
WINDOW = (1280, 800)
# Longest wait for one step of opening a chart before the run is declared stuck.
STEP_TIMEOUT_MS = 10_000
CLINIC = ClinicInfo(name="Clínica Andes", timezone=ZoneInfo("America/Santiago"), country="CL")
# The offscreen platform says this of every window it shows; it is not about the chart.
QUIET_WARNINGS = ("This plugin does not support propagateSizeHints()",)


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
    for _ in range(DATA_RUNS):
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


@dataclass
class DataTimes:
    """The data functions alone, on the first long chart (ms per run)."""

    paint: list[float]
    full: list[float]
    naive: list[float]
    statements: dict[str, int]


def measure_data(engine: Engine, patient_id: uuid.UUID, viewer: uuid.UUID) -> DataTimes:
    return DataTimes(
        paint=_timed(lambda: first_paint(engine, patient_id, viewer)),
        full=_timed(lambda: load_timeline(engine, patient_id, viewer_id=viewer)),
        naive=_timed(lambda: naive_timeline(engine, patient_id, viewer)),
        statements={
            "first_paint": _statements(engine, lambda: first_paint(engine, patient_id,
                                                                   viewer)),
            "full_timeline": _statements(engine, lambda: load_timeline(
                engine, patient_id, viewer_id=viewer)),
            "naive_timeline": _statements(engine, lambda: naive_timeline(
                engine, patient_id, viewer)),
        })


# --- the screen ---------------------------------------------------------------------------


@dataclass
class ScreenTimes:
    """Opening a chart on screen (ms from `open_patient`, per run)."""

    first_paint: list[float] = field(default_factory=list)
    full_timeline: list[float] = field(default_factory=list)
    # When the rows were in the tree (the chart's `loaded` / `timeline_loaded`), before
    # the paint that shows them.
    first_rows: list[float] = field(default_factory=list)
    all_rows: list[float] = field(default_factory=list)
    workers_stopped: bool = False


class _PaintWatch(QObject):
    """Sees the timeline and the allergy banner being painted, and notes which paints
    showed what a run waits for: the first rows with the banner, then every entry."""

    def __init__(self, chart: ChartView) -> None:
        super().__init__()
        self.chart = chart
        self.viewport = chart.timeline.viewport()
        self.expected = 0
        self.rows_painted = self.banner_painted = self.all_painted = False
        self.loop: QtCore.QEventLoop | None = None
        self.until: Callable[[], bool] = lambda: True
        self.viewport.installEventFilter(self)
        chart.banner.installEventFilter(self)

    def reset(self, expected: int) -> None:
        self.expected = expected
        self.rows_painted = self.banner_painted = self.all_painted = False

    def first_painted(self) -> bool:
        return self.rows_painted and self.banner_painted

    def eventFilter(self, watched: QObject, ev: QEvent) -> bool:
        if ev.type() == QEvent.Type.Paint:
            chart = self.chart
            if watched is self.viewport:
                rows = chart.timeline.topLevelItemCount()
                self.rows_painted = self.rows_painted or rows > 0
                self.all_painted = self.all_painted or (chart.complete
                                                        and rows == self.expected)
            elif watched is chart.banner and chart.banner.text():
                self.banner_painted = True
            if self.loop is not None and self.until():
                # The loop ends once this paint (and the rest of the window's) is done.
                self.loop.quit()
        return False  # the widget paints as it always does

    def wait(self, until: Callable[[], bool]) -> None:
        """Run the event loop until `until()` holds after a paint."""
        if until():
            return
        loop = QtCore.QEventLoop()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        self.loop, self.until = loop, until
        timer.start(STEP_TIMEOUT_MS)
        try:
            loop.exec()
        finally:
            timer.stop()
            self.loop = None
        if not until():
            raise RuntimeError(f"the chart was not painted within {STEP_TIMEOUT_MS} ms; it "
                               f"shows {self.chart.name.text()!r}")


def _quiet(_mode: object, _context: object, message: str) -> None:
    if message not in QUIET_WARNINGS:
        print(message, file=sys.stderr)


def _settle(app: QApplication, tasks: Tasks) -> None:
    """Let every job finish and every answer and paint be delivered (between runs)."""
    deadline = time.perf_counter() + STEP_TIMEOUT_MS / 1000
    while (tasks.db.busy or tasks.net.busy) and time.perf_counter() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.001)
    for _ in range(3):
        app.processEvents()


def measure_screen(engine: Engine, clinic_id: uuid.UUID, viewer: uuid.UUID,
                   charts: Sequence[tuple[uuid.UUID, int]]) -> ScreenTimes:
    """Open the long charts (patient id, entries) in turn on a ChartView, as the doctor
    `viewer` on a desk with the app's workers, and time each open."""
    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    QtCore.qInstallMessageHandler(_quiet)
    i18n.set_language("en")
    tasks = Tasks()
    session = Session(email="doctor@andes.cl", user_id=viewer, clinic_id=clinic_id,
                      role="doctor", online=False)
    desk = Desk(tasks=tasks, engine=engine, session=session,
                clock=HybridClock("chartbenchmark"), clinic=CLINIC)
    # As in the app: a store query on the GUI thread would fail instead of being timed.
    threads.violations.clear()
    threads.mark_gui_thread(threading.current_thread())
    chart = ChartView(desk)
    times = ScreenTimes()
    marks: dict[str, float] = {}
    chart.loaded.connect(lambda: marks.setdefault("loaded", time.perf_counter()))
    chart.timeline_loaded.connect(
        lambda: marks.setdefault("timeline_loaded", time.perf_counter()))
    try:
        chart.resize(*WINDOW)
        chart.show()
        _settle(app, tasks)
        watch = _PaintWatch(chart)
        for run in range(SCREEN_WARMUP + SCREEN_RUNS):
            patient_id, entries = charts[run % len(charts)]  # never the one already open
            watch.reset(entries)
            marks.clear()
            start = time.perf_counter()
            chart.open_patient(patient_id)
            watch.wait(watch.first_painted)
            painted = time.perf_counter()
            watch.wait(lambda: watch.all_painted)
            done = time.perf_counter()
            if chart.timeline.topLevelItemCount() != entries:
                raise RuntimeError(f"the timeline shows {chart.timeline.topLevelItemCount()} "
                                   f"entries, not {entries}")
            if run >= SCREEN_WARMUP:
                times.first_paint.append((painted - start) * 1000)
                times.full_timeline.append((done - start) * 1000)
                times.first_rows.append((marks["loaded"] - start) * 1000)
                times.all_rows.append((marks["timeline_loaded"] - start) * 1000)
            _settle(app, tasks)
    finally:
        chart.close()
        # Shut the workers down as the app does when it quits, then let the chart go.
        times.workers_stopped = tasks.wait(STEP_TIMEOUT_MS) and not (
            tasks.db.pool.activeThreadCount() or tasks.net.pool.activeThreadCount())
        app.processEvents()
        chart.deleteLater()
        QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        threads.mark_gui_thread(None)
        QtCore.qInstallMessageHandler(None)
    if threads.violations:
        raise RuntimeError(f"store work on the GUI thread: {threads.violations}")
    return times


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="consulta-chart-") as folder:
        engine = open_store(Path(folder) / "local.db", os.urandom(KEY_BYTES))
        try:
            clinic_id = uuid7()
            started = time.perf_counter()
            fill: ChartFill = fill_chart(engine, clinic_id, uuid7())
            viewer = fill.doctor_id
            other: ChartFill = fill_chart(engine, clinic_id, uuid7(), doctor_id=viewer,
                                          seed=80)
            fill_other_patients(engine, clinic_id, count=OTHER_PATIENTS)
            filled_s = time.perf_counter() - started
            data = measure_data(engine, fill.patient_id, viewer)
            charts = [(f.patient_id, len(load_timeline(engine, f.patient_id, viewer_id=viewer)))
                      for f in (fill, other)]
            screen = measure_screen(engine, clinic_id, viewer, charts)
        finally:
            engine.dispose()
    _report((fill, other), filled_s, charts[0][1], data, screen)


def _ms(times: list[float]) -> float:
    return round(statistics.median(times), 2)


def _report(fills: Sequence[ChartFill], filled_s: float, entries: int, data: DataTimes,
            screen: ScreenTimes) -> None:
    summary = {
        "first_paint_ms": _ms(screen.first_paint),
        "first_paint_p95_ms": round(_p95(screen.first_paint), 2),
        "full_timeline_ms": _ms(screen.full_timeline),
        "full_timeline_p95_ms": round(_p95(screen.full_timeline), 2),
        "screen_first_paint_ms": _ms(screen.first_paint),
        "screen_first_paint_p95_ms": round(_p95(screen.first_paint), 2),
        "screen_full_timeline_ms": _ms(screen.full_timeline),
        "screen_full_timeline_p95_ms": round(_p95(screen.full_timeline), 2),
        "data_first_paint_ms": _ms(data.paint),
        "data_first_paint_p95_ms": round(_p95(data.paint), 2),
        "data_full_timeline_ms": _ms(data.full),
        "data_full_timeline_p95_ms": round(_p95(data.full), 2),
        "naive_timeline_ms": _ms(data.naive),
        "naive_timeline_p95_ms": round(_p95(data.naive), 2),
        "ratio": round(statistics.median(data.naive) / statistics.median(data.full), 2),
        "entries": entries,
        "statements": data.statements,
        "screen_runs": SCREEN_RUNS,
        "data_runs": DATA_RUNS,
        "window": f"{WINDOW[0]}x{WINDOW[1]}",
        "target_ms": TARGET_MS,
    }
    print("Consulta chart on a SQLCipher store: two long charts beside "
          f"{OTHER_PATIENTS:,} other patients; filled in {filled_s:.1f} s")
    for fill in fills:
        print(f"  {fill.notes} notes ({fill.addenda} addenda), {fill.prescriptions} "
              f"prescriptions ({fill.items} items), {fill.labs} lab orders "
              f"({fill.results} results)")
    print(f"Screen: ChartView at {summary['window']} (offscreen Qt, the app's workers), "
          f"{SCREEN_RUNS} opens after {SCREEN_WARMUP} warm-up opens, switching between "
          "the two charts")
    print(f"  {'':<44}{'median ms':>10}{'p95 ms':>9}")
    for label, times in (
            ("first paint (20 rows + allergy banner)", screen.first_paint),
            (f"full timeline ({entries} entries painted)", screen.full_timeline),
            ("  rows in the tree, before painting", screen.first_rows),
            ("  all entries in the tree, before painting", screen.all_rows)):
        print(f"  {label:<44}{statistics.median(times):>10.1f}{_p95(times):>9.1f}")
    print(f"  workers shut down afterwards: {'yes' if screen.workers_stopped else 'NO'}")
    print(f"Data: {DATA_RUNS} runs each after {WARMUP} warm-up runs, on the first chart")
    print(f"  {'':<44}{'median ms':>10}{'p95 ms':>9}{'statements':>12}")
    for label, key, times in (("first paint (summary + 20 rows)", "first_paint", data.paint),
                              ("full timeline", "full_timeline", data.full),
                              ("naive timeline (N+1)", "naive_timeline", data.naive)):
        print(f"  {label:<44}{statistics.median(times):>10.1f}{_p95(times):>9.1f}"
              f"{data.statements[key]:>12}")
    print(f"naive / full timeline (data): {summary['ratio']:.1f}x")
    for label, key in (("median", "ms"), ("p95", "p95_ms")):
        ok = max(summary[f"first_paint_{key}"], summary[f"full_timeline_{key}"]) <= TARGET_MS
        print(f"screen first paint and full timeline, {label} under {TARGET_MS:g} ms: "
              f"{'yes' if ok else 'NO'}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
