"""A prescriber's signing key on this computer, and the step-up that opens it.

The ECDSA P-256 key is made here and its private half never leaves this computer, nor
touches the disk unwrapped: it is kept AES-256-GCM encrypted under a key derived with
Argon2id from the prescriber's password and their TOTP secret, so opening it takes the
password and a current code from their authenticator app. An opened key lives only in a
`Signer`, in memory, for UNLOCK_MINUTES; then the prescriber steps up again.

    SigningError        a message a doctor can act on (shown in a dialog)
    ├── WrongUnlock     the password or the code is wrong (or the code was used already)
    └── UnlockLocked    too many wrong tries; `until` says when unlocking opens again

No password, code, secret or key material appears in a message or a log line.
"""

from __future__ import annotations

import hmac
import os
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NoReturn, cast

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Row, delete, insert, or_, select, update

from desktop.store.local import login_cache, signing_identity
from shared_models import signing
from shared_models.ids import uuid7
from shared_models.schemas.signing_keys import SigningKeyRegister
from shared_models.tables import signing_key

UNLOCK_MINUTES = 5
MAX_WRONG_UNLOCKS = 5
LOCKOUT_MINUTES = 5
# Argon2id costs: a fraction of a second and 64 MiB per guess, which is what makes
# guessing passwords against a copied store slow. Kept with each wrap (kdf_params).
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 64 * 1024
ARGON2_PARALLELISM = 1
SALT_BYTES = 16
NONCE_BYTES = 12
TOTP_ISSUER = "Consulta"
# One step either side of now: an authenticator app a little out of step still works.
TOTP_WINDOW = 1
_WRAP_LABEL = b"consulta-signing-key-wrap/v1"

ServerStatus = Literal["unregistered", "pending", "active", "revoked"]
_SERVER_STATUSES = frozenset({"unregistered", "pending", "active", "revoked"})
_hasher = PasswordHasher()


class SigningError(Exception):
    """The key cannot be used or made as asked; the message says what to do."""


class WrongUnlock(SigningError):
    pass


class UnlockLocked(SigningError):
    def __init__(self, until: datetime) -> None:
        super().__init__(
            f"Too many wrong tries: unlocking your prescribing key is blocked until "
            f"{until.astimezone().strftime('%H:%M')}. Try again then.")
        self.until = until


@dataclass(frozen=True)
class KeyInfo:
    key_id: uuid.UUID
    fingerprint: str
    server_status: ServerStatus
    created_at: datetime
    # False until a first code from the authenticator app has been checked.
    confirmed: bool = False


@dataclass(frozen=True)
class Enrolment:
    """What the prescriber sees once, when the key is made: the TOTP secret for their
    authenticator app (as a QR-able otpauth:// URI and as text to type)."""

    key_id: uuid.UUID
    fingerprint: str
    totp_uri: str
    totp_secret: str


class Signer:
    """An opened private key, in memory only, good for UNLOCK_MINUTES.

    `forget()` drops it at once (screen lock, sign-out). Python cannot wipe the bytes it
    held; dropping the only reference is what this process can do."""

    def __init__(self, *, key_id: uuid.UUID, user_id: uuid.UUID, public_key: str,
                 private_key: ec.EllipticCurvePrivateKey, expires_at: datetime) -> None:
        self.key_id = key_id
        self.user_id = user_id
        self.public_key = public_key
        self.expires_at = expires_at
        self._key: ec.EllipticCurvePrivateKey | None = private_key

    def expired(self, now: datetime | None = None) -> bool:
        return self._key is None or (now or datetime.now(UTC)) >= self.expires_at

    def sign(self, payload: bytes) -> str:
        """ECDSA P-256 signature of `payload`, base64 (shared_models.signing.sign)."""
        if self._key is None or self.expired():
            raise SigningError("Your prescribing key was locked again after "
                               f"{UNLOCK_MINUTES} minutes. Unlock it with your password and "
                               "a new code to sign.")
        return signing.sign(self._key, payload)

    def forget(self) -> None:
        self._key = None

    def __repr__(self) -> str:
        return f"Signer(key_id={self.key_id}, expires_at={self.expires_at.isoformat()})"


# --- the wrap ---------------------------------------------------------------------------


def _kdf_params() -> dict[str, int]:
    return {"t": ARGON2_TIME_COST, "m": ARGON2_MEMORY_KIB, "p": ARGON2_PARALLELISM}


