"""The store key: kept in the OS keyring when there is one, else wrapped by a passphrase;
never written in the clear."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as NoKeyring

from desktop.store.database import open_store
from desktop.store.keys import (
    KEYRING_SERVICE,
    KeyUnavailable,
    StoreKeyError,
    WrongPassphrase,
    load_or_create_key,
)

PASSPHRASE = "una frase bastante larga"


class MemoryKeyring(KeyringBackend):
    """A working keyring held in memory (the OS ones need a desktop session)."""

    priority = 5  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


def never_asked(creating: bool) -> str | None:
    raise AssertionError("no passphrase should be needed with a keyring")


def test_with_a_keyring_the_key_is_made_once_stored_there_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    backend = MemoryKeyring()
    store = tmp_path / "local.db"
    first = load_or_create_key(store, store_id="dev1", ask_passphrase=never_asked,
                               backend=backend)
    again = load_or_create_key(store, store_id="dev1", ask_passphrase=never_asked,
                               backend=backend)
    assert first.key == again.key
    assert len(first.key) == 32
    assert first.source == "keyring"
    assert list(backend.items) == [(KEYRING_SERVICE, "store-key:dev1")]
    assert list(tmp_path.iterdir()) == []


def test_without_a_keyring_the_key_is_wrapped_by_the_passphrase_and_never_stored_clear(
    tmp_path: Path,
) -> None:
    store = tmp_path / "local.db"
    made = load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: PASSPHRASE,
                              backend=NoKeyring())
    assert made.source == "passphrase"
    wrapped_file = tmp_path / "local.db.key"
    raw = wrapped_file.read_bytes()
    assert made.key not in raw
    assert made.key.hex().encode() not in raw
    assert json.loads(raw)["kdf"] == "scrypt"
    assert stat.S_IMODE(wrapped_file.stat().st_mode) == 0o600

    opened = load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: PASSPHRASE,
                                backend=NoKeyring())
    assert opened.key == made.key
    engine = open_store(store, opened.key)
    engine.dispose()


def test_a_wrong_passphrase_is_refused_clearly(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: PASSPHRASE,
                       backend=NoKeyring())
    with pytest.raises(WrongPassphrase, match="does not unlock"):
        load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: "otra frase larga",
                           backend=NoKeyring())


def test_a_wrapped_key_belongs_to_its_store(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: PASSPHRASE,
                       backend=NoKeyring())
    with pytest.raises(WrongPassphrase):
        load_or_create_key(store, store_id="dev2", ask_passphrase=lambda _: PASSPHRASE,
                           backend=NoKeyring())


def test_no_keyring_and_no_passphrase_says_what_is_needed(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="passphrase"):
        load_or_create_key(tmp_path / "local.db", store_id="dev1",
                           ask_passphrase=lambda _: None, backend=NoKeyring())


def test_a_short_new_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreKeyError, match="at least 10"):
        load_or_create_key(tmp_path / "local.db", store_id="dev1",
                           ask_passphrase=lambda _: "short", backend=NoKeyring())
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_key_file_is_reported_not_crashed_on(tmp_path: Path) -> None:
    store = tmp_path / "local.db"
    (tmp_path / "local.db.key").write_text("{not json")
    with pytest.raises(StoreKeyError, match="damaged"):
        load_or_create_key(store, store_id="dev1", ask_passphrase=lambda _: PASSPHRASE,
                           backend=NoKeyring())


def test_the_first_run_is_told_it_is_choosing_a_passphrase(tmp_path: Path) -> None:
    asked: list[bool] = []

    def ask(creating: bool) -> str:
        asked.append(creating)
        return PASSPHRASE

    store = tmp_path / "local.db"
    load_or_create_key(store, store_id="dev1", ask_passphrase=ask, backend=NoKeyring())
    load_or_create_key(store, store_id="dev1", ask_passphrase=ask, backend=NoKeyring())
    assert asked == [True, False]
