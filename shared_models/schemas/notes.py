"""Clinical note drafts as devices push them."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shared_models.schemas.common import NoNul

MAX_NOTE_CHARS = 100_000


class NoteDraft(BaseModel):
    """A draft's text, and on the first push the patient (and visit) it belongs to, and
    the signed note it adds to when it is an addendum."""

    model_config = ConfigDict(extra="forbid")

    patient_id: uuid.UUID | None = None
    appointment_id: uuid.UUID | None = None
    addendum_to: uuid.UUID | None = None
    body: Annotated[str, Field(max_length=MAX_NOTE_CHARS), NoNul] | None = None