def _wrapping_key(password: str, totp_secret: str, salt: bytes, params: dict[str, Any]
                  ) -> bytes:
    # Length-prefixed, so no password/secret pair can be confused with another.
    pw = password.encode()
    factors = struct.pack(">I", len(pw)) + pw + totp_secret.encode()
    return hash_secret_raw(secret=factors, salt=salt, time_cost=int(params["t"]),
                           memory_cost=int(params["m"]), parallelism=int(params["p"]),
                           hash_len=32, type=Type.ID)


def _associated(key_id: uuid.UUID, user_id: uuid.UUID) -> bytes:
    """What the wrap is bound to: a blob copied to another key or person does not open."""
    return _WRAP_LABEL + key_id.bytes + user_id.bytes


# --- the stored identity ----------------------------------------------------------------


def _identity(conn: Connection, user_id: uuid.UUID) -> Row[Any] | None:
    return conn.execute(select(signing_identity)
                        .where(signing_identity.c.user_id == user_id)).first()


def _server_status(conn: Connection, row: Row[Any]) -> ServerStatus:
    """The synced signing_key row's status once it has been pulled (the server's latest
    word), else what the registration answer said."""
    synced = conn.execute(select(signing_key.c.status).where(
        signing_key.c.id == row.key_id, signing_key.c.deleted_at.is_(None))).scalar_one_or_none()
    status = synced or row.server_status
    return cast(ServerStatus, status) if status in _SERVER_STATUSES else "unregistered"


def key_info(engine: Engine, user_id: uuid.UUID) -> KeyInfo | None:
    """This person's key on this computer, or None when they have none here."""
    with engine.connect() as conn:
        row = _identity(conn, user_id)
        if row is None:
            return None
        return KeyInfo(key_id=row.key_id, fingerprint=row.fingerprint,
                       server_status=_server_status(conn, row), created_at=row.created_at,
                       confirmed=row.state == "confirmed")


def _check_password(conn: Connection, *, email: str, user_id: uuid.UUID, password: str
                    ) -> None:
    """The key is protected by the password the person signs in with; a typing mistake
    here would make a key nobody can open, so it is compared with the sign-in verifier
    when this computer has one."""
    cached = conn.execute(select(login_cache).where(
        login_cache.c.email == email.strip().lower())).first()
    if cached is None or cached.user_id != user_id:
        return
    try:
        _hasher.verify(cached.verifier, password)
    except (VerificationError, InvalidHashError):
        raise SigningError("That is not the password you sign in with. Your prescribing "
                           "key is protected by your sign-in password.") from None


def create_key(engine: Engine, *, clinic_id: uuid.UUID, user_id: uuid.UUID, email: str,
               password: str) -> Enrolment:
    """A new key for this person, wrapped under their password and a new TOTP secret.

    Replaces a key of theirs here that was never confirmed, never registered, or was
    revoked; refuses while one is pending approval or active (it must be revoked first,
    so a person has one usable key at a time)."""
    if not password:
        raise SigningError("Type your password: it protects the key.")
    with engine.connect() as conn:
        _check_password(conn, email=email, user_id=user_id, password=password)
    private_key = signing.generate_key()
    pem = signing.public_pem(private_key)
    key_id = uuid7()
    totp_secret = pyotp.random_base32()
    salt, nonce, params = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES), _kdf_params()
    wrapped = AESGCM(_wrapping_key(password, totp_secret, salt, params)).encrypt(
        nonce, signing.private_der(private_key), _associated(key_id, user_id))
    proof = signing.sign(private_key, signing.key_registration_payload(
        key_id=key_id, clinic_id=clinic_id, user_id=user_id, public_key=pem))
    del private_key
    with engine.begin() as conn:
        earlier = _identity(conn, user_id)
        if earlier is not None and earlier.state == "confirmed":
            status = _server_status(conn, earlier)
            if status in ("pending", "active"):
                waiting = "waiting for approval" if status == "pending" else "active"
                raise SigningError(
                    f"You already have a prescribing key on this computer ({waiting}). "
                    "Revoke it first (you or the clinic admin can), then make a new one.")
        conn.execute(delete(signing_identity).where(signing_identity.c.user_id == user_id))
        conn.execute(insert(signing_identity).values(
            user_id=user_id, clinic_id=clinic_id, key_id=key_id, public_key=pem,
            fingerprint=signing.fingerprint(pem), proof=proof, wrapped_key=wrapped,
            nonce=nonce, kdf_salt=salt, kdf_params=params, totp_secret=totp_secret,
            state="unconfirmed", server_status="unregistered", failed_unlocks=0,
            created_at=datetime.now(UTC)))
    uri = pyotp.TOTP(totp_secret).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)
    return Enrolment(key_id=key_id, fingerprint=signing.fingerprint(pem), totp_uri=uri,
                     totp_secret=totp_secret)


