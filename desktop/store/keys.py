"""The local store's key: 256 random bits, kept in the OS keyring (Windows Credential
Manager, macOS Keychain, Secret Service).

Where no usable keyring exists (a bare Linux session, a locked-down PC) the key is
wrapped instead: AES-256-GCM under a key derived from the user's passphrase with scrypt,
and only the wrapped form is written beside the store. The key itself never touches disk.

    StoreKeyError
    ├── WrongPassphrase
    └── KeyUnavailable
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keyring
import keyring.backend
import keyring.errors
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from desktop.store.database import KEY_BYTES, StoreKeyError

KEYRING_SERVICE = "consulta"
WRAPPED_SUFFIX = ".key"
# scrypt cost: about 0.1 s and 32 MiB on a clinic PC, per unlock.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
MIN_PASSPHRASE = 10


class WrongPassphrase(StoreKeyError):
    """The passphrase does not unwrap this store's key."""


class KeyUnavailable(StoreKeyError):
    """No keyring, and no passphrase was given."""


AskPassphrase = Callable[[bool], str | None]  # (creating a new one?) -> passphrase or None


@dataclass(frozen=True)
class StoreKey:
    key: bytes
    source: str  # "keyring" or "passphrase"


def _keyring_usable(backend: keyring.backend.KeyringBackend) -> bool:
    # The "fail" and "null" backends have priority 0 or below: nothing is stored by them.
    try:
        return float(backend.priority) > 0  # type: ignore[arg-type]
    except Exception:
        return False


def _account(store_id: str) -> str:
    return f"store-key:{store_id}"


def _kdf(salt: bytes) -> Scrypt:
    return Scrypt(salt=salt, length=KEY_BYTES, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)


def wrap_key(key: bytes, passphrase: str, *, store_id: str) -> dict[str, object]:
    salt, nonce = os.urandom(16), os.urandom(12)
    wrapping = _kdf(salt).derive(passphrase.encode())
    sealed = AESGCM(wrapping).encrypt(nonce, key, store_id.encode())
    return {"v": 1, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
            "salt": base64.b64encode(salt).decode(), "nonce": base64.b64encode(nonce).decode(),
            "sealed": base64.b64encode(sealed).decode()}


def unwrap_key(wrapped: dict[str, object], passphrase: str, *, store_id: str) -> bytes:
    try:
        salt = base64.b64decode(str(wrapped["salt"]))
        nonce = base64.b64decode(str(wrapped["nonce"]))
        sealed = base64.b64decode(str(wrapped["sealed"]))
        kdf = Scrypt(salt=salt, length=KEY_BYTES, n=int(str(wrapped["n"])),
                     r=int(str(wrapped["r"])), p=int(str(wrapped["p"])))
    except (KeyError, ValueError) as exc:
        raise StoreKeyError("The store's key file is damaged; restore it from a backup "
                            "or enrol this computer again.") from exc
    try:
        return AESGCM(kdf.derive(passphrase.encode())).decrypt(nonce, sealed, store_id.encode())
    except InvalidTag as exc:
        raise WrongPassphrase("That passphrase does not unlock this computer's data. "
                              "Check it and try again.") from exc


def load_or_create_key(
    store_path: Path, *, store_id: str, ask_passphrase: AskPassphrase,
    backend: keyring.backend.KeyringBackend | None = None,
) -> StoreKey:
    """The key of the store at `store_path`, made on first use."""
    backend = backend or keyring.get_keyring()
    wrapped_path = store_path.with_name(store_path.name + WRAPPED_SUFFIX)
    if not wrapped_path.exists() and _keyring_usable(backend):
        try:
            stored = backend.get_password(KEYRING_SERVICE, _account(store_id))
            if stored is None:
                key = os.urandom(KEY_BYTES)
                backend.set_password(KEYRING_SERVICE, _account(store_id), key.hex())
                return StoreKey(key, "keyring")
            return StoreKey(bytes.fromhex(stored), "keyring")
        except keyring.errors.KeyringError:
            pass  # a keyring that fails at use: fall back to a passphrase, below
    creating = not wrapped_path.exists()
    passphrase = ask_passphrase(creating)
    if not passphrase:
        raise KeyUnavailable("This computer has no keyring, so the local data is protected "
                             "by a passphrase; enter it to continue.")
    if creating:
        if len(passphrase) < MIN_PASSPHRASE:
            raise StoreKeyError(f"Choose a passphrase of at least {MIN_PASSPHRASE} "
                                "characters.")
        key = os.urandom(KEY_BYTES)
        wrapped_path.touch(mode=0o600)
        wrapped_path.write_text(json.dumps(wrap_key(key, passphrase, store_id=store_id)))
        return StoreKey(key, "passphrase")
    try:
        wrapped = json.loads(wrapped_path.read_text())
    except ValueError as exc:
        raise StoreKeyError("The store's key file is damaged; restore it from a backup or "
                            "enrol this computer again.") from exc
    return StoreKey(unwrap_key(wrapped, passphrase, store_id=store_id), "passphrase")
