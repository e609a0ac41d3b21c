"""What every screen shares: the workers, the open store, who is signed in, the way to
the server for what only it knows, and one "data changed" signal that screens refresh
from (they never reach into each other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from desktop.server_link import ServerLink
from desktop.session import Session
from desktop.ui.qt import QObject, Signal
from desktop.ui.tasks import Tasks
from shared_models.clock import HybridClock

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class ClinicInfo:
    """The clinic settings screens need offline: its zone for times, its country for
    phone numbers typed without a '+'."""

    name: str
    timezone: ZoneInfo
    country: str


class Desk(QObject):
    data_changed = Signal(object)  # the entity names that changed, e.g. {"patient"}
    # A sync with the server just finished: what only the server keeps (failed reminders)
    # may have changed even when no record came down.
    synced = Signal()

    def __init__(self, *, tasks: Tasks, engine: Engine, session: Session, clock: HybridClock,
                 clinic: ClinicInfo, server: ServerLink | None = None) -> None:
        super().__init__()
        self.tasks = tasks
        self.engine = engine
        self.session = session
        self.clock = clock
        self.clinic = clinic
        # None: a desk with no server at all (screens that need one say so or stay away).
        self.server = server

    def changed(self, *entities: str) -> None:
        self.data_changed.emit(frozenset(entities))
