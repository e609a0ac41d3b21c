"""What can go wrong talking to the server (syncing, or a request a screen waits on),
translated from httpx at the boundary.

    SyncError
    ├── SyncNetworkError   the server could not be reached (retried, then raised)
    ├── SyncAuthError      the session or the computer is no longer accepted
    ├── SyncProtocolError  the server answered something this client cannot use
    └── RequestRefused     the server said no to a request (4xx), with its reason
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Base of every sync failure; the message is fit to show a person."""


class SyncNetworkError(SyncError):
    pass


class SyncAuthError(SyncError):
    pass


class SyncProtocolError(SyncError):
    pass


class RequestRefused(SyncError):
    """The server's answer to a request it would not do: the message is the server's own,
    `code` its machine-readable reason (e.g. `reminder_not_dead`)."""

    def __init__(self, message: str, *, status: int, code: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}
