"""`consulta-server` subcommands against a real database (DATABASE_URL) and, for the
embedded default, a real embedded PostgreSQL started by the command itself."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Table, create_engine, func, select
from sqlalchemy.engine import URL

from shared_models.tables import (
    allergy,
    availability_rule,
    clinic,
    clinical_note,
    device,
    device_rollout,
    lab_result,
    patient,
    pharmacy,
    provider,
    staff_user,
)
from sync_server.actions.devices import code_digest
from sync_server.cli import main
from sync_server.core.config import get_settings


@pytest.fixture
def database_url(pg_cluster: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[URL]:
    url = pg_cluster.set(database=f"consulta_cli_{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("CONSULTA_SECRET_KEY", "cli-test-" + "k" * 40)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _count(url: URL, table: Table, **where: object) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            stmt = select(func.count()).select_from(table)
            for column, value in where.items():
                stmt = stmt.where(table.c[column] == value)
            return int(conn.execute(stmt).scalar_one())
    finally:
        engine.dispose()


def test_migrate_reports_an_up_to_date_database(
    database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["migrate"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["migrate"]) == 0  # running again changes nothing and still succeeds


def test_create_clinic_and_user_then_reject_duplicates(
    database_url: URL, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["create-clinic", "--slug", "centro", "--name", "Clínica Centro",
                 "--timezone", "America/Santiago", "--country", "CL"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["create-user", "--clinic", "centro", "--email", "Ana@Example.test",
                 "--name", "Ana", "--role", "receptionist"]) == 0
    assert _count(database_url, staff_user, email="ana@example.test") == 1

    assert main(["create-clinic", "--slug", "centro", "--name", "Otra",
                 "--timezone", "America/Santiago"]) == 2
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("a-long-enough-password\n"))
    assert main(["create-user", "--clinic", "centro", "--email", "ana@example.test",
                 "--name", "Ana", "--role", "doctor"]) == 2
    assert "already has an account" in capsys.readouterr().err
    assert _count(database_url, staff_user) == 1


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["create-clinic", "--slug", "x", "--name", "X", "--timezone", "Mars/Base"], "",
         "not an IANA time zone"),
        (["create-clinic", "--slug", "Bad Slug", "--name", "X", "--timezone", "UTC"], "",
         "lower-case letters"),
        (["create-user", "--clinic", "nowhere", "--email", "a@b.test", "--name", "A",
          "--role", "admin"], "a-long-enough-password\n", "No clinic named 'nowhere'"),
    ],
)
def test_bad_admin_input_exits_2_with_a_clear_message(
    database_url: URL, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], stdin: str, message: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert _count(database_url, clinic) == 0


def test_create_user_refuses_a_short_password(
    database_url: URL, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["create-clinic", "--slug", "norte", "--name", "Norte",
                 "--timezone", "America/Mexico_City"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["create-user", "--clinic", "norte", "--email", "b@example.test",
                 "--name", "B", "--role", "admin"]) == 2
    assert "at least 10 characters" in capsys.readouterr().err
    assert _count(database_url, staff_user) == 0


def test_demo_seeds_once_and_running_it_again_adds_nothing(
    database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--no-serve"]) == 0
    first = capsys.readouterr().out
    assert main(["demo", "--no-serve"]) == 0
    assert capsys.readouterr().out == first
    assert _count(database_url, patient) == 200
    assert _count(database_url, provider) == 3
    assert _count(database_url, staff_user) == 10
    assert _count(database_url, availability_rule) == 24
    for role in ("admin", "receptionist", "doctor", "lab_tech", "pharmacist"):
        assert _count(database_url, staff_user, role=role) == 2
        assert role in first
    assert "consulta-demo" in first
    # The first doctor finds charts filled in, the first pharmacist a pharmacy to work at.
    assert (_count(database_url, pharmacy), _count(database_url, clinical_note),
            _count(database_url, lab_result)) == (3, 3, 6)
    assert _count(database_url, allergy) == 2


def test_embedded_database_is_created_once_and_kept_across_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CONSULTA_DATA_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "sync_server.cli"]
    created = subprocess.run(
        [*command, "create-clinic", "--slug", "kept", "--name", "Kept", "--timezone", "UTC"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert created.returncode == 0, created.stderr
    assert (tmp_path / "pgdata" / "PG_VERSION").exists()
    again = subprocess.run(
        [*command, "create-clinic", "--slug", "kept", "--name", "Kept", "--timezone", "UTC"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_enrol_device_stores_a_one_time_code_and_prints_it_once(
    database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-clinic", "--slug", "sur", "--name", "Sur",
                 "--timezone", "America/Santiago"]) == 0
    capsys.readouterr()
    assert main(["enrol-device", "--clinic", "sur", "--name", "Recepción 1"]) == 0
    out = capsys.readouterr().out
    code = out.split(": ")[1].split()[0]
    assert len(code) == 14
    assert "works once" in out
    assert main(["enrol-device", "--clinic", "nowhere", "--name", "X"]) == 2
    assert "No clinic named 'nowhere'" in capsys.readouterr().err
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(device.c.code_hash)).scalar_one()
    finally:
        engine.dispose()
    assert stored == code_digest(code)
    assert code not in stored


def test_enrol_device_for_several_computers_issues_one_rollout_code(
    database_url: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create-clinic", "--slug", "norte", "--name", "Norte",
                 "--timezone", "America/Santiago"]) == 0
    capsys.readouterr()
    assert main(["enrol-device", "--clinic", "norte", "--name", "Recepción",
                 "--computers", "12", "--valid-hours", "48"]) == 0
    out = capsys.readouterr().out
    assert "up to 12 computers" in out
    assert "ENROLMENT_CODE" in out
    code = out.split("): ")[1].split()[0]
    for bad in (["--computers", "501"], ["--computers", "0"], ["--valid-hours", "0"]):
        assert main(["enrol-device", "--clinic", "norte", "--name", "Recepción",
                     "--computers", "3", *bad]) == 2
        assert "A rollout needs" in capsys.readouterr().err
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(select(device_rollout.c.code_hash, device_rollout.c.computers)
                                  ).one()
    finally:
        engine.dispose()
    assert tuple(stored) == (code_digest(code), 12)
