"""Staff sign-in: password check, throttling, access + rotating refresh tokens.

Refresh tokens rotate: each use marks the presented token used and issues the next one
of the same family. Presenting a used token means it was copied, so the whole family is
revoked and everyone holding one of its tokens must sign in again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.auth import TokenPair
from shared_models.tables import login_throttle, refresh_token
from sync_server.actions.devices import check_device
from sync_server.core.config import Settings
from sync_server.core.errors import BadRequest, NotAuthenticated, TooManyRequests
from sync_server.core.security import decode_token, encode_token, verify_password
from sync_server.db.tenancy import set_clinic
from sync_server.lib.staff import check_active_role

BAD_CREDENTIALS = "The e-mail or password is wrong. Check both and try again."


@dataclass(frozen=True, slots=True)
class _Candidate:
    clinic_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    password_hash: str
    is_active: bool
    clinic_slug: str


def _account_key(email: str) -> str:
    return "acct:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _address_key(addr: str | None) -> str:
    return f"addr:{addr or 'unknown'}"


async def _locked_for(conn: AsyncConnection, keys: list[str], now: datetime) -> int:
    rows = await conn.execute(
        select(login_throttle.c.locked_until).where(
            login_throttle.c.key.in_(keys), login_throttle.c.locked_until > now
        )
    )
    until = [r.locked_until for r in rows]
    return int(max((u - now).total_seconds() for u in until)) + 1 if until else 0


async def _record_failure(
    conn: AsyncConnection, key: str, *, lock_after: int, settings: Settings, now: datetime
) -> int:
    """Count a failure in the current window; lock the key when it reaches `lock_after`."""
    window_start = now - timedelta(minutes=settings.login_window_minutes)
    base = pg_insert(login_throttle).values(key=key, failures=1, window_started_at=now)
    stmt = base.on_conflict_do_update(
        index_elements=[login_throttle.c.key],
        set_={
            "failures": text(
                "CASE WHEN login_throttle.window_started_at < :window_start THEN 1 "
                "ELSE login_throttle.failures + 1 END"
            ).bindparams(window_start=window_start),
            "window_started_at": text(
                "CASE WHEN login_throttle.window_started_at < :window_start2 THEN :now "
                "ELSE login_throttle.window_started_at END"
            ).bindparams(window_start2=window_start, now=now),
        },
    ).returning(login_throttle.c.failures)
    failures = int((await conn.execute(stmt)).scalar_one())
    if failures >= lock_after:
        await conn.execute(
            update(login_throttle)
            .where(login_throttle.c.key == key)
            .values(locked_until=now + timedelta(minutes=settings.login_lock_minutes))
        )
    return failures


async def _issue_pair(
    conn: AsyncConnection,
    *,
    settings: Settings,
    clinic_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role,
    family_id: uuid.UUID,
    device_id: uuid.UUID | None,
    now: datetime,
) -> TokenPair:
    key = settings.signing_key()
    refresh_id = uuid7()
    refresh_life = timedelta(days=settings.refresh_token_days)
    await conn.execute(
        refresh_token.insert().values(
            clinic_id=clinic_id,
            id=refresh_id,
            family_id=family_id,
            user_id=user_id,
            device_id=device_id,
            issued_at=now,
            expires_at=now + refresh_life,
        )
    )
    access_life = timedelta(minutes=settings.access_token_minutes)
    common = {"key": key, "user_id": user_id, "clinic_id": clinic_id, "role": role,
              "now": now, "device_id": device_id}
    return TokenPair(
        access_token=encode_token(kind="access", token_id=uuid7(), lifetime=access_life,
                                  **common),  # type: ignore[arg-type]
        refresh_token=encode_token(kind="refresh", token_id=refresh_id, lifetime=refresh_life,
                                   family_id=family_id, **common),  # type: ignore[arg-type]
        expires_in=int(access_life.total_seconds()),
        role=role,
    )


def _as_device(client_id: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(client_id) if client_id else None
    except ValueError:
        return None


async def do_login(
    engine: AsyncEngine,
    *,
    settings: Settings,
    email: str,
    password: str,
    client_id: str | None,
    client_secret: str | None,
    client_addr: str | None,
) -> TokenPair:
    """Sign in. `client_id` is an enrolled device's id (with its secret as
    `client_secret`), or the clinic's short name when one e-mail is in several clinics."""
    device_id = _as_device(client_id)
    clinic_slug = None if device_id else client_id
    now = datetime.now(UTC)
    keys = [_account_key(email), _address_key(client_addr)]
    async with engine.begin() as conn:
        wait = await _locked_for(conn, keys, now)
    if wait:
        raise TooManyRequests(
            f"Too many failed sign-ins. Try again in {wait // 60 + 1} minute(s), "
            "or ask the clinic admin to reset your password.",
            retry_after_seconds=wait,
        )

    rows: Sequence[Row[Any]] = []
    # No address contains NUL, and PostgreSQL text cannot carry one: it matches no account.
    if "\x00" not in email:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT * FROM login_candidates(:e)"), {"e": email.strip()}
                )
            ).all()
    candidates = [
        _Candidate(r.clinic_id, r.user_id, Role(r.role), r.password_hash, r.is_active,
                   r.clinic_slug)
        for r in rows
        if clinic_slug is None or r.clinic_slug == clinic_slug
    ]
    # argon2 is CPU-bound: keep it off the event loop. An unknown e-mail costs one hash
    # check too, so timing does not tell whether an account exists.
    if candidates:
        matches = [
            c for c in candidates
            if await asyncio.to_thread(verify_password, c.password_hash, password)
        ]
    else:
        await asyncio.to_thread(verify_password, None, password)
        matches = []

    if not matches or not matches[0].is_active:
        async with engine.begin() as conn:
            failures = await _record_failure(
                conn, keys[0], lock_after=settings.login_lock_after, settings=settings, now=now
            )
            await _record_failure(
                conn, keys[1], lock_after=settings.login_lock_after_per_address,
                settings=settings, now=now,
            )
        delay = min(settings.login_delay_base_seconds * 2 ** (failures - 1),
                    settings.login_delay_cap_seconds)
        await asyncio.sleep(delay)
        if matches and not matches[0].is_active:
            raise NotAuthenticated(
                "This account is disabled. Ask the clinic admin.", code="account_disabled"
            )
        raise NotAuthenticated(BAD_CREDENTIALS, code="bad_credentials")
    if len(matches) > 1:
        raise BadRequest(
            "This e-mail belongs to accounts in several clinics. Send the clinic's short "
            "name as client_id to choose one.",
            code="clinic_ambiguous",
            details={"clinics": sorted(m.clinic_slug for m in matches)},
        )
    user = matches[0]
    async with engine.begin() as conn:
        await conn.execute(
            login_throttle.delete().where(login_throttle.c.key == keys[0])
        )
        await set_clinic(conn, user.clinic_id)
        if device_id is not None:
            await check_device(conn, device_id, secret=client_secret or "")
        return await _issue_pair(
            conn, settings=settings, clinic_id=user.clinic_id, user_id=user.user_id,
            role=user.role, family_id=uuid7(), device_id=device_id, now=now,
        )


