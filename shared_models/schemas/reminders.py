"""Reminders on the wire: a clinic's policy, what was sent about an appointment, the
dead-letter list and the delivery rate."""

from __future__ import annotations

import string
import uuid
from datetime import datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared_models.enums import Channel
from shared_models.schemas.common import NoNul

ReminderKind = Literal["reminder", "rescheduled", "cancelled"]
ReminderStatus = Literal["pending", "sent", "dead", "cancelled", "skipped"]
AttemptOutcome = Literal["delivered", "temporary_failure", "permanent_failure"]

# Words a clinic's own short message may use, filled in when it is sent.
TEMPLATE_FIELDS = frozenset({"patient", "clinic", "provider", "date", "time", "link"})
MAX_TEMPLATE = 480  # three SMS segments
MIN_OFFSET, MAX_OFFSET = 15, 14 * 24 * 60

Template = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                            max_length=MAX_TEMPLATE), NoNul]


def check_template(text: str) -> str:
    """A short-message template: plain text with `{field}` placeholders from
    TEMPLATE_FIELDS; anything else would fail when the message is sent, so it fails now."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"the braces do not match ({exc}); write a literal brace as {{{{ "
                         "or }}") from None
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            allowed = ", ".join("{" + f + "}" for f in sorted(TEMPLATE_FIELDS))
            raise ValueError(f"'{{{field}}}' is not a field a message can use; use {allowed}")
        if spec or conversion:
            written = "{" + field + (f"!{conversion}" if conversion else "") + (
                f":{spec}" if spec else "") + "}"
            raise ValueError(f"'{written}' asks for a format; write '{{{field}}}' alone, it "
                             "is filled in ready to read")
    return text


class KindTemplates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    es: Template | None = None
    en: Template | None = None

    @field_validator("es", "en")
    @classmethod
    def _fields(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)


class PolicyTemplates(BaseModel):
    """The clinic's own wording of text messages (SMS and WhatsApp); a language left out
    uses the built-in text. E-mails always use the built-in layout."""

    model_config = ConfigDict(extra="forbid")

    reminder: KindTemplates = Field(default_factory=KindTemplates)
    rescheduled: KindTemplates = Field(default_factory=KindTemplates)
    cancelled: KindTemplates = Field(default_factory=KindTemplates)


class ReminderPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offsets_minutes: list[Annotated[int, Field(ge=MIN_OFFSET, le=MAX_OFFSET)]] = Field(
        default_factory=lambda: [1440, 120], min_length=0, max_length=4,
        description="When to remind, in minutes before the appointment (15 min to 14 days).")
    quiet_start: time = Field(default=time(21, 0),
                              description="No message is sent from this local time ...")
    quiet_end: time = Field(default=time(8, 0),
                            description="... until this one, in the patient's time zone.")
    templates: PolicyTemplates = Field(default_factory=PolicyTemplates)

    @field_validator("offsets_minutes")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each reminder time may appear only once")
        return sorted(value, reverse=True)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _whole_minutes(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a local time without a zone, such as 21:00")
        return value.replace(second=0, microsecond=0)


class ReminderAttemptPublic(BaseModel):
    channel: Channel
    attempted_at: datetime
    outcome: AttemptOutcome
    error: str | None


class ReminderPublic(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    kind: ReminderKind
    offset_minutes: int | None
    appointment_starts_at: datetime
    due_at: datetime
    next_attempt_at: datetime | None
    status: ReminderStatus
    attempts: int
    channel: Channel | None
    sent_at: datetime | None
    last_error: str | None
    tries: list[ReminderAttemptPublic]


class RemindersPublic(BaseModel):
    data: list[ReminderPublic]


class DeadLetter(BaseModel):
    id: uuid.UUID
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str
    kind: ReminderKind
    offset_minutes: int | None
    channel: Channel | None = Field(description="The channel of the last failed try")
    appointment_starts_at: datetime
    attempts: int
    last_error: str | None
    failed_at: datetime


class DeadLetters(BaseModel):
    data: list[DeadLetter]


class ChannelStats(BaseModel):
    channel: Channel
    sent: int
    dead: int


class DeliveryStats(BaseModel):
    """Messages due in [start, end): how many went out, failed for good, were not needed
    (cancelled, skipped) or are still waiting. `delivery_rate` is sent / (sent + dead)."""

    start: datetime
    end: datetime
    sent: int
    dead: int
    pending: int
    cancelled: int
    skipped: int
    delivery_rate: float | None
    by_channel: list[ChannelStats]
