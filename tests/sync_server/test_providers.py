"""Providers over the API: every role lists them, only admins add them, a provider may be
linked only to a doctor's account of the same clinic, and bad input saves nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import audit_event, provider, staff_user
from tests.conftest import make_client
from tests.factories import ClinicData, Factory, expect_error

PROVIDERS = "/api/v1/providers"


def admin(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic = factory.clinic(patients=0)
    return clinic, factory.headers(clinic.users[Role.ADMIN])


def counts(factory: Factory, clinic: ClinicData) -> tuple[int, int]:
    return factory.count(provider, clinic), factory.count(audit_event, clinic)


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_lists_the_clinics_providers_by_name(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=0, providers=3)
    response = await client.get(PROVIDERS, headers=factory.headers(clinic.users[role]))
    assert response.status_code == 200, response.text
    listed = response.json()["data"]
    assert [p["id"] for p in listed] == [str(i) for i in clinic.provider_ids]
    names = [p["display_name"] for p in listed]
    assert names == sorted(names)
    assert all(p["is_active"] for p in listed)


async def test_deleted_provider_is_not_listed(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = admin(factory)
    factory.tombstone(provider, clinic, clinic.provider_ids[0])
    response = await client.get(PROVIDERS, headers=headers)
    assert [p["id"] for p in response.json()["data"]] == [str(clinic.provider_ids[1])]


async def test_admin_adds_a_provider_linked_to_a_doctor_and_it_is_audited(
    app: FastAPI, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    owner = clinic.users[Role.ADMIN]
    doctor = clinic.users[Role.DOCTOR]
    async with make_client(app, client_addr="10.89.0.1") as client:
        response = await client.post(PROVIDERS, headers=factory.headers(owner), json={
            "display_name": "  Dra. Elena Ruiz ", "specialty": " Pediatría ",
            "color": "#2E7D32", "user_id": str(doctor.id),
        })
        assert response.status_code == 201, response.text
        created = response.json()
        listed = (await client.get(PROVIDERS, headers=factory.headers(doctor))).json()["data"]

    assert created["display_name"] == "Dra. Elena Ruiz"
    assert created["specialty"] == "Pediatría"
    assert created["color"] == "#2E7D32"
    assert created["user_id"] == str(doctor.id)
    assert created["is_active"] is True
    assert created["server_version"] > 0
    assert listed == [created]
    [event] = factory.audit_events(clinic, action="provider.create")
    assert (event.actor_user_id, event.client_addr, event.entity_id) == (
        owner.id, "10.89.0.1", uuid.UUID(created["id"])
    )


async def test_provider_needs_only_a_name(client: httpx.AsyncClient, factory: Factory) -> None:
    _, headers = admin(factory)
    response = await client.post(PROVIDERS, headers=headers, json={"display_name": "Dr. Soto"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["specialty"], created["color"], created["user_id"]) == (None, None, None)


BAD_INPUT = [
    # id, fields sent, field the message must name, words it must contain
    ("color_word", {"color": "red"}, "color", "should match pattern"),
    ("color_too_short", {"color": "#12345"}, "color", "should match pattern"),
    ("color_not_hex", {"color": "#GGGGGG"}, "color", "should match pattern"),
    ("color_without_hash", {"color": "2E7D32"}, "color", "should match pattern"),
    ("empty_name", {"display_name": ""}, "display_name", "at least 1 character"),
    ("blank_name", {"display_name": "   "}, "display_name", "at least 1 character"),
    ("name_too_long", {"display_name": "x" * 201}, "display_name", "at most 200 characters"),
    ("nul_in_name", {"display_name": "Dr.\x00Soto"}, "display_name", "NUL"),
    ("specialty_too_long", {"specialty": "x" * 101}, "specialty", "at most 100 characters"),
    ("nul_in_specialty", {"specialty": "Pediatr\x00a"}, "specialty", "NUL"),
    ("user_id_not_a_uuid", {"user_id": "doctor-1"}, "user_id", "valid UUID"),
    ("extra_unknown_field", {"room": "3B"}, "room", "Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("fields", "field", "words"), [c[1:] for c in BAD_INPUT],
                         ids=[c[0] for c in BAD_INPUT])
async def test_adding_a_provider_refuses_bad_input_naming_the_field_and_saves_nothing(
    client: httpx.AsyncClient, factory: Factory, fields: dict[str, Any], field: str,
    words: str,
) -> None:
    clinic, headers = admin(factory)
    before = counts(factory, clinic)
    response = await client.post(PROVIDERS, headers=headers,
                                 json={"display_name": "Dr. Soto", **fields})
    error = expect_error(response, 422, "invalid_input")
    assert f"{field}:" in error["message"]
    assert words in error["message"]
    assert field in [f["field"] for f in error["details"]["fields"]]
    assert counts(factory, clinic) == before


async def test_adding_a_provider_without_a_name_says_it_is_required(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = admin(factory)
    response = await client.post(PROVIDERS, headers=headers, json={"specialty": "Pediatría"})
    error = expect_error(response, 422, "invalid_input")
    assert "display_name: Field required" in error["message"]
    assert factory.count(provider, clinic) == 2


@pytest.mark.parametrize("role", [r for r in Role if r != Role.DOCTOR])
async def test_linking_a_provider_to_a_non_doctor_account_is_refused(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, headers = admin(factory)
    before = counts(factory, clinic)
    response = await client.post(PROVIDERS, headers=headers, json={
        "display_name": "Dr. Soto", "user_id": str(clinic.users[role].id)})
    error = expect_error(response, 422, "user_not_doctor")
    assert error["details"] == {"field": "user_id"}
    assert "doctor" in error["message"]
    assert counts(factory, clinic) == before


async def test_linking_a_provider_to_an_unknown_account_is_refused_naming_the_id(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = admin(factory)
    before = counts(factory, clinic)
    unknown = uuid7()
    response = await client.post(PROVIDERS, headers=headers, json={
        "display_name": "Dr. Soto", "user_id": str(unknown)})
    error = expect_error(response, 422, "user_not_found")
    assert error["details"] == {"field": "user_id"}
    assert str(unknown) in error["message"]
    assert counts(factory, clinic) == before


async def test_linking_a_provider_to_another_clinics_doctor_is_refused_as_unknown(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = admin(factory)
    elsewhere = factory.clinic(patients=0, providers=0)
    before = counts(factory, clinic)
    response = await client.post(PROVIDERS, headers=headers, json={
        "display_name": "Dr. Soto", "user_id": str(elsewhere.users[Role.DOCTOR].id)})
    expect_error(response, 422, "user_not_found")
    assert counts(factory, clinic) == before


async def test_linking_a_provider_to_a_deleted_doctor_is_refused_as_unknown(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = admin(factory)
    gone = factory.user(clinic, Role.DOCTOR)
    factory.tombstone(staff_user, clinic, gone.id)
    before = counts(factory, clinic)
    response = await client.post(PROVIDERS, headers=headers, json={
        "display_name": "Dr. Soto", "user_id": str(gone.id)})
    expect_error(response, 422, "user_not_found")
    assert counts(factory, clinic) == before


@pytest.mark.parametrize("role", [r for r in Role if r != Role.ADMIN])
async def test_only_an_admin_may_add_providers(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic = factory.clinic(patients=0)
    before = counts(factory, clinic)
    response = await client.post(PROVIDERS, headers=factory.headers(clinic.users[role]),
                                 json={"display_name": "Dr. Soto"})
    error = expect_error(response, 403, "permission_denied")
    assert error["details"] == {"required_roles": ["admin"]}
    assert counts(factory, clinic) == before
