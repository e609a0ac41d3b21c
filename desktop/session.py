"""Signing in on this computer: online against the server (with the device's own
credentials), or offline against the verifier cached at the last online sign-in."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, insert, select

from desktop.store.local import login_cache
from desktop.sync.errors import SyncAuthError, SyncNetworkError
from desktop.threads import check_not_gui_thread

# An account that has not signed in online for this long must do so again (so a
# deactivated account cannot keep working offline indefinitely).
OFFLINE_LOGIN_MAX_AGE = timedelta(days=14)
_hasher = PasswordHasher()


class OfflineLoginError(Exception):
    """The message says what to do."""


@dataclass(frozen=True)
class Session:
    email: str
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: str
    online: bool
    tokens: dict[str, Any] | None = None


def _claims(access_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims


def sign_in_online(engine: Engine, http: httpx.Client, *, email: str, password: str,
                   device_id: uuid.UUID, device_secret: str) -> Session:
    check_not_gui_thread("signing in online")
    try:
        response = http.post("/api/v1/auth/token", data={
            "username": email, "password": password, "client_id": str(device_id),
            "client_secret": device_secret})
    except httpx.TransportError as exc:
        raise SyncNetworkError("The server cannot be reached; sign in offline.") from exc
    if response.status_code != 200:
        raise SyncAuthError(response.json().get("error", {}).get("message", "Sign-in failed."))
    tokens: dict[str, Any] = response.json()
    # The token was just issued to us over TLS by the server; it is read, not trusted.
    claims = _claims(tokens["access_token"])
    email = email.strip().lower()
    with engine.begin() as conn:
        conn.execute(delete(login_cache).where(login_cache.c.email == email))
        conn.execute(insert(login_cache).values(
            email=email, user_id=uuid.UUID(claims["sub"]), clinic_id=uuid.UUID(claims["cid"]),
            role=claims["role"], verifier=_hasher.hash(password),
            verified_online_at=datetime.now(UTC)))
    return Session(email, uuid.UUID(claims["sub"]), uuid.UUID(claims["cid"]), claims["role"],
                   online=True, tokens=tokens)


def sign_in_offline(engine: Engine, *, email: str, password: str,
                    now: datetime | None = None) -> Session:
    email = email.strip().lower()
    with engine.connect() as conn:
        row = conn.execute(select(login_cache).where(login_cache.c.email == email)).first()
    if row is None:
        raise OfflineLoginError("This account has not signed in on this computer yet. "
                                "Connect to the clinic's network and sign in once.")
    try:
        _hasher.verify(row.verifier, password)
    except (VerificationError, InvalidHashError) as exc:
        raise OfflineLoginError("The e-mail or password is wrong.") from exc
    if (now or datetime.now(UTC)) - row.verified_online_at > OFFLINE_LOGIN_MAX_AGE:
        raise OfflineLoginError(
            f"This account has not signed in online for over {OFFLINE_LOGIN_MAX_AGE.days} "
            "days. Connect to the clinic's network and sign in once.")
    return Session(email, row.user_id, row.clinic_id, row.role, online=False)
