"""Short signed values for the booking page: manage links, anti-forgery form tokens and
keyed hashes of phone numbers.

Each purpose has its own key, derived from the server's secret with HMAC-SHA256 and a
purpose label, so a value made for one purpose never verifies as another and the JWT key
itself never signs anything but JWTs. Signatures are compared with `hmac.compare_digest`.

    ManageLinkError (a ConsultaError)
    ├── InvalidManageLink (403): malformed, tampered, or for another clinic
    └── ExpiredManageLink (410): genuine, but past its expiry
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sync_server.core.config import Settings
from sync_server.core.errors import Gone, PermissionDenied

MANAGE_LINK_PURPOSE = "manage-link/v1"
FORM_PURPOSE = "booking-form/v1"
PHONE_PURPOSE = "booking-phone/v1"
ADDRESS_PURPOSE = "booking-address/v1"

_MANAGE_VERSION = 1
# version, clinic id, appointment id, expiry (Unix seconds)
_MANAGE_LAYOUT = struct.Struct(">B16s16sQ")
# 128 bits of HMAC-SHA256: far beyond guessing, and keeps the link short enough to type.
_MAC_BYTES = 16


def derived_key(settings: Settings, purpose: str) -> bytes:
    return hmac.new(settings.signing_key().encode(), f"consulta:{purpose}".encode(),
                    hashlib.sha256).digest()


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def keyed_hash(settings: Settings, purpose: str, value: str) -> str:
    """A hex HMAC of `value`: stable per server secret, useless to anyone without it (a
    plain hash of a phone number is reversed by trying every number)."""
    return hmac.new(derived_key(settings, purpose), value.encode(), hashlib.sha256).hexdigest()


# --- manage links ---------------------------------------------------------------------


class InvalidManageLink(PermissionDenied):
    code = "invalid_manage_link"


class ExpiredManageLink(Gone):
    code = "manage_link_expired"


@dataclass(frozen=True, slots=True)
class ManageClaims:
    clinic_id: uuid.UUID
    appointment_id: uuid.UUID
    expires_at: datetime


def issue_manage_token(settings: Settings, *, clinic_id: uuid.UUID,
                       appointment_id: uuid.UUID, expires_at: datetime) -> str:
    """A token that lets its holder see, cancel and reschedule one appointment until
    `expires_at`; it names the clinic too, so it works only on that clinic's page."""
    body = _MANAGE_LAYOUT.pack(_MANAGE_VERSION, clinic_id.bytes, appointment_id.bytes,
                               int(expires_at.timestamp()))
    return f"{_b64(body)}.{_b64(_mac(derived_key(settings, MANAGE_LINK_PURPOSE), body))}"


def read_manage_token(settings: Settings, token: str, *, clinic_id: uuid.UUID,
                      now: datetime) -> ManageClaims:
    """The claims of a genuine, unexpired token for `clinic_id`; otherwise the error that
    says which (the signature is checked before anything inside is believed)."""
    invalid = InvalidManageLink(
        "This link is not valid: it may be incomplete or changed. Open the link exactly as "
        "you received it, or contact the clinic.")
    body_text, _, mac_text = token.strip().partition(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
    except (binascii.Error, ValueError):
        raise invalid from None
    expected = _mac(derived_key(settings, MANAGE_LINK_PURPOSE), body)
    if len(body) != _MANAGE_LAYOUT.size or not hmac.compare_digest(mac, expected):
        raise invalid
    version, clinic_bytes, appointment_bytes, expiry = _MANAGE_LAYOUT.unpack(body)
    if version != _MANAGE_VERSION or uuid.UUID(bytes=clinic_bytes) != clinic_id:
        raise invalid
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise ExpiredManageLink(
            "This link has expired: it worked until the day after the appointment. To book "
            "again or ask about a visit, contact the clinic.")
    return ManageClaims(clinic_id, uuid.UUID(bytes=appointment_bytes), expires_at)


# --- anti-forgery tokens for the booking page's forms ----------------------------------


def form_token(settings: Settings, browser_secret: str, *, now: datetime) -> str:
    """The hidden form value that must come back with `browser_secret` (a random cookie):
    another site can neither read the cookie nor make this value without it."""
    issued = str(int(now.timestamp()))
    mac = _mac(derived_key(settings, FORM_PURPOSE), f"{browser_secret}|{issued}".encode())
    return f"{issued}.{_b64(mac)}"


def form_token_valid(settings: Settings, browser_secret: str | None, token: str | None, *,
                     now: datetime) -> bool:
    if not browser_secret or not token:
        return False
    issued, _, mac_text = token.partition(".")
    try:
        mac = _unb64(mac_text)
        issued_at = datetime.fromtimestamp(int(issued), UTC)
    except (binascii.Error, ValueError, OverflowError, OSError):
        return False
    expected = _mac(derived_key(settings, FORM_PURPOSE), f"{browser_secret}|{issued}".encode())
    fresh = now - timedelta(hours=settings.booking_form_hours) <= issued_at <= now + timedelta(
        minutes=5)
    return hmac.compare_digest(mac, expected) and fresh
