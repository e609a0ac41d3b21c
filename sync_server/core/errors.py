"""The server's errors. Each carries a stable `code`, an HTTP status and a message a
person can act on; one handler turns them into one JSON shape:
`{"error": {"code": ..., "message": ..., "details": ...}}`.

    ConsultaError
    ├── BadRequest (400)
    │   └── InvalidInput (422)
    ├── NotAuthenticated (401)
    ├── PermissionDenied (403)
    ├── NotFound (404)
    ├── Conflict (409)
    ├── Gone (410)
    └── TooManyRequests (429)
"""

from __future__ import annotations

from typing import Any


class ConsultaError(Exception):
    code = "error"
    http_status = 400

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}
        self.headers: dict[str, str] = {}


class BadRequest(ConsultaError):
    code = "bad_request"
    http_status = 400


class InvalidInput(BadRequest):
    code = "invalid_input"
    http_status = 422


class NotAuthenticated(ConsultaError):
    code = "not_authenticated"
    http_status = 401

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers = {"WWW-Authenticate": "Bearer"}


class PermissionDenied(ConsultaError):
    code = "permission_denied"
    http_status = 403


class NotFound(ConsultaError):
    code = "not_found"
    http_status = 404


class Conflict(ConsultaError):
    code = "conflict"
    http_status = 409


class Gone(ConsultaError):
    """Something that existed and no longer may be used (an expired link)."""

    code = "gone"
    http_status = 410


class TooManyRequests(ConsultaError):
    code = "too_many_requests"
    http_status = 429

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after_seconds})
        self.headers = {"Retry-After": str(retry_after_seconds)}
