"""Test data in one place: clinics, staff, providers and patients, made as the owner."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import patient, provider, staff_user
from sync_server.actions.clinics import do_create_clinic, scope
from sync_server.actions.demo import fake_patient_rows
from sync_server.core.config import Settings
from sync_server.core.security import encode_token, hash_password

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = hash_password(PASSWORD)


@dataclass
class StaffUser:
    id: uuid.UUID
    clinic_id: uuid.UUID
    email: str
    role: Role


@dataclass
class ClinicData:
    id: uuid.UUID
    slug: str
    users: dict[Role, StaffUser] = field(default_factory=dict)
    provider_ids: list[uuid.UUID] = field(default_factory=list)
    patient_ids: list[uuid.UUID] = field(default_factory=list)


class Factory:
    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def clinic(self, *, patients: int = 3, providers: int = 2, timezone: str = "America/Santiago",
               roles: tuple[Role, ...] = tuple(Role)) -> ClinicData:
        slug = f"c-{uuid.uuid4().hex[:10]}"
        with self.engine.begin() as conn:
            clinic_id = do_create_clinic(conn, slug=slug, name=f"Clinic {slug}",
                                         timezone=timezone, country="CL")
            data = ClinicData(id=clinic_id, slug=slug)
            scope(conn, clinic_id)
            for role in roles:
                user_id = uuid7()
                email = f"{role.value}-{slug}@example.test"
                conn.execute(insert(staff_user).values(
                    clinic_id=clinic_id, id=user_id, email=email, full_name=f"{role.value} user",
                    role=role.value, password_hash=_PASSWORD_HASH))
                data.users[role] = StaffUser(user_id, clinic_id, email, role)
            for i in range(providers):
                provider_id = uuid7()
                conn.execute(insert(provider).values(clinic_id=clinic_id, id=provider_id,
                                                     display_name=f"Dr. {i} {slug}"))
                data.provider_ids.append(provider_id)
            if patients:
                rows = fake_patient_rows(clinic_id, patients, seed=hash(slug) & 0xFFFF)
                conn.execute(insert(patient), rows)
                data.patient_ids.extend(r["id"] for r in rows)  # type: ignore[misc]
        return data

    def user(self, clinic: ClinicData, role: Role, *, email: str | None = None,
             active: bool = True) -> StaffUser:
        user_id = uuid7()
        email = email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.test"
        with self.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(staff_user).values(
                clinic_id=clinic.id, id=user_id, email=email, full_name="Extra user",
                role=role.value, password_hash=_PASSWORD_HASH, is_active=active))
        return StaffUser(user_id, clinic.id, email, role)

    def token(self, user: StaffUser, *, lifetime: timedelta = timedelta(minutes=15),
              now: datetime | None = None) -> str:
        return encode_token(
            key=self.settings.signing_key(), kind="access", user_id=user.id,
            clinic_id=user.clinic_id, role=user.role, token_id=uuid7(), lifetime=lifetime,
            now=now or datetime.now(UTC),
        )

    def headers(self, user: StaffUser) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}
