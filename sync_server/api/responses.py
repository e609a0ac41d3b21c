"""Sending pydantic models as JSON in one pass.

A route that returns a model makes FastAPI dump it, validate it again against the
response model and encode it; the actions already built a valid model, so routes send
`model_response(...)` and declare `response_model=` for the OpenAPI schema.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def model_response(model: BaseModel, *, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
