"""Care notices through the reminder queue, against a real SMTP server and a local
Twilio-style provider: a prescription ready at the pharmacy and lab results in reach the
patient in their language, say nothing clinical, wait for quiet hours to end, retry like
reminders, and stay out of the appointment dead-letter list."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import pharmacy, reminder
from sync_server.actions.clinics import scope
from sync_server.db.tenancy import set_clinic
from sync_server.lib.context import ClinicContext
from sync_server.reminders import notices
from sync_server.reminders.dispatcher import Dispatcher
from tests.factories import expect_error, item
from tests.fakes.smtp import Received, SmtpServer
from tests.fakes.text_provider import TextProvider
from tests.sync_server.reminders.conftest import SANTIAGO, Clinic
from tests.sync_server.reminders.test_dispatch import DEFAULT_QUIET, NO_QUIET, set_policy


@pytest.fixture(autouse=True)
async def no_quiet_hours(clinic: Clinic) -> None:
    await set_policy(clinic, NO_QUIET)


class Notifier:
    """Queues notices the way the pharmacy and lab steps do: inside a request
    transaction, as the app role, scoped to the clinic."""

    def __init__(self, app: FastAPI, clinic: Clinic) -> None:
        self.app, self.clinic = app, clinic

    async def _run(self, queue: object) -> None:
        data = self.clinic.data
        async with self.app.state.engine.connect() as conn, conn.begin():
            await set_clinic(conn, data.id)
            ctx = ClinicContext(conn=conn, clinic_id=data.id,
                                user_id=data.users[Role.PHARMACIST].id, role=Role.PHARMACIST,
                                device_id=None, client_addr=None)
            await queue(ctx)  # type: ignore[operator]

    async def dispensed(self, prescription_id: uuid.UUID, patient_id: uuid.UUID,
                        now: datetime | None = None) -> None:
        await self._run(lambda ctx: notices.on_prescription_dispensed(
            ctx, prescription_id=prescription_id, patient_id=patient_id,
            now=now or datetime.now(UTC)))

    async def results(self, order_id: uuid.UUID, patient_id: uuid.UUID) -> None:
        await self._run(lambda ctx: notices.on_results_ready(
            ctx, lab_order_id=order_id, patient_id=patient_id, now=datetime.now(UTC)))


@pytest.fixture
async def notifier(app: FastAPI, clinic: Clinic) -> Notifier:
    return Notifier(app, clinic)


def dispensed_prescription(clinic: Clinic, patient_id: uuid.UUID) -> uuid.UUID:
    factory, data = clinic.factory, clinic.data
    pharmacy_id = factory.pharmacy(data, name="Farmacia Ahumada Providencia")
    with factory.engine.begin() as conn:
        scope(conn, data.id)
        conn.execute(update(pharmacy).where(pharmacy.c.id == pharmacy_id)
                     .values(address="Av. Providencia 1234, Santiago"))
    return factory.prescription(data, patient_id=patient_id, status="dispensed",
                                pharmacy_id=pharmacy_id,
                                items=[item(medicine_id="amoxicillin",
                                            medicine_name="Amoxicilina")])


def mail_text(received: Received) -> tuple[str, str, list[str]]:
    mail = received.message()
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    return str(mail["Subject"]), body.get_content(), [p.get_content_type() for p in mail.walk()]


async def test_a_dispensed_prescription_tells_the_patient_where_to_collect_it(
        clinic: Clinic, notifier: Notifier, dispatcher: Dispatcher, smtp: SmtpServer) -> None:
    patient_id = clinic.patient(channels=("email",))
    prescription_id = dispensed_prescription(clinic, patient_id)
    await notifier.dispensed(prescription_id, patient_id)

    result = dispatcher.run_once()

    assert result.outcomes == {"sent": 1}
    [message] = smtp.mailbox.messages()
    subject, text, parts = mail_text(message)
    assert subject == "Su receta está lista en Farmacia Ahumada Providencia"
    assert "Av. Providencia 1234, Santiago" in text
    assert "Hola Ana" in text
    # Where to go, never what was prescribed; and no calendar entry to add.
    assert "moxicil" not in text.lower()
    assert "text/calendar" not in parts
    [row] = clinic.reminders()
    assert (row.kind, row.status, row.prescription_id, row.appointment_id) == \
        ("prescription_ready", "sent", prescription_id, None)


async def test_results_ready_goes_by_text_in_english_and_invites_no_reply(
        clinic: Clinic, notifier: Notifier, dispatcher: Dispatcher,
        provider: TextProvider) -> None:
    patient_id = clinic.patient(channels=("sms",), language="en")
    order_id = clinic.factory.lab_order(clinic.data, patient_id=patient_id,
                                        status="completed", results=3)
    await notifier.results(order_id, patient_id)

    assert dispatcher.run_once().outcomes == {"sent": 1}

    [sms] = provider.messages()
    assert "your lab results are ready" in sms.body
    assert "Reply" not in sms.body
    [row] = clinic.reminders()
    assert row.lab_order_id == order_id
    assert row.reply_key is None


async def test_a_notice_made_at_night_waits_for_the_morning(
        clinic: Clinic, notifier: Notifier, dispatcher: Dispatcher, smtp: SmtpServer) -> None:
    await set_policy(clinic, DEFAULT_QUIET)
    patient_id = clinic.patient(channels=("email",))
    prescription_id = dispensed_prescription(clinic, patient_id)
    night = datetime(2026, 11, 24, 23, 30, tzinfo=SANTIAGO)
    await notifier.dispensed(prescription_id, patient_id, now=night.astimezone(UTC))

    [row] = clinic.reminders()
    assert row.due_at.astimezone(SANTIAGO).hour == 8

    with time_machine.travel(night + timedelta(minutes=5), tick=False):
        assert dispatcher.run_once().claimed == 0
    with time_machine.travel(row.due_at + timedelta(minutes=1), tick=False):
        assert dispatcher.run_once().outcomes == {"sent": 1}
    assert smtp.mailbox.count() == 1


async def test_a_failed_notice_is_not_in_the_appointment_dead_letters_nor_retried_there(
        clinic: Clinic, notifier: Notifier, dispatcher: Dispatcher, smtp: SmtpServer,
        client: httpx.AsyncClient) -> None:
    patient_id = clinic.patient(channels=("email",))
    prescription_id = dispensed_prescription(clinic, patient_id)
    await notifier.dispensed(prescription_id, patient_id)
    smtp.mailbox.refused.add("ana@example.test")  # no such mailbox: a permanent failure

    assert dispatcher.run_once().outcomes == {"dead": 1}

    [row] = clinic.reminders()
    listed = await client.get("/api/v1/reminders/dead-letters", headers=clinic.headers())
    assert listed.status_code == 200
    assert listed.json()["data"] == []
    retry = await client.post(f"/api/v1/reminders/{row.id}/retry", headers=clinic.headers())
    assert "pharmacy or the lab" in expect_error(retry, 409, "reminder_not_retryable")["message"]


def test_a_notice_must_name_its_subject_and_no_appointment(clinic: Clinic) -> None:
    """The database keeps each kind tied to its own subject, whatever path writes it."""
    patient_id = clinic.patient()
    now = datetime.now(UTC)
    orphan = insert(reminder).values(
        clinic_id=clinic.data.id, id=uuid7(), patient_id=patient_id, kind="prescription_ready",
        due_at=now, next_attempt_at=now, refused_channels=[])
    with clinic.factory.engine.begin() as conn:
        scope(conn, clinic.data.id)
        with pytest.raises(IntegrityError, match="ck_reminder_subject_prescription"):
            conn.execute(orphan)
    with clinic.factory.engine.begin() as conn:
        scope(conn, clinic.data.id)
        assert conn.execute(select(reminder).where(
            reminder.c.clinic_id == clinic.data.id)).first() is None


async def test_dispensing_queues_one_notice_however_often_it_is_pressed(
        clinic: Clinic, client: httpx.AsyncClient) -> None:
    factory, data = clinic.factory, clinic.data
    patient_id = clinic.patient(channels=("email",))
    pharmacy_id = factory.pharmacy(data)
    linked = await client.put(
        f"/api/v1/pharmacies/{pharmacy_id}/pharmacists/{data.users[Role.PHARMACIST].id}",
        headers=clinic.headers(Role.ADMIN))
    assert linked.status_code == 200, linked.text
    prescription_id = factory.prescription(data, patient_id=patient_id, status="received",
                                           pharmacy_id=pharmacy_id)
    for _ in range(2):
        response = await client.post(f"/api/v1/prescriptions/{prescription_id}/dispense",
                                     headers=clinic.headers(Role.PHARMACIST))
        assert response.status_code == 200, response.text
    [row] = clinic.reminders()
    assert (row.kind, row.prescription_id, row.status) == \
        ("prescription_ready", prescription_id, "pending")


async def test_completing_a_lab_order_queues_the_results_notice(
        clinic: Clinic, client: httpx.AsyncClient) -> None:
    patient_id = clinic.patient(channels=("sms",))
    order_id = clinic.factory.lab_order(clinic.data, patient_id=patient_id,
                                        status="processing", results=3)
    assert clinic.reminders() == []
    response = await client.post(f"/api/v1/lab-orders/{order_id}/status",
                                 headers=clinic.headers(Role.LAB_TECH),
                                 json={"to": "completed"})
    assert response.status_code == 200, response.text
    [row] = clinic.reminders()
    assert (row.kind, row.lab_order_id) == ("results_ready", order_id)
