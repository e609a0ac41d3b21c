"""Staff sign-in over the API: tokens and what makes them fail, refresh rotation and reuse
detection, role checks, disabled accounts, login throttling and the clinic choice for an
e-mail used in several clinics.

Tests that fail sign-ins use their own client address, because failures are also counted
per address and would otherwise add up across tests.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
import time_machine
from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import provider, refresh_token
from sync_server.actions.auth import BAD_CREDENTIALS
from sync_server.actions.clinics import scope
from sync_server.core.config import Settings
from sync_server.core.security import JWT_ALGORITHM, JWT_ISSUER, encode_token
from sync_server.main import create_app
from tests.conftest import make_client
from tests.factories import PASSWORD, ClinicData, Factory, StaffUser, expect_error

TOKEN = "/api/v1/auth/token"
REFRESH = "/api/v1/auth/refresh"
PROVIDERS = "/api/v1/providers"
PATIENTS = "/api/v1/patients"

_addresses = itertools.count(1)


def own_client(app: FastAPI) -> httpx.AsyncClient:
    """A client with an address no other test uses, so its failures count only for it."""
    n = next(_addresses)
    return make_client(app, client_addr=f"10.77.{n // 250}.{n % 250 + 1}")


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD, *,
                clinic_slug: str | None = None) -> httpx.Response:
    form = {"username": email, "password": password}
    if clinic_slug is not None:
        form["client_id"] = clinic_slug
    return await client.post(TOKEN, data=form)


async def tokens(client: httpx.AsyncClient, user: StaffUser) -> dict[str, Any]:
    response = await login(client, user.email)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


# --- signing in --------------------------------------------------------------------------


async def test_login_returns_access_and_refresh_tokens_and_the_access_token_opens_the_api(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    clinic = factory.clinic(patients=0)
    user = clinic.users[Role.RECEPTIONIST]
    body = await tokens(client, user)
    assert body["token_type"] == "bearer"
    assert body["role"] == "receptionist"
    assert body["expires_in"] == settings.access_token_minutes * 60
    assert claims(body["access_token"])["typ"] == "access"
    assert claims(body["refresh_token"])["typ"] == "refresh"
    assert claims(body["access_token"])["cid"] == str(clinic.id)

    response = await client.get(PROVIDERS, headers=bearer(body["access_token"]))
    assert response.status_code == 200, response.text
    assert [p["id"] for p in response.json()["data"]] == [str(i) for i in clinic.provider_ids]


async def test_login_email_is_case_insensitive(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = factory.clinic(patients=0).users[Role.DOCTOR]
    response = await login(client, user.email.upper())
    assert response.status_code == 200, response.text


async def test_login_ignores_spaces_around_the_email(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # Phones and password managers add them; the account is still the same.
    user = factory.clinic(patients=0).users[Role.DOCTOR]
    response = await login(client, f" {user.email}\t ")
    assert response.status_code == 200, response.text


async def test_wrong_password_is_refused_with_bad_credentials(
    app: FastAPI, factory: Factory
) -> None:
    user = factory.clinic(patients=0).users[Role.DOCTOR]
    async with own_client(app) as client:
        response = await login(client, user.email, "not the password")
    error = expect_error(response, 401, "bad_credentials")
    assert error["message"] == BAD_CREDENTIALS
    assert "password" in error["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_email_gets_the_same_answer_as_a_wrong_password(
    app: FastAPI, factory: Factory
) -> None:
    user = factory.clinic(patients=0).users[Role.DOCTOR]
    async with own_client(app) as client:
        wrong_password = await login(client, user.email, "not the password")
        unknown = await login(client, f"nobody-{uuid.uuid4().hex}@example.test")
    expect_error(unknown, 401, "bad_credentials")
    assert unknown.json() == wrong_password.json()
    assert unknown.headers.get("WWW-Authenticate") == wrong_password.headers.get(
        "WWW-Authenticate"
    )


async def test_login_without_credentials_names_the_missing_fields(
    client: httpx.AsyncClient,
) -> None:
    error = expect_error(await client.post(TOKEN, data={}), 422, "invalid_input")
    assert "username: Field required" in error["message"]
    assert "password: Field required" in error["message"]


async def test_email_with_a_nul_character_is_refused_as_bad_credentials(
    app: FastAPI,
) -> None:
    async with own_client(app) as client:
        response = await login(client, "admin\x00@example.test")
    expect_error(response, 401, "bad_credentials")


# --- access tokens -----------------------------------------------------------------------


async def test_request_without_authorization_header_is_told_how_to_sign_in(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(PROVIDERS)
    error = expect_error(response, 401, "not_authenticated")
    assert "Authorization: Bearer" in error["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_expired_access_token_is_refused_as_expired(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    user = factory.clinic(patients=0).users[Role.ADMIN]
    token = factory.token(user, lifetime=timedelta(minutes=15),
                          now=datetime.now(UTC) - timedelta(minutes=16))
    error = expect_error(await client.get(PROVIDERS, headers=bearer(token)), 401,
                         "token_expired")
    assert "expired" in error["message"]
    assert "Sign in again" in error["message"]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _flip_middle(segment: str) -> str:
    i = len(segment) // 2
    return segment[:i] + ("A" if segment[i] != "A" else "B") + segment[i + 1:]


def _payload_char_flipped(token: str, key: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{_flip_middle(payload)}.{signature}"


def _signature_char_flipped(token: str, key: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{_flip_middle(signature)}"


def _role_raised_to_admin_without_signing(token: str, key: str) -> str:
    header, _, signature = token.split(".")
    return f"{header}.{_b64({**claims(token), 'role': 'admin'})}.{signature}"


def _signed_with_another_key(token: str, key: str) -> str:
    return jwt.encode(claims(token), "another-key-" + "x" * 40, algorithm=JWT_ALGORITHM)


def _algorithm_none(token: str, key: str) -> str:
    return jwt.encode(claims(token), None, algorithm="none")


def _unknown_role(token: str, key: str) -> str:
    return jwt.encode({**claims(token), "role": "superuser"}, key, algorithm=JWT_ALGORITHM)


def _foreign_issuer(token: str, key: str) -> str:
    return jwt.encode({**claims(token), "iss": "someone-else"}, key, algorithm=JWT_ALGORITHM)


def _missing_clinic(token: str, key: str) -> str:
    payload = claims(token)
    del payload["cid"]
    return jwt.encode(payload, key, algorithm=JWT_ALGORITHM)


def _not_a_jwt(token: str, key: str) -> str:
    return "not-a-token"


TAMPERINGS: list[Callable[[str, str], str]] = [
    _payload_char_flipped, _signature_char_flipped, _role_raised_to_admin_without_signing,
    _signed_with_another_key, _algorithm_none, _unknown_role, _foreign_issuer,
    _missing_clinic, _not_a_jwt,
]


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=[t.__name__.strip("_") for t in TAMPERINGS])
async def test_tampered_or_foreign_token_is_refused_as_invalid(
    client: httpx.AsyncClient, factory: Factory, settings: Settings,
    tamper: Callable[[str, str], str],
) -> None:
    user = factory.clinic(patients=0).users[Role.RECEPTIONIST]
    token = factory.token(user)
    assert claims(token)["iss"] == JWT_ISSUER
    response = await client.get(PROVIDERS, headers=bearer(tamper(token, settings.signing_key())))
    error = expect_error(response, 401, "token_invalid")
    assert "Sign in again" in error["message"]


async def test_refresh_token_is_not_accepted_as_an_access_token_nor_the_reverse(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    pair = await tokens(client, factory.clinic(patients=0).users[Role.ADMIN])
    error = expect_error(await client.get(PROVIDERS, headers=bearer(pair["refresh_token"])),
                         401, "token_wrong_type")
    assert "This is a refresh token" in error["message"]
    assert "needs the access token" in error["message"]
    expect_error(await refresh(client, pair["access_token"]), 401, "token_wrong_type")


# --- refresh rotation --------------------------------------------------------------------


async def test_refresh_rotates_and_the_new_tokens_work(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    first = await tokens(client, factory.clinic(patients=0).users[Role.DOCTOR])
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims(second["refresh_token"])["fam"] == claims(first["refresh_token"])["fam"]
    assert second["role"] == "doctor"
    assert (await client.get(PROVIDERS, headers=bearer(second["access_token"]))).status_code == 200
    third = await refresh(client, second["refresh_token"])
    assert third.status_code == 200, third.text


def _family(owner_engine: Engine, clinic: ClinicData, family_id: str) -> list[Any]:
    with owner_engine.begin() as conn:
        scope(conn, clinic.id)
        return list(conn.execute(
            select(refresh_token).where(refresh_token.c.family_id == uuid.UUID(family_id))
        ).all())


async def test_reusing_a_refresh_token_revokes_its_whole_family(
    client: httpx.AsyncClient, factory: Factory, owner_engine: Engine
) -> None:
    clinic = factory.clinic(patients=0)
    user = clinic.users[Role.RECEPTIONIST]
    first = await tokens(client, user)
    second = (await refresh(client, first["refresh_token"])).json()

    reused = await refresh(client, first["refresh_token"])
    error = expect_error(reused, 401, "refresh_reused")
    assert "sign in again" in error["message"]
    # The newest token of the family, never used, fails too: whoever copied the old one
    # may hold it.
    expect_error(await refresh(client, second["refresh_token"]), 401, "refresh_revoked")
    family = _family(owner_engine, clinic, claims(first["refresh_token"])["fam"])
    assert len(family) == 2
    assert all(row.revoked_at is not None for row in family)
    # Signing in again starts a new family that works.
    assert (await refresh(client, (await tokens(client, user))["refresh_token"])).status_code == 200


async def test_two_concurrent_uses_of_one_refresh_token_let_exactly_one_through(
    client: httpx.AsyncClient, factory: Factory, owner_engine: Engine
) -> None:
    clinic = factory.clinic(patients=0)
    pair = await tokens(client, clinic.users[Role.ADMIN])
    responses = await asyncio.gather(refresh(client, pair["refresh_token"]),
                                     refresh(client, pair["refresh_token"]))
    assert sorted(r.status_code for r in responses) == [200, 401]
    [loser] = [r for r in responses if r.status_code == 401]
    expect_error(loser, 401, "refresh_reused")
    family = _family(owner_engine, clinic, claims(pair["refresh_token"])["fam"])
    assert all(row.revoked_at is not None for row in family)


async def test_refresh_with_a_token_that_is_not_a_jwt_is_refused_as_invalid(
    client: httpx.AsyncClient,
) -> None:
    expect_error(await refresh(client, "not-a-token"), 401, "token_invalid")
    error = expect_error(await client.post(REFRESH, json={}), 422, "invalid_input")
    assert "refresh_token: Field required" in error["message"]


# --- roles and disabled accounts ---------------------------------------------------------


async def test_receptionist_may_not_add_providers_and_is_told_which_roles_may(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    before = factory.count(provider, clinic)
    response = await client.post(PROVIDERS, headers=factory.headers(
        clinic.users[Role.RECEPTIONIST]), json={"display_name": "Dr. Soto"})
    error = expect_error(response, 403, "permission_denied")
    assert "receptionist" in error["message"]
    assert "admin" in error["message"]
    assert error["details"] == {"required_roles": ["admin"]}
    assert factory.count(provider, clinic) == before


@pytest.mark.parametrize("role", [Role.LAB_TECH, Role.PHARMACIST])
async def test_roles_outside_the_front_desk_may_not_see_patients(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=2)
    headers = factory.headers(clinic.users[role])
    error = expect_error(await client.get(PATIENTS, headers=headers), 403, "permission_denied")
    assert error["details"] == {"required_roles": ["admin", "doctor", "receptionist"]}
    for name in ("admin", "doctor", "receptionist", role.value):
        assert name in error["message"]
    expect_error(await client.get(f"{PATIENTS}/{clinic.patient_ids[0]}", headers=headers),
                 403, "permission_denied")


async def test_token_of_a_deactivated_account_stops_working_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    user = factory.user(clinic, Role.RECEPTIONIST)
    headers = factory.headers(user)
    assert (await client.get(PROVIDERS, headers=headers)).status_code == 200
    factory.deactivate(user)
    error = expect_error(await client.get(PROVIDERS, headers=headers), 401, "account_disabled")
    assert "admin" in error["message"]


async def test_deactivated_account_can_neither_sign_in_nor_refresh(
    app: FastAPI, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    user = factory.user(clinic, Role.DOCTOR)
    async with own_client(app) as client:
        pair = await tokens(client, user)
        factory.deactivate(user)
        expect_error(await login(client, user.email), 401, "account_disabled")
        expect_error(await refresh(client, pair["refresh_token"]), 401, "account_disabled")


# --- throttling --------------------------------------------------------------------------


async def _fail(client: httpx.AsyncClient, email: str, times: int) -> None:
    for _ in range(times):
        expect_error(await login(client, email, "wrong password"), 401, "bad_credentials")


def _expect_locked(response: httpx.Response, settings: Settings) -> None:
    error = expect_error(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= settings.login_lock_minutes * 60 + 1
    assert error["details"] == {"retry_after_seconds": retry_after}
    assert "Try again in" in error["message"]


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    clinic = factory.clinic(patients=0)
    victim, colleague = clinic.users[Role.DOCTOR], clinic.users[Role.ADMIN]
    async with own_client(app) as attacker, own_client(app) as office:
        await _fail(attacker, victim.email, settings.login_lock_after)
        _expect_locked(await login(attacker, victim.email), settings)
        # The lock is on the account, wherever the next attempt comes from...
        _expect_locked(await login(office, victim.email), settings)
        # ...and on that account only.
        assert (await login(office, colleague.email)).status_code == 200


async def test_account_lock_ends_after_the_lock_time(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    victim = factory.clinic(patients=0).users[Role.DOCTOR]
    async with own_client(app) as client:
        await _fail(client, victim.email, settings.login_lock_after)
        _expect_locked(await login(client, victim.email), settings)
        later = datetime.now(UTC) + timedelta(minutes=settings.login_lock_minutes, seconds=5)
        with time_machine.travel(later):
            assert (await login(client, victim.email)).status_code == 200


async def test_failures_below_the_threshold_are_forgotten_after_a_successful_login(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    user = factory.clinic(patients=0).users[Role.RECEPTIONIST]
    async with own_client(app) as client:
        await _fail(client, user.email, settings.login_lock_after - 1)
        assert (await login(client, user.email)).status_code == 200
        await _fail(client, user.email, settings.login_lock_after - 1)
        assert (await login(client, user.email)).status_code == 200


@asynccontextmanager
async def strict_app(settings: Settings, db_urls: tuple[URL, URL], **limits: Any
                     ) -> AsyncIterator[FastAPI]:
    """A second app on the same database with its own (small) throttling limits."""
    app = create_app(settings.model_copy(update=limits), db_urls[1])
    async with app.router.lifespan_context(app):
        yield app


async def test_many_failures_from_one_address_lock_that_address_until_the_lock_ends(
    factory: Factory, settings: Settings, db_urls: tuple[URL, URL]
) -> None:
    user = factory.clinic(patients=0).users[Role.RECEPTIONIST]
    async with (
        strict_app(settings, db_urls, login_lock_after_per_address=4) as app,
        own_client(app) as prober,
        own_client(app) as office,
    ):
        for _ in range(4):  # a different e-mail each time: no account lock involved
            await _fail(prober, f"guess-{uuid.uuid4().hex}@example.test", 1)
        _expect_locked(await login(prober, user.email), settings)
        # The account itself is fine from another address.
        assert (await login(office, user.email)).status_code == 200
        later = datetime.now(UTC) + timedelta(minutes=settings.login_lock_minutes, seconds=5)
        with time_machine.travel(later):
            assert (await login(prober, user.email)).status_code == 200


# --- one e-mail in several clinics -------------------------------------------------------


async def test_email_in_two_clinics_must_name_the_clinic_with_client_id(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    north, south = factory.clinic(patients=0), factory.clinic(patients=0, providers=1)
    email = f"locum-{uuid.uuid4().hex[:8]}@example.test"
    factory.user(north, Role.DOCTOR, email=email)
    factory.user(south, Role.RECEPTIONIST, email=email)
    async with own_client(app) as client:
        ambiguous = await login(client, email)
        error = expect_error(ambiguous, 400, "clinic_ambiguous")
        assert error["details"] == {"clinics": sorted([north.slug, south.slug])}
        assert "client_id" in error["message"]

        chosen = await login(client, email, clinic_slug=south.slug)
        assert chosen.status_code == 200, chosen.text
        body = chosen.json()
        assert body["role"] == "receptionist"
        assert jwt.decode(body["access_token"], settings.signing_key(),
                          algorithms=[JWT_ALGORITHM], issuer=JWT_ISSUER)["cid"] == str(south.id)
        listed = await client.get(PROVIDERS, headers=bearer(body["access_token"]))
        assert [p["id"] for p in listed.json()["data"]] == [str(south.provider_ids[0])]

        expect_error(await login(client, email, clinic_slug="no-such-clinic"), 401,
                     "bad_credentials")


async def test_access_token_for_a_user_of_another_clinic_id_is_refused(
    client: httpx.AsyncClient, factory: Factory, settings: Settings
) -> None:
    # A validly signed token whose user does not exist in the named clinic (e.g. a clinic
    # id swapped by a bug elsewhere) must not open that clinic.
    user = factory.clinic(patients=0).users[Role.ADMIN]
    other = factory.clinic(patients=0)
    token = encode_token(key=settings.signing_key(), kind="access", user_id=user.id,
                         clinic_id=other.id, role=Role.ADMIN, token_id=uuid7(),
                         lifetime=timedelta(minutes=5), now=datetime.now(UTC))
    expect_error(await client.get(PROVIDERS, headers=bearer(token)), 401, "account_disabled")
