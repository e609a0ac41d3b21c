"""Two computers with real SQLCipher stores sync through a real uvicorn server: offline
edits on both, then sync in either order; both converge to the server's state, field
merges happen, and a value that lost is kept for review."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from desktop.operations.appointments import book_offline
from desktop.operations.patients import edit_patient, register_patient
from shared_models.enums import Role
from shared_models.tables import patient, provider, sync_conflict
from tests.conftest import LiveServer
from tests.e2e.computers import Computer
from tests.factories import ClinicData, Factory


@pytest.fixture
def clinic_and_computers(tmp_path: Path, live_server: LiveServer, factory: Factory
                         ) -> Iterator[tuple[ClinicData, Computer, Computer]]:
    clinic = factory.clinic(patients=6, providers=1)
    token = factory.token(clinic.users[Role.RECEPTIONIST])
    desk = Computer(tmp_path / "desk.db", "desk", live_server, token)
    laptop = Computer(tmp_path / "laptop.db", "laptop", live_server, token)
    yield clinic, desk, laptop
    desk.close()
    laptop.close()


def test_offline_edits_on_two_computers_converge_with_field_merges_and_kept_losers(
    clinic_and_computers: tuple[ClinicData, Computer, Computer], factory: Factory
) -> None:
    clinic, desk, laptop = clinic_and_computers
    assert desk.sync.sync().pulled >= 7
    laptop.sync.sync()
    target = clinic.patient_ids[0]

    # Offline: the desk fixes the address and phone; the laptop, later, the e-mail and
    # the phone too. Then the desk registers a walk-in patient.
    edit_patient(desk.engine, desk.clock, target, {"address": "Av. Libertad 10",
                                                   "phone": "+56961234567"})
    edit_patient(laptop.engine, laptop.clock, target, {"email": "ana@correo.cl",
                                                       "phone": "+56971234567"})
    walk_in = register_patient(desk.engine, desk.clock, clinic_id=clinic.id, fields={
        "given_name": "Nueva", "family_name": "Paciente", "phone": "+56 9 8123 4567"})

    laptop_results = laptop.sync.sync()
    desk_results = desk.sync.sync()
    laptop.sync.sync()
    assert (laptop_results.rejected, desk_results.rejected) == (0, 0)
    assert desk.pending() == laptop.pending() == 0

    server = factory.row(patient, clinic, target)
    for computer in (desk, laptop):
        local = computer.patient(target)
        assert (local["address"], local["email"], local["phone"]) == (
            server["address"], server["email"], server["phone"])
        assert local["server_version"] == server["server_version"]
    assert server["address"] == "Av. Libertad 10"
    assert server["email"] == "ana@correo.cl"
    # The phone was changed on both: the laptop's edit came later and wins; the desk's
    # value is kept for review.
    assert server["phone"] == "+56971234567"
    with factory.engine.connect() as conn:
        kept = conn.execute(select(sync_conflict.c.field, sync_conflict.c.lost).where(
            sync_conflict.c.record_id == target)).all()
    assert [(k.field, k.lost) for k in kept] == [("phone", "+56961234567")]

    walk_in_server = factory.row(patient, clinic, walk_in)
    assert walk_in_server["mrn"].startswith("P-")
    assert laptop.patient(walk_in)["given_name"] == "Nueva"
    assert desk.patient(walk_in)["mrn"] == walk_in_server["mrn"]


def test_a_change_whose_answer_was_lost_is_sent_again_and_applied_once(
    clinic_and_computers: tuple[ClinicData, Computer, Computer], factory: Factory
) -> None:
    clinic, desk, _laptop = clinic_and_computers
    desk.sync.sync()
    register_patient(desk.engine, desk.clock, clinic_id=clinic.id, fields={
        "given_name": "Una", "family_name": "Vez"})
    real_send = desk.http.send
    calls = {"n": 0}

    def answer_lost(request: httpx.Request, **kwargs: object) -> httpx.Response:
        response = real_send(request, **kwargs)  # type: ignore[arg-type]
        if request.url.path.endswith("/sync/push") and calls["n"] == 0:
            calls["n"] += 1
            raise httpx.ReadError("connection dropped after the server committed")
        return response

    desk.http.send = answer_lost  # type: ignore[method-assign]
    desk.sync.push()
    assert calls["n"] == 1
    assert desk.pending() == 0
    assert factory.count(patient, clinic) == 6 + 1


def _free_slot(http: httpx.Client, token: str, provider_id: uuid.UUID) -> datetime:
    now = datetime.now(UTC)
    slots = http.get(f"/api/v1/providers/{provider_id}/slots",
                     headers={"Authorization": f"Bearer {token}"},
                     params={"start": (now + timedelta(days=1)).isoformat(),
                             "end": (now + timedelta(days=2)).isoformat()}).json()["data"]
    return datetime.fromisoformat(slots[0]["start"])


def test_an_offline_booking_of_a_slot_taken_meanwhile_comes_back_needing_attention(
    clinic_and_computers: tuple[ClinicData, Computer, Computer], factory: Factory
) -> None:
    clinic, desk, laptop = clinic_and_computers
    provider_id = clinic.provider_ids[0]
    factory.weekly_hours(clinic, provider_id)
    desk.sync.sync()
    laptop.sync.sync()
    token = factory.token(clinic.users[Role.RECEPTIONIST])
    start = _free_slot(desk.http, token, provider_id)

    mine = book_offline(laptop.engine, laptop.clock, clinic_id=clinic.id,
                        patient_id=clinic.patient_ids[0], provider_id=provider_id,
                        start=start, minutes=30)
    theirs = book_offline(desk.engine, desk.clock, clinic_id=clinic.id,
                          patient_id=clinic.patient_ids[1], provider_id=provider_id,
                          start=start, minutes=30)
    assert laptop.appointment(mine)["status"] == "pending"
    desk.sync.sync()
    result = laptop.sync.sync()
    assert result.rejected == 1
    assert laptop.appointment(mine)["status"] == "rejected"
    assert laptop.appointment(theirs)["status"] == "booked"
    [needs] = laptop.attention()
    assert (needs["record_id"], needs["code"]) == (mine, "slot_taken")
    assert len(needs["detail"]["alternatives"]) == 3
    assert desk.appointment(theirs)["status"] == "booked"


def test_a_pull_killed_in_the_middle_of_a_page_resumes_cleanly(
    clinic_and_computers: tuple[ClinicData, Computer, Computer], factory: Factory
) -> None:
    clinic, desk, _laptop = clinic_and_computers
    real_store = desk.sync._store_page
    calls = {"n": 0}

    def crash_on_second(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the first page's second table: half of it is applied
            raise KeyboardInterrupt("process killed while applying a page")
        real_store(*args, **kwargs)  # type: ignore[arg-type]

    desk.sync._store_page = crash_on_second  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        desk.sync.pull()
    with desk.engine.connect() as conn:
        assert conn.execute(select(patient)).all() == []  # the half page was rolled back
        assert conn.execute(select(provider)).all() == []
    desk.sync._store_page = real_store  # type: ignore[method-assign]
    desk.sync.pull()
    with desk.engine.connect() as conn:
        local = {r.id for r in conn.execute(select(patient.c.id))}
    assert local == set(clinic.patient_ids)
