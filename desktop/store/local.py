"""Tables only the desktop has: the outbox of changes waiting to be pushed, sync state,
and what needs a person's attention (rejected bookings, conflicts)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, Text, Uuid, text

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
