"""A prescription from the doctor's laptop to the pharmacy counter, through the real
server: the doctor makes a key with a second factor and registers it, the clinic admin
approves it, the doctor signs offline, the server checks the signature when the laptop
syncs, the pharmacist verifies it again, receives and dispenses it, and the laptop learns
it was dispensed. A key revoked before the push, or content changed in the outbox after
signing, is refused and lands in the doctor's attention list; one altered on the server
is refused at the counter. The lab's workspace, online like the pharmacy's, moves an
order through its steps and reads back the flags of what it entered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import Engine, insert, select, text, update

from desktop.operations import lab_worklist, pharmacy_queue
from desktop.operations.chart import NOT_ACCEPTED, load_timeline
from desktop.operations.lab_worklist import LabWorkError
from desktop.operations.prescriptions import DraftItem, sign_prescription, verify_stored
from desktop.operations.signing import (
    Signer,
    confirm_key,
    create_key,
    key_info,
    mark_registered,
    registration_body,
    unlock,
)
from desktop.server_link import ServerLink
from desktop.session import sign_in_online
from desktop.store.database import open_store
from desktop.store.local import attention, outbox
from desktop.sync.client import SyncClient
from desktop.sync.errors import RequestRefused, SyncNetworkError
from shared_models.clock import HybridClock
from shared_models.enums import Role
from shared_models.ids import uuid7
from shared_models.tables import allergy, medication, prescription, prescription_item
from sync_server.actions.clinics import scope
from tests.conftest import LiveServer
from tests.factories import PASSWORD, ClinicData, Factory

AMOXICILLIN = DraftItem(medicine_id="amoxicillin", strength="500 mg", form="capsule",
                        dose="1 capsule", route="oral", frequency="every 8 hours",
                        quantity=21, duration_days=7)
PENICILLIN_WARNING = ("allergy", ("amoxicillin", "class:penicillin"))


@dataclass
class Computer:
    """An enrolled computer with a person signed in online: store, link, sync client."""

    engine: Engine
    http: httpx.Client
    link: ServerLink
    sync: SyncClient
    clock: HybridClock

    def rows(self, table: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table))]

    def close(self) -> None:
        self.http.close()
        self.engine.dispose()


def _computer(live: LiveServer, factory: Factory, clinic: ClinicData, path: Path,
              role: Role) -> Computer:
    """A computer the admin enrolled, with the clinic's `role` user signed in online."""
    http = httpx.Client(base_url=live.url, timeout=30)
    admin = factory.headers(clinic.users[Role.ADMIN])
    code = http.post("/api/v1/devices", headers=admin, json={"name": role.value}).json()["code"]
    creds = http.post("/api/v1/devices/enrol", json={"code": code}).json()
    engine = open_store(path, os.urandom(32))
    session = sign_in_online(engine, http, email=clinic.users[role].email, password=PASSWORD,
                             device_id=creds["device_id"], device_secret=creds["device_secret"])
    link = ServerLink(engine, http, device_id=uuid.UUID(creds["device_id"]),
                      device_secret=creds["device_secret"], session=session)
    sync = SyncClient(engine, http, token=link.token, page=50, backoff_s=0.01)
    return Computer(engine, http, link, sync, HybridClock(role.value.replace("_", "")))


@dataclass
class Setting:
    clinic: ClinicData
    laptop: Computer
    counter: Computer
    pharmacy_id: uuid.UUID
    key_id: uuid.UUID
    totp_secret: str

    @property
    def doctor(self) -> uuid.UUID:
        return self.clinic.users[Role.DOCTOR].id


