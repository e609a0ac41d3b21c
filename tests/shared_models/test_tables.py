"""The shared metadata creates and round-trips on PostgreSQL and on a SQLCipher file, and
the migrations build exactly what the metadata describes."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, select
from sqlalchemy.engine import URL

from desktop.store.database import StoreKeyError, open_store
from shared_models.ids import uuid7
from shared_models.tables import appointment, clinic, metadata, patient, provider
from sync_server.db import bootstrap


def _rows(clinic_id: uuid.UUID) -> dict[str, dict[str, object]]:
    patient_id, provider_id = uuid7(), uuid7()
    starts = datetime(2026, 3, 8, 13, 30, tzinfo=UTC)
    return {
        "clinic": {"id": clinic_id, "slug": f"s{clinic_id.hex[:8]}", "name": "Clínica Ñandú",
                   "timezone": "America/Santiago"},
        "patient": {"clinic_id": clinic_id, "id": patient_id, "mrn": "P-000001",
                    "given_name": "Iñés", "family_name": "Núñez", "date_of_birth": date(1990, 2, 3),
                    "preferred_channels": ["sms", "email"]},
        "provider": {"clinic_id": clinic_id, "id": provider_id, "display_name": "Dra. Ruiz"},
        "appointment": {"clinic_id": clinic_id, "id": uuid7(), "patient_id": patient_id,
                        "provider_id": provider_id, "starts_at": starts,
                        "ends_at": starts + timedelta(minutes=30), "status": "booked"},
    }


def _insert_and_read_back(engine: Engine, *, with_clinic: bool = True) -> None:
    clinic_id = uuid7()
    rows = _rows(clinic_id)
    with engine.begin() as conn:
        for table in (clinic, patient, provider, appointment)[0 if with_clinic else 1:]:
            conn.execute(insert(table).values(**rows[table.name]))
    with engine.connect() as conn:
        got = conn.execute(select(appointment).where(appointment.c.clinic_id == clinic_id)).one()
        person = conn.execute(select(patient).where(patient.c.clinic_id == clinic_id)).one()
    assert got.starts_at == rows["appointment"]["starts_at"]
    assert got.starts_at.tzinfo is not None
    assert person.family_name == "Núñez"
    assert person.preferred_channels == ["sms", "email"]
    assert person.date_of_birth == date(1990, 2, 3)


def test_metadata_creates_and_round_trips_on_postgresql(pg_cluster: URL) -> None:
    owner = pg_cluster.set(database=f"consulta_meta_{uuid.uuid4().hex[:8]}")
    bootstrap.ensure_database(owner)
    engine = create_engine(owner)
    try:
        metadata.create_all(engine)
        _insert_and_read_back(engine)
    finally:
        engine.dispose()


def test_metadata_creates_and_round_trips_on_a_sqlcipher_file(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    key = os.urandom(32)
    engine = open_store(path, key)
    _insert_and_read_back(engine, with_clinic=False)  # a computer holds no clinic row
    engine.dispose()

    assert not path.read_bytes().startswith(b"SQLite format 3")
    for file in tmp_path.iterdir():  # the database and its WAL / shared-memory files
        assert "Núñez".encode() not in file.read_bytes(), file.name

    reopened = open_store(path, key)
    with reopened.connect() as conn:
        assert conn.execute(select(patient.c.given_name)).scalar_one() == "Iñés"
    reopened.dispose()


def test_sqlcipher_store_refuses_the_wrong_key(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    open_store(path, os.urandom(32)).dispose()
    with pytest.raises(StoreKeyError):
        open_store(path, os.urandom(32))


def test_sqlcipher_store_rejects_a_short_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        open_store(tmp_path / "store.db", b"short")


def test_migrations_build_exactly_the_shared_metadata(owner_engine: Engine) -> None:
    with owner_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []
