"""A clinic's reminder policy over the API: the defaults, saving it (admins only), refusing
bad input with a message that says what to fix and nothing saved, the clinic's own text
in the SMS the dispatcher sends, applying to later bookings only, one policy per clinic,
and the audit trail."""

from __future__ import annotations

from datetime import UTC, timedelta
from datetime import time as wall
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shared_models.enums import Role
from shared_models.tables import reminder_policy
from sync_server.actions.clinics import scope
from sync_server.reminders.dispatcher import Dispatcher
from tests.factories import Factory, expect_error
from tests.fakes.text_provider import TextProvider
from tests.sync_server.reminders.conftest import PUBLIC_URL, Clinic, slot

POLICY = "/api/v1/reminders/policy"
DEFAULTS = {
    "offsets_minutes": [1440, 120], "quiet_start": "21:00:00", "quiet_end": "08:00:00",
    "templates": {kind: {"es": None, "en": None}
                  for kind in ("reminder", "rescheduled", "cancelled")},
}
CUSTOM = {"offsets_minutes": [60, 2880, 1440], "quiet_start": "22:30", "quiet_end": "07:15",
          "templates": {"reminder": {"es": "{clinic}: {patient}, su hora es el {date} a las "
                                           "{time} con {provider}. 1=confirma, 2=cancela"}}}


def stored(factory: Factory, clinic: Clinic) -> dict[str, Any] | None:
    """The clinic's policy row as stored (read as the owner, who sees every clinic's),
    without the time it was saved."""
    with factory.engine.begin() as conn:
        scope(conn, clinic.data.id)
        row = conn.execute(select(reminder_policy).where(
            reminder_policy.c.clinic_id == clinic.data.id)).first()
    return None if row is None else {k: v for k, v in row._mapping.items()
                                     if k != "updated_at"}


async def put(clinic: Clinic, body: dict[str, Any], role: Role = Role.ADMIN) -> httpx.Response:
    return await clinic.client.put(POLICY, json=body, headers=clinic.headers(role))


async def get(clinic: Clinic, role: Role = Role.RECEPTIONIST) -> dict[str, Any]:
    response = await clinic.client.get(POLICY, headers=clinic.headers(role))
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_a_clinic_that_never_set_a_policy_reads_the_defaults(clinic: Clinic) -> None:
    assert await get(clinic) == DEFAULTS
    assert await get(clinic, Role.ADMIN) == DEFAULTS
    assert stored(clinic.factory, clinic) is None


async def test_an_admin_saves_a_policy_and_reads_it_back_with_offsets_latest_first(
    clinic: Clinic,
) -> None:
    saved = await put(clinic, CUSTOM)
    assert saved.status_code == 200, saved.text
    expected = {
        "offsets_minutes": [2880, 1440, 60], "quiet_start": "22:30:00",
        "quiet_end": "07:15:00",
        "templates": {"reminder": {"es": CUSTOM["templates"]["reminder"]["es"], "en": None},
                      "rescheduled": {"es": None, "en": None},
                      "cancelled": {"es": None, "en": None}}}
    assert saved.json() == expected
    assert await get(clinic) == expected
    row = stored(clinic.factory, clinic)
    assert row is not None
    assert row["offsets_minutes"] == [2880, 1440, 60]
    assert (row["quiet_start"], row["quiet_end"]) == (wall(22, 30), wall(7, 15))
    assert row["updated_by"] == clinic.data.users[Role.ADMIN].id


async def test_saving_again_replaces_the_whole_policy(clinic: Clinic) -> None:
    assert (await put(clinic, CUSTOM)).status_code == 200
    again = await put(clinic, {"offsets_minutes": []})
    assert again.status_code == 200, again.text
    assert await get(clinic) == {**DEFAULTS, "offsets_minutes": []}


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.DOCTOR, Role.LAB_TECH,
                                  Role.PHARMACIST])