@pytest.fixture
def setting(tmp_path: Path, live_server: LiveServer, factory: Factory) -> Iterator[Setting]:
    """A clinic with a pharmacy and its linked pharmacist, a patient allergic to
    penicillins, and a doctor whose key is registered, approved and synced."""
    clinic = factory.clinic(patients=2, providers=1)
    admin = factory.headers(clinic.users[Role.ADMIN])
    laptop = _computer(live_server, factory, clinic, tmp_path / "laptop.db", Role.DOCTOR)
    counter = _computer(live_server, factory, clinic, tmp_path / "counter.db", Role.PHARMACIST)
    try:
        answer = laptop.http.post("/api/v1/pharmacies", headers=admin, json={
            "name": "Farmacia Ñuñoa", "address": "Irarrázaval 2400", "registry_number": "RF-77"})
        assert answer.status_code == 201, answer.text
        pharmacy_id = uuid.UUID(answer.json()["id"])
        linked = laptop.http.put(
            f"/api/v1/pharmacies/{pharmacy_id}/pharmacists/{clinic.users[Role.PHARMACIST].id}",
            headers=admin)
        assert linked.status_code == 200, linked.text
        with factory.engine.begin() as conn:
            scope(conn, clinic.id)
            conn.execute(insert(allergy).values(
                clinic_id=clinic.id, id=uuid7(), patient_id=clinic.patient_ids[0],
                substance="Penicilina", formulary_ref="class:penicillin", severity="severe"))

        doctor = clinic.users[Role.DOCTOR]
        enrolment = create_key(laptop.engine, clinic_id=clinic.id, user_id=doctor.id,
                               email=doctor.email, password=PASSWORD)
        confirm_key(laptop.engine, doctor.id, pyotp.TOTP(enrolment.totp_secret).now())
        registered = laptop.link.request("POST", "/api/v1/signing-keys",
                                         json=registration_body(laptop.engine, doctor.id))
        assert registered["fingerprint"] == enrolment.fingerprint
        mark_registered(laptop.engine, doctor.id, registered["status"])
        assert _status(laptop, doctor.id) == "pending"
        approved = laptop.http.post(f"/api/v1/signing-keys/{enrolment.key_id}/approve",
                                    headers=admin)
        assert approved.status_code == 200, approved.text
        assert laptop.sync.sync().rejected == 0
        assert _status(laptop, doctor.id) == "active"
        yield Setting(clinic, laptop, counter, pharmacy_id, enrolment.key_id,
                      enrolment.totp_secret)
    finally:
        laptop.close()
        counter.close()


def _status(computer: Computer, user_id: uuid.UUID) -> str | None:
    info = key_info(computer.engine, user_id)
    return info.server_status if info is not None else None


def _offline(computer: Computer) -> None:
    """Nothing on this computer reaches the server from now on, until `_online`."""
    def unreachable(request: httpx.Request, **_kwargs: object) -> httpx.Response:
        raise httpx.ConnectError("the clinic's network is down", request=request)

    computer.http.send = unreachable  # type: ignore[method-assign]


def _online(computer: Computer) -> None:
    del computer.http.send


def _unlock(s: Setting) -> Signer:
    when = datetime.now(UTC) + timedelta(seconds=30)  # the next code: the last one was used
    return unlock(s.laptop.engine, user_id=s.doctor, password=PASSWORD,
                  code=pyotp.TOTP(s.totp_secret).at(when), now=when)


def _sign_offline(s: Setting, *, pharmacy: bool = True) -> uuid.UUID:
    _offline(s.laptop)
    signer = _unlock(s)
    return sign_prescription(
        s.laptop.engine, s.laptop.clock, signer, clinic_id=s.clinic.id,
        patient_id=s.clinic.patient_ids[0], prescriber_id=s.doctor, items=[AMOXICILLIN],
        acknowledgements={PENICILLIN_WARNING: "Prueba cutánea negativa en 2024"},
        pharmacy_id=s.pharmacy_id if pharmacy else None)


