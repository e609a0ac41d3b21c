"""Prescription signatures, the same on both sides: the canonical document a prescriber's
key signs, and the ECDSA P-256 signing and checking of it.

The document is built from the stored prescription and its items, never from what a
screen shows, and encoded as RFC 8785 JSON (sorted keys, no spaces, one spelling per
number): any program that rebuilds it from the same record gets the same bytes, so a
change to any signed field, or to the signature, fails the check wherever it is made.
Routing and status stay outside the document; a patient may take a prescription to
another pharmacy without it being signed again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DOCUMENT_VERSION = 1
# The signed columns of a prescription and of each item: what the canonical document
# holds, and what the database refuses to change once stored.
SIGNED_FIELDS = ("id", "clinic_id", "patient_id", "prescriber_id", "appointment_id",
                 "signed_at", "formulary_version", "notes", "acknowledgements",
                 "signing_key_id")
SIGNED_ITEM_FIELDS = ("position", "medicine_id", "medicine_name", "strength", "form", "dose",
                      "route", "frequency", "duration_days", "quantity", "refills",
                      "instructions")


class SignatureError(ValueError):
    """A key or signature that cannot be used as it is (malformed, wrong curve)."""


def signing_time(moment: datetime | None = None) -> datetime:
    """The signing time as stored: UTC, whole seconds, so it reads back the same from
    either database."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _text(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("signed times must be timezone-aware")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _signed_at(value: Any) -> str:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError("a signed prescription needs its signing time")
    return str(_text(value))


def document(prescription: Mapping[str, Any], items: Iterable[Mapping[str, Any]]
             ) -> dict[str, Any]:
    """The signed content of a prescription: its signed fields and its items in order.

    Accepts rows or wire records alike (ids as UUIDs or text, times as datetimes or ISO
    text)."""
    doc: dict[str, Any] = {"v": DOCUMENT_VERSION}
    for name in SIGNED_FIELDS:
        doc[name] = _text(prescription.get(name))
    doc["signed_at"] = _signed_at(prescription.get("signed_at"))
    doc["items"] = [
        {name: _text(item.get(name)) for name in SIGNED_ITEM_FIELDS}
        for item in sorted(items, key=lambda item: int(item["position"]))
    ]
    return doc


def canonical(doc: Mapping[str, Any]) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme) bytes of `doc`."""
    try:
        return rfc8785.dumps(dict(doc))
    except rfc8785.CanonicalizationError as exc:
        raise ValueError(f"the document cannot be canonicalised: {exc}") from exc


# --- keys ------------------------------------------------------------------------------


def generate_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public(pem: str) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from PEM; SignatureError for anything else."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise SignatureError("The public key is not a PEM SubjectPublicKeyInfo.") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve,
                                                                         ec.SECP256R1):
        raise SignatureError("Prescription keys must be ECDSA on the P-256 curve.")
    return key


def fingerprint(pem: str) -> str:
    """SHA-256 of the DER public key, hex."""
    der = load_public(pem).public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def private_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_der(der: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignatureError("The stored signing key is not an ECDSA key.")
    return key


# --- signatures ------------------------------------------------------------------------


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """ECDSA P-256 with SHA-256 (FIPS 186), DER-encoded, base64."""
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def verify(pem: str, payload: bytes, signature: str) -> bool:
    """Whether `signature` is the key's signature of exactly `payload`."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        load_public(pem).verify(raw, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def sign_prescription(key: ec.EllipticCurvePrivateKey, prescription: Mapping[str, Any],
                      items: Iterable[Mapping[str, Any]]) -> str:
    return sign(key, canonical(document(prescription, items)))


def verify_prescription(pem: str, prescription: Mapping[str, Any],
                        items: Iterable[Mapping[str, Any]]) -> bool:
    signature = prescription.get("signature")
    if not isinstance(signature, str):
        return False
    return verify(pem, canonical(document(prescription, items)), signature)


def key_registration_payload(*, key_id: uuid.UUID, clinic_id: uuid.UUID, user_id: uuid.UUID,
                             public_key: str) -> bytes:
    """What a new key signs to prove its owner holds the private half."""
    return canonical({"purpose": "consulta-signing-key-registration", "key_id": str(key_id),
                      "clinic_id": str(clinic_id), "user_id": str(user_id),
                      "public_key": public_key})
