"""The clinic as its staff's computers need it: name, zone and phone numbering plan."""

from __future__ import annotations

import uuid

from pydantic import BaseModel


class ClinicPublic(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    country: str
