"""Patients over the API: registering, reading, changing and searching, the audit trail each
leaves, and how bad input is refused (with a message naming the field, and nothing saved).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import audit_event, patient
from sync_server.actions.patients import MRN_ATTEMPTS
from tests.conftest import make_client
from tests.factories import ClinicData, Factory, expect_error

PATIENTS = "/api/v1/patients"


def nunez(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "given_name": "Inés", "family_name": "Núñez Peña", "phone": "+56 9 8765 4321",
    }
    body.update(overrides)
    return body


async def register(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
                   ) -> dict[str, Any]:
    response = await client.post(PATIENTS, headers=headers, json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def search(client: httpx.AsyncClient, headers: dict[str, str], **params: Any
                 ) -> dict[str, Any]:
    response = await client.get(PATIENTS, headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def found_ids(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> list[str]:
    return [p["id"] for p in (await search(client, headers, q=q))["data"]]


def desk(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic = factory.clinic(patients=0)
    return clinic, factory.headers(clinic.users[Role.RECEPTIONIST])


# --- registering, reading, changing ------------------------------------------------------


async def test_register_stores_normalised_details_and_read_returns_them(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    created = await register(
        client, headers, **nunez(
            date_of_birth="1985-03-02", sex="female", email="Ines.Nunez@Example.CL",
            preferred_language="en", preferred_channels=["whatsapp", "sms"],
            address="  Av. Siempre Viva 742, Santiago  ",
        )
    )
    assert created["mrn"] == "P-000001"
    assert created["given_name"] == "Inés"
    assert created["family_name"] == "Núñez Peña"
    assert created["phone"] == "+56987654321"
    assert created["email"] == "ines.nunez@example.cl"
    assert created["address"] == "Av. Siempre Viva 742, Santiago"
    assert created["date_of_birth"] == "1985-03-02"
    assert created["preferred_channels"] == ["whatsapp", "sms"]
    assert created["server_version"] > 0

    read = await client.get(f"{PATIENTS}/{created['id']}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json() == created


async def test_register_numbers_records_in_sequence(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    first = await register(client, headers, **nunez())
    second = await register(client, headers, given_name="Ana", family_name="Muñoz")
    assert (first["mrn"], second["mrn"]) == ("P-000001", "P-000002")


async def test_phone_without_country_code_is_read_in_the_clinics_numbering_plan(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)  # factory clinics are in Chile
    created = await register(client, headers, **nunez(phone="9 8765 4321"))
    assert created["phone"] == "+56987654321"


async def test_blank_phone_is_stored_as_no_phone(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    created = await register(client, headers, **nunez(phone="   "))
    assert created["phone"] is None
    changed = await client.patch(f"{PATIENTS}/{created['id']}", headers=headers,
                                 json={"phone": "+56 9 8765 4321"})
    assert changed.json()["phone"] == "+56987654321"
    cleared = await client.patch(f"{PATIENTS}/{created['id']}", headers=headers,
                                 json={"phone": ""})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["phone"] is None


async def test_hand_typed_record_number_is_kept(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    created = await register(client, headers, **nunez(mrn="  H-2019/77 "))
    assert created["mrn"] == "H-2019/77"


async def test_automatic_record_number_skips_one_typed_by_hand(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    await register(client, headers, **nunez(mrn="P-000001"))
    automatic = await register(client, headers, given_name="Ana", family_name="Muñoz")
    assert automatic["mrn"] == "P-000002"


async def test_automatic_record_number_skips_a_long_run_typed_by_hand(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    # A clinic moving its paper records in types their numbers; the next automatic number
    # must still be found, not fail with "try again" for ever.
    clinic, headers = desk(factory)
    typed = MRN_ATTEMPTS + 10
    for n in range(1, typed + 1):
        factory.patient(clinic, given_name="Paper", family_name=f"Record {n}",
                        mrn=f"P-{n:06d}")
    automatic = await register(client, headers, given_name="Ana", family_name="Muñoz")
    assert automatic["mrn"] == f"P-{typed + 1:06d}"
    assert factory.count(patient, clinic) == typed + 1


async def test_update_changes_only_the_fields_sent_and_moves_the_version_on(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    created = await register(client, headers, **nunez(email="ines@example.cl"))
    response = await client.patch(
        f"{PATIENTS}/{created['id']}", headers=headers,
        json={"given_name": "Inés María", "phone": "+56 2 2345 6789",
              "expected_version": created["server_version"]},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["given_name"] == "Inés María"
    assert updated["phone"] == "+56223456789"
    assert updated["family_name"] == created["family_name"]
    assert updated["email"] == created["email"]
    assert updated["mrn"] == created["mrn"]
    assert updated["server_version"] > created["server_version"]
    assert updated["updated_at"] >= created["updated_at"]
    read = await client.get(f"{PATIENTS}/{created['id']}", headers=headers)
    assert read.json() == updated
    # The search text follows the change.
    assert await found_ids(client, headers, "6789") == [created["id"]]
    assert await found_ids(client, headers, "4321") == []
    assert await found_ids(client, headers, "ines maria") == [created["id"]]


async def test_update_with_null_clears_optional_fields_and_leaves_required_ones(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    created = await register(client, headers, **nunez(email="ines@example.cl",
                                                       date_of_birth="1985-03-02"))
    response = await client.patch(
        f"{PATIENTS}/{created['id']}", headers=headers,
        json={"phone": None, "email": None, "date_of_birth": None, "given_name": None,
              "sex": None},
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["phone"], updated["email"], updated["date_of_birth"]) == (None, None, None)
    assert updated["given_name"] == "Inés"
    assert updated["sex"] == created["sex"]


# --- search ------------------------------------------------------------------------------


async def test_search_ignores_accents_and_case(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    target = await register(client, headers, **nunez())
    await register(client, headers, given_name="Ana", family_name="Muñoz Rojas",
                   phone="+56 9 7123 4567")
    for q in ("nunez", "NUÑEZ", "Núñez", "NUNEZ", "núñez peña", "ines", "INÉS nunez", "nun"):
        assert await found_ids(client, headers, q) == [target["id"]], q
    assert await found_ids(client, headers, "nunez rojas") == []


async def test_search_finds_a_phone_in_the_forms_people_type_it(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    target = await register(client, headers, **nunez())
    await register(client, headers, given_name="Ana", family_name="Muñoz",
                   phone="+56 9 7123 4567")
    for q in ("+56987654321", "56987654321", "+56 9 8765 4321", "+56-9-8765-4321",
              "987654321", "9 8765 4321", "(9) 8765-4321", "4321", "98765"):
        assert await found_ids(client, headers, q) == [target["id"]], q


async def test_search_finds_a_record_number_with_or_without_its_prefix(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    first = await register(client, headers, **nunez())
    await register(client, headers, given_name="Ana", family_name="Muñoz")
    for q in ("P-000001", "p-000001", "P000001", "000001"):
        assert await found_ids(client, headers, q) == [first["id"]], q


async def test_search_pages_are_stable_and_never_repeat_a_patient(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    # Same names on purpose: the order must not depend on which row the database sees first.
    for _ in range(4):
        factory.patient(clinic, given_name="Ana", family_name="Rojas")
    for given, family in [("Luis", "Arce"), ("Eva", "Zúñiga"), ("Juan", "Rojas")]:
        factory.patient(clinic, given_name=given, family_name=family)
    everyone = [p["id"] for p in (await search(client, headers, limit=100))["data"]]
    assert sorted(everyone) == sorted(str(i) for i in clinic.patient_ids)

    for q, expected in ((None, everyone), ("rojas", everyone[1:6])):
        params: dict[str, Any] = {"limit": 2} if q is None else {"limit": 2, "q": q}
        for _attempt in range(2):  # the same walk twice gives the same pages
            seen: list[str] = []
            offset: int | None = 0
            while offset is not None:
                page = await search(client, headers, offset=offset, **params)
                assert len(page["data"]) <= 2
                assert page["has_more"] is (page["next_offset"] is not None)
                if page["has_more"]:
                    assert page["next_offset"] == offset + 2
                seen.extend(p["id"] for p in page["data"])
                offset = page["next_offset"]
            assert seen == expected
            assert len(set(seen)) == len(seen)


async def test_search_past_the_last_page_is_empty(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic = factory.clinic(patients=3)
    headers = factory.headers(clinic.users[Role.DOCTOR])
    page = await search(client, headers, offset=3)
    assert page == {"data": [], "has_more": False, "next_offset": None}


async def test_deleted_patients_are_neither_found_nor_readable_nor_changeable(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    kept = await register(client, headers, **nunez())
    gone = await register(client, headers, given_name="Inés", family_name="Núñez Soto",
                          phone="+56 9 7123 4567")
    factory.tombstone(patient, clinic, uuid.UUID(gone["id"]))
    assert await found_ids(client, headers, "nunez") == [kept["id"]]
    assert await found_ids(client, headers, "4567") == []
    assert [p["id"] for p in (await search(client, headers))["data"]] == [kept["id"]]
    expect_error(await client.get(f"{PATIENTS}/{gone['id']}", headers=headers),
                 404, "patient_not_found")
    expect_error(await client.patch(f"{PATIENTS}/{gone['id']}", headers=headers,
                                    json={"given_name": "Back"}), 404, "patient_not_found")


async def test_search_follows_a_rename_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _clinic, headers = desk(factory)
    created = await register(client, headers, **nunez())
    renamed = await client.patch(f"{PATIENTS}/{created['id']}", headers=headers,
                                 json={"family_name": "Valdés", "phone": "+56 9 6123 4567"})
    assert renamed.status_code == 200, renamed.text
    assert await found_ids(client, headers, "nunez") == []
    assert await found_ids(client, headers, "4321") == []
    assert await found_ids(client, headers, "valdes ines") == [created["id"]]
    assert await found_ids(client, headers, "4567") == [created["id"]]


async def test_patient_matching_a_prefix_twice_is_listed_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _clinic, headers = desk(factory)
    twice = await register(client, headers, given_name="Gonzalo", family_name="González")
    once = await register(client, headers, given_name="Ana", family_name="Gonzaga")
    page = await search(client, headers, q="gonz")
    assert [p["id"] for p in page["data"]] == [once["id"], twice["id"]]
    assert page["has_more"] is False


# --- audit -------------------------------------------------------------------------------


async def test_every_register_read_update_and_search_is_audited_with_actor_and_address(
    app: FastAPI, factory: Factory
) -> None:
    clinic = factory.clinic(patients=0)
    receptionist = clinic.users[Role.RECEPTIONIST]
    headers = factory.headers(receptionist)
    async with make_client(app, client_addr="10.88.0.1") as client:
        created = await register(client, headers, **nunez())
        patient_id = uuid.UUID(created["id"])
        assert (await client.get(f"{PATIENTS}/{patient_id}", headers=headers)).status_code == 200
        changed = await client.patch(f"{PATIENTS}/{patient_id}", headers=headers,
                                     json={"phone": "+56 2 2345 6789"})
        assert changed.status_code == 200
        await search(client, headers, q="nunez")

    events = factory.audit_events(clinic)
    assert [e.action for e in events] == [
        "patient.create", "patient.read", "patient.update", "patient.search",
    ]
    assert {(e.actor_user_id, e.client_addr, e.entity) for e in events} == {
        (receptionist.id, "10.88.0.1", "patient")
    }
    assert [e.entity_id for e in events[:3]] == [patient_id] * 3
    assert events[2].detail == {"fields": ["phone"]}
    assert events[3].detail == {"returned": [str(patient_id)], "offset": 0}
    # Ids and field names only: the trail must not become a second copy of the record.
    assert "Núñez" not in str([e.detail for e in events])
    assert "8765" not in str([e.detail for e in events])


# --- refused input -----------------------------------------------------------------------

TOMORROW = (date.today() + timedelta(days=1)).isoformat()  # noqa: DTZ011 - a calendar date

BAD_FIELDS = [
    # id, fields sent, field the message must name, words it must contain
    ("empty_given_name", {"given_name": ""}, "given_name", "at least 1 character"),
    ("blank_family_name", {"family_name": "   "}, "family_name", "at least 1 character"),
    ("name_too_long", {"family_name": "x" * 101}, "family_name", "at most 100 characters"),
    ("nul_in_name", {"given_name": "In\x00és"}, "given_name", "NUL"),
    ("birth_in_future", {"date_of_birth": TOMORROW}, "date_of_birth", "future"),
    ("birth_before_1900", {"date_of_birth": "1899-12-31"}, "date_of_birth", "1900-01-01"),
    ("malformed_birth_date", {"date_of_birth": "31/12/1990"}, "date_of_birth", "YYYY-MM-DD"),
    ("impossible_birth_date", {"date_of_birth": "1985-02-30"}, "date_of_birth", "valid date"),
    # A number would otherwise be read as a Unix timestamp and saved as 1970-01-01.
    ("birth_date_as_number", {"date_of_birth": 0}, "date_of_birth", "YYYY-MM-DD"),
    ("birth_date_as_digits", {"date_of_birth": "0"}, "date_of_birth", "YYYY-MM-DD"),
    ("invalid_email", {"email": "ines@"}, "email", "not a valid email"),
    ("unknown_sex", {"sex": "alien"}, "sex", "'female', 'male', 'other' or 'unknown'"),
    ("duplicate_channels", {"preferred_channels": ["sms", "sms"]}, "preferred_channels",
     "only once"),
    ("unknown_channel", {"preferred_channels": ["fax"]}, "preferred_channels.0", "'sms'"),
    ("unknown_language", {"preferred_language": "fr"}, "preferred_language", "'es'"),
    ("address_too_long", {"address": "x" * 301}, "address", "at most 300 characters"),
    ("nul_in_address", {"address": "Av. 1\x00"}, "address", "NUL"),
    ("extra_unknown_field", {"blood_type": "O+"}, "blood_type", "Extra inputs are not permitted"),
]
BAD_CREATE_ONLY = [
    ("malformed_mrn", {"mrn": "P 0001!"}, "mrn", "should match pattern"),
]
BAD_UPDATE_ONLY = [
    ("record_number_not_changeable", {"mrn": "P-999999"}, "mrn", "Extra inputs"),
    ("version_not_a_number", {"expected_version": "latest"}, "expected_version",
     "valid integer"),
]
BAD_PHONES = [("too_short", "12"), ("letters", "abc"), ("wrong_length", "+56 9 8765 43")]


def _ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [c[0] for c in cases]


def expect_field_error(response: httpx.Response, field: str, words: str) -> None:
    error = expect_error(response, 422, "invalid_input")
    assert f"{field}:" in error["message"]
    assert words in error["message"]
    assert field in [f["field"] for f in error["details"]["fields"]]


@pytest.mark.parametrize(("fields", "field", "words"),
                         [c[1:] for c in BAD_FIELDS + BAD_CREATE_ONLY],
                         ids=_ids(BAD_FIELDS + BAD_CREATE_ONLY))
async def test_register_refuses_bad_input_naming_the_field_and_saves_nothing(
    client: httpx.AsyncClient, factory: Factory, fields: dict[str, Any], field: str,
    words: str,
) -> None:
    clinic, headers = desk(factory)
    await register(client, headers, **nunez())
    before = (factory.count(patient, clinic), factory.count(audit_event, clinic))
    response = await client.post(PATIENTS, headers=headers, json=nunez(**fields))
    expect_field_error(response, field, words)
    assert (factory.count(patient, clinic), factory.count(audit_event, clinic)) == before


async def test_register_without_a_name_says_which_fields_are_required(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    response = await client.post(PATIENTS, headers=headers, json={"phone": "+56987654321"})
    error = expect_error(response, 422, "invalid_input")
    assert "given_name: Field required" in error["message"]
    assert "family_name: Field required" in error["message"]
    assert factory.count(patient, clinic) == 0


async def test_register_with_a_body_that_is_not_json_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    response = await client.post(PATIENTS, headers={**headers, "Content-Type": "application/json"},
                                 content=b'{"given_name": "In')
    error = expect_error(response, 422, "invalid_input")
    assert "JSON" in error["message"]
    assert factory.count(patient, clinic) == 0


@pytest.mark.parametrize("phone", [p for _, p in BAD_PHONES], ids=_ids(BAD_PHONES))
async def test_register_refuses_an_invalid_phone_and_says_how_to_write_one(
    client: httpx.AsyncClient, factory: Factory, phone: str
) -> None:
    clinic, headers = desk(factory)
    response = await client.post(PATIENTS, headers=headers, json=nunez(phone=phone))
    error = expect_error(response, 422, "invalid_phone")
    assert error["details"] == {"field": "phone"}
    assert f"'{phone}'" in error["message"]
    assert "area code" in error["message"]
    assert (factory.count(patient, clinic), factory.count(audit_event, clinic)) == (0, 0)


async def test_register_with_a_record_number_already_taken_conflicts_and_saves_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    await register(client, headers, **nunez(mrn="H-1"))
    before = (factory.count(patient, clinic), factory.count(audit_event, clinic))
    response = await client.post(PATIENTS, headers=headers,
                                 json={"given_name": "Ana", "family_name": "Muñoz", "mrn": "H-1"})
    error = expect_error(response, 409, "mrn_taken")
    assert error["details"] == {"field": "mrn"}
    assert "H-1" in error["message"]
    assert "Leave it empty" in error["message"]
    assert (factory.count(patient, clinic), factory.count(audit_event, clinic)) == before
    # The automatic numbering did not move on either.
    assert (await register(client, headers, given_name="Ana", family_name="Muñoz"))["mrn"] == (
        "P-000001"
    )


@pytest.mark.parametrize(("fields", "field", "words"),
                         [c[1:] for c in BAD_FIELDS + BAD_UPDATE_ONLY],
                         ids=_ids(BAD_FIELDS + BAD_UPDATE_ONLY))
async def test_update_refuses_bad_input_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, fields: dict[str, Any], field: str,
    words: str,
) -> None:
    clinic, headers = desk(factory)
    patient_id = uuid.UUID((await register(client, headers, **nunez()))["id"])
    before = (factory.row(patient, clinic, patient_id), factory.count(audit_event, clinic))
    response = await client.patch(f"{PATIENTS}/{patient_id}", headers=headers, json=fields)
    expect_field_error(response, field, words)
    assert (factory.row(patient, clinic, patient_id), factory.count(audit_event, clinic)) == (
        before
    )


@pytest.mark.parametrize("phone", [p for _, p in BAD_PHONES], ids=_ids(BAD_PHONES))
async def test_update_refuses_an_invalid_phone_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory, phone: str
) -> None:
    clinic, headers = desk(factory)
    patient_id = uuid.UUID((await register(client, headers, **nunez()))["id"])
    before = (factory.row(patient, clinic, patient_id), factory.count(audit_event, clinic))
    response = await client.patch(f"{PATIENTS}/{patient_id}", headers=headers,
                                  json={"phone": phone})
    error = expect_error(response, 422, "invalid_phone")
    assert error["details"] == {"field": "phone"}
    assert (factory.row(patient, clinic, patient_id), factory.count(audit_event, clinic)) == (
        before
    )


async def test_update_from_a_stale_version_conflicts_and_changes_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = desk(factory)
    created = await register(client, headers, **nunez())
    url = f"{PATIENTS}/{created['id']}"
    first = await client.patch(url, headers=headers, json={
        "phone": "+56 2 2345 6789", "expected_version": created["server_version"]})
    assert first.status_code == 200, first.text
    current = first.json()["server_version"]
    before = (factory.row(patient, clinic, uuid.UUID(created["id"])),
              factory.count(audit_event, clinic))

    second = await client.patch(url, headers=headers, json={
        "given_name": "Inés María", "expected_version": created["server_version"]})
    error = expect_error(second, 409, "stale_version")
    assert error["details"] == {"current_version": current}
    assert "Reload" in error["message"]
    assert (factory.row(patient, clinic, uuid.UUID(created["id"])),
            factory.count(audit_event, clinic)) == before


async def test_update_of_an_unknown_patient_is_not_found(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = desk(factory)
    unknown = uuid7()
    error = expect_error(
        await client.patch(f"{PATIENTS}/{unknown}", headers=headers, json={"given_name": "A"}),
        404, "patient_not_found",
    )
    assert str(unknown) in error["message"]
    expect_error(await client.get(f"{PATIENTS}/{unknown}", headers=headers),
                 404, "patient_not_found")


@pytest.mark.parametrize("method", ["GET", "PATCH"])
async def test_patient_id_that_is_not_a_uuid_is_refused_naming_the_parameter(
    client: httpx.AsyncClient, factory: Factory, method: str
) -> None:
    _, headers = desk(factory)
    response = await client.request(method, f"{PATIENTS}/P-000001", headers=headers,
                                    json={"given_name": "A"} if method == "PATCH" else None)
    expect_field_error(response, "patient_id", "valid UUID")


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 1000}, "limit"), ({"limit": "ten"}, "limit"),
    ({"offset": -1}, "offset"), ({"q": "x" * 101}, "q"),
], ids=["limit_0", "limit_1000", "limit_not_a_number", "negative_offset", "query_too_long"])
async def test_search_refuses_paging_and_query_out_of_range_naming_the_parameter(
    client: httpx.AsyncClient, factory: Factory, params: dict[str, Any], field: str
) -> None:
    clinic, headers = desk(factory)
    response = await client.get(PATIENTS, headers=headers, params=params)
    error = expect_error(response, 422, "invalid_input")
    assert f"{field}:" in error["message"]
    assert factory.count(audit_event, clinic) == 0
