"""Providers' weekly hours, exceptions (time off, closures, extra hours) and the clinic's
booking policy over the API: what an admin adds, lists and removes, the audit trail, bad
input refused naming the problem with nothing written, and no writes for other roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared_models.enums import Role
from shared_models.tables import audit_event, availability_exception, availability_rule, clinic
from tests.factories import ClinicData, Factory, expect_error

EXCEPTIONS = "/api/v1/availability-exceptions"
POLICY = "/api/v1/clinic/booking-policy"


def rules_path(provider_id: uuid.UUID) -> str:
    return f"/api/v1/providers/{provider_id}/availability-rules"


def admin(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic_data = factory.clinic(patients=0, providers=2)
    return clinic_data, factory.headers(clinic_data.users[Role.ADMIN])


def counts(factory: Factory, clinic_data: ClinicData) -> tuple[int, int, int]:
    return (factory.count(availability_rule, clinic_data),
            factory.count(availability_exception, clinic_data),
            factory.count(audit_event, clinic_data))


def monday_morning(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"weekday": 0, "start_time": "09:00", "end_time": "13:00",
                            "slot_minutes": 30}
    body.update(overrides)
    return body


# One "now" for the module, so two calls of `ahead` with the same arguments agree even
# when a second ticks over between them.
_NOW = datetime.now(UTC).replace(microsecond=0)


def ahead(days: float, hours: float = 0) -> str:
    return (_NOW + timedelta(days=days, hours=hours)).isoformat()


# --- weekly rules --------------------------------------------------------------------------


async def test_admin_adds_lists_and_removes_weekly_rules_each_change_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    provider_id = clinic_data.provider_ids[0]
    afternoon = await client.post(rules_path(provider_id), headers=headers, json={
        "weekday": 2, "start_time": "14:00", "end_time": "18:00", "slot_minutes": 20,
        "buffer_minutes": 5, "break_start": "16:00", "break_end": "16:30",
        "valid_from": "2027-01-01", "valid_until": "2027-06-30"})
    assert afternoon.status_code == 201, afternoon.text
    assert afternoon.json() == {
        "id": afternoon.json()["id"], "provider_id": str(provider_id), "weekday": 2,
        "start_time": "14:00:00", "end_time": "18:00:00", "slot_minutes": 20,
        "buffer_minutes": 5, "break_start": "16:00:00", "break_end": "16:30:00",
        "valid_from": "2027-01-01", "valid_until": "2027-06-30"}
    morning = await client.post(rules_path(provider_id), headers=headers, json=monday_morning())
    assert morning.status_code == 201, morning.text
    assert morning.json()["buffer_minutes"] == 0
    assert morning.json()["break_start"] is None

    # Any staff member may read them, ordered by weekday.
    listed = await client.get(rules_path(provider_id),
                              headers=factory.headers(clinic_data.users[Role.RECEPTIONIST]))
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == [morning.json(), afternoon.json()]
    other = await client.get(rules_path(clinic_data.provider_ids[1]), headers=headers)
    assert other.json()["data"] == []

    removed = await client.delete(f"{rules_path(provider_id)}/{morning.json()['id']}",
                                  headers=headers)
    assert removed.status_code == 204, removed.text
    listed = await client.get(rules_path(provider_id), headers=headers)
    assert listed.json()["data"] == [afternoon.json()]
    again = await client.delete(f"{rules_path(provider_id)}/{morning.json()['id']}",
                                headers=headers)
    expect_error(again, 404, "rule_not_found")

    events = factory.audit_events(clinic_data)
    assert [(e.action, str(e.entity_id)) for e in events] == [
        ("availability_rule.create", afternoon.json()["id"]),
        ("availability_rule.create", morning.json()["id"]),
        ("availability_rule.delete", morning.json()["id"]),
    ]
    assert {e.actor_user_id for e in events} == {clinic_data.users[Role.ADMIN].id}


async def test_a_rule_is_removed_only_through_its_own_provider(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    first, second = clinic_data.provider_ids
    created = await client.post(rules_path(first), headers=headers, json=monday_morning())
    wrong = await client.delete(f"{rules_path(second)}/{created.json()['id']}",
                                headers=headers)
    expect_error(wrong, 404, "rule_not_found")
    assert len((await client.get(rules_path(first), headers=headers)).json()["data"]) == 1


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"start_time": "13:00", "end_time": "09:00"}, "request",
     "end_time must be after start_time"),
    ({"end_time": "09:00"}, "request", "end_time must be after start_time"),
    ({"break_start": "12:30", "break_end": "13:30"}, "request",
     "the break must lie inside the working hours"),
    ({"break_start": "11:00", "break_end": "10:00"}, "request",
     "the break must lie inside the working hours"),
    ({"break_start": "11:00"}, "request", "give both break_start and break_end"),
    ({"break_end": "11:00"}, "request", "give both break_start and break_end"),
    ({"valid_from": "2027-02-01", "valid_until": "2027-01-01"}, "request",
     "valid_until must not be before valid_from"),
    ({"weekday": 7}, "weekday", "less than or equal to 6"),
    ({"weekday": -1}, "weekday", "greater than or equal to 0"),
    ({"slot_minutes": 0}, "slot_minutes", "greater than or equal to 5"),
    ({"slot_minutes": 481}, "slot_minutes", "less than or equal to 480"),
    ({"buffer_minutes": -5}, "buffer_minutes", "greater than or equal to 0"),
    ({"start_time": "9 o'clock"}, "start_time", "time"),
    ({"provider_id": "x"}, "provider_id", "Extra inputs are not permitted"),
])
async def test_a_bad_weekly_rule_is_refused_naming_the_problem_and_nothing_is_written(
    client: httpx.AsyncClient, factory: Factory, change: dict[str, Any], field: str,
    problem: str,
) -> None:
    clinic_data, headers = admin(factory)
    before = counts(factory, clinic_data)
    response = await client.post(rules_path(clinic_data.provider_ids[0]), headers=headers,
                                 json=monday_morning(**change))
    error = expect_error(response, 422, "invalid_input")
    [reported] = error["details"]["fields"]
    assert reported["field"] == field
    assert problem in reported["message"]
    assert problem in error["message"]
    assert counts(factory, clinic_data) == before


async def test_rules_of_an_unknown_or_another_clinics_provider_are_not_found(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    other, _ = admin(factory)
    before = counts(factory, clinic_data), counts(factory, other)
    for provider_id in (uuid.uuid4(), other.provider_ids[0]):
        expect_error(await client.post(rules_path(provider_id), headers=headers,
                                       json=monday_morning()), 404, "provider_not_found")
        expect_error(await client.get(rules_path(provider_id), headers=headers), 404,
                     "provider_not_found")
    assert (counts(factory, clinic_data), counts(factory, other)) == before


# --- exceptions: time off, closures, extra hours -------------------------------------------


async def test_admin_adds_lists_and_removes_time_off_closures_and_extra_hours(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    provider_id = str(clinic_data.provider_ids[0])
    bodies = [
        {"kind": "extra_hours", "provider_id": provider_id, "slot_minutes": 20,
         "starts_at": ahead(3), "ends_at": ahead(3, 2)},
        {"kind": "time_off", "provider_id": provider_id, "starts_at": ahead(1),
         "ends_at": ahead(2), "reason": "  Congress  "},
        {"kind": "time_off", "starts_at": ahead(2), "ends_at": ahead(2, 8),
         "reason": "Clinic closed for the holiday"},
    ]
    created = []
    for body in bodies:
        response = await client.post(EXCEPTIONS, headers=headers, json=body)
        assert response.status_code == 201, response.text
        created.append(response.json())
    extra, time_off, closure = created
    assert (extra["kind"], extra["provider_id"], extra["slot_minutes"]) == (
        "extra_hours", provider_id, 20)
    assert (time_off["kind"], time_off["reason"], time_off["slot_minutes"]) == (
        "time_off", "Congress", None)
    assert closure["provider_id"] is None
    assert datetime.fromisoformat(closure["starts_at"]) == datetime.fromisoformat(ahead(2))

    window = {"start": ahead(0), "end": ahead(10)}
    listed = await client.get(EXCEPTIONS, headers=factory.headers(
        clinic_data.users[Role.DOCTOR]), params=window)
    assert listed.status_code == 200, listed.text
    assert listed.json()["data"] == [time_off, closure, extra]  # by start
    later = await client.get(EXCEPTIONS, headers=headers,
                             params={"start": ahead(2, 9), "end": ahead(10)})
    assert later.json()["data"] == [extra]

    removed = await client.delete(f"{EXCEPTIONS}/{closure['id']}", headers=headers)
    assert removed.status_code == 204, removed.text
    listed = await client.get(EXCEPTIONS, headers=headers, params=window)
    assert listed.json()["data"] == [time_off, extra]
    expect_error(await client.delete(f"{EXCEPTIONS}/{closure['id']}", headers=headers), 404,
                 "exception_not_found")
    assert [e.action for e in factory.audit_events(clinic_data)] == [
        "availability_exception.create"] * 3 + ["availability_exception.delete"]


async def test_another_clinics_exceptions_are_neither_listed_nor_removable(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = admin(factory)
    other, other_headers = admin(factory)
    theirs = await client.post(EXCEPTIONS, headers=other_headers, json={
        "kind": "time_off", "starts_at": ahead(1), "ends_at": ahead(2)})
    assert theirs.status_code == 201, theirs.text
    listed = await client.get(EXCEPTIONS, headers=headers,
                              params={"start": ahead(0), "end": ahead(5)})
    assert listed.json()["data"] == []
    expect_error(await client.delete(f"{EXCEPTIONS}/{theirs.json()['id']}", headers=headers),
                 404, "exception_not_found")
    assert factory.count(availability_exception, other) == 1


@pytest.mark.parametrize(("change", "field", "problem"), [
    ({"kind": "extra_hours", "slot_minutes": 30}, "request",
     "extra hours need a provider_id and a slot_minutes"),
    ({"kind": "extra_hours", "provider_id": "PROVIDER"}, "request",
     "extra hours need a provider_id and a slot_minutes"),
    ({"ends_at": ahead(1)}, "request", "ends_at must be after starts_at"),
    ({"ends_at": ahead(0)}, "request", "ends_at must be after starts_at"),
    ({"starts_at": "2030-01-01T09:00:00"}, "starts_at", "timezone"),
    ({"ends_at": "soon"}, "ends_at", "datetime"),
    ({"kind": "holiday"}, "kind", "'time_off' or 'extra_hours'"),
    ({"slot_minutes": 4, "kind": "extra_hours", "provider_id": "PROVIDER"}, "slot_minutes",
     "greater than or equal to 5"),
    ({"reason": "x" * 201}, "reason", "at most 200 characters"),
    ({"all_day": True}, "all_day", "Extra inputs are not permitted"),
])
async def test_a_bad_exception_is_refused_naming_the_problem_and_nothing_is_written(
    client: httpx.AsyncClient, factory: Factory, change: dict[str, Any], field: str,
    problem: str,
) -> None:
    clinic_data, headers = admin(factory)
    body: dict[str, Any] = {"kind": "time_off", "starts_at": ahead(1), "ends_at": ahead(1, 4)}
    body.update(change)
    if body.get("provider_id") == "PROVIDER":
        body["provider_id"] = str(clinic_data.provider_ids[0])
    before = counts(factory, clinic_data)
    error = expect_error(await client.post(EXCEPTIONS, headers=headers, json=body), 422,
                         "invalid_input")
    [reported] = error["details"]["fields"]
    assert reported["field"] == field
    assert problem in reported["message"]
    assert counts(factory, clinic_data) == before


async def test_an_exception_for_an_unknown_or_another_clinics_provider_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    other, _ = admin(factory)
    before = counts(factory, clinic_data)
    for provider_id in (uuid.uuid4(), other.provider_ids[0]):
        for extra in ({"kind": "time_off"}, {"kind": "extra_hours", "slot_minutes": 30}):
            response = await client.post(EXCEPTIONS, headers=headers, json={
                **extra, "provider_id": str(provider_id), "starts_at": ahead(1),
                "ends_at": ahead(1, 2)})
            error = expect_error(response, 422, "provider_not_found")
            assert error["details"] == {"field": "provider_id"}
    assert counts(factory, clinic_data) == before


async def test_listing_exceptions_refuses_a_bad_window(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    _, headers = admin(factory)
    expect_error(await client.get(EXCEPTIONS, headers=headers,
                                  params={"start": ahead(2), "end": ahead(1)}),
                 422, "invalid_window")
    expect_error(await client.get(EXCEPTIONS, headers=headers,
                                  params={"start": ahead(0), "end": ahead(63)}),
                 422, "window_too_long")
    error = expect_error(await client.get(EXCEPTIONS, headers=headers,
                                          params={"start": "2030-01-01T00:00:00",
                                                  "end": ahead(1)}),
                         422, "invalid_input")
    assert [f["field"] for f in error["details"]["fields"]] == ["start"]


# --- the booking policy --------------------------------------------------------------------


async def test_every_role_reads_the_booking_policy_with_the_clinics_defaults(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data = factory.clinic(patients=0, providers=0, timezone="America/Mexico_City")
    for role in Role:
        response = await client.get(POLICY, headers=factory.headers(clinic_data.users[role]))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "clinic_id": str(clinic_data.id), "timezone": "America/Mexico_City",
            "booking_horizon_days": 60, "min_notice_minutes": 60,
            "cancel_cutoff_minutes": 120}


async def test_admin_updates_only_the_policy_values_given_and_it_is_audited(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    changed = await client.patch(POLICY, headers=headers, json={"booking_horizon_days": 14,
                                                                "min_notice_minutes": 0})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["booking_horizon_days"], changed.json()["min_notice_minutes"],
            changed.json()["cancel_cutoff_minutes"]) == (14, 0, 120)
    again = await client.patch(POLICY, headers=headers, json={"cancel_cutoff_minutes": 1440})
    assert (again.json()["booking_horizon_days"], again.json()["min_notice_minutes"],
            again.json()["cancel_cutoff_minutes"]) == (14, 0, 1440)
    assert (await client.get(POLICY, headers=headers)).json() == again.json()
    events = factory.audit_events(clinic_data, action="clinic.policy")
    assert [e.detail for e in events] == [
        {"booking_horizon_days": 14, "min_notice_minutes": 0},
        {"cancel_cutoff_minutes": 1440}]
    assert {e.entity_id for e in events} == {clinic_data.id}


async def test_an_empty_policy_update_changes_nothing_and_audits_nothing(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic_data, headers = admin(factory)
    before = counts(factory, clinic_data)
    response = await client.patch(POLICY, headers=headers, json={})
    assert response.status_code == 200, response.text
    assert response.json()["booking_horizon_days"] == 60
    assert counts(factory, clinic_data) == before


@pytest.mark.parametrize(("change", "field"), [
    ({"booking_horizon_days": 0}, "booking_horizon_days"),
    ({"booking_horizon_days": 731}, "booking_horizon_days"),
    ({"min_notice_minutes": -1}, "min_notice_minutes"),
    ({"min_notice_minutes": 10_081}, "min_notice_minutes"),
    ({"cancel_cutoff_minutes": -1}, "cancel_cutoff_minutes"),
    ({"cancel_cutoff_minutes": 10_081}, "cancel_cutoff_minutes"),
    ({"booking_horizon_days": "a month"}, "booking_horizon_days"),
    ({"timezone": "Europe/Madrid"}, "timezone"),
])
async def test_an_out_of_range_policy_value_is_refused_naming_it_and_nothing_changes(
    client: httpx.AsyncClient, factory: Factory, change: dict[str, Any], field: str
) -> None:
    clinic_data, headers = admin(factory)
    before = factory.row(clinic, clinic_data, clinic_data.id), counts(factory, clinic_data)
    # A valid value sent along with the bad one is not applied either.
    body = {"booking_horizon_days": 30, "min_notice_minutes": 30, **change}
    response = await client.patch(POLICY, headers=headers, json=body)
    error = expect_error(response, 422, "invalid_input")
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert field in error["message"]
    assert (factory.row(clinic, clinic_data, clinic_data.id), counts(factory, clinic_data)
            ) == before


# --- only admins write ---------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.DOCTOR, Role.LAB_TECH,
                                  Role.PHARMACIST])
async def test_staff_other_than_admins_cannot_change_hours_exceptions_or_policy(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic_data, admin_headers = admin(factory)
    provider_id = clinic_data.provider_ids[0]
    rule = await client.post(rules_path(provider_id), headers=admin_headers,
                             json=monday_morning())
    exception = await client.post(EXCEPTIONS, headers=admin_headers, json={
        "kind": "time_off", "starts_at": ahead(1), "ends_at": ahead(2)})
    assert (rule.status_code, exception.status_code) == (201, 201)
    before = counts(factory, clinic_data), factory.row(clinic, clinic_data, clinic_data.id)

    headers = factory.headers(clinic_data.users[role])
    attempts = [
        client.post(rules_path(provider_id), headers=headers,
                    json=monday_morning(weekday=1)),
        client.delete(f"{rules_path(provider_id)}/{rule.json()['id']}", headers=headers),
        client.post(EXCEPTIONS, headers=headers, json={
            "kind": "time_off", "starts_at": ahead(3), "ends_at": ahead(4)}),
        client.delete(f"{EXCEPTIONS}/{exception.json()['id']}", headers=headers),
        client.patch(POLICY, headers=headers, json={"booking_horizon_days": 5}),
    ]
    for attempt in attempts:
        error = expect_error(await attempt, 403, "permission_denied")
        assert error["details"] == {"required_roles": ["admin"]}
        assert f"Your role ({role.value}) cannot do this" in error["message"]
    assert (counts(factory, clinic_data),
            factory.row(clinic, clinic_data, clinic_data.id)) == before
