"""Turning records that arrive as JSON into rows of the local store, and back."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time
from functools import cache
from typing import Any

from sqlalchemy import Date, Table, Time, Uuid

from shared_models.types import UTCDateTime

Parser = Callable[[str], Any]


def _parser(column_type: object) -> Parser | None:
    """How a column's value is read from its JSON text; None when JSON already gives the
    value the column takes (numbers, booleans, plain text, JSON documents)."""
    if isinstance(column_type, Uuid):
        return uuid.UUID
    if isinstance(column_type, UTCDateTime):
        return datetime.fromisoformat
    if isinstance(column_type, Date):
        return date.fromisoformat
    if isinstance(column_type, Time):
        return time.fromisoformat
    return None


@cache
def _parsers(table: Table) -> dict[str, Parser | None]:
    # Worked out once per table: a full pull converts hundreds of thousands of records,
    # and looking the column types up again for each value was most of what it cost.
    return {column.name: _parser(column.type) for column in table.c}


def to_row(table: Table, record: dict[str, Any]) -> dict[str, Any]:
    """The record's fields that are columns of `table`, as Python values."""
    parsers = _parsers(table)
    row: dict[str, Any] = {}
    for name, value in record.items():
        if name in parsers:
            parse = parsers[name]
            row[name] = parse(value) if parse is not None and isinstance(value, str) else value
    return row


def to_json(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    return value
