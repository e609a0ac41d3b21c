"""Allergies, conditions, medications and vital signs pushed from doctors' computers:
created once, merged field by field without losing what either computer typed, removed
as tombstones, written only by doctors, and refused clearly when they do not hold."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Table, select

from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import allergy, condition, medication, sync_conflict, vital_signs
from tests.factories import ClinicData, Factory
from tests.sync_server.test_sync_push import mutation, push

LAPTOP = HybridClock("crlaptop")
TABLET = HybridClock("crtablet")
TABLES: dict[str, Table] = {"allergy": allergy, "condition": condition,
                            "medication": medication, "vital_signs": vital_signs}


def doctor(factory: Factory) -> tuple[ClinicData, dict[str, str]]:
    clinic = factory.clinic(patients=2, providers=1)
    return clinic, factory.headers(clinic.users[Role.DOCTOR])


def new_entry(entity: str, patient_id: uuid.UUID, **values: Any) -> dict[str, Any]:
    """A valid first push of each kind of chart entry, with `values` over the defaults."""
    defaults: dict[str, dict[str, Any]] = {
        "allergy": {"substance": "Penicilina", "formulary_ref": "class:penicillin",
                    "reaction": "Urticaria", "severity": "moderate"},
        "condition": {"description": "Hipertensión arterial", "code": "I10",
                      "onset_date": "2019-03-01"},
        "medication": {"medicine_id": "losartan", "name": "losartan", "dose": "50 mg al día",
                       "started_on": "2024-01-10"},
        "vital_signs": {"measured_at": datetime.now(UTC).isoformat(), "systolic_mmhg": 128,
                        "diastolic_mmhg": 82, "heart_rate_bpm": 72, "temperature_c": 36.6},
    }
    return {"patient_id": str(patient_id), **defaults[entity], **values}


async def record(client: httpx.AsyncClient, headers: dict[str, str], entity: str,
                 patient_id: uuid.UUID, **values: Any) -> tuple[uuid.UUID, dict[str, Any]]:
    record_id = uuid7()
    [result] = await push(client, headers, [mutation(
        entity, "upsert", record_id, new_entry(entity, patient_id, **values),
        hlc=LAPTOP.now().pack())])
    assert result["status"] == "applied", result
    return record_id, result


async def test_a_doctor_records_each_kind_of_entry_once_however_often_it_is_sent(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    patient_id = clinic.patient_ids[0]
    batch = [mutation(entity, "upsert", uuid7(), new_entry(entity, patient_id))
             for entity in TABLES]
    first = await push(client, headers, batch)
    assert [r["status"] for r in first] == ["applied"] * 4
    again = await push(client, headers, batch)
    assert again == first
    doctor_id = str(clinic.users[Role.DOCTOR].id)
    for m, result in zip(batch, first, strict=True):
        table = TABLES[m["entity"]]
        assert factory.count(table, clinic) == 1
        stored = factory.row(table, clinic, m["record_id"])
        assert str(stored["recorded_by"]) == doctor_id
        assert stored["updated_hlc"] == m["hlc"]
        assert result["record"]["patient_id"] == str(patient_id)
        assert "field_stamps" not in result["record"]
        [event] = factory.audit_events(clinic, action=f"{m['entity']}.create")
        assert str(event.entity_id) == m["record_id"]
        assert event.detail == {"patient_id": str(patient_id)}
    assert first[1]["record"]["code"] == "I10"


async def test_edits_of_different_fields_on_two_computers_merge(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    record_id, created = await record(client, headers, "allergy", clinic.patient_ids[0])
    version = created["server_version"]
    on_tablet = mutation("allergy", "upsert", record_id, {"severity": "severe"},
                         base={"severity": "moderate"}, base_version=version,
                         hlc=TABLET.now().pack())
    on_laptop = mutation("allergy", "upsert", record_id, {"reaction": "Anafilaxia"},
                         base={"reaction": "Urticaria"}, base_version=version,
                         hlc=LAPTOP.now().pack())
    [severity, reaction] = await push(client, headers, [on_tablet, on_laptop])
    assert (severity["status"], reaction["status"]) == ("applied", "merged")
    assert reaction["conflicts"] == []
    stored = factory.row(allergy, clinic, record_id)
    assert (stored["severity"], stored["reaction"]) == ("severe", "Anafilaxia")
    # Each field remembers the edit that last wrote it, for the next merge.
    assert stored["field_stamps"]["severity"] == on_tablet["hlc"]
    assert stored["field_stamps"]["reaction"] == on_laptop["hlc"]
    assert stored["field_stamps"]["substance"] == created["record"]["updated_hlc"]
    events = factory.audit_events(clinic, action="allergy.update")
    assert [e.detail["fields"] for e in events] == [["severity"], ["reaction"]]


@pytest.mark.parametrize("later_arrives_first", [True, False])
async def test_one_field_edited_offline_on_two_computers_goes_to_the_later_and_keeps_the_other(
    client: httpx.AsyncClient, factory: Factory, later_arrives_first: bool
) -> None:
    clinic, headers = doctor(factory)
    record_id, created = await record(client, headers, "allergy", clinic.patient_ids[0])
    version = created["server_version"]
    earlier = mutation("allergy", "upsert", record_id, {"reaction": "Edema de labios"},
                       base={"reaction": "Urticaria"}, base_version=version,
                       hlc=LAPTOP.now().pack())
    later = mutation("allergy", "upsert", record_id, {"reaction": "Exantema generalizado"},
                     base={"reaction": "Urticaria"}, base_version=version,
                     hlc=TABLET.now().pack())
    first, second = (later, earlier) if later_arrives_first else (earlier, later)
    [one] = await push(client, headers, [first])
    [two] = await push(client, headers, [second])
    assert one["status"] == "applied"
    assert two["status"] == "conflict"
    winner = "server" if later_arrives_first else "device"
    assert two["conflicts"] == [{"field": "reaction", "kept": "Exantema generalizado",
                                 "lost": "Edema de labios", "winner": winner}]
    assert factory.row(allergy, clinic, record_id)["reaction"] == "Exantema generalizado"
    with factory.engine.connect() as conn:
        kept = conn.execute(select(sync_conflict).where(
            sync_conflict.c.record_id == record_id)).all()
    # Nothing typed is lost: the earlier text waits in the conflict list for review.
    assert [(k.entity, k.field, k.lost, k.winner, str(k.mutation_id)) for k in kept] == [
        ("allergy", "reaction", "Edema de labios", winner, second["mutation_id"])]


async def test_the_same_batch_pushed_twice_at_once_is_applied_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    record_id, created = await record(client, headers, "condition", clinic.patient_ids[0])
    batch = [
        *[mutation("vital_signs", "upsert", uuid7(), new_entry(
            "vital_signs", clinic.patient_ids[0], heart_rate_bpm=60 + i)) for i in range(3)],
        mutation("condition", "upsert", record_id, {"status": "resolved"},
                 base={"status": "active"}, base_version=created["server_version"]),
        mutation("condition", "delete", record_id, {}),
    ]
    one, two = await asyncio.gather(push(client, headers, batch), push(client, headers, batch))
    # The replay answers from the stored results (with each record as it is now).
    assert [(r["mutation_id"], r["status"]) for r in one] == [
        (r["mutation_id"], r["status"]) for r in two]
    assert [r["status"] for r in one] == ["applied"] * 5
    assert factory.count(vital_signs, clinic) == 3
    assert len(factory.audit_events(clinic, action="vital_signs.create")) == 3
    assert len(factory.audit_events(clinic, action="condition.update")) == 1
    assert len(factory.audit_events(clinic, action="condition.delete")) == 1


async def test_a_removed_entry_is_a_tombstone_and_a_later_change_to_it_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    record_id, created = await record(client, headers, "medication", clinic.patient_ids[0])
    [removed] = await push(client, headers, [mutation("medication", "delete", record_id, {})])
    assert removed["status"] == "applied"
    assert removed["record"]["deleted_at"]
    stored = factory.row(medication, clinic, record_id)
    assert stored["deleted_at"] is not None
    assert stored["name"] == "losartan"  # kept, only marked removed
    [again, late] = await push(client, headers, [
        mutation("medication", "delete", record_id, {}),
        mutation("medication", "upsert", record_id, {"dose": "100 mg al día"},
                 base={"dose": "50 mg al día"}, base_version=created["server_version"]),
    ])
    assert again["status"] == "applied"
    assert (late["status"], late["code"]) == ("rejected", "record_deleted")
    assert "removed" in late["reason"]
    assert factory.row(medication, clinic, record_id) == stored
    assert len(factory.audit_events(clinic, action="medication.delete")) == 1
    assert factory.audit_events(clinic, action="medication.update") == []


BAD_NEW_ENTRIES = [
    ("allergy", {"severity": "deadly"}, "invalid_change", "severity"),
    ("allergy", {"formulary_ref": "unobtainium"}, "invalid_change",
     "not a medicine or class of the formulary"),
    ("allergy", {"substance": "  "}, "invalid_change", "substance"),
    ("allergy", {"reaction": "a\x00b"}, "invalid_change", "NUL"),
    ("allergy", {"signed_by": "x"}, "invalid_change", "signed_by"),
    ("condition", {"code": "123"}, "invalid_change", "code"),
    ("condition", {"code": "E11.99999"}, "invalid_change", "code"),
    ("medication", {"medicine_id": "class:penicillin"}, "invalid_change",
     "name a medicine, not a class"),
    ("medication", {"started_on": "2024-05-01", "stopped_on": "2024-04-01"},
     "invalid_change", "stopped_on cannot be before started_on"),
    ("medication", {"prescription_id": "0190a0a0-0000-7000-8000-000000000000"},
     "unknown_reference", "prescription"),
    ("vital_signs", {"systolic_mmhg": 80, "diastolic_mmhg": 80}, "invalid_change",
     "diastolic pressure must be lower"),
    ("vital_signs", {"systolic_mmhg": None, "diastolic_mmhg": None, "heart_rate_bpm": None,
                     "temperature_c": None}, "invalid_change", "at least one measurement"),
    ("vital_signs", {"temperature_c": 63.0}, "invalid_change", "outside"),
    ("vital_signs", {"measured_at": "2024-05-01T10:00:00"}, "invalid_change", "time zone"),
    ("vital_signs", {"appointment_id": "0190a0a0-0000-7000-8000-000000000000"},
     "unknown_reference", "visit"),
]


@pytest.mark.parametrize(("entity", "values", "code", "says"), BAD_NEW_ENTRIES)
async def test_bad_new_entries_are_refused_clearly_and_nothing_is_stored(
    client: httpx.AsyncClient, factory: Factory, entity: str, values: dict[str, Any],
    code: str, says: str
) -> None:
    clinic, headers = doctor(factory)
    [refused] = await push(client, headers, [mutation(
        entity, "upsert", uuid7(), new_entry(entity, clinic.patient_ids[0], **values))])
    assert (refused["status"], refused["code"]) == ("rejected", code)
    assert says in refused["reason"]
    assert factory.count(TABLES[entity], clinic) == 0
    assert factory.audit_events(clinic, action=f"{entity}.create") == []


async def test_an_entry_for_an_unknown_patient_or_another_clinics_is_refused(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    other = factory.clinic(patients=1, providers=1)
    results = await push(client, headers, [
        mutation("allergy", "upsert", uuid7(), new_entry("allergy", uuid7())),
        mutation("condition", "upsert", uuid7(), new_entry("condition", other.patient_ids[0])),
    ])
    assert [(r["status"], r["code"]) for r in results] == [
        ("rejected", "unknown_reference"), ("rejected", "unknown_reference")]
    assert "does not exist in this clinic" in results[0]["reason"]
    for table in (allergy, condition):
        assert factory.count(table, clinic) == factory.count(table, other) == 0


async def test_bad_edits_are_refused_clearly_and_leave_the_entry_as_it_was(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    vitals_id, vitals = await record(client, headers, "vital_signs", clinic.patient_ids[0])
    allergy_id, _ = await record(client, headers, "allergy", clinic.patient_ids[0])
    vitals_before = factory.row(vital_signs, clinic, vitals_id)
    allergy_before = factory.row(allergy, clinic, allergy_id)
    results = await push(client, headers, [
        # Valid alone; above the systolic already stored, so not a reading.
        mutation("vital_signs", "upsert", vitals_id, {"diastolic_mmhg": 140},
                 base={"diastolic_mmhg": 82}, base_version=vitals["server_version"]),
        mutation("vital_signs", "upsert", vitals_id, {"systolic_mmhg": None,
                                                      "diastolic_mmhg": None,
                                                      "heart_rate_bpm": None,
                                                      "temperature_c": None}),
        mutation("allergy", "upsert", allergy_id,
                 {"patient_id": str(clinic.patient_ids[1]), "severity": "mild"}),
        mutation("allergy", "upsert", allergy_id, {"substance": None}),
        mutation("allergy", "upsert", allergy_id, {"severity": "fatal"}),
        mutation("allergy", "sign", allergy_id, {}),
    ])
    assert [(r["status"], r["code"]) for r in results] == [
        ("rejected", "invalid_change"), ("rejected", "invalid_change"),
        ("rejected", "patient_immutable"), ("rejected", "invalid_change"),
        ("rejected", "invalid_change"), ("rejected", "invalid_operation")]
    assert "diastolic pressure must be lower" in results[0]["reason"]
    assert "at least one measurement" in results[1]["reason"]
    assert "another patient" in results[2]["reason"]
    assert factory.row(vital_signs, clinic, vitals_id) == vitals_before
    assert factory.row(allergy, clinic, allergy_id) == allergy_before
    assert factory.audit_events(clinic, action="vital_signs.update") == []
    assert factory.audit_events(clinic, action="allergy.update") == []
    # The same patient sent along with an edit is not a move.
    [same] = await push(client, headers, [mutation(
        "allergy", "upsert", allergy_id,
        {"patient_id": str(clinic.patient_ids[0]), "severity": "mild"},
        base={"severity": "moderate"}, base_version=allergy_before["server_version"])])
    assert same["status"] == "applied"
    assert factory.row(allergy, clinic, allergy_id)["severity"] == "mild"


@pytest.mark.parametrize("role", [Role.RECEPTIONIST, Role.ADMIN, Role.LAB_TECH,
                                  Role.PHARMACIST])
async def test_only_doctors_write_chart_entries(
    client: httpx.AsyncClient, factory: Factory, role: Role
) -> None:
    clinic, headers = doctor(factory)
    record_id, _ = await record(client, headers, "allergy", clinic.patient_ids[0])
    before = factory.row(allergy, clinic, record_id)
    other = factory.headers(clinic.users[role])
    results = await push(client, other, [
        *[mutation(entity, "upsert", uuid7(), new_entry(entity, clinic.patient_ids[0]))
          for entity in TABLES],
        mutation("allergy", "upsert", record_id, {"severity": "mild"}),
        mutation("allergy", "delete", record_id, {}),
    ])
    assert {(r["status"], r["code"]) for r in results} == {("rejected", "role_not_allowed")}
    assert "Only doctors" in results[0]["reason"]
    assert factory.row(allergy, clinic, record_id) == before
    for entity, table in TABLES.items():
        assert factory.count(table, clinic) == (1 if entity == "allergy" else 0)


async def test_the_visit_of_a_reading_is_fixed_once_it_is_recorded(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    visit = factory.appointment(clinic, clinic.provider_ids[0], clinic.patient_ids[0],
                                starts_at=datetime.now(UTC) + timedelta(hours=1))
    vitals_id, created = await record(client, headers, "vital_signs", clinic.patient_ids[0],
                                      appointment_id=str(visit))
    version = created["server_version"]
    [moved, same] = await push(client, headers, [
        mutation("vital_signs", "upsert", vitals_id,
                 {"appointment_id": str(uuid7()), "heart_rate_bpm": 80},
                 base={"heart_rate_bpm": 72}, base_version=version),
        mutation("vital_signs", "upsert", vitals_id,
                 {"appointment_id": str(visit), "heart_rate_bpm": 80},
                 base={"heart_rate_bpm": 72}, base_version=version),
    ])
    assert (moved["status"], moved["code"]) == ("rejected", "field_immutable")
    assert "fixed" in moved["reason"]
    assert same["status"] == "applied"
    stored = factory.row(vital_signs, clinic, vitals_id)
    assert (stored["appointment_id"], stored["heart_rate_bpm"]) == (visit, 80)


async def test_a_lost_chart_value_is_reviewed_by_doctors_only_and_can_be_restored(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clinic, headers = doctor(factory)
    record_id, created = await record(client, headers, "allergy", clinic.patient_ids[0])
    version = created["server_version"]
    for clock, reaction in ((LAPTOP, "Edema de labios"), (TABLET, "Exantema generalizado")):
        await push(client, headers, [mutation(
            "allergy", "upsert", record_id, {"reaction": reaction},
            base={"reaction": "Urticaria"}, base_version=version, hlc=clock.now().pack())])

    front_desk = factory.headers(clinic.users[Role.RECEPTIONIST])
    hidden = await client.get("/api/v1/sync/conflicts", headers=front_desk)
    assert hidden.status_code == 200
    assert "Edema" not in hidden.text
    listed = await client.get("/api/v1/sync/conflicts", headers=headers,
                              params={"record_id": str(record_id)})
    [conflict] = listed.json()["data"]
    assert (conflict["entity"], conflict["lost"]) == ("allergy", "Edema de labios")

    resolved = await client.post(f"/api/v1/sync/conflicts/{conflict['id']}/resolve",
                                 headers=headers, json={"keep": "lost"})
    assert resolved.status_code == 200, resolved.text
    assert factory.row(allergy, clinic, record_id)["reaction"] == "Edema de labios"
    again = await client.post(f"/api/v1/sync/conflicts/{conflict['id']}/resolve",
                              headers=headers, json={"keep": "lost"})
    assert again.status_code == 409
