"""The pharmacy directory: every staff member finds a pharmacy by name, address or registry
number whatever the accents and case, the best match first; only the admin adds and
changes entries (one registry number each, phones in E.164) and links pharmacists."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import pharmacy, staff_user
from tests.factories import ClinicData, Factory, expect_error

PHARMACIES = "/api/v1/pharmacies"
SEARCH = f"{PHARMACIES}/search"


def _admin(factory: Factory, clinic: ClinicData) -> dict[str, str]:
    return factory.headers(clinic.users[Role.ADMIN])


def _directory(factory: Factory) -> tuple[ClinicData, dict[str, uuid.UUID]]:
    clinic = factory.clinic(patients=0, providers=0)
    names = {
        "nunoa": ("Farmacia Ñuñoa", "REG-1001"),
        "central": ("Botica Central", "REG-2002"),
        "salud": ("Salud y Vida", "A-77"),
        "closed": ("Farmacia Cerrada", "REG-3003"),
    }
    ids = {key: factory.pharmacy(clinic, name=name, registry_number=number,
                                 active=key != "closed")
           for key, (name, number) in names.items()}
    return clinic, ids


async def _search(client: httpx.AsyncClient, headers: dict[str, str], q: str,
                  **params: Any) -> list[str]:
    response = await client.get(SEARCH, headers=headers, params={"q": q, **params})
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["data"]]


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_finds_a_pharmacy_by_its_name_whatever_the_accents(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, _ = _directory(factory)
    headers = factory.headers(clinic.users[role])
    for q in ("ñuñoa", "NUNOA", "Nuñoa", "farmacia nu"):
        assert await _search(client, headers, q) == ["Farmacia Ñuñoa"], q


async def test_a_pharmacy_is_found_by_address_or_registry_number_best_match_first(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, ids = _directory(factory)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    # The factory puts every pharmacy on Av. Providencia; the switched-off one never shows.
    assert await _search(client, headers, "providencia") == [
        "Botica Central", "Farmacia Ñuñoa", "Salud y Vida"]
    assert await _search(client, headers, "reg-2002") == ["Botica Central"]
    assert await _search(client, headers, "REG 2002") == ["Botica Central"]
    assert await _search(client, headers, "a77") == ["Salud y Vida"]
    # "far" starts a name and sits inside another's words: the name that starts with it first.
    factory.pharmacy(clinic, name="Droguería La Farola", registry_number="B-1")
    assert await _search(client, headers, "far") == ["Farmacia Ñuñoa", "Droguería La Farola"]
    # An exact registry number beats a name that starts with the same text.
    factory.pharmacy(clinic, name="A-77 Express", registry_number="Z-9")
    assert await _search(client, headers, "A-77") == ["Salud y Vida", "A-77 Express"]
    assert await _search(client, headers, "zzz") == []
    assert ids  # the directory the assertions ran on


async def test_an_empty_query_lists_the_first_pharmacies_by_name_within_the_limit(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, _ = _directory(factory)
    headers = factory.headers(clinic.users[Role.RECEPTIONIST])
    assert await _search(client, headers, "") == [
        "Botica Central", "Farmacia Ñuñoa", "Salud y Vida"]
    assert await _search(client, headers, "", limit=2) == ["Botica Central", "Farmacia Ñuñoa"]
    assert await _search(client, headers, "  ", limit=1) == ["Botica Central"]
    admin = _admin(factory, clinic)
    assert "Farmacia Cerrada" in await _search(client, admin, "", include_inactive=True)
    assert "Farmacia Cerrada" not in await _search(client, headers, "", include_inactive=True)
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "many"}, {"q": "x" * 201}):
        expect_error(await client.get(SEARCH, headers=headers, params=bad), 422,
                     "invalid_input")
    elsewhere = factory.clinic(patients=0, providers=0)
    assert await _search(client, factory.headers(elsewhere.users[Role.DOCTOR]), "") == []
    expect_error(await client.get(SEARCH), 401, "not_authenticated")


async def test_the_admin_adds_a_pharmacy_with_its_phone_in_international_form(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    response = await client.post(PHARMACIES, headers=_admin(factory, clinic), json={
        "name": "  Farmacia del Puerto ", "address": "Blanco 1100, Valparaíso",
        "registry_number": "V-555", "phone": "32 212 3456"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["name"], created["phone"], created["is_active"]) == (
        "Farmacia del Puerto", "+56322123456", True)
    assert factory.row(pharmacy, clinic, uuid.UUID(created["id"]))["registry_number"] == "V-555"
    assert [e.entity_id for e in factory.audit_events(clinic, action="pharmacy.create")] == [
        uuid.UUID(created["id"])]


async def test_a_new_pharmacy_with_bad_input_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    factory.pharmacy(clinic, name="Farmacia Uno", registry_number="REG-1")
    admin = _admin(factory, clinic)
    good = {"name": "Farmacia Dos", "address": "Av. Matta 10", "registry_number": "REG-2"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "registry_number": "reg-1"}, 409, "registry_number_taken"),
        ({**good, "phone": "12"}, 422, "invalid_phone"),
        ({**good, "phone": "not a phone"}, 422, "invalid_phone"),
        ({k: v for k, v in good.items() if k != "name"}, 422, "invalid_input"),
        ({**good, "name": "F\x00"}, 422, "invalid_input"),
        ({**good, "registry_number": "#1"}, 422, "invalid_input"),
        ({**good, "is_active": False}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        expect_error(await client.post(PHARMACIES, headers=admin, json=body), status, code)
    for role in (Role.DOCTOR, Role.RECEPTIONIST, Role.PHARMACIST):
        expect_error(await client.post(PHARMACIES, headers=factory.headers(clinic.users[role]),
                                       json=good), 403, "permission_denied")
    assert factory.count(pharmacy, clinic) == 1


async def test_the_admin_changes_a_pharmacy_and_switches_it_off(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    place = factory.pharmacy(clinic, name="Farmacia Antigua", registry_number="OLD-1")
    admin = _admin(factory, clinic)
    before = factory.row(pharmacy, clinic, place)
    response = await client.patch(f"{PHARMACIES}/{place}", headers=admin,
                                  json={"address": "Calle Nueva 5", "phone": None})
    assert response.status_code == 200, response.text
    assert (response.json()["address"], response.json()["phone"]) == ("Calle Nueva 5", None)
    assert response.json()["server_version"] > before["server_version"]
    off = await client.patch(f"{PHARMACIES}/{place}", headers=admin, json={"is_active": False})
    assert off.json()["is_active"] is False
    doctor = factory.headers(clinic.users[Role.DOCTOR])
    assert await _search(client, doctor, "antigua") == []
    same = await client.patch(f"{PHARMACIES}/{place}", headers=admin, json={"is_active": False})
    assert same.json() == off.json()  # nothing to change, nothing written
    assert len(factory.audit_events(clinic, action="pharmacy.update")) == 2


async def test_a_bad_change_to_a_pharmacy_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    factory.pharmacy(clinic, name="Farmacia Otra", registry_number="TAKEN-1")
    place = factory.pharmacy(clinic, name="Farmacia Mía", registry_number="MINE-1")
    admin = _admin(factory, clinic)
    before = factory.row(pharmacy, clinic, place)
    url = f"{PHARMACIES}/{place}"
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"registry_number": "taken-1"}, 409, "registry_number_taken"),
        ({"name": None}, 422, "required_field"),
        ({"is_active": None}, 422, "required_field"),
        ({"phone": "123"}, 422, "invalid_phone"),
        ({"name": "x"}, 422, "invalid_input"),
        ({"owner": "me"}, 422, "invalid_input"),
    ]
    for body, status, code in cases:
        expect_error(await client.patch(url, headers=admin, json=body), status, code)
    expect_error(await client.patch(f"{PHARMACIES}/{uuid7()}", headers=admin,
                                    json={"name": "Nueva"}), 404, "pharmacy_not_found")
    expect_error(await client.patch(url, headers=factory.headers(clinic.users[Role.DOCTOR]),
                                    json={"name": "Nueva"}), 403, "permission_denied")
    assert factory.row(pharmacy, clinic, place) == before


async def test_the_admin_links_a_pharmacist_and_only_a_pharmacist_to_a_pharmacy(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0, providers=0)
    place = factory.pharmacy(clinic)
    closed = factory.pharmacy(clinic, active=False)
    admin = _admin(factory, clinic)
    pharmacist = clinic.users[Role.PHARMACIST]
    url = f"{PHARMACIES}/{place}/pharmacists/{pharmacist.id}"
    response = await client.put(url, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == {"user_id": str(pharmacist.id), "full_name": "pharmacist user",
                               "pharmacy_id": str(place)}
    assert factory.row(staff_user, clinic, pharmacist.id)["pharmacy_id"] == place
    assert (await client.put(url, headers=admin)).json() == response.json()
    assert len(factory.audit_events(clinic, action="pharmacy.link_pharmacist")) == 1
    doctor = clinic.users[Role.DOCTOR]
    error = expect_error(await client.put(f"{PHARMACIES}/{place}/pharmacists/{doctor.id}",
                                          headers=admin), 422, "not_a_pharmacist")
    assert "doctor" in error["message"]
    expect_error(await client.put(f"{PHARMACIES}/{place}/pharmacists/{uuid7()}",
                                  headers=admin), 404, "user_not_found")
    expect_error(await client.put(f"{PHARMACIES}/{uuid7()}/pharmacists/{pharmacist.id}",
                                  headers=admin), 404, "pharmacy_not_found")
    expect_error(await client.put(f"{PHARMACIES}/{closed}/pharmacists/{pharmacist.id}",
                                  headers=admin), 409, "pharmacy_inactive")
    expect_error(await client.put(url, headers=factory.headers(pharmacist)), 403,
                 "permission_denied")
    expect_error(await client.put(f"{PHARMACIES}/{place}/pharmacists/someone", headers=admin),
                 422, "invalid_input")
    assert factory.row(staff_user, clinic, doctor.id)["pharmacy_id"] is None
    assert factory.row(staff_user, clinic, pharmacist.id)["pharmacy_id"] == place