async def do_refresh(engine: AsyncEngine, *, settings: Settings, token: str) -> TokenPair:
    claims = decode_token(token, key=settings.signing_key(), kind="refresh")
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await set_clinic(conn, claims.clinic_id)
        # The row lock makes two concurrent uses of one token take turns: the second one
        # sees the first one's mark and is treated as a reuse.
        row = (
            await conn.execute(
                select(refresh_token).where(refresh_token.c.id == claims.token_id).with_for_update()
            )
        ).first()
        if row is None or row.revoked_at is not None:
            raise NotAuthenticated(
                "This session was ended. Sign in again.", code="refresh_revoked"
            )
        if row.used_at is None:
            role = await check_active_role(conn, row.user_id)
            if row.device_id is not None:
                await check_device(conn, row.device_id)
            await conn.execute(
                update(refresh_token).where(refresh_token.c.id == row.id).values(used_at=now)
            )
            return await _issue_pair(
                conn, settings=settings, clinic_id=claims.clinic_id, user_id=row.user_id,
                role=role, family_id=row.family_id, device_id=row.device_id,
                now=now,
            )
        await conn.execute(
            update(refresh_token)
            .where(refresh_token.c.family_id == row.family_id,
                   refresh_token.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    # Raised after the block so the family's revocation is committed.
    raise NotAuthenticated(
        "This refresh token was already used, so the session may have been copied. "
        "All its tokens are now revoked: sign in again.",
        code="refresh_reused",
    )
