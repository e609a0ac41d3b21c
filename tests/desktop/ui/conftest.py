"""Qt screens under test: offscreen, with a real SQLCipher store, the real workers, and
the GUI-thread guard on, so any disk or network call made on the GUI thread fails the
test that made it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest
from pytestqt.qtbot import QtBot

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from desktop import threads
from desktop.session import Session
from desktop.store.database import open_store
from desktop.ui import i18n
from desktop.ui.desk import ClinicInfo, Desk
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock
from shared_models.ids import uuid7

T = TypeVar("T")

SANTIAGO = ClinicInfo(name="Clínica Andes", timezone=ZoneInfo("America/Santiago"),
                      country="CL")


@contextmanager
def setup_io() -> Iterator[None]:
    """Disk work the test itself does on the main thread (seeding, start-up)."""
    threads.mark_gui_thread(None)
    try:
        yield
    finally:
        threads.mark_gui_thread(threading.main_thread())


def on_db_worker(qtbot: QtBot, desk: Desk, work: Callable[[], T]) -> T:
    """Run `work` on the store's worker, as a screen would, and wait for its answer."""
    answers: list[T] = []
    desk.tasks.db.run(work, on_done=answers.append)
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    return answers[0]


@pytest.fixture(autouse=True)
def gui_thread_guard() -> Iterator[None]:
    """Any store query or server request on the GUI thread during a test fails it."""
    threads.violations.clear()
    threads.mark_gui_thread(threading.main_thread())
    yield
    threads.mark_gui_thread(None)
    assert threads.violations == [], f"I/O on the GUI thread: {threads.violations}"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    i18n.set_language("en")
    yield
    i18n.set_language("en")


@pytest.fixture
def tasks(qapp: object) -> Iterator[Tasks]:
    workers = Tasks()
    yield workers
    assert workers.wait(10_000)


@pytest.fixture
def desk(tmp_path: Path, tasks: Tasks) -> Iterator[Desk]:
    with setup_io():  # opening the store is start-up work, before the GUI
        engine = open_store(tmp_path / "desk.db", os.urandom(32))
    session = Session(email="recepcion@andes.cl", user_id=uuid7(), clinic_id=uuid7(),
                      role="receptionist", online=False)
    yield Desk(tasks=tasks, engine=engine, session=session, clock=HybridClock("desk"),
               clinic=SANTIAGO)
    tasks.wait(10_000)
    engine.dispose()
