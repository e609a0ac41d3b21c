"""Password hashing (argon2id) and the JWTs the server issues."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared_models.enums import Role
from sync_server.core.errors import NotAuthenticated

JWT_ALGORITHM = "HS256"
JWT_ISSUER = "consulta"
TokenType = Literal["access", "refresh"]

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Checked against when the account does not exist, so a miss costs as much as a hit.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: uuid.UUID
    clinic_id: uuid.UUID
    role: Role
    token_id: uuid.UUID
    family_id: uuid.UUID | None
    device_id: uuid.UUID | None
    expires_at: datetime


def encode_token(
    *,
    key: str,
    kind: TokenType,
    user_id: uuid.UUID,
    clinic_id: uuid.UUID,
    role: Role,
    token_id: uuid.UUID,
    lifetime: timedelta,
    now: datetime,
    family_id: uuid.UUID | None = None,
    device_id: uuid.UUID | None = None,
) -> str:
    payload: dict[str, Any] = {
        "iss": JWT_ISSUER,
        "typ": kind,
        "sub": str(user_id),
        "cid": str(clinic_id),
        "role": role.value,
        "jti": str(token_id),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    if family_id is not None:
        payload["fam"] = str(family_id)
    if device_id is not None:
        payload["dev"] = str(device_id)
    return jwt.encode(payload, key, algorithm=JWT_ALGORITHM)


def decode_token(token: str, *, key: str, kind: TokenType) -> TokenClaims:
    """Verify signature, expiry, issuer and type; any failure is a `NotAuthenticated`."""
    try:
        payload = jwt.decode(
            token,
            key,
            algorithms=[JWT_ALGORITHM],
            issuer=JWT_ISSUER,
            options={"require": ["exp", "iat", "sub", "cid", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated(
            "Your session has expired. Sign in again or refresh the token.",
            code="token_expired",
        ) from exc
    except jwt.PyJWTError as exc:
        raise NotAuthenticated(
            "The token is not valid. Sign in again.", code="token_invalid"
        ) from exc
    if payload.get("typ") != kind:
        raise NotAuthenticated(
            f"This is a {payload.get('typ')} token; this call needs the {kind} token.",
            code="token_wrong_type",
        )
    try:
        return TokenClaims(
            user_id=uuid.UUID(payload["sub"]),
            clinic_id=uuid.UUID(payload["cid"]),
            role=Role(payload["role"]),
            token_id=uuid.UUID(payload["jti"]),
            family_id=uuid.UUID(payload["fam"]) if "fam" in payload else None,
            device_id=uuid.UUID(payload["dev"]) if "dev" in payload else None,
            expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        )
    except (KeyError, ValueError) as exc:
        raise NotAuthenticated(
            "The token is not valid. Sign in again.", code="token_invalid"
        ) from exc
