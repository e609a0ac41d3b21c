"""Allergies, conditions, medications and vital signs recorded on a doctor's computer with
no server, over a real encrypted store: each entry is written at once and queued in the
shape the server takes; an edit queues only what changed with the values it had; a
removal is a tombstone; every refused change says what to fix and writes nothing."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from desktop.operations.chart import load_summary
from desktop.operations.clinical import (
    TABLES,
    ClinicalError,
    add_record,
    remove_record,
    update_record,
)
from desktop.store.database import open_store
from desktop.store.local import outbox
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.schemas.clinical import RECORD_SCHEMAS
from shared_models.tables import patient

CLINIC = uuid7()
DOCTOR = uuid7()
MEASURED = datetime(2025, 3, 4, 15, 30, tzinfo=UTC)

# A valid new entry of each kind, without its patient.
VALID: dict[str, dict[str, Any]] = {
    "allergy": {"substance": " Penicilina ", "formulary_ref": "class:penicillin",
                "reaction": "Urticaria", "severity": "severe"},
    "condition": {"description": "Hipertensión arterial", "code": "i10",
                  "onset_date": "2019-05-01"},
    "medication": {"medicine_id": "losartan", "name": "Losartán", "dose": "50 mg c/24 h",
                   "started_on": date(2024, 1, 10)},
    "vital_signs": {"measured_at": MEASURED, "systolic_mmhg": 132, "diastolic_mmhg": 84,
                    "heart_rate_bpm": 72, "temperature_c": 36.6, "weight_kg": 71.5},
}


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    store = open_store(tmp_path / "local.db", os.urandom(32))
    yield store
    store.dispose()


@pytest.fixture
def clock() -> HybridClock:
    return HybridClock("doctorpc")


@pytest.fixture
def patient_id(engine: Engine) -> uuid.UUID:
    pid = uuid7()
    with engine.begin() as conn:
        conn.execute(insert(patient).values(
            clinic_id=CLINIC, id=pid, mrn="P-1", given_name="Rosario", family_name="Quispe",
            preferred_channels=[]))
    return pid


def _add(engine: Engine, clock: HybridClock, entity: Any, patient_id: uuid.UUID,
         **values: Any) -> uuid.UUID:
    return add_record(engine, clock, entity, clinic_id=CLINIC, user_id=DOCTOR,
                      values={"patient_id": patient_id, **values})


def _queued(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(outbox).order_by(outbox.c.seq)))


def _rows(engine: Engine, entity: str) -> list[Any]:
    table = TABLES[entity]
    with engine.connect() as conn:
        return list(conn.execute(select(table)))


def _nothing_written(engine: Engine) -> bool:
    return _queued(engine) == [] and all(_rows(engine, entity) == [] for entity in TABLES)


@pytest.mark.parametrize("entity", list(VALID))
def test_a_new_entry_is_stored_at_once_and_queued_in_the_servers_shape(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, entity: str) -> None:
    record_id = _add(engine, clock, entity, patient_id, **VALID[entity])

    [row] = _rows(engine, entity)
    [queued] = _queued(engine)
    assert (row.id, row.clinic_id, row.patient_id, row.recorded_by) == (
        record_id, CLINIC, patient_id, DOCTOR)
    assert row.deleted_at is None
    assert (queued.entity, queued.op, queued.record_id, queued.base_version, queued.base) == (
        entity, "upsert", record_id, None, {})
    # What the server will validate, to the letter.
    create, _ = RECORD_SCHEMAS[entity]
    assert create.model_validate(queued.changes).model_dump(mode="json") == queued.changes
    assert queued.changes["patient_id"] == str(patient_id)


def test_entries_are_stored_cleaned_as_the_server_would_store_them(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    _add(engine, clock, "allergy", patient_id, **VALID["allergy"])
    _add(engine, clock, "condition", patient_id, **VALID["condition"])
    _add(engine, clock, "vital_signs", patient_id, **VALID["vital_signs"])
    [allergy_row] = _rows(engine, "allergy")
    [condition_row] = _rows(engine, "condition")
    [vitals_row] = _rows(engine, "vital_signs")
    assert (allergy_row.substance, allergy_row.status) == ("Penicilina", "active")
    assert (condition_row.code, condition_row.onset_date) == ("I10", date(2019, 5, 1))
    assert vitals_row.measured_at == MEASURED
    summary = load_summary(engine, patient_id, viewer_id=DOCTOR)
    assert [a["substance"] for a in summary.allergies] == ["Penicilina"]
    assert [v["systolic_mmhg"] for v in summary.vitals] == [132]


@pytest.mark.parametrize(("entity", "values", "words"), [
    ("allergy", {"substance": "  "}, "substance cannot be empty"),
    ("allergy", {}, "substance is required"),
    ("allergy", {"substance": "Látex", "formulary_ref": "unobtainium"},
     "not a medicine or class of the formulary"),
    ("allergy", {"substance": "Látex", "severity": "fatal"}, "severity must be"),
    ("allergy", {"substance": "L" * 201}, "at most 200 characters"),
    ("allergy", {"substance": "Lá\x00tex"}, "NUL"),
    ("allergy", {"substance": "Látex", "recorded_by": str(uuid7())},
     "recorded by cannot be set here"),
    ("condition", {"description": "Asma", "code": "asthma"},
     "code must be an ICD-10 code, such as I10"),
    ("medication", {"name": "Ibuprofeno", "medicine_id": "class:nsaid"},
     "name a medicine, not a class"),
    ("medication", {"name": "Ibuprofeno", "started_on": "2025-02-01",
                    "stopped_on": "2025-01-01"}, "stopped_on cannot be before started_on"),
    ("vital_signs", {"measured_at": MEASURED}, "record at least one measurement"),
    ("vital_signs", {"measured_at": MEASURED, "systolic_mmhg": 400},
     "systolic_mmhg 400 is outside 40-300 mmHg"),
    ("vital_signs", {"measured_at": MEASURED, "systolic_mmhg": 80, "diastolic_mmhg": 90},
     "diastolic pressure must be lower than the systolic"),
    ("vital_signs", {"measured_at": datetime(2025, 3, 4, 15, 30), "heart_rate_bpm": 70},  # noqa: DTZ001
     "needs a time zone"),
])
def test_an_entry_the_server_would_refuse_is_refused_here_and_nothing_is_written(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, entity: str,
        values: dict[str, Any], words: str) -> None:
    with pytest.raises(ClinicalError) as refused:
        _add(engine, clock, entity, patient_id, **values)
    message = str(refused.value)
    assert words in message
    assert message.startswith("The ")
    assert "was not saved" in message
    assert _nothing_written(engine)


def test_an_entry_for_a_patient_not_on_this_computer_or_removed_is_refused(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    with pytest.raises(ClinicalError, match="patient is not on this computer"):
        _add(engine, clock, "allergy", uuid7(), substance="Látex")
    with engine.begin() as conn:
        conn.execute(update(patient).values(deleted_at=datetime.now(UTC)))
    with pytest.raises(ClinicalError, match="patient is not on this computer"):
        _add(engine, clock, "allergy", patient_id, substance="Látex")
    with pytest.raises(ClinicalError, match="not a chart entry"):
        _add(engine, clock, "diagnosis", patient_id, description="Asma")
    assert _nothing_written(engine)


def _synced(engine: Engine, entity: str, record_id: uuid.UUID, version: int) -> None:
    """As if the server had accepted the entry: a version, and the outbox emptied."""
    table = TABLES[entity]
    with engine.begin() as conn:
        conn.execute(update(table).where(table.c.id == record_id)
                     .values(server_version=version))
        conn.execute(outbox.delete())


def test_an_edit_queues_only_the_changed_fields_with_the_values_they_had(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    record_id = _add(engine, clock, "allergy", patient_id, **VALID["allergy"])
    _synced(engine, "allergy", record_id, 41)

    changed = update_record(engine, clock, "allergy", record_id, {
        "substance": "Penicilina", "severity": "moderate", "reaction": None})

    assert changed is True
    [row] = _rows(engine, "allergy")
    assert (row.substance, row.severity, row.reaction) == ("Penicilina", "moderate", None)
    [queued] = _queued(engine)
    assert (queued.op, queued.record_id, queued.base_version) == ("upsert", record_id, 41)
    assert queued.changes == {"severity": "moderate", "reaction": None}
    assert queued.base == {"severity": "severe", "reaction": "Urticaria"}


def test_an_edit_of_dates_and_readings_is_queued_as_json(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    medication_id = _add(engine, clock, "medication", patient_id, **VALID["medication"])
    vitals_id = _add(engine, clock, "vital_signs", patient_id, **VALID["vital_signs"])
    _synced(engine, "medication", medication_id, 5)

    update_record(engine, clock, "medication", medication_id,
                  {"status": "stopped", "stopped_on": "2025-03-01"})
    update_record(engine, clock, "vital_signs", vitals_id, {"weight_kg": 70.9})

    stop, weigh = _queued(engine)
    assert stop.changes == {"status": "stopped", "stopped_on": "2025-03-01"}
    assert stop.base == {"status": "active", "stopped_on": None}
    assert (weigh.changes, weigh.base, weigh.base_version) == (
        {"weight_kg": 70.9}, {"weight_kg": 71.5}, 0)
    _, update_schema = RECORD_SCHEMAS["medication"]
    update_schema.model_validate(stop.changes)
    update_schema.model_validate(stop.base)


def test_an_edit_that_changes_nothing_queues_nothing(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    record_id = _add(engine, clock, "condition", patient_id, **VALID["condition"])
    _synced(engine, "condition", record_id, 3)
    assert update_record(engine, clock, "condition", record_id,
                         {"description": " Hipertensión arterial ", "code": "I10"}) is False
    assert update_record(engine, clock, "condition", record_id, {}) is False
    assert _queued(engine) == []


@pytest.mark.parametrize(("entity", "changes", "words"), [
    ("allergy", {"severity": "fatal"}, "severity must be"),
    ("allergy", {"substance": None}, "substance"),
    ("allergy", {"patient_id": str(uuid7())}, "patient id cannot be set here"),
    ("condition", {"code": "J45.9.1"}, "code must be an ICD-10 code"),
    ("medication", {"stopped_on": "2023-01-01"}, "stopped_on cannot be before started_on"),
    ("medication", {"prescription_id": str(uuid7())}, "prescription id cannot be set here"),
    ("vital_signs", {"diastolic_mmhg": 140}, "diastolic pressure must be lower"),
    ("vital_signs", {"spo2_pct": 101}, "spo2_pct 101 is outside"),
    ("vital_signs", {"systolic_mmhg": None, "diastolic_mmhg": None, "heart_rate_bpm": None,
                     "temperature_c": None, "weight_kg": None},
     "record at least one measurement"),
])
def test_an_edit_the_server_would_refuse_is_refused_here_and_nothing_changes(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID, entity: str,
        changes: dict[str, Any], words: str) -> None:
    record_id = _add(engine, clock, entity, patient_id, **VALID[entity])
    _synced(engine, entity, record_id, 9)
    before = _rows(engine, entity)

    with pytest.raises(ClinicalError) as refused:
        update_record(engine, clock, entity, record_id, changes)

    assert words in str(refused.value)
    assert "was not changed" in str(refused.value)
    assert _rows(engine, entity) == before
    assert _queued(engine) == []


def test_removing_an_entry_leaves_a_tombstone_and_queues_a_delete(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    kept = _add(engine, clock, "allergy", patient_id, substance="Látex")
    gone = _add(engine, clock, "allergy", patient_id, **VALID["allergy"])
    _synced(engine, "allergy", gone, 12)

    remove_record(engine, clock, "allergy", gone)

    rows = {row.id: row for row in _rows(engine, "allergy")}
    assert rows[gone].deleted_at is not None
    assert rows[kept].deleted_at is None
    [queued] = _queued(engine)
    assert (queued.op, queued.record_id, queued.base_version, queued.changes) == (
        "delete", gone, 12, {})
    summary = load_summary(engine, patient_id, viewer_id=DOCTOR)
    assert [a["id"] for a in summary.allergies] == [kept]


def test_a_removed_or_unknown_entry_cannot_be_edited_or_removed_again(
        engine: Engine, clock: HybridClock, patient_id: uuid.UUID) -> None:
    record_id = _add(engine, clock, "condition", patient_id, description="Asma")
    remove_record(engine, clock, "condition", record_id)
    queued = len(_queued(engine))
    before = _rows(engine, "condition")

    with pytest.raises(ClinicalError, match="was removed from the chart"):
        remove_record(engine, clock, "condition", record_id)
    with pytest.raises(ClinicalError, match="was removed from the chart"):
        update_record(engine, clock, "condition", record_id, {"status": "resolved"})
    with pytest.raises(ClinicalError, match="not on this computer"):
        update_record(engine, clock, "condition", uuid7(), {"status": "resolved"})
    with pytest.raises(ClinicalError, match="not on this computer"):
        remove_record(engine, clock, "medication", uuid7())

    assert len(_queued(engine)) == queued
    assert _rows(engine, "condition") == before
