"""Which thread may do I/O: never the GUI thread.

The Qt screens hand every database and network call to a worker (`desktop.ui.tasks`).
The store and the sync client call `check_not_gui_thread` at their entry points, so a
call that slips onto the GUI thread fails loudly in tests and in development instead of
freezing a receptionist's screen. Without a GUI (scripts, the sync engine's own tests)
no thread is marked and the check passes.
"""

from __future__ import annotations

import threading


class GuiThreadIOError(RuntimeError):
    """Disk or network work was started on the GUI thread."""


_gui_thread: threading.Thread | None = None
violations: list[str] = []  # what was refused, for tests to assert on


def mark_gui_thread(thread: threading.Thread | None) -> None:
    """Declare `thread` the GUI thread (None: no GUI in this process)."""
    global _gui_thread  # one GUI thread per process, set at start-up
    _gui_thread = thread


def check_not_gui_thread(what: str) -> None:
    if _gui_thread is not None and threading.current_thread() is _gui_thread:
        violations.append(what)
        raise GuiThreadIOError(f"{what} was called on the GUI thread; run it on a worker.")
