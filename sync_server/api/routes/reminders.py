"""Reminders: what was sent about an appointment, failures and their retry, the delivery
rate, the clinic's policy, and the webhook patients' text replies arrive on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime

from shared_models.enums import Channel
from shared_models.schemas.reminders import (
    DeadLetters,
    DeliveryStats,
    ReminderPolicy,
    ReminderPublic,
    RemindersPublic,
)
from sync_server.actions import reminders as actions
from sync_server.api.deps import AdminOnly, FrontDesk, FrontOffice, PublicClinic, SettingsDep
from sync_server.api.errors import ERROR_RESPONSES
from sync_server.api.responses import model_response
from sync_server.core.errors import InvalidInput
from sync_server.reminders import policy as policies
from sync_server.reminders.replies import check_signature, handle_reply

router = APIRouter(tags=["reminders"], responses=ERROR_RESPONSES)


@router.get("/appointments/{appointment_id}/reminders", response_model=RemindersPublic)
async def appointment_reminders(ctx: FrontDesk, appointment_id: uuid.UUID) -> Response:
    """Every message about the appointment: when it was due, whether and how it went out,
    and each try with its outcome."""
    return model_response(await actions.appointment_reminders(ctx, appointment_id))


@router.get("/reminders/dead-letters", response_model=DeadLetters)
async def dead_letters(ctx: FrontOffice,
                       limit: Annotated[int, Query(ge=1, le=actions.MAX_DEAD_LETTERS)] = 100
                       ) -> Response:
    """Messages that failed after every attempt, newest first."""
    return model_response(await actions.dead_letters(ctx, limit=limit))


@router.post("/reminders/{reminder_id}/retry", response_model=ReminderPublic)
async def retry(ctx: FrontOffice, reminder_id: uuid.UUID) -> Response:
    """Send a failed message again (now, with fresh attempts)."""
    return model_response(await actions.do_retry(ctx, reminder_id))


@router.get("/reminders/stats", response_model=DeliveryStats)
async def stats(ctx: FrontOffice, start: Annotated[AwareDatetime, Query()],
                end: Annotated[AwareDatetime, Query()]) -> Response:
    """How the messages due in [start, end) fared: the clinic's delivery rate."""
    return model_response(await actions.delivery_stats(ctx, start=start, end=end))


@router.get("/reminders/policy", response_model=ReminderPolicy)
async def read_policy(ctx: FrontOffice) -> Response:
    return model_response(await policies.read_policy(ctx))


@router.put("/reminders/policy", response_model=ReminderPolicy)
async def save_policy(ctx: AdminOnly, body: ReminderPolicy) -> Response:
    """Replace the policy; it applies to appointments booked or moved from now on."""
    return model_response(await policies.save_policy(ctx, body))


@router.post("/public/{clinic_slug}/replies/{channel}",
             responses={200: {"content": {"application/xml": {}}}})
async def patient_reply(ctx: PublicClinic, settings: SettingsDep, request: Request,
                        channel: Channel) -> Response:
    """A patient's text reply, posted by the messaging provider (Twilio-style form with
    `From` and `Body`, signed in `X-Twilio-Signature`); the answer to the patient is the
    TwiML response."""
    if channel is Channel.EMAIL:
        raise InvalidInput("Replies come by SMS or WhatsApp only.", code="invalid_channel",
                           details={"field": "channel"})
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    url = f"{settings.link_base()}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    check_signature(settings, url, fields, request.headers.get("X-Twilio-Signature"))
    if not fields.get("From"):
        raise InvalidInput("The reply names no sender ('From').", code="missing_sender",
                           details={"field": "From"})
    answer = await handle_reply(ctx, settings, sender=fields["From"],
                                body=fields.get("Body", ""), now=datetime.now(UTC))
    return Response(answer.twiml(), media_type="application/xml")
