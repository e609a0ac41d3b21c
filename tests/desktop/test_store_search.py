"""Finding patients in the local store as one types: by name without accents or case, by
any part of the phone, by record number; kept in step with edits and pulled rows, and
built for stores that predate the index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, update

from desktop.operations.patients import edit_patient, register_patient
from desktop.store.database import open_store
from desktop.store.search import search_patients
from shared_models.clock import HybridClock
from shared_models.ids import uuid7
from shared_models.tables import patient
from tests.desktop.test_store_upgrades import PATIENT_NAME, _make_v1_store

CLINIC = uuid7()


@pytest.fixture
def store(tmp_path: Path) -> Engine:
    engine = open_store(tmp_path / "local.db", os.urandom(32))
    with engine.begin() as conn:  # as a pulled page writes them
        conn.execute(insert(patient), [
            {"clinic_id": CLINIC, "id": uuid7(), "mrn": "P-000123", "given_name": "Iñés",
             "family_name": "Núñez Pérez", "phone": "+56961234567",
             "preferred_channels": []},
            {"clinic_id": CLINIC, "id": uuid7(), "mrn": "P-000124", "given_name": "Inés",
             "family_name": "Nunes", "phone": "+56971112222", "preferred_channels": []},
            {"clinic_id": CLINIC, "id": uuid7(), "mrn": "P-000200", "given_name": "Pedro",
             "family_name": "Soto", "phone": None, "preferred_channels": []},
        ])
    return engine


def names(rows: list[object]) -> list[str]:
    return [f"{r.given_name} {r.family_name}" for r in rows]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("typed", "found"), [
    ("nunez", ["Iñés Núñez Pérez"]),
    ("INES nu", ["Inés Nunes", "Iñés Núñez Pérez"]),
    ("perez ines", ["Iñés Núñez Pérez"]),
    ("4567", ["Iñés Núñez Pérez"]),
    ("9 7111 2222", ["Inés Nunes"]),
    ("+56 9 6123", ["Iñés Núñez Pérez"]),
    ("P-000124", ["Inés Nunes"]),
    ("000200", ["Pedro Soto"]),
    ("zz", []),
    ('"nu" OR *', []),  # typed text is data, never search syntax
])
def test_patients_are_found_by_name_phone_or_record_number(
    store: Engine, typed: str, found: list[str]
) -> None:
    assert names(search_patients(store, typed)) == found


def test_the_index_follows_edits_registrations_and_tombstones(store: Engine) -> None:
    clock = HybridClock("desk")
    [pedro] = search_patients(store, "pedro")
    edit_patient(store, clock, pedro.id, {"family_name": "Sotomayor"})
    assert names(search_patients(store, "sotoma")) == ["Pedro Sotomayor"]
    new = register_patient(store, clock, clinic_id=CLINIC, fields={
        "given_name": "Ánxela", "family_name": "Ríos", "phone": "+56 9 5555 0101"})
    assert [r.id for r in search_patients(store, "anxela rios 0101")] == [new]
    with store.begin() as conn:
        conn.execute(update(patient).where(patient.c.id == new).values(
            deleted_at=patient.c.updated_at))
    assert search_patients(store, "anxela") == []


def test_a_store_older_than_the_index_is_indexed_when_upgraded(tmp_path: Path) -> None:
    path, key = tmp_path / "old.db", os.urandom(32)
    _make_v1_store(path, key)
    engine = open_store(path, key)
    assert len(search_patients(engine, PATIENT_NAME)) == 5
    assert len(search_patients(engine, "nunez")) == 5
    engine.dispose()
