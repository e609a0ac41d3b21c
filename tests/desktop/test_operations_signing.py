"""The prescriber's signing key on a real SQLCipher store: made and wrapped under the
password and a TOTP secret, confirmed with a first code, opened only with the password and
a fresh code, blocked after repeated wrong tries, held in memory for a few minutes, and
bound to its owner."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pyotp
import pytest
import time_machine
from argon2 import PasswordHasher
from sqlalchemy import Engine, insert, select, update

from desktop.operations.signing import (
    MAX_WRONG_UNLOCKS,
    UNLOCK_MINUTES,
    SigningError,
    UnlockLocked,
    WrongUnlock,
    confirm_key,
    create_key,
    key_info,
    mark_registered,
    registration_body,
    unlock,
)
from desktop.store.database import open_store
from desktop.store.local import login_cache, signing_identity
from shared_models import signing
from shared_models.ids import uuid7
from shared_models.schemas.signing_keys import SigningKeyRegister
from shared_models.tables import signing_key

CLINIC = uuid7()
DOCTOR = uuid7()
PASSWORD = "pulmón derecho 42"
EMAIL = "dra.rojas@example.test"


@pytest.fixture
def store_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def engine(tmp_path: Path, store_key: bytes) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", store_key)
    yield store
    store.dispose()


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrolled(engine: Engine, user_id: uuid.UUID = DOCTOR, password: str = PASSWORD,
             email: str = EMAIL) -> str:
    """A confirmed key for `user_id`; its TOTP secret."""
    enrolment = create_key(engine, clinic_id=CLINIC, user_id=user_id, email=email,
                           password=password)
    confirm_key(engine, user_id, pyotp.TOTP(enrolment.totp_secret).now())
    return enrolment.totp_secret


def later(steps: int = 1) -> datetime:
    """A moment `steps` TOTP periods from now: its code is a fresh one."""
    return datetime.now(UTC) + timedelta(seconds=30 * steps)


def identity(engine: Engine, user_id: uuid.UUID = DOCTOR) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(conn.execute(select(signing_identity).where(
            signing_identity.c.user_id == user_id)).one()._mapping)


def test_a_new_key_is_confirmed_registered_and_opened_with_the_password_and_a_fresh_code(
    engine: Engine
) -> None:
    assert key_info(engine, DOCTOR) is None
    enrolment = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                           password=PASSWORD)
    uri = urlparse(enrolment.totp_uri)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert parse_qs(uri.query)["secret"] == [enrolment.totp_secret]
    assert parse_qs(uri.query)["issuer"] == ["Consulta"]
    info = key_info(engine, DOCTOR)
    assert info is not None
    assert (info.key_id, info.fingerprint, info.server_status, info.confirmed) == (
        enrolment.key_id, enrolment.fingerprint, "unregistered", False)
    with pytest.raises(SigningError, match="Confirm the key"):
        registration_body(engine, DOCTOR)

    confirm_key(engine, DOCTOR, pyotp.TOTP(enrolment.totp_secret).now())
    body = SigningKeyRegister.model_validate(registration_body(engine, DOCTOR))
    assert body.id == enrolment.key_id
    assert signing.fingerprint(body.public_key) == enrolment.fingerprint
    assert signing.verify(body.public_key, signing.key_registration_payload(
        key_id=body.id, clinic_id=CLINIC, user_id=DOCTOR, public_key=body.public_key),
        body.proof)
    mark_registered(engine, DOCTOR, "pending")
    assert key_info(engine, DOCTOR).server_status == "pending"  # type: ignore[union-attr]

    when = later()
    signer = unlock(engine, user_id=DOCTOR, password=PASSWORD,
                    code=code_at(enrolment.totp_secret, when), now=when)
    assert signer.key_id == enrolment.key_id
    assert signer.expires_at == when + timedelta(minutes=UNLOCK_MINUTES)
    signature = signer.sign(b"payload")
    assert signing.verify(body.public_key, b"payload", signature)
    assert PASSWORD not in repr(signer)
    assert enrolment.totp_secret not in repr(signer)


def test_the_store_holds_the_private_key_only_wrapped(engine: Engine) -> None:
    enrolled(engine)
    row = identity(engine)
    assert row["kdf_params"] == {"t": 3, "m": 65536, "p": 1}
    assert len(row["kdf_salt"]) == 16
    assert len(row["nonce"]) == 12
    # A PKCS#8 P-256 key starts with this DER header; the wrap must not show it.
    assert b"\x30\x81\x87\x02\x01\x00\x30\x13" not in row["wrapped_key"]  # type: ignore[operator]
    for value in row.values():
        assert "PRIVATE KEY" not in str(value)


def test_the_synced_key_row_is_the_newer_word_on_its_status(engine: Engine) -> None:
    enrolled(engine)
    mark_registered(engine, DOCTOR, "pending")
    info = key_info(engine, DOCTOR)
    assert info is not None
    with engine.begin() as conn:
        conn.execute(insert(signing_key).values(
            clinic_id=CLINIC, id=info.key_id, user_id=DOCTOR,
            public_key=identity(engine)["public_key"], fingerprint=info.fingerprint,
            status="active", approved_at=datetime.now(UTC), server_version=7))
    assert key_info(engine, DOCTOR).server_status == "active"  # type: ignore[union-attr]


def test_a_wrong_password_is_refused_without_saying_which_factor_failed(
    engine: Engine
) -> None:
    secret = enrolled(engine)
    when = later()
    with pytest.raises(WrongUnlock, match=r"The password or the code is wrong\.") as caught:
        unlock(engine, user_id=DOCTOR, password="pulmón izquierdo",
               code=code_at(secret, when), now=when)
    assert "pulmón" not in str(caught.value)
    assert secret not in str(caught.value)
    assert identity(engine)["failed_unlocks"] == 1
    # The code was not spent by the failed try: the right password opens it with it.
    unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code_at(secret, when), now=when)
    assert identity(engine)["failed_unlocks"] == 0


@pytest.mark.parametrize("code", ["000000", "12345", "abcdef", ""])
def test_a_wrong_code_is_refused(engine: Engine, code: str) -> None:
    secret = enrolled(engine)
    when = later()
    if code == code_at(secret, when):  # one in a million
        pytest.skip("the made-up code happens to be the right one")
    with pytest.raises(WrongUnlock, match=r"The password or the code is wrong\."):
        unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code, now=when)


def test_a_code_from_too_far_away_is_refused(engine: Engine) -> None:
    secret = enrolled(engine)
    when = later(2)
    with pytest.raises(WrongUnlock):
        unlock(engine, user_id=DOCTOR, password=PASSWORD,
               code=code_at(secret, when + timedelta(seconds=90)), now=when)


def test_a_code_is_good_once(engine: Engine) -> None:
    secret = enrolled(engine)
    when = later()
    code = code_at(secret, when)
    unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code, now=when)
    with pytest.raises(WrongUnlock, match="used already"):
        unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code,
               now=when + timedelta(seconds=5))
    assert identity(engine)["failed_unlocks"] == 1  # a replay counts as a wrong try


def test_the_confirming_code_cannot_open_the_key(engine: Engine) -> None:
    enrolment = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                           password=PASSWORD)
    now = datetime.now(UTC)
    code = code_at(enrolment.totp_secret, now)
    confirm_key(engine, DOCTOR, code)
    with pytest.raises(WrongUnlock, match="used already"):
        unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code, now=now)


def test_five_wrong_tries_block_unlocking_for_five_minutes_even_across_restarts(
    tmp_path: Path, store_key: bytes, engine: Engine
) -> None:
    secret = enrolled(engine)
    when = later()
    for _ in range(MAX_WRONG_UNLOCKS - 2):
        with pytest.raises(WrongUnlock):
            unlock(engine, user_id=DOCTOR, password="guess", code=code_at(secret, when),
                   now=when)
    # The count is kept in the store, not in this process.
    engine.dispose()
    reopened = open_store(tmp_path / "local.db", store_key)
    try:
        with pytest.raises(WrongUnlock):
            unlock(reopened, user_id=DOCTOR, password="guess", code="000000", now=when)
        with pytest.raises(UnlockLocked) as locked:
            unlock(reopened, user_id=DOCTOR, password="guess", code=code_at(secret, when),
                   now=when)
        assert locked.value.until == when + timedelta(minutes=5)
        assert "Too many wrong tries" in str(locked.value)
        # Locked: even the right password and code are refused until it ends.
        with pytest.raises(UnlockLocked):
            unlock(reopened, user_id=DOCTOR, password=PASSWORD, code=code_at(secret, when),
                   now=when + timedelta(minutes=4))
        after = when + timedelta(minutes=5, seconds=30)
        signer = unlock(reopened, user_id=DOCTOR, password=PASSWORD,
                        code=code_at(secret, after), now=after)
        assert signer.key_id == identity(reopened)["key_id"]
        assert identity(reopened)["failed_unlocks"] == 0
    finally:
        reopened.dispose()


def test_an_unlock_lasts_five_minutes_and_can_be_forgotten_sooner(engine: Engine) -> None:
    secret = enrolled(engine)
    when = later()
    signer = unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code_at(secret, when),
                    now=when)
    assert not signer.expired(when + timedelta(minutes=4, seconds=59))
    assert signer.expired(when + timedelta(minutes=5))
    with time_machine.travel(when + timedelta(minutes=UNLOCK_MINUTES, seconds=1), tick=False), \
            pytest.raises(SigningError, match="Unlock it"):
        signer.sign(b"late")
    again = later(2)
    fresh = unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code_at(secret, again),
                   now=again)
    fresh.forget()
    assert fresh.expired()
    with pytest.raises(SigningError):
        fresh.sign(b"after forgetting")


def test_a_wrapped_key_copied_to_another_persons_row_does_not_open(engine: Engine) -> None:
    other = uuid7()
    secret = enrolled(engine)
    enrolled(engine, user_id=other, password="otra clave 9")
    mine = identity(engine)
    with engine.begin() as conn:
        conn.execute(update(signing_identity).where(signing_identity.c.user_id == other).values(
            wrapped_key=mine["wrapped_key"], nonce=mine["nonce"], kdf_salt=mine["kdf_salt"],
            totp_secret=mine["totp_secret"]))
    when = later()
    with pytest.raises(WrongUnlock):
        unlock(engine, user_id=other, password=PASSWORD, code=code_at(secret, when), now=when)
    # The same factors still open it where it belongs.
    unlock(engine, user_id=DOCTOR, password=PASSWORD, code=code_at(secret, when), now=when)


def test_a_key_never_confirmed_is_replaced_and_an_approved_one_is_not(engine: Engine) -> None:
    first = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                       password=PASSWORD)
    with pytest.raises(SigningError, match="Confirm"):
        unlock(engine, user_id=DOCTOR, password=PASSWORD, code="123456")
    second = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                        password=PASSWORD)
    assert second.key_id != first.key_id
    assert second.totp_secret != first.totp_secret
    assert identity(engine)["key_id"] == second.key_id
    confirm_key(engine, DOCTOR, pyotp.TOTP(second.totp_secret).now())
    mark_registered(engine, DOCTOR, "pending")
    with pytest.raises(SigningError, match="Revoke it first"):
        create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL, password=PASSWORD)
    assert identity(engine)["key_id"] == second.key_id

    # Once revoked (the synced row says so), a new key may be made.
    with engine.begin() as conn:
        conn.execute(insert(signing_key).values(
            clinic_id=CLINIC, id=second.key_id, user_id=DOCTOR,
            public_key=identity(engine)["public_key"], fingerprint=second.fingerprint,
            status="revoked", approved_at=datetime.now(UTC), revoked_at=datetime.now(UTC)))
    third = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                       password=PASSWORD)
    assert identity(engine)["key_id"] == third.key_id


def test_the_key_takes_the_sign_in_password_when_this_computer_knows_it(
    engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(insert(login_cache).values(
            email=EMAIL, user_id=DOCTOR, clinic_id=CLINIC, role="doctor",
            verifier=PasswordHasher().hash(PASSWORD), verified_online_at=datetime.now(UTC)))
    with pytest.raises(SigningError, match="password you sign in with"):
        create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL.upper(),
                   password="typo " + PASSWORD)
    assert key_info(engine, DOCTOR) is None
    with pytest.raises(SigningError, match="Type your password"):
        create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL, password="")
    create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL, password=PASSWORD)


def test_a_wrong_first_code_leaves_the_key_unconfirmed(engine: Engine) -> None:
    enrolment = create_key(engine, clinic_id=CLINIC, user_id=DOCTOR, email=EMAIL,
                           password=PASSWORD)
    wrong = "000000" if pyotp.TOTP(enrolment.totp_secret).now() != "000000" else "111111"
    with pytest.raises(SigningError, match="does not match") as caught:
        confirm_key(engine, DOCTOR, wrong)
    assert enrolment.totp_secret not in str(caught.value)
    assert key_info(engine, DOCTOR).confirmed is False  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown key status"):
        mark_registered(engine, DOCTOR, "approved")


def test_no_key_yet_says_how_to_make_one(engine: Engine) -> None:
    for attempt in (lambda: unlock(engine, user_id=DOCTOR, password=PASSWORD, code="123456"),
                    lambda: confirm_key(engine, DOCTOR, "123456"),
                    lambda: registration_body(engine, DOCTOR)):
        with pytest.raises(SigningError, match="create one"):
            attempt()