def _matching_step(totp_secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is, within TOTP_WINDOW of now; None if none."""
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(totp_secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _require(conn: Connection, user_id: uuid.UUID) -> Row[Any]:
    row = _identity(conn, user_id)
    if row is None:
        raise SigningError("You have no prescribing key on this computer yet; create one "
                           "(Prescribing key…).")
    return row


def confirm_key(engine: Engine, user_id: uuid.UUID, code: str) -> None:
    """Check a first code, which shows the authenticator app holds the secret."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        row = _require(conn, user_id)
        if row.state == "confirmed":
            return
        step = _matching_step(row.totp_secret, code, now)
        if step is None:
            raise SigningError("That code does not match. Check that you added the key shown "
                               "here to your authenticator app and that the phone's clock is "
                               "right, then type the code it shows now.")
        conn.execute(update(signing_identity).where(signing_identity.c.user_id == user_id)
                     .values(state="confirmed", last_totp_step=step))


def registration_body(engine: Engine, user_id: uuid.UUID) -> dict[str, Any]:
    """The body of POST /api/v1/signing-keys for this person's confirmed key."""
    with engine.connect() as conn:
        row = _require(conn, user_id)
    if row.state != "confirmed":
        raise SigningError("Confirm the key with a code from your authenticator app before "
                           "registering it.")
    body = SigningKeyRegister(id=row.key_id, public_key=row.public_key, proof=row.proof)
    return body.model_dump(mode="json")


def mark_registered(engine: Engine, user_id: uuid.UUID, server_status: str) -> None:
    """Keep what the server answered to the registration (normally "pending")."""
    if server_status not in _SERVER_STATUSES:
        raise ValueError(f"unknown key status {server_status!r}")
    with engine.begin() as conn:
        _require(conn, user_id)
        conn.execute(update(signing_identity).where(signing_identity.c.user_id == user_id)
                     .values(server_status=server_status))


# --- the step-up ------------------------------------------------------------------------


def _refuse(engine: Engine, user_id: uuid.UUID, now: datetime, message: str) -> NoReturn:
    """Count a wrong try and say so; at the limit, block unlocking for a while."""
    with engine.begin() as conn:
        failed = conn.execute(select(signing_identity.c.failed_unlocks).where(
            signing_identity.c.user_id == user_id)).scalar_one() + 1
        until = now + timedelta(minutes=LOCKOUT_MINUTES) if failed >= MAX_WRONG_UNLOCKS \
            else None
        conn.execute(update(signing_identity).where(signing_identity.c.user_id == user_id)
                     .values(failed_unlocks=0 if until else failed, locked_until=until))
    if until is not None:
        raise UnlockLocked(until)
    raise WrongUnlock(message)


_WRONG = "The password or the code is wrong."
_REUSED = "That code was used already. Wait for the next code in your authenticator app."


def unlock(engine: Engine, *, user_id: uuid.UUID, password: str, code: str,
           now: datetime | None = None) -> Signer:
    """Open this person's key with their password and a current code from their
    authenticator app. MAX_WRONG_UNLOCKS wrong tries in a row block it for
    LOCKOUT_MINUTES."""
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = _require(conn, user_id)
    if row.state != "confirmed":
        raise SigningError("Confirm your prescribing key with a code from your authenticator "
                           "app first.")
    if row.locked_until is not None and now < row.locked_until:
        raise UnlockLocked(row.locked_until)
    step = _matching_step(row.totp_secret, code, now)
    if step is None:
        _refuse(engine, user_id, now, _WRONG)
    if row.last_totp_step is not None and step <= row.last_totp_step:
        _refuse(engine, user_id, now, _REUSED)
    try:
        der = AESGCM(_wrapping_key(password, row.totp_secret, row.kdf_salt, row.kdf_params)
                     ).decrypt(row.nonce, row.wrapped_key, _associated(row.key_id, user_id))
    except InvalidTag:
        _refuse(engine, user_id, now, _WRONG)
    with engine.begin() as conn:
        # Claimed in one statement: of two unlocks racing with one code, one wins.
        claimed = conn.execute(update(signing_identity).where(
            signing_identity.c.user_id == user_id,
            or_(signing_identity.c.last_totp_step.is_(None),
                signing_identity.c.last_totp_step < step),
        ).values(failed_unlocks=0, locked_until=None, last_totp_step=step)).rowcount
    if not claimed:
        _refuse(engine, user_id, now, _REUSED)
    return Signer(key_id=row.key_id, user_id=user_id, public_key=row.public_key,
                  private_key=signing.load_private_der(der),
                  expires_at=now + timedelta(minutes=UNLOCK_MINUTES))
