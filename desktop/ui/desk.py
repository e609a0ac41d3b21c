"""What every screen shares: the workers, the open store, who is signed in, and one
"data changed" signal that screens refresh from (they never reach into each other)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Engine

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

    def __init__(self, *, tasks: Tasks, engine: Engine, session: Session, clock: HybridClock,
                 clinic: ClinicInfo) -> None:
        super().__init__()
        self.tasks = tasks
        self.engine = engine
        self.session = session
        self.clock = clock
        self.clinic = clinic

    def changed(self, *entities: str) -> None:
        self.data_changed.emit(frozenset(entities))
