"""What can go wrong while syncing, translated from httpx at the boundary.

    SyncError
    ├── SyncNetworkError   the server could not be reached (retried, then raised)
    ├── SyncAuthError      the session or the computer is no longer accepted
    └── SyncProtocolError  the server answered something this client cannot use
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every sync failure; the message is fit to show a person."""


class SyncNetworkError(SyncError):
    pass


class SyncAuthError(SyncError):
    pass


class SyncProtocolError(SyncError):
    pass
