"""Turning records that arrive as JSON into rows of the local store, and back."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import Date, Table, Time, Uuid

from shared_models.types import UTCDateTime


def _coerce(column_type: object, value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    if isinstance(column_type, Uuid):
        return uuid.UUID(value)
    if isinstance(column_type, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column_type, Date):
        return date.fromisoformat(value)
    if isinstance(column_type, Time):
        return time.fromisoformat(value)
    return value


def to_row(table: Table, record: dict[str, Any]) -> dict[str, Any]:
    """The record's fields that are columns of `table`, as Python values."""
    return {name: _coerce(table.c[name].type, value) for name, value in record.items()
            if name in table.c}


def to_json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value
