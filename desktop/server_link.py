"""This computer's way to the server for the signed-in person: their tokens (renewed
before they expire), the clinic settings cached for offline use, getting back online
after an offline sign-in, and the requests a screen waits on (what only the server knows,
such as how reminders went).

After an offline sign-in there are no tokens. The password stays in memory for that
session only (never on disk) so that, once the server answers again, the next sync can
sign in online by itself and send what was typed offline without asking anyone.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine, insert, select, update

from desktop.session import Session, sign_in_online
from desktop.store.local import sync_state
from desktop.sync.errors import (
    RequestRefused,
    SyncAuthError,
    SyncNetworkError,
    SyncProtocolError,
)
from desktop.threads import check_not_gui_thread

RENEW_BEFORE_S = 60  # renew the access token when it has less than this left
# A person is waiting on the answer: a server that does not answer in this time is
# treated as unreachable rather than left spinning.
REQUEST_TIMEOUT_S = 10.0
CLINIC_KEY = "clinic"


class ServerLink:
    def __init__(self, engine: Engine, http: httpx.Client, *, device_id: uuid.UUID,
                 device_secret: str, session: Session, password: str | None = None) -> None:
        self.engine = engine
        self.http = http
        self.device_id = device_id
        self.device_secret = device_secret
        self.session = session
        self._password = None if session.online else password
        self._tokens = dict(session.tokens) if session.tokens else None
        self._expires_at = time.monotonic() + float(self._tokens["expires_in"]) \
            if self._tokens else 0.0
        self._lock = threading.Lock()

    @property
    def online(self) -> bool:
        return self._tokens is not None

    def token(self) -> str:
        """A valid access token, renewed or obtained as needed (worker threads only)."""
        check_not_gui_thread("renewing the sign-in")
        with self._lock:
            if self._tokens is None:
                self._sign_in_again()
            elif time.monotonic() > self._expires_at - RENEW_BEFORE_S:
                self._renew()
            assert self._tokens is not None
            return str(self._tokens["access_token"])

    def _sign_in_again(self) -> None:
        if self._password is None:
            raise SyncAuthError("Sign in again to send your changes to the server.")
        fresh = sign_in_online(self.engine, self.http, email=self.session.email,
                               password=self._password, device_id=self.device_id,
                               device_secret=self.device_secret)
        self._password = None  # online now: the refresh token takes over
        self._keep(fresh.tokens or {})

    def _renew(self) -> None:
        assert self._tokens is not None
        try:
            response = self.http.post("/api/v1/auth/refresh",
                                      json={"refresh_token": self._tokens["refresh_token"]})
        except httpx.TransportError as exc:
            raise SyncNetworkError("The server cannot be reached.") from exc
        if response.status_code != 200:
            self._tokens = None
            raise SyncAuthError("Your session ended; sign in again.")
        self._keep(response.json())

    def _keep(self, tokens: dict[str, object]) -> None:
        self._tokens = dict(tokens)
        self._expires_at = time.monotonic() + float(str(tokens.get("expires_in", 0)))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request a screen is waiting on (worker threads only), tried once: its JSON
        answer, or the error a person can read (desktop.sync.errors); a refusal carries
        the server's own message and code."""
        check_not_gui_thread("a request to the server")
        token = self.token()
        try:
            response = self.http.request(method, path, timeout=REQUEST_TIMEOUT_S,
                                         headers={"Authorization": f"Bearer {token}"},
                                         **kwargs)
        except httpx.TransportError as exc:
            raise SyncNetworkError("The server cannot be reached.") from exc
        if response.status_code >= 500:
            raise SyncNetworkError("The server is having trouble; try again in a moment.")
        if response.status_code >= 400:
            error = _error_of(response)
            message = str(error.get("message") or f"The server answered "
                                                   f"{response.status_code}.")
            if response.status_code == 401:
                raise SyncAuthError(message)
            raise RequestRefused(message, status=response.status_code,
                                 code=str(error.get("code") or "refused"),
                                 details=error.get("details") or {})
        try:
            return response.json()
        except ValueError as exc:
            raise SyncProtocolError("The server's answer could not be read.") from exc

    def refresh_clinic(self) -> None:
        """Fetch the clinic's settings and keep them for offline use."""
        response = self.http.get("/api/v1/clinic",
                                 headers={"Authorization": f"Bearer {self.token()}"})
        if response.status_code == 200:
            save_clinic(self.engine, response.json())


def _error_of(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of the server's one error shape, or {} for any other body."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def save_clinic(engine: Engine, clinic: dict[str, object]) -> None:
    value = json.dumps({k: clinic[k] for k in ("id", "name", "timezone", "country")})
    with engine.begin() as conn:
        if conn.execute(update(sync_state).where(sync_state.c.key == CLINIC_KEY)
                        .values(value=value)).rowcount == 0:
            conn.execute(insert(sync_state).values(key=CLINIC_KEY, value=value))


def cached_clinic(engine: Engine) -> tuple[str, ZoneInfo, str] | None:
    """(name, zone, country) as last fetched, or None before the first online sign-in."""
    with engine.connect() as conn:
        raw = conn.execute(select(sync_state.c.value).where(sync_state.c.key == CLINIC_KEY)
                           ).scalar_one_or_none()
    if raw is None:
        return None
    clinic = json.loads(raw)
    return clinic["name"], ZoneInfo(clinic["timezone"]), clinic["country"]
