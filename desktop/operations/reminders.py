"""Reminders as the front desk reads them: what was sent about one appointment, the
messages that failed for good, and sending one again. Reminders live on the server only,
so each call is one request through the signed-in person's ServerLink, made on the
network worker; offline they raise SyncNetworkError."""

from __future__ import annotations

import uuid
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from desktop.sync.errors import SyncProtocolError
from shared_models.schemas.reminders import (
    DeadLetter,
    DeadLetters,
    ReminderPublic,
    RemindersPublic,
)

# As many failed messages as a person can work through on one screen.
DEAD_LETTER_LIMIT = 100

M = TypeVar("M", bound=BaseModel)


class Server(Protocol):
    """What these calls need of desktop.server_link.ServerLink."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


def _read(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SyncProtocolError("The server's answer about reminders could not be read; "
                                "this computer may need an update.") from exc


def appointment_reminders(server: Server, appointment_id: uuid.UUID) -> list[ReminderPublic]:
    """Every message about the appointment, oldest first, with each try."""
    body = server.request("GET", f"/api/v1/appointments/{appointment_id}/reminders")
    return _read(RemindersPublic, body).data


def dead_letters(server: Server, *, limit: int = DEAD_LETTER_LIMIT) -> list[DeadLetter]:
    """Messages that failed after every attempt, newest failure first."""
    body = server.request("GET", "/api/v1/reminders/dead-letters", params={"limit": limit})
    return _read(DeadLetters, body).data


def retry(server: Server, reminder_id: uuid.UUID) -> ReminderPublic:
    """Queue a failed message again, due now; RequestRefused (409) says why it cannot."""
    return _read(ReminderPublic, server.request("POST", f"/api/v1/reminders/{reminder_id}/retry"))
