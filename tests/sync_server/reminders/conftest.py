"""Reminder tests over real parts: an aiosmtpd server and a Twilio-style provider on
loopback, the dispatcher on its own engine as the app role, bookings through the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.tables import patient, reminder, reminder_attempt
from sync_server.actions.clinics import scope
from sync_server.core.config import Settings
from sync_server.reminders.dispatcher import Dispatcher
from sync_server.reminders.runner import build_dispatcher
from tests.factories import ClinicData, Factory
from tests.fakes.smtp import SmtpServer
from tests.fakes.text_provider import ACCOUNT, TOKEN, TextProvider
from tests.reminder_queue import queue_due

SANTIAGO = ZoneInfo("America/Santiago")
SMS_SENDER = "+15005550006"
WHATSAPP_SENDER = "+15005550007"
PUBLIC_URL = "https://turnos.example.test"


@pytest.fixture(autouse=True)
def empty_queue(empty_reminder_queue: None) -> None:
    """Each test starts with nothing due (tests/conftest.py)."""


def channel_settings(settings: Settings, smtp: SmtpServer, provider: TextProvider,
                     **overrides: Any) -> Settings:
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none",
        "smtp_sender": "recordatorios@clinica.example.test",
        "sms_base_url": provider.url, "whatsapp_base_url": provider.url,
        "sms_account": ACCOUNT, "sms_token": SecretStr(TOKEN), "sms_sender": SMS_SENDER,
        "whatsapp_sender": WHATSAPP_SENDER, "public_url": PUBLIC_URL, **overrides})


@pytest.fixture
def reminder_settings(settings: Settings, smtp: SmtpServer, provider: TextProvider
                      ) -> Settings:
    return channel_settings(settings, smtp, provider)


@pytest.fixture
def dispatcher(reminder_settings: Settings, db_urls: tuple[URL, URL]) -> Iterator[Dispatcher]:
    d = build_dispatcher(db_urls[1], reminder_settings)
    yield d
    d.close()
    d.engine.dispose()


@dataclass
class Clinic:
    """A Santiago clinic whose one provider works 08:00-20:00 every day in 30-minute
    slots, with helpers to book through the API and read the reminder queue."""

    factory: Factory
    data: ClinicData
    client: httpx.AsyncClient

    @property
    def provider_id(self) -> uuid.UUID:
        return self.data.provider_ids[0]

    def headers(self, role: Role = Role.RECEPTIONIST) -> dict[str, str]:
        return self.factory.headers(self.data.users[role])

    def patient(self, *, email: str | None = "ana@example.test",
                phone: str | None = "+56987654321", channels: tuple[str, ...] = ("email",),
                language: str = "es", zone: str | None = None) -> uuid.UUID:
        patient_id = self.factory.patient(self.data, given_name="Ana", family_name="Rojas",
                                          phone=phone, email=email)
        with self.factory.engine.begin() as conn:
            scope(conn, self.data.id)
            conn.execute(update(patient).where(patient.c.id == patient_id).values(
                preferred_channels=list(channels), preferred_language=language, timezone=zone))
        return patient_id

    async def book(self, patient_id: uuid.UUID, start: datetime) -> dict[str, Any]:
        response = await self.client.post(
            "/api/v1/appointments", headers=self.headers(),
            json={"patient_id": str(patient_id), "provider_id": str(self.provider_id),
                  "start": start.isoformat()})
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def command(self, appointment_id: str, name: str, body: dict[str, Any] | None = None
                      ) -> httpx.Response:
        return await self.client.post(f"/api/v1/appointments/{appointment_id}/{name}",
                                      headers=self.headers(), json=body or {})

    def reminders(self, appointment_id: str | uuid.UUID | None = None) -> list[Any]:
        with self.factory.engine.begin() as conn:
            scope(conn, self.data.id)
            # By clinic as well: a superuser owner (the embedded server's) bypasses RLS.
            query = (select(reminder).where(reminder.c.clinic_id == self.data.id)
                     .order_by(reminder.c.created_at, reminder.c.due_at))
            if appointment_id is not None:
                query = query.where(reminder.c.appointment_id == uuid.UUID(str(appointment_id)))
            return list(conn.execute(query).all())

    def attempts(self, reminder_id: uuid.UUID) -> list[Any]:
        with self.factory.engine.begin() as conn:
            scope(conn, self.data.id)
            return list(conn.execute(
                select(reminder_attempt).where(reminder_attempt.c.reminder_id == reminder_id)
                .order_by(reminder_attempt.c.attempted_at, reminder_attempt.c.id)).all())

    def make_due(self, appointment_id: str | uuid.UUID, *, at: datetime | None = None) -> None:
        """Bring every queued message of the appointment due now (or at `at`)."""
        when = at or datetime.now(UTC) - timedelta(seconds=1)
        with self.factory.engine.begin() as conn:
            scope(conn, self.data.id)
            conn.execute(update(reminder).where(
                reminder.c.appointment_id == uuid.UUID(str(appointment_id)),
                reminder.c.status == "pending").values(next_attempt_at=when))

    def queue(self, count: int, *, patient_id: uuid.UUID, start: datetime,
              kind: str = "reminder") -> list[uuid.UUID]:
        """`count` due reminders written straight to the queue, one appointment each (the
        multi-process tests need thousands without booking thousands of slots)."""
        with self.factory.engine.begin() as conn:
            scope(conn, self.data.id)
            return queue_due(conn, clinic_id=self.data.id, provider_ids=self.data.provider_ids,
                             patient_id=patient_id, count=count, start=start, kind=kind)


def slot(days: int, wall: time) -> datetime:
    day: date = (datetime.now(UTC).astimezone(SANTIAGO) + timedelta(days=days)).date()
    return datetime.combine(day, wall, tzinfo=SANTIAGO)


@pytest.fixture
def clinic(factory: Factory, client: httpx.AsyncClient) -> Clinic:
    data = factory.clinic(patients=1, providers=1)
    factory.weekly_hours(data, data.provider_ids[0])
    return Clinic(factory, data, client)
