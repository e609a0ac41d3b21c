"""What every pushed mutation's handler shares: how it is refused, and the outcomes it
can report (DESIGN section 5)."""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationError

from sync_server.core.errors import ConsultaError, InvalidInput

Status = Literal["applied", "merged", "conflict"]


class Rejected(ConsultaError):
    """The mutation is refused; the device keeps its reason for a person to see."""

    code = "rejected"


def invalid_change(exc: ValidationError) -> InvalidInput:
    """A pushed change that does not validate, with its first problems named."""
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                         for e in exc.errors()[:5])
    return InvalidInput(f"The change was not accepted: {problems}.", code="invalid_change")
