"""Enrolling computers: an admin issues a one-time code, the computer exchanges it for a
device secret, staff then sign in on it, and an admin can revoke it (a lost laptop): its
tokens stop working on their next request.

For installing on many computers at once, an admin issues a rollout: one code that enrols
up to N computers, each as its own device ("<rollout name> <n> (<computer name>)"), until it
expires or is revoked. Revoking a rollout stops further enrolments, not the computers
already enrolled (revoke those one by one).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared_models.ids import uuid7
from shared_models.schemas.devices import (
    DeviceCreate,
    DeviceCredentials,
    DeviceEnrol,
    DeviceEnrolmentCode,
    DevicePublic,
    DeviceRolloutCode,
    DeviceRolloutCreate,
    DeviceRolloutPublic,
    DeviceRolloutsPublic,
    DevicesPublic,
)
from shared_models.tables import device, device_rollout, refresh_token
from sync_server.actions import audit
from sync_server.core.errors import NotAuthenticated, NotFound
from sync_server.db.tenancy import set_clinic
from sync_server.lib.context import ClinicContext

CODE_LIFETIME = timedelta(hours=24)
# No 0/O, 1/I/L: the code is read aloud and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LENGTH = 3, 4
BAD_CODE = ("This enrolment code is not valid, was already used, or has expired. Ask the "
            "clinic admin for a new one.")
REVOKED = ("This computer's access to the clinic was revoked or it is not enrolled. Ask the "
           "clinic admin to enrol it again.")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def code_digest(code: str) -> str:
    """What is stored of a code: its hash, with case, dashes and spaces ignored."""
    return _digest("".join(c for c in code.upper() if c.isalnum()))


def new_code() -> str:
    groups = ["".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH))
              for _ in range(CODE_GROUPS)]
    return "-".join(groups)


def to_public(row: Row[Any]) -> DevicePublic:
    return DevicePublic.model_validate(row._mapping)


async def do_issue_code(ctx: ClinicContext, data: DeviceCreate) -> DeviceEnrolmentCode:
    code, device_id = new_code(), uuid7()
    expires = datetime.now(UTC) + CODE_LIFETIME
    await ctx.conn.execute(insert(device).values(
        clinic_id=ctx.clinic_id, id=device_id, name=data.name,
        code_hash=code_digest(code), code_expires_at=expires,
        enrolled_by=ctx.user_id))
    await audit.record(ctx, action="device.issue_code", entity="device", entity_id=device_id)
    return DeviceEnrolmentCode(device_id=device_id, name=data.name, code=code,
                               expires_at=expires)


async def do_enrol(engine: AsyncEngine, data: DeviceEnrol) -> DeviceCredentials:
    """Exchange a code for the device's secret: a one-time code stops working; a rollout's
    code gives up one of its places."""
    code_hash = code_digest(data.code)
    async with engine.begin() as conn:
        matches = (await conn.execute(text("SELECT * FROM device_for_code(:h)"),
                                      {"h": code_hash})).all()
        if not matches:
            return await _enrol_from_rollout(conn, code_hash, data.computer_name)
        if len(matches) != 1:  # vanishingly rarely, ambiguous
            raise NotAuthenticated(BAD_CODE, code="enrolment_code_invalid")
        found = matches[0]
        await set_clinic(conn, found.clinic_id)
        secret = secrets.token_urlsafe(32)
        claimed = (await conn.execute(
            update(device)
            .where(device.c.id == found.device_id, device.c.code_hash == code_hash,
                   device.c.enrolled_at.is_(None))
            .values(code_hash=None, code_expires_at=None, secret_hash=_digest(secret),
                    enrolled_at=datetime.now(UTC))
            .returning(device.c.id))).first()
        if claimed is None:  # a concurrent exchange of the same code won
            raise NotAuthenticated(BAD_CODE, code="enrolment_code_invalid")
    return DeviceCredentials(device_id=found.device_id, device_secret=secret,
                             clinic_id=found.clinic_id)


async def _enrol_from_rollout(conn: AsyncConnection, code_hash: str,
                              computer_name: str | None) -> DeviceCredentials:
    """Take one place of a rollout (the database never gives out more than it has) and
    enrol this computer as a new device; any failure gives the place back (rollback)."""
    places = (await conn.execute(text("SELECT * FROM claim_rollout_place(:h)"),
                                 {"h": code_hash})).all()
    if len(places) != 1:  # unknown, used up, expired, revoked (or ambiguous: refused)
        raise NotAuthenticated(BAD_CODE, code="enrolment_code_invalid")
    place = places[0]
    await set_clinic(conn, place.clinic_id)
    name = f"{place.name} {place.place}" + (f" ({computer_name})" if computer_name else "")
    secret, device_id, now = secrets.token_urlsafe(32), uuid7(), datetime.now(UTC)
    await conn.execute(insert(device).values(
        clinic_id=place.clinic_id, id=device_id, name=name[:200], secret_hash=_digest(secret),
        enrolled_at=now))
    ctx = ClinicContext(conn=conn, clinic_id=place.clinic_id, user_id=None, role=None,
                        device_id=device_id, client_addr=None)
    await audit.record(ctx, action="device.enrol_rollout", entity="device",
                       entity_id=device_id, detail={"rollout_id": str(place.rollout_id)})
    return DeviceCredentials(device_id=device_id, device_secret=secret,
                             clinic_id=place.clinic_id)


async def do_issue_rollout(ctx: ClinicContext, data: DeviceRolloutCreate) -> DeviceRolloutCode:
    code, rollout_id = new_code(), uuid7()
    expires = datetime.now(UTC) + timedelta(hours=data.valid_hours)
    await ctx.conn.execute(insert(device_rollout).values(
        clinic_id=ctx.clinic_id, id=rollout_id, name=data.name, code_hash=code_digest(code),
        expires_at=expires, computers=data.computers, created_by=ctx.user_id))
    await audit.record(ctx, action="device.issue_rollout", entity="device_rollout",
                       entity_id=rollout_id)
    return DeviceRolloutCode(rollout_id=rollout_id, name=data.name, code=code,
                             computers=data.computers, expires_at=expires)


async def list_rollouts(ctx: ClinicContext) -> DeviceRolloutsPublic:
    rows = await ctx.conn.execute(select(device_rollout)
                                  .order_by(device_rollout.c.created_at, device_rollout.c.id))
    return DeviceRolloutsPublic(data=[DeviceRolloutPublic.model_validate(r._mapping)
                                      for r in rows])


async def do_revoke_rollout(ctx: ClinicContext, rollout_id: uuid.UUID) -> DeviceRolloutPublic:
    """No more computers enrol with this code; those already enrolled stay."""
    row = (await ctx.conn.execute(
        update(device_rollout).where(device_rollout.c.id == rollout_id)
        .values(revoked_at=func.coalesce(device_rollout.c.revoked_at, datetime.now(UTC)))
        .returning(device_rollout))).first()
    if row is None:
        raise NotFound(f"No rollout with id {rollout_id} in this clinic.",
                       code="rollout_not_found")
    await audit.record(ctx, action="device.revoke_rollout", entity="device_rollout",
                       entity_id=rollout_id)
    return DeviceRolloutPublic.model_validate(row._mapping)


async def check_device(conn: AsyncConnection, device_id: uuid.UUID, *,
                       secret: str | None = None) -> None:
    """401 unless the device is enrolled, not revoked, and (when given) owns `secret`."""
    row = (await conn.execute(select(device.c.enrolled_at, device.c.revoked_at,
                                     device.c.secret_hash)
                              .where(device.c.id == device_id))).first()
    if row is None or row.enrolled_at is None or row.revoked_at is not None:
        raise NotAuthenticated(REVOKED, code="device_revoked")
    if secret is not None and not hmac.compare_digest(row.secret_hash or "", _digest(secret)):
        raise NotAuthenticated(REVOKED, code="device_revoked")


async def do_revoke(ctx: ClinicContext, device_id: uuid.UUID) -> DevicePublic:
    now = datetime.now(UTC)
    row = (await ctx.conn.execute(
        update(device).where(device.c.id == device_id)
        # Revoking twice keeps the first time.
        .values(revoked_at=func.coalesce(device.c.revoked_at, now), code_hash=None)
        .returning(device))).first()
    if row is None:
        raise NotFound(f"No device with id {device_id} in this clinic.", code="device_not_found")
    await ctx.conn.execute(
        update(refresh_token)
        .where(refresh_token.c.device_id == device_id, refresh_token.c.revoked_at.is_(None))
        .values(revoked_at=now))
    await audit.record(ctx, action="device.revoke", entity="device", entity_id=device_id)
    return to_public(row)


async def list_devices(ctx: ClinicContext) -> DevicesPublic:
    rows = await ctx.conn.execute(select(device).order_by(device.c.created_at, device.c.id))
    return DevicesPublic(data=[to_public(r) for r in rows])
