"""Creating clinics and staff accounts (admin CLI), run as the owner connection."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, insert, select, text

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.schemas.clinics import ClinicPublic
from shared_models.schemas.payments import currency_for_country
from shared_models.tables import clinic, device, device_rollout, staff_user
from sync_server.core.errors import Conflict, InvalidInput
from sync_server.core.security import hash_password
from sync_server.lib.context import ClinicContext

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
MIN_PASSWORD_LENGTH = 10


def scope(conn: Connection, clinic_id: uuid.UUID) -> None:
    conn.execute(text("SELECT set_config('app.clinic_id', :c, true)"), {"c": str(clinic_id)})


def find_clinic(conn: Connection, slug: str) -> uuid.UUID | None:
    return conn.execute(select(clinic.c.id).where(clinic.c.slug == slug)).scalar_one_or_none()


def do_create_clinic(
    conn: Connection, *, slug: str, name: str, timezone: str, country: str = "MX",
    locale: str = "es",
) -> uuid.UUID:
    if not SLUG.match(slug):
        raise InvalidInput(
            "The clinic's short name may use lower-case letters, digits and dashes "
            "(e.g. 'clinica-centro')."
        )
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"'{timezone}' is not an IANA time zone (e.g. America/Mexico_City)."
        ) from exc
    if find_clinic(conn, slug) is not None:
        raise Conflict(f"A clinic named '{slug}' already exists.")
    clinic_id = uuid7()
    scope(conn, clinic_id)
    conn.execute(
        insert(clinic).values(
            id=clinic_id, slug=slug, name=name, timezone=timezone, country=country.upper(),
            default_locale=locale, currency=currency_for_country(country),
        )
    )
    return clinic_id


def do_create_user(
    conn: Connection, *, clinic_id: uuid.UUID, email: str, full_name: str, role: Role,
    password: str,
) -> uuid.UUID:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    if "@" not in email:
        raise InvalidInput(f"'{email}' is not an e-mail address.")
    scope(conn, clinic_id)
    email = email.strip().lower()
    exists = conn.execute(
        select(staff_user.c.id).where(staff_user.c.email == email)
    ).scalar_one_or_none()
    if exists is not None:
        raise Conflict(f"{email} already has an account in this clinic.")
    user_id = uuid7()
    conn.execute(
        insert(staff_user).values(
            clinic_id=clinic_id, id=user_id, email=email, full_name=full_name,
            role=role.value, password_hash=hash_password(password),
        )
    )
    return user_id


def issue_device_code(conn: Connection, *, clinic_id: uuid.UUID, name: str
                      ) -> tuple[str, datetime]:
    """A one-time enrolment code for a new computer (the admin CLI's way)."""
    from sync_server.actions.devices import CODE_LIFETIME, code_digest, new_code

    if not name.strip():
        raise InvalidInput("Give the computer a name, e.g. 'Recepción 1'.")
    scope(conn, clinic_id)
    code = new_code()
    expires = datetime.now(UTC) + CODE_LIFETIME
    conn.execute(insert(device).values(clinic_id=clinic_id, id=uuid7(), name=name.strip(),
                                       code_hash=code_digest(code), code_expires_at=expires))
    return code, expires


def issue_rollout_code(conn: Connection, *, clinic_id: uuid.UUID, name: str, computers: int,
                       valid_hours: int) -> tuple[str, datetime]:
    """One code for up to `computers` new computers (the admin CLI's way; see
    actions/devices.py)."""
    from pydantic import ValidationError

    from shared_models.schemas.devices import DeviceRolloutCreate
    from sync_server.actions.devices import code_digest, new_code

    try:
        data = DeviceRolloutCreate(name=name, computers=computers, valid_hours=valid_hours)
    except ValidationError as exc:
        raise InvalidInput("A rollout needs a name, 1 to 500 computers and 1 to 720 hours: "
                           + "; ".join(e["msg"] for e in exc.errors())) from exc
    scope(conn, clinic_id)
    code = new_code()
    expires = datetime.now(UTC) + timedelta(hours=data.valid_hours)
    conn.execute(insert(device_rollout).values(
        clinic_id=clinic_id, id=uuid7(), name=data.name, code_hash=code_digest(code),
        expires_at=expires, computers=data.computers))
    return code, expires


async def read_clinic(ctx: ClinicContext) -> ClinicPublic:
    row = (await ctx.conn.execute(select(clinic).where(clinic.c.id == ctx.clinic_id))).one()
    return ClinicPublic.model_validate(row, from_attributes=True)