def test_a_prescription_signed_offline_is_accepted_verified_and_dispensed(
    setting: Setting, factory: Factory
) -> None:
    s = setting
    prescription_id = _sign_offline(s)
    [local] = s.laptop.rows(prescription)
    assert (local["id"], local["status"]) == (prescription_id, "sent")
    assert verify_stored(s.laptop.engine, prescription_id).valid
    with pytest.raises(SyncNetworkError):
        s.laptop.sync.sync()  # still offline: it waits in the outbox

    _online(s.laptop)
    progress = s.laptop.sync.sync()
    assert progress.rejected == 0
    assert s.laptop.rows(outbox) == []
    assert s.laptop.rows(attention) == []
    server = factory.row(prescription, s.clinic, prescription_id)
    assert (server["status"], server["pharmacy_id"], server["signature"]) == (
        "sent", s.pharmacy_id, local["signature"])
    assert server["acknowledgements"][0]["reason"] == "Prueba cutánea negativa en 2024"
    assert factory.count(medication, s.clinic) == 1

    # The pharmacist sees it, verified on their own computer, and hands it over.
    page = pharmacy_queue.incoming(s.counter.link)
    [waiting] = page.data
    assert waiting.prescription.id == prescription_id
    assert (waiting.signature_valid, waiting.problem, waiting.can_receive) == (True, None, True)
    info = key_info(s.laptop.engine, s.doctor)
    assert info is not None
    assert waiting.fingerprint == info.fingerprint
    assert waiting.prescription.items[0].medicine_name == "amoxicilina"
    received = pharmacy_queue.receive(s.counter.link, prescription_id)
    assert (received.prescription.status, received.can_dispense) == ("received", True)
    dispensed = pharmacy_queue.dispense(s.counter.link, prescription_id)
    assert dispensed.prescription.status == "dispensed"
    assert not dispensed.can_refuse

    # The laptop learns it was dispensed; its lines are the ones it wrote, not copies.
    assert s.laptop.sync.sync().rejected == 0
    [seen] = s.laptop.rows(prescription)
    assert seen["status"] == "dispensed"
    lines = s.laptop.rows(prescription_item)
    assert len(lines) == 1
    assert lines[0]["server_version"] > 0
    assert verify_stored(s.laptop.engine, prescription_id).valid


def test_a_prescription_signed_with_a_key_revoked_before_the_push_is_rejected(
    setting: Setting, factory: Factory
) -> None:
    s = setting
    prescription_id = _sign_offline(s, pharmacy=False)
    # Meanwhile the laptop is reported stolen; the admin revokes its key from elsewhere.
    revoked = s.counter.http.post(f"/api/v1/signing-keys/{s.key_id}/revoke",
                                  headers=factory.headers(s.clinic.users[Role.ADMIN]),
                                  json={"reason": "Laptop robado"})
    assert revoked.status_code == 200, revoked.text

    _online(s.laptop)
    assert s.laptop.sync.sync().rejected >= 1
    assert factory.count(prescription, s.clinic) == 0
    [problem] = [a for a in s.laptop.rows(attention) if a["entity"] == "prescription"]
    assert (problem["record_id"], problem["status"], problem["code"]) == (
        prescription_id, "rejected", "key_revoked")
    assert "revoked" in problem["reason"]
    # The medicine it would have added names a prescription the server does not have.
    assert factory.count(medication, s.clinic) == 0
    assert _status(s.laptop, s.doctor) == "revoked"
    # One problem for the doctor, not one per medicine; the medicines come off the
    # patient's active list, and the chart shows the prescription as not accepted.
    assert [a["entity"] for a in s.laptop.rows(attention)] == ["prescription"]
    assert [m["deleted_at"] is not None for m in s.laptop.rows(medication)] == [True]
    assert not [o for o in s.laptop.rows(outbox) if o["entity"] == "medication"]
    [entry] = [e for e in load_timeline(s.laptop.engine, s.clinic.patient_ids[0],
                                        viewer_id=s.doctor) if e.kind == "prescription"]
    assert (entry.status, entry.record["status_reason"]) == (NOT_ACCEPTED, problem["reason"])


def test_content_changed_in_the_outbox_after_signing_is_rejected(
    setting: Setting, factory: Factory
) -> None:
    s = setting
    prescription_id = _sign_offline(s)
    with s.laptop.engine.begin() as conn:
        sign = conn.execute(select(outbox).where(outbox.c.entity == "prescription")).one()
        changes = dict(sign.changes)
        changes["items"] = [{**changes["items"][0], "quantity": 210}]
        conn.execute(update(outbox).where(outbox.c.seq == sign.seq).values(changes=changes))

    _online(s.laptop)
    assert s.laptop.sync.sync().rejected >= 1
    assert factory.count(prescription, s.clinic) == 0
    [problem] = [a for a in s.laptop.rows(attention) if a["entity"] == "prescription"]
    assert (problem["record_id"], problem["code"]) == (prescription_id, "signature_invalid")
    assert pharmacy_queue.incoming(s.counter.link).data == []