async def test_only_an_admin_may_change_the_policy(clinic: Clinic, role: Role) -> None:
    refused = await put(clinic, CUSTOM, role)
    error = expect_error(refused, 403, "permission_denied")
    assert error["details"]["required_roles"] == ["admin"]
    assert stored(clinic.factory, clinic) is None
    assert clinic.factory.audit_events(clinic.data, action="reminder_policy.update") == []


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.LAB_TECH, Role.PHARMACIST])
async def test_clinical_staff_cannot_read_the_policy(clinic: Clinic, role: Role) -> None:
    refused = await clinic.client.get(POLICY, headers=clinic.headers(role))
    expect_error(refused, 403, "permission_denied")


async def test_without_a_token_the_policy_is_neither_read_nor_changed(clinic: Clinic) -> None:
    expect_error(await clinic.client.get(POLICY), 401, "not_authenticated")
    expect_error(await clinic.client.put(POLICY, json=CUSTOM), 401, "not_authenticated")


BAD_POLICIES = [
    pytest.param({"offsets_minutes": [10]}, "offsets_minutes.0",
                 "greater than or equal to 15", id="offset-under-15-minutes"),
    pytest.param({"offsets_minutes": [14 * 24 * 60 + 1]}, "offsets_minutes.0",
                 "less than or equal to 20160", id="offset-over-14-days"),
    pytest.param({"offsets_minutes": [1440, 120, 1440]}, "offsets_minutes",
                 "each reminder time may appear only once", id="duplicate-offsets"),
    pytest.param({"offsets_minutes": [2880, 1440, 720, 120, 60]}, "offsets_minutes",
                 "at most 4 items", id="five-offsets"),
    pytest.param({"offsets_minutes": ["soon"]}, "offsets_minutes.0", "valid integer",
                 id="offset-not-a-number"),
    pytest.param({"templates": {"reminder": {"es": "Hola {foo}, su cita es el {date}"}}},
                 "templates.reminder.es",
                 "'{foo}' is not a field a message can use; use {clinic}, {date}, {link}, "
                 "{patient}, {provider}, {time}", id="unknown-template-field"),
    pytest.param({"templates": {"cancelled": {"en": "Hi {patient, cancelled"}}},
                 "templates.cancelled.en",
                 "the braces do not match", id="unmatched-brace"),
    pytest.param({"templates": {"reminder": {"en": "Hi {patient!r}"}}},
                 "templates.reminder.en", "'{patient!r}' asks for a format; write '{patient}' "
                 "alone", id="conversion"),
    pytest.param({"templates": {"reminder": {"en": "On {date:%d/%m}"}}},
                 "templates.reminder.en", "'{date:%d/%m}' asks for a format; write '{date}' "
                 "alone", id="format-spec"),
    pytest.param({"templates": {"reminder": {"es": "x" * 481}}}, "templates.reminder.es",
                 "at most 480 characters", id="template-over-three-sms"),
    pytest.param({"templates": {"reminder": {"fr": "Bonjour {patient}"}}},
                 "templates.reminder.fr", "Extra inputs are not permitted",
                 id="unknown-language"),
    pytest.param({"offsets_minutes": [1440], "quiet_hours": "21-8"}, "quiet_hours",
                 "Extra inputs are not permitted", id="unknown-key"),
    pytest.param({"quiet_start": "25:00"}, "quiet_start", "valid time",
                 id="quiet-start-not-a-time"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_POLICIES)
async def test_bad_policies_are_refused_saying_what_to_fix_and_nothing_changes(
    clinic: Clinic, body: dict[str, Any], field: str, message: str,
) -> None:
    assert (await put(clinic, CUSTOM)).status_code == 200
    before, policy = stored(clinic.factory, clinic), await get(clinic)
    events = clinic.factory.audit_events(clinic.data, action="reminder_policy.update")
    error = expect_error(await put(clinic, body), 422, "invalid_input")
    assert [f["field"] for f in error["details"]["fields"]] == [field]
    assert message in error["details"]["fields"][0]["message"]
    assert field in error["message"]
    assert message in error["message"]
    assert stored(clinic.factory, clinic) == before
    assert await get(clinic) == policy
    assert clinic.factory.audit_events(clinic.data, action="reminder_policy.update") == events


async def test_a_template_may_write_literal_braces_doubled(clinic: Clinic) -> None:
    text = "{clinic}: {{no responda}} {date} {time}"
    saved = await put(clinic, {"templates": {"reminder": {"es": text}}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["templates"]["reminder"]["es"] == text


async def test_the_sms_the_dispatcher_sends_uses_the_clinics_own_wording(
    clinic: Clinic, dispatcher: Dispatcher, provider: TextProvider,
) -> None:
    wording = ("{clinic} le espera, {patient}: {provider}, {date} {time}. "
               "Responda 1 o 2. {link}")
    saved = await put(clinic, {"offsets_minutes": [1440], "quiet_start": "00:00",
                               "quiet_end": "00:00",
                               "templates": {"reminder": {"es": wording}}})
    assert saved.status_code == 200, saved.text
    spanish = await clinic.book(clinic.patient(channels=("sms",)), slot(3, wall(10, 0)))
    english = await clinic.book(clinic.patient(channels=("sms",), phone="+56911112222",
                                               language="en"), slot(3, wall(11, 0)))
    clinic.make_due(spanish["id"])
    clinic.make_due(english["id"])
    assert dispatcher.run_once().outcomes == {"sent": 2}
    by_number = {m.to: m.body for m in provider.messages()}
    own = by_number["+56987654321"]
    clinic_name = f"Clinic {clinic.data.slug}"
    assert own.startswith(f"{clinic_name} le espera, Ana: Dr. 0 {clinic.data.slug}, ")
    assert "10:00" in own
    assert "Responda 1 o 2. " in own
    assert f"{PUBLIC_URL}/book/{clinic.data.slug}/manage?token=" in own
    assert "{" not in own
    # The clinic wrote no English text: the built-in one.
    assert by_number["+56911112222"].startswith(f"{clinic_name}: Hi Ana, a reminder of your")


async def test_a_new_policy_applies_to_appointments_booked_after_it(clinic: Clinic) -> None:
    # In UTC: offsets are elapsed time, even across a change of the clocks.
    start_before = slot(4, wall(10, 0)).astimezone(UTC)
    start_after = slot(4, wall(11, 0)).astimezone(UTC)
    before = await clinic.book(clinic.patient(), start_before)
    assert (await put(clinic, {"offsets_minutes": [2880, 60]})).status_code == 200
    after = await clinic.book(clinic.patient(), start_after)
    assert [(r.offset_minutes, r.due_at) for r in clinic.reminders(before["id"])] == [
        (1440, start_before - timedelta(days=1)), (120, start_before - timedelta(hours=2))]
    assert [(r.offset_minutes, r.due_at) for r in clinic.reminders(after["id"])] == [
        (2880, start_after - timedelta(days=2)), (60, start_after - timedelta(hours=1))]


async def test_each_clinic_keeps_its_own_policy(
    factory: Factory, client: httpx.AsyncClient, clinic: Clinic,
) -> None:
    other = Clinic(factory, factory.clinic(patients=0, providers=0), client)
    assert (await put(clinic, CUSTOM)).status_code == 200
    assert await get(other) == DEFAULTS
    assert stored(factory, other) is None
    theirs = {"offsets_minutes": [30], "quiet_start": "20:00", "quiet_end": "09:00"}
    assert (await put(other, theirs)).status_code == 200
    assert (await get(clinic))["offsets_minutes"] == [2880, 1440, 60]
    assert (await get(clinic))["quiet_start"] == "22:30:00"
    assert (await get(other))["offsets_minutes"] == [30]
    assert factory.audit_events(other.data, action="reminder_policy.update")[0].actor_user_id \
        == other.data.users[Role.ADMIN].id
    assert len(factory.audit_events(clinic.data, action="reminder_policy.update")) == 1


async def test_saving_writes_an_audit_event_naming_who_and_what(clinic: Clinic) -> None:
    assert (await put(clinic, CUSTOM)).status_code == 200
    (event,) = clinic.factory.audit_events(clinic.data, action="reminder_policy.update")
    assert event.actor_user_id == clinic.data.users[Role.ADMIN].id
    assert (event.entity, event.entity_id) == ("clinic", clinic.data.id)
    assert event.detail == {"offsets_minutes": [2880, 1440, 60],
                            "quiet": ["22:30:00", "07:15:00"]}
