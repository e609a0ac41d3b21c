"""Whatever a client sends, the server answers with an error it can explain (4xx in the one
error shape), never with a server error: schemathesis generates requests from the app's
OpenAPI schema, valid and invalid, and sends them to the app on the real test database.

The schema is read from an app built only for that (building the document needs no
database); requests go in-process to a second app whose lifespan schemathesis runs on its
own event loop. Its login throttling is relaxed so generated sign-ins reach the password
check instead of stopping at a lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy.engine import URL, make_url

from shared_models.enums import Role
from sync_server.core.config import Settings
from sync_server.main import create_app
from tests.factories import Factory

# Building the OpenAPI document touches neither settings nor the database.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(env="test"), make_url("postgresql+psycopg://unused/unused")).openapi()
)

BOUNDED = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=list(HealthCheck)
)
# Writes get more examples: that is where generated text reaches the database. Sign-in is
# costlier per example (a password hash each), so it gets fewer.
BOUNDED_WRITES = hypothesis_settings(BOUNDED, max_examples=150)
BOUNDED_SIGN_IN = hypothesis_settings(BOUNDED, max_examples=80)


@pytest.fixture(scope="module")
def fuzzed_app(settings: Settings, db_urls: tuple[URL, URL]) -> Iterator[FastAPI]:
    app = create_app(
        settings.model_copy(update={"login_lock_after": 10**6,
                                    "login_lock_after_per_address": 10**6}),
        db_urls[1],
    )
    yield app
    shutdown_lifespans()  # disposes the app's connection pool


@pytest.fixture(scope="module")
def staff(factory: Factory) -> tuple[dict[str, str], list[uuid.UUID]]:
    """An admin's headers, and patients of that admin's clinic to aim generated ids at."""
    clinic = factory.clinic(patients=5)
    return factory.headers(clinic.users[Role.ADMIN]), clinic.patient_ids


def check_reply(case: schemathesis.Case, app: FastAPI, headers: dict[str, str]) -> None:
    response = case.call_and_validate(app=app, headers=headers, checks=[not_a_server_error])
    assert response.status_code < 500, case.as_curl_command()
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) == {"error"}, (case.as_curl_command(), body)
        assert set(body["error"]) == {"code", "message", "details"}, body
        assert body["error"]["message"], body


def aim_at_real_patient(case: schemathesis.Case, patient_ids: list[uuid.UUID]) -> None:
    """Swap a well-formed generated patient id for a real one, so generated changes reach
    an existing record instead of stopping at 404; malformed ids are left to be refused."""
    raw = (case.path_parameters or {}).get("patient_id")
    try:
        generated = uuid.UUID(str(raw))
    except ValueError:
        return
    assert case.path_parameters is not None
    case.path_parameters["patient_id"] = str(patient_ids[generated.int % len(patient_ids)])


@schema.include(tag="patients", method="GET").parametrize()
@BOUNDED
def test_patient_reads_and_searches_never_fail_on_the_server(
    case: schemathesis.Case, fuzzed_app: FastAPI,
    staff: tuple[dict[str, str], list[uuid.UUID]],
) -> None:
    headers, patient_ids = staff
    aim_at_real_patient(case, patient_ids)
    check_reply(case, fuzzed_app, headers)


@schema.include(tag="patients").exclude(method="GET").parametrize()
@BOUNDED_WRITES
def test_patient_registration_and_changes_never_fail_on_the_server(
    case: schemathesis.Case, fuzzed_app: FastAPI,
    staff: tuple[dict[str, str], list[uuid.UUID]],
) -> None:
    headers, patient_ids = staff
    aim_at_real_patient(case, patient_ids)
    check_reply(case, fuzzed_app, headers)


@schema.include(tag="providers").parametrize()
@BOUNDED_WRITES
def test_provider_endpoints_never_fail_on_the_server(
    case: schemathesis.Case, fuzzed_app: FastAPI,
    staff: tuple[dict[str, str], list[uuid.UUID]],
) -> None:
    headers, _ = staff
    check_reply(case, fuzzed_app, headers)


@schema.include(tag="auth").parametrize()
@BOUNDED_SIGN_IN
def test_sign_in_and_refresh_never_fail_on_the_server(
    case: schemathesis.Case, fuzzed_app: FastAPI
) -> None:
    check_reply(case, fuzzed_app, {})


@schema.include(tag="health").parametrize()
@BOUNDED
def test_health_probes_never_fail_on_the_server(
    case: schemathesis.Case, fuzzed_app: FastAPI
) -> None:
    check_reply(case, fuzzed_app, {})