def test_a_prescription_altered_on_the_server_is_refused_at_the_counter(
    setting: Setting, factory: Factory
) -> None:
    s = setting
    prescription_id = _sign_offline(s)
    _online(s.laptop)
    assert s.laptop.sync.sync().rejected == 0
    # Someone with database access raises the quantity, past the rule that forbids it.
    with factory.engine.begin() as conn:
        scope(conn, s.clinic.id)
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(update(prescription_item).where(
            prescription_item.c.prescription_id == prescription_id).values(quantity=210))

    [shown] = pharmacy_queue.incoming(s.counter.link).data
    assert (shown.signature_valid, shown.problem) == (False, pharmacy_queue.TAMPERED)
    assert (shown.can_receive, shown.can_refuse) == (False, True)
    assert shown.message == ("This prescription's signature does not match its content; it "
                             "may have been altered. Do not dispense it; contact the "
                             "prescriber.")
    with pytest.raises(pharmacy_queue.NotDispensable, match="Do not dispense it"):
        pharmacy_queue.receive(s.counter.link, prescription_id)
    with pytest.raises(pharmacy_queue.PharmacyError, match="Say why"):
        pharmacy_queue.refuse(s.counter.link, prescription_id, " ")
    assert factory.row(prescription, s.clinic, prescription_id)["status"] == "sent"
    refused = pharmacy_queue.refuse(s.counter.link, prescription_id, "Cantidad alterada")
    assert (refused.prescription.status, refused.prescription.status_reason) == (
        "refused", "Cantidad alterada")
    s.laptop.sync.sync()
    assert s.laptop.rows(prescription)[0]["status"] == "refused"


def test_the_lab_moves_an_order_through_its_steps_and_reads_the_flags_back(
    tmp_path: Path, live_server: LiveServer, factory: Factory
) -> None:
    clinic = factory.clinic(patients=1, providers=1)
    order_id = factory.lab_order(clinic, tests=["glucose", "covid_ag"])
    bench = _computer(live_server, factory, clinic, tmp_path / "lab.db", Role.LAB_TECH)
    link = bench.link
    try:
        [listed] = lab_worklist.worklist(link).data
        assert (listed.id, listed.tests) == (order_id, ["glucose", "covid_ag"])
        assert lab_worklist.next_steps(listed) == ["sample_received", "cancelled"]
        glucose = {"test_code": "glucose", "analyte": "glucose", "value": "450"}
        with pytest.raises(LabWorkError, match="Say why"):
            lab_worklist.move(link, order_id, "cancelled")
        with pytest.raises(LabWorkError, match="while the sample is in the lab"):
            lab_worklist.enter_results(link, order_id, [glucose], current=listed)

        moved = lab_worklist.move(link, order_id, "sample_received")
        for bad, message in (
            ({"test_code": "cbc", "analyte": "hgb", "value": "13"}, "not part of this order"),
            ({"test_code": "glucose", "analyte": "hgb", "value": "13"}, "does not measure"),
            ({**glucose, "value": "  "}, "the value is empty"),
            ({**glucose, "value": "9" * 101}, "too long"),
            ({**glucose, "test_code": "nope"}, "not a test of the lab catalogue"),
        ):
            with pytest.raises(LabWorkError, match=message):
                lab_worklist.enter_results(link, order_id, [bad], current=moved)
        with pytest.raises(LabWorkError, match="at least one result"):
            lab_worklist.enter_results(link, order_id, [])
        entered = lab_worklist.enter_results(link, order_id, [glucose], current=moved)
        assert lab_worklist.missing_results(entered) == ["covid_ag"]
        lab_worklist.move(link, order_id, "processing")
        with pytest.raises(RequestRefused) as refused:
            lab_worklist.move(link, order_id, "completed")
        assert refused.value.status == 409

        done = lab_worklist.enter_results(link, order_id, [
            {"test_code": "covid_ag", "analyte": "sars_cov2", "value": "positive"}])
        marks = {r.analyte: lab_worklist.flag_mark(r.flag) for r in done.results}
        assert marks == {"glucose": "HH", "sars_cov2": "A"}
        completed = lab_worklist.move(link, order_id, "completed")
        assert completed.status == "completed"
        assert lab_worklist.next_steps(completed) == []
        assert lab_worklist.order(link, order_id).completed_at is not None
    finally:
        bench.close()
