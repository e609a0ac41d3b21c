"""Prescribers' signing keys: registered from the doctor's computer, approved or revoked by
the clinic admin.

A key signs nothing the server accepts until an admin approves it (after comparing its
fingerprint with the one the doctor's screen shows), and nothing once revoked. A doctor
holds at most one active key: approving a new one revokes the previous one. Approvals
lock all of the doctor's keys first, so two approvals at once cannot leave two active.
The database keeps a key bound to its owner and a revoked key revoked (migration 0013).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models import signing
from shared_models.enums import Role
from shared_models.schemas.signing_keys import (
    KeyStatus,
    SigningKeyPublic,
    SigningKeyRegister,
    SigningKeyRevoke,
    SigningKeysPublic,
)
from shared_models.tables import signing_key, staff_user
from sync_server.actions import audit
from sync_server.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from sync_server.lib.context import ClinicContext
from sync_server.lib.stamps import server_stamp, stamp_fields

# The reason recorded on a doctor's previous key when an admin approves a newer one.
REPLACED_REASON = "replaced by a newer key"
_REGISTERED_FIELDS = ["user_id", "device_id", "public_key", "fingerprint", "status"]
_APPROVED_FIELDS = ["status", "approved_at", "approved_by"]
_REVOKED_FIELDS = ["status", "revoked_at", "revoked_by", "revoke_reason"]


def _select() -> Select[Any]:
    return (select(signing_key, staff_user.c.full_name.label("user_name"))
            .join(staff_user, staff_user.c.id == signing_key.c.user_id))


def to_public(row: Row[Any]) -> SigningKeyPublic:
    return SigningKeyPublic.model_validate(row._mapping)


async def access_signing_key(ctx: ClinicContext, key_id: uuid.UUID) -> Row[Any]:
    """The key of the caller's clinic with its owner's name, or 404 (also for another
    clinic's id)."""
    row: Row[Any] | None = (await ctx.conn.execute(
        _select().where(signing_key.c.id == key_id))).first()
    if row is None:
        raise NotFound(f"No signing key with id {key_id} in this clinic.",
                       code="signing_key_not_found")
    return row


async def _reread(ctx: ClinicContext, key_id: uuid.UUID) -> SigningKeyPublic:
    return to_public(await access_signing_key(ctx, key_id))


def _check_proof(ctx: ClinicContext, data: SigningKeyRegister) -> str:
    """The key's fingerprint, once the key is P-256 and its proof verifies."""
    assert ctx.user_id is not None
    try:
        fingerprint = signing.fingerprint(data.public_key)
    except signing.SignatureError as exc:
        raise InvalidInput(f"{exc} Make a new key on this computer and register it again.",
                           code="invalid_public_key", details={"field": "public_key"}) from exc
    payload = signing.key_registration_payload(key_id=data.id, clinic_id=ctx.clinic_id,
                                               user_id=ctx.user_id, public_key=data.public_key)
    if not signing.verify(data.public_key, payload, data.proof):
        raise InvalidInput(
            "The proof is not this key's signature of its registration for your account in "
            "this clinic, so the server cannot tell that you hold the private key. Register "
            "the key again from the computer that made it.",
            code="invalid_proof", details={"field": "proof"})
    return fingerprint


async def do_register_key(ctx: ClinicContext, data: SigningKeyRegister
                          ) -> tuple[SigningKeyPublic, bool]:
    """Register the caller's new public key as pending; (the key, whether it is new).

    Sending the same key under the same id again (a retry after a lost answer) answers
    with the stored key and changes nothing."""
    if ctx.role is not Role.DOCTOR:
        raise PermissionDenied("Only doctors register prescription signing keys.",
                               code="role_not_allowed")
    fingerprint = _check_proof(ctx, data)
    existing = (await ctx.conn.execute(
        select(signing_key.c.user_id, signing_key.c.fingerprint)
        .where(signing_key.c.id == data.id))).first()
    if existing is not None:
        if existing.user_id == ctx.user_id and existing.fingerprint == fingerprint:
            return await _reread(ctx, data.id), False
        raise Conflict("Another key is already registered under this id. Make a new key on "
                       "this computer and register it.", code="key_id_taken",
                       details={"field": "id"})
    values = {
        "clinic_id": ctx.clinic_id, "id": data.id, "user_id": ctx.user_id,
        "device_id": ctx.device_id, "public_key": data.public_key,
        "fingerprint": fingerprint, "status": "pending",
        **stamp_fields(None, _REGISTERED_FIELDS, server_stamp()),
    }
    try:
        async with ctx.conn.begin_nested():
            await ctx.conn.execute(insert(signing_key).values(**values))
    except IntegrityError as exc:
        # The fingerprint is unique in the clinic: one public key, one registration.
        raise Conflict("This public key is already registered in this clinic. Make a new key "
                       "on this computer and register it.", code="key_already_registered",
                       details={"field": "public_key"}) from exc
    await audit.record(ctx, action="signing_key.register", entity="signing_key",
                       entity_id=data.id, detail={"user_id": str(ctx.user_id)})
    return await _reread(ctx, data.id), True


async def list_keys(ctx: ClinicContext, *, status: KeyStatus | None = None
                    ) -> SigningKeysPublic:
    """Admins see every key of the clinic, doctors their own; newest first."""
    stmt = _select()
    if ctx.role is Role.DOCTOR:
        stmt = stmt.where(signing_key.c.user_id == ctx.user_id)
    elif ctx.role is not Role.ADMIN:
        raise PermissionDenied("Signing keys are managed by doctors and the clinic admin.",
                               code="role_not_allowed")
    if status is not None:
        stmt = stmt.where(signing_key.c.status == status)
    rows = (await ctx.conn.execute(
        stmt.order_by(signing_key.c.created_at.desc(), signing_key.c.id.desc()))).all()
    await audit.record(ctx, action="signing_key.list", entity="signing_key",
                       detail={"returned": len(rows)})
    return SigningKeysPublic(data=[to_public(r) for r in rows])


async def _revoke(ctx: ClinicContext, key_id: uuid.UUID, *, reason: str,
                  field_stamps: dict[str, str] | None, now: datetime) -> None:
    await ctx.conn.execute(
        update(signing_key).where(signing_key.c.id == key_id).values(
            status="revoked", revoked_at=now, revoked_by=ctx.user_id, revoke_reason=reason,
            **stamp_fields(field_stamps, _REVOKED_FIELDS, server_stamp())))
    await audit.record(ctx, action="signing_key.revoke", entity="signing_key",
                       entity_id=key_id, detail={"replaced": reason == REPLACED_REASON})


async def do_approve_key(ctx: ClinicContext, key_id: uuid.UUID) -> SigningKeyPublic:
    """pending -> active; the doctor's previously active key is revoked as replaced.
    Approving an active key again changes nothing."""
    if ctx.role is not Role.ADMIN:
        raise PermissionDenied("Only the clinic admin approves signing keys.",
                               code="role_not_allowed")
    owner = (await access_signing_key(ctx, key_id)).user_id
    # Every key of the doctor, locked in id order: a concurrent approval of another of
    # their keys waits here and then sees this one active.
    keys = {row.id: row for row in (await ctx.conn.execute(
        select(signing_key).where(signing_key.c.user_id == owner)
        .order_by(signing_key.c.id).with_for_update())).all()}
    current = keys[key_id]
    if current.status == "active":
        return await _reread(ctx, key_id)
    if current.status == "revoked":
        raise Conflict("This key was revoked and cannot be approved. The doctor registers a "
                       "new key from their computer.", code="key_revoked")
    now = datetime.now(UTC)
    for other in keys.values():
        if other.status == "active":
            await _revoke(ctx, other.id, reason=REPLACED_REASON,
                          field_stamps=other.field_stamps, now=now)
    await ctx.conn.execute(
        update(signing_key).where(signing_key.c.id == key_id).values(
            status="active", approved_at=now, approved_by=ctx.user_id,
            **stamp_fields(current.field_stamps, _APPROVED_FIELDS, server_stamp())))
    await audit.record(ctx, action="signing_key.approve", entity="signing_key",
                       entity_id=key_id, detail={"user_id": str(owner)})
    return await _reread(ctx, key_id)


async def do_revoke_key(ctx: ClinicContext, key_id: uuid.UUID, data: SigningKeyRevoke
                        ) -> SigningKeyPublic:
    """-> revoked, by an admin or the key's owner (a lost laptop). Revoking a revoked key
    again changes nothing."""
    if ctx.role not in (Role.ADMIN, Role.DOCTOR):
        raise PermissionDenied("Signing keys are revoked by their owner or the clinic admin.",
                               code="role_not_allowed")
    current = (await ctx.conn.execute(
        select(signing_key).where(signing_key.c.id == key_id).with_for_update())).first()
    if current is None:
        raise NotFound(f"No signing key with id {key_id} in this clinic.",
                       code="signing_key_not_found")
    if ctx.role is Role.DOCTOR and current.user_id != ctx.user_id:
        raise PermissionDenied("This key belongs to another doctor; they or the clinic admin "
                               "can revoke it.", code="not_key_owner")
    if current.status != "revoked":
        await _revoke(ctx, key_id, reason=data.reason, field_stamps=current.field_stamps,
                      now=datetime.now(UTC))
    return await _reread(ctx, key_id)
