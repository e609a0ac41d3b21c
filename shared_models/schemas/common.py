"""Shapes every endpoint shares: the error body, and the rule all free text follows."""

from __future__ import annotations

from typing import Any

from pydantic import AfterValidator, BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorBody(BaseModel):
    error: ErrorDetail


def _reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000 (storing it fails as a server error), and no
    # name, address or note has a reason to contain it.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\x00); remove it and send again")
    return value


# Attach to every free-text field that is stored: `Annotated[str, ..., NoNul]`.
NoNul = AfterValidator(_reject_nul)
