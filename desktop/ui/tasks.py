"""Running database and network work off the GUI thread.

Two workers, as the store and the server are two different waits: one thread for the
local database (SQLite writes one at a time anyway, and one thread keeps them in order)
and one for the network (a slow server must not hold up a search in the local store).
Each job's result or error comes back on the GUI thread through a signal, to the
callbacks the screen gave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from desktop.ui.qt import QObject, QRunnable, Qt, QThreadPool, Signal, Slot

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class _Relay(QObject):
    """Lives on the GUI thread. A worker emits its signals; Qt queues them to this
    object's own slots, which run on the GUI thread and call the screen's callbacks."""

    done = Signal(object)
    failed = Signal(object)

    def __init__(self, on_done: Done, on_error: Failed) -> None:
        super().__init__()
        self._on_done = on_done
        self._on_error = on_error
        self.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self.failed.connect(self._report, Qt.ConnectionType.QueuedConnection)

    @Slot(object)
    def _deliver(self, result: object) -> None:
        self._on_done(result)

    @Slot(object)
    def _report(self, exc: object) -> None:
        assert isinstance(exc, BaseException)
        self._on_error(exc)


class _Job(QRunnable):
    def __init__(self, work: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.work = work
        self.relay = relay
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.work()
        except BaseException as exc:  # every failure goes back to the screen
            self._send(self.relay.failed, exc)
            return
        self._send(self.relay.done, result)

    @staticmethod
    def _send(signal: Any, value: object) -> None:
        # RuntimeError: the screen that asked was closed meanwhile; nobody to tell.
        with contextlib.suppress(RuntimeError):
            signal.emit(value)


class Worker:
    """One thread that runs jobs in the order they were given."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pool = QThreadPool()
        self.pool.setMaxThreadCount(1)
        self._pending: set[_Relay] = set()

    def run(self, work: Callable[[], Any], *, on_done: Done | None = None,
            on_error: Failed | None = None, owner: QObject | None = None) -> None:
        """Run `work` here; its answer goes to `on_done` / `on_error` on the GUI thread,
        unless `owner` (the screen that asked) has been closed by then."""
        def finished(result: Any) -> None:
            self._pending.discard(relay)
            if on_done is not None:
                on_done(result)

        def failed(exc: BaseException) -> None:
            self._pending.discard(relay)
            if on_error is None:
                raise exc
            on_error(exc)

        relay = _Relay(finished, failed)
        if owner is not None:
            relay.setParent(owner)  # destroyed with it: a late answer is dropped
            relay.destroyed.connect(lambda: self._pending.discard(relay))
        self._pending.add(relay)  # kept alive until its answer has been delivered
        self.pool.start(_Job(work, relay))

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def wait(self, msecs: int = 30_000) -> bool:
        return bool(self.pool.waitForDone(msecs))


class Tasks:
    """The app's two workers."""

    def __init__(self) -> None:
        self.db = Worker("database")
        self.net = Worker("network")

    def wait(self, msecs: int = 30_000) -> bool:
        return self.db.wait(msecs) and self.net.wait(msecs)
