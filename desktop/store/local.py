"""Tables only the desktop has: the outbox of changes waiting to be pushed, sync state,
what needs a person's attention (rejected bookings, conflicts), and the prescribers'
signing keys, which never leave this computer."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    text,
)

from shared_models.types import UTCDateTime

local_metadata = MetaData()

# Changes made on this computer, in the order they were made, until the server answers.
outbox = Table(
    "outbox",
    local_metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("mutation_id", Uuid, nullable=False, unique=True),
    Column("entity", String(40), nullable=False),
    Column("op", String(20), nullable=False),
    Column("record_id", Uuid, nullable=False),
    Column("base_version", BigInteger, nullable=True),
    Column("changes", JSON, nullable=False),
    Column("base", JSON, nullable=False),
    Column("hlc", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # How often pushing this change failed and why, so staff can see a change that is stuck.
    # Added in store version 2 (see upgrades.py), hence at the end.
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
)

sync_state = Table(
    "sync_state",
    local_metadata,
    Column("key", String(40), primary_key=True),
    Column("value", Text, nullable=False),
)

# Server answers a person must see: a booking rejected (with alternatives), a value that
# lost a merge. Kept until someone deals with it.
attention = Table(
    "attention",
    local_metadata,
    Column("mutation_id", Uuid, primary_key=True),
    Column("entity", String(40), nullable=False),
    Column("record_id", Uuid, nullable=False),
    Column("status", String(20), nullable=False),
    Column("code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Who has signed in on this computer while online, so they can sign in offline: an argon2
# verifier of the password (inside the encrypted store), never the password.
login_cache = Table(
    "login_cache",
    local_metadata,
    Column("email", String(320), primary_key=True),
    Column("user_id", Uuid, nullable=False),
    Column("clinic_id", Uuid, nullable=False),
    Column("role", String(20), nullable=False),
    Column("verifier", String(200), nullable=False),
    Column("verified_online_at", UTCDateTime, nullable=False),
)

# A prescriber's signing key on this computer (desktop/operations/signing.py), one per
# person. The private key is kept only wrapped: AES-256-GCM under a key derived with
# Argon2id from the person's password and the TOTP secret, so opening it takes both. The
# TOTP secret is here too (inside the encrypted store) so the code can be checked offline.
signing_identity = Table(
    "signing_identity",
    local_metadata,
    Column("user_id", Uuid, primary_key=True),
    Column("clinic_id", Uuid, nullable=False),
    Column("key_id", Uuid, nullable=False, unique=True),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # The key's signature of shared_models.signing.key_registration_payload(...), made
    # while the private key was in memory at creation, sent when registering it.
    Column("proof", String(200), nullable=False),
    Column("wrapped_key", LargeBinary, nullable=False),
    Column("nonce", LargeBinary, nullable=False),
    Column("kdf_salt", LargeBinary, nullable=False),
    # The Argon2id parameters the wrap was made with, so a later release that raises them
    # still opens keys wrapped before.
    Column("kdf_params", JSON, nullable=False),
    Column("totp_secret", String(64), nullable=False),
    # unconfirmed until a first code shows the authenticator app holds the secret.
    Column("state", String(12), nullable=False),
    # What the server said when the key was registered (pending), or unregistered; the
    # synced signing_key row, once pulled, is the newer word.
    Column("server_status", String(12), nullable=False),
    # The TOTP time step of the last code accepted: a code is good once.
    Column("last_totp_step", BigInteger, nullable=True),
    Column("failed_unlocks", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)
