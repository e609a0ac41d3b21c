"""Three computers with real SQLCipher stores and staff at the server's REST API, driven by
Hypothesis through random offline edits, registrations, bookings, syncs, pushes, pulls and
interruptions (a pull killed mid-page, a push killed while applying the answers, push
answers lost on the wire). After everyone syncs until quiet: every computer holds exactly
the server's patients and appointments, every value typed anywhere is the final value,
was replaced by someone who saw it, or is kept in `sync_conflict`, and every mutation was
applied exactly once."""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import Table, select

from desktop.operations.appointments import book_offline
from desktop.operations.patients import edit_patient, register_patient
from desktop.store.local import attention, outbox
from desktop.sync.client import DEFAULT_ATTEMPTS
from desktop.sync.errors import SyncNetworkError
from shared_models.enums import Role
from shared_models.tables import appointment, patient, sync_conflict, sync_mutation
from sync_server.actions.clinics import scope
from sync_server.actions.sync import INTERNAL_COLUMNS
from tests.conftest import LiveServer
from tests.e2e.computers import Computer
from tests.factories import Factory

COMPUTERS = 3
SLOTS = 3
SEEDED_PATIENTS = 4
EDITABLE = ("given_name", "address", "email", "phone")
# Syncing everyone this many times must be enough to go quiet (three suffice: whoever
# pushes last is pulled by the others in the next round).
QUIET_ROUNDS = 6
# Letters people type, accents included; each typed value also gets a tag of its own so
# that a value found later can be traced to the one place it was typed.
LETTERS = "aeilmnorsuáéíóúñü"
WORD = st.text(alphabet=LETTERS, min_size=1, max_size=8)
ASCII_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
COMPUTER = st.integers(0, COMPUTERS - 1)
PICK = st.integers(0, 63)  # an index into the patients a computer knows, wrapped around


class PowerCut(Exception):
    """The computer was switched off in the middle of writing to its store."""


def _tag(n: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyzñ"
    out = ""
    while True:
        n, digit = divmod(n, len(letters))
        out = letters[digit] + out
        if n == 0:
            return out


@contextmanager
def _killed_on_call(obj: object, method: str, at: int | None) -> Iterator[None]:
    """`obj.method` raises PowerCut on its `at`-th call (never if `at` is None)."""
    real = getattr(obj, method)
    calls = {"n": 0}

    def dies(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == at:
            raise PowerCut(f"switched off during {method} call {at}")
        return real(*args, **kwargs)

    setattr(obj, method, dies)
    try:
        yield
    finally:
        setattr(obj, method, real)


@contextmanager
def _answers_lost(computer: Computer, times: int) -> Iterator[None]:
    """The connection drops right after the server answers the next `times` pushes."""
    real_send = computer.http.send
    dropped = {"n": 0}

    def send(request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = real_send(request, **kwargs)
        if request.url.path.endswith("/sync/push") and dropped["n"] < times:
            dropped["n"] += 1
            raise httpx.ReadError("connection dropped after the server committed")
        return response

    computer.http.send = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        computer.http.send = real_send  # type: ignore[method-assign]


def _columns(table: Table) -> list[str]:
    """The columns a device receives: all but the server's bookkeeping."""
    return [c.name for c in table.c if c.name not in INTERNAL_COLUMNS]


def _differences(local: dict[uuid.UUID, dict[str, Any]],
                 server: dict[uuid.UUID, dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(id, column, local value, server value) wherever the two copies disagree."""
    missing = object()
    out: list[tuple[Any, ...]] = []
    for record_id in sorted(set(local) | set(server)):
        mine, theirs = local.get(record_id), server.get(record_id)
        if mine is None or theirs is None:
            out.append((record_id, "*", mine and "present", theirs and "present"))
            continue
        out.extend((record_id, column, mine.get(column, missing), value)
                   for column, value in theirs.items() if mine.get(column, missing) != value)
    return out


class ThreeComputers(RuleBasedStateMachine):
    def __init__(self, live: LiveServer, factory: Factory, workdir: Path) -> None:
        super().__init__()
        self.factory = factory
        self.clinic = factory.clinic(patients=SEEDED_PATIENTS, providers=1)
        self.provider_id = self.clinic.provider_ids[0]
        factory.weekly_hours(self.clinic, self.provider_id)
        token = factory.token(self.clinic.users[Role.RECEPTIONIST],
                              lifetime=timedelta(hours=1))
        self.dir = Path(tempfile.mkdtemp(dir=workdir))
        self.staff = httpx.Client(base_url=live.url, timeout=30,
                                  headers={"Authorization": f"Bearer {token}"})
        self.computers = [Computer(self.dir / f"pc{i}.db", f"pc{i}", live, token)
                          for i in range(COMPUTERS)]
        for computer in self.computers:
            computer.sync.sync()
        self.slots = self._free_slots()
        # The model. Patients in the order they came to be (index choices stay stable when
        # Hypothesis replays steps); typed values, unique, with where they were typed.
        self.patients: list[uuid.UUID] = list(self.clinic.patient_ids)
        self.registered: set[uuid.UUID] = set()
        self.typed: dict[str, tuple[uuid.UUID, str, str]] = {}
        self.seen_and_replaced: set[str] = set()
        self.bookings: dict[uuid.UUID, tuple[int, int]] = {}  # id -> (computer, slot)
        self.mutations: set[uuid.UUID] = set()
        self.n = 0

    def _free_slots(self) -> list[datetime]:
        since = datetime.now(UTC) + timedelta(days=1)
        response = self.staff.get(f"/api/v1/providers/{self.provider_id}/slots", params={
            "start": since.isoformat(), "end": (since + timedelta(days=1)).isoformat()})
        assert response.status_code == 200, response.text
        return [datetime.fromisoformat(s["start"]) for s in response.json()["data"][:SLOTS]]

    # --- helpers -------------------------------------------------------------------------

    def _value(self, field: str, word: str, ascii_word: str) -> str:
        """A new value for `field`, different from every value typed before."""
        self.n += 1
        if field == "phone":
            return f"+5698{self.n:07d}"  # a valid Chilean mobile, already in E.164
        if field == "email":
            return f"{ascii_word}.{self.n}@correo.cl"
        if field == "address":
            return f"Av. {word.title()} {self.n}"
        return f"{word.title()} {_tag(self.n).title()}"  # a name: letters only

    def _known(self, computer: Computer) -> list[uuid.UUID]:
        with computer.engine.connect() as conn:
            local = set(conn.execute(select(patient.c.id)).scalars())
        return [p for p in self.patients if p in local]

    def _on_server(self) -> list[uuid.UUID]:
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            there = set(conn.execute(select(patient.c.id)
                                     .where(patient.c.clinic_id == self.clinic.id)).scalars())
        return [p for p in self.patients if p in there]

    def _note_outbox(self, computer: Computer) -> None:
        """Remember every mutation about to be pushed, for the exactly-once check."""
        with computer.engine.connect() as conn:
            self.mutations.update(conn.execute(select(outbox.c.mutation_id)).scalars())

    # --- what people do ------------------------------------------------------------------

    @rule(i=COMPUTER, word=WORD, family=WORD)
    def register(self, i: int, word: str, family: str) -> None:
        fields = {"given_name": self._value("given_name", word, ""),
                  "family_name": self._value("family_name", family, ""),
                  "phone": self._value("phone", word, "")}
        patient_id = register_patient(self.computers[i].engine, self.computers[i].clock,
                                      clinic_id=self.clinic.id, fields=fields)
        self.patients.append(patient_id)
        self.registered.add(patient_id)
        for field, value in fields.items():
            self.typed[value] = (patient_id, field, f"pc{i}")

    @rule(i=COMPUTER, pick=PICK, field=st.sampled_from(EDITABLE), word=WORD,
          ascii_word=ASCII_WORD)
    def edit(self, i: int, pick: int, field: str, word: str, ascii_word: str) -> None:
        known = self._known(self.computers[i])
        self._edit(i, known[pick % len(known)], field, word, ascii_word)

    def _edit(self, i: int, patient_id: uuid.UUID, field: str, word: str,
              ascii_word: str) -> None:
        computer = self.computers[i]
        # Whatever this screen showed for the field, the person saw it and replaced it.
        self.seen_and_replaced.add(computer.patient(patient_id)[field])  # type: ignore[arg-type]
        value = self._value(field, word, ascii_word)
        edit_patient(computer.engine, computer.clock, patient_id, {field: value})
        self.typed[value] = (patient_id, field, f"pc{i}")

    @rule(pick=PICK, field=st.sampled_from(EDITABLE), word=WORD, ascii_word=ASCII_WORD)
    def same_field_edited_on_every_computer(self, pick: int, field: str, word: str,
                                            ascii_word: str) -> None:
        """The case merges exist for: one field of one patient changed everywhere offline."""
        known = set.intersection(*(set(self._known(c)) for c in self.computers))
        patient_id = [p for p in self.patients if p in known][pick % len(known)]
        for i in range(COMPUTERS):
            self._edit(i, patient_id, field, word, ascii_word)

    @rule(pick=PICK, field=st.sampled_from(EDITABLE), word=WORD, ascii_word=ASCII_WORD)
    def staff_edit_on_server(self, pick: int, field: str, word: str, ascii_word: str) -> None:
        there = self._on_server()
        patient_id = there[pick % len(there)]
        shown = self.staff.get(f"/api/v1/patients/{patient_id}")
        assert shown.status_code == 200, shown.text
        self.seen_and_replaced.add(shown.json()[field])
        value = self._value(field, word, ascii_word)
        changed = self.staff.patch(f"/api/v1/patients/{patient_id}", json={
            field: value, "expected_version": shown.json()["server_version"]})
        assert changed.status_code == 200, changed.text
        assert changed.json()[field] == value
        self.typed[value] = (patient_id, field, "server")

    @rule(i=COMPUTER, pick=PICK, slot=st.integers(0, SLOTS - 1))
    def book(self, i: int, pick: int, slot: int) -> None:
        computer = self.computers[i]
        known = self._known(computer)
        appointment_id = book_offline(
            computer.engine, computer.clock, clinic_id=self.clinic.id,
            patient_id=known[pick % len(known)], provider_id=self.provider_id,
            start=self.slots[slot], minutes=30)
        self.bookings[appointment_id] = (i, slot)

    # --- syncing, and syncing going wrong --------------------------------------------------

    @rule(i=COMPUTER)
    def sync(self, i: int) -> None:
        self._note_outbox(self.computers[i])
        self.computers[i].sync.sync()

    @rule(i=COMPUTER, answers_lost=st.integers(0, DEFAULT_ATTEMPTS),
          killed_at=st.none() | st.integers(1, 4))
    def push(self, i: int, answers_lost: int, killed_at: int | None) -> None:
        """Push, with the connection dropping after the server answered `answers_lost`
        times in a row (the client tries DEFAULT_ATTEMPTS times, then keeps the outbox
        for later), and the computer switched off while recording the `killed_at`-th
        answer (the server committed the batch; the whole batch goes again next time)."""
        computer = self.computers[i]
        self._note_outbox(computer)
        before = computer.pending()
        try:
            with _answers_lost(computer, answers_lost), \
                    _killed_on_call(computer.sync, "_settle", killed_at):
                computer.sync.push()
        except (SyncNetworkError, PowerCut):
            assert (answers_lost, killed_at) != (0, None)
            assert computer.pending() == before  # nothing was recorded as answered
        else:
            assert computer.pending() == 0

    @rule(i=COMPUTER, killed_at=st.none() | st.integers(1, 6))
    def pull(self, i: int, killed_at: int | None) -> None:
        """Pull, with the computer switched off while applying the `killed_at`-th table
        of a page (that page is rolled back and fetched again next time)."""
        client = self.computers[i].sync
        try:
            with _killed_on_call(client, "_store_page", killed_at):
                client.pull()
        except PowerCut:
            assert killed_at is not None

    # --- always true ---------------------------------------------------------------------

    @invariant()
    def a_change_not_yet_pushed_stays_on_screen(self) -> None:
        for computer in self.computers:
            with computer.engine.connect() as conn:
                waiting = conn.execute(select(outbox).order_by(outbox.c.seq)).all()
                shown: dict[uuid.UUID, dict[str, Any]] = {}
                for row in waiting:
                    if row.entity == "patient":
                        shown.setdefault(row.record_id, {}).update(row.changes)
                    else:
                        status = conn.execute(select(appointment.c.status).where(
                            appointment.c.id == row.record_id)).scalar_one()
                        assert status == "pending", (row.record_id, status)
                for patient_id, fields in shown.items():
                    local = conn.execute(select(patient).where(patient.c.id == patient_id)
                                         ).one()._mapping
                    assert {f: local[f] for f in fields} == fields, patient_id

    @invariant()
    def the_server_never_holds_overlapping_appointments(self) -> None:
        assert self.factory.overlapping_appointments(self.clinic) == []

    # --- the end ---------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            # Teardown runs in the `finally` of Hypothesis's run loop: if a step already
            # failed (or Hypothesis stopped the example), that is what gets reported.
            if sys.exc_info()[0] is None:
                self._sync_until_quiet()
                self._check_convergence()
                self._check_nothing_typed_was_lost()
                self._check_exactly_once()
        finally:
            self.staff.close()
            for computer in self.computers:
                computer.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _sync_until_quiet(self) -> None:
        for _round in range(QUIET_ROUNDS):
            moved = 0
            for computer in self.computers:
                self._note_outbox(computer)
                progress = computer.sync.sync()
                moved += progress.pushed + progress.pulled
            if moved == 0 and all(c.pending() == 0 for c in self.computers):
                return
        raise AssertionError(f"still syncing after {QUIET_ROUNDS} rounds")

    def _server_rows(self, table: Table) -> dict[uuid.UUID, dict[str, Any]]:
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            rows = conn.execute(select(table).where(table.c.clinic_id == self.clinic.id))
            return {r.id: {c: r._mapping[c] for c in _columns(table)} for r in rows}

    def _check_convergence(self) -> None:
        server_patients = self._server_rows(patient)
        server_appointments = self._server_rows(appointment)
        for i, computer in enumerate(self.computers):
            with computer.engine.connect() as conn:
                local_patients = {r.id: {c: r._mapping[c] for c in _columns(patient)}
                                  for r in conn.execute(select(patient))}
                local_appointments = {r.id: {c: r._mapping[c] for c in _columns(appointment)}
                                      for r in conn.execute(select(appointment))}
            wrong = _differences(local_patients, server_patients)
            assert not wrong, f"pc{i}'s patients differ from the server's: {wrong}"
            # A booking the server refused stays on the computer that made it, marked.
            refused = {a for a, row in local_appointments.items()
                       if row["status"] == "rejected" and a not in server_appointments}
            kept = {a: r for a, r in local_appointments.items() if a not in refused}
            wrong = _differences(kept, server_appointments)
            assert not wrong, f"pc{i}'s appointments differ from the server's: {wrong}"
            for appointment_id in refused:
                assert self.bookings[appointment_id][0] == i, appointment_id

    def _check_nothing_typed_was_lost(self) -> None:
        final = self._server_rows(patient)
        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            kept = conn.execute(select(sync_conflict).where(
                sync_conflict.c.clinic_id == self.clinic.id)).all()
        in_review = {(k.record_id, k.field, v) for k in kept for v in (k.kept, k.lost)}
        lost = [
            (value, where, patient_id, field, final[patient_id][field])
            for value, (patient_id, field, where) in self.typed.items()
            if final[patient_id][field] != value
            and value not in self.seen_and_replaced
            and (patient_id, field, value) not in in_review
        ]
        assert lost == [], f"typed values lost without a trace (value, where, ...): {lost}"

    def _check_exactly_once(self) -> None:
        assert all(c.pending() == 0 for c in self.computers)
        server_patients = self._server_rows(patient)
        assert set(server_patients) == set(self.clinic.patient_ids) | self.registered
        assert len(server_patients) == SEEDED_PATIENTS + len(self.registered)

        with self.factory.engine.begin() as conn:
            scope(conn, self.clinic.id)
            recorded = conn.execute(select(sync_mutation.c.mutation_id, sync_mutation.c.result)
                                    .where(sync_mutation.c.clinic_id == self.clinic.id)).all()
        counts = Counter(r.mutation_id for r in recorded)
        assert set(counts) == self.mutations
        assert [m for m, n in counts.items() if n != 1] == []
        assert all(r.result is not None for r in recorded)

        server_appointments = self._server_rows(appointment)
        assert set(server_appointments) <= set(self.bookings)
        assert self.factory.overlapping_appointments(self.clinic) == []
        for appointment_id, (i, slot) in self.bookings.items():
            computer = self.computers[i]
            if appointment_id in server_appointments:
                assert server_appointments[appointment_id]["status"] == "booked"
                assert server_appointments[appointment_id]["starts_at"] == self.slots[slot]
                continue
            assert computer.appointment(appointment_id)["status"] == "rejected"
            with computer.engine.connect() as conn:
                needs = conn.execute(select(attention.c.status, attention.c.code).where(
                    attention.c.record_id == appointment_id)).all()
            assert [tuple(n) for n in needs] == [("rejected", "slot_taken")], appointment_id
        for slot in range(SLOTS):
            tried = [a for a, (_i, s) in self.bookings.items() if s == slot]
            won = [a for a in tried if a in server_appointments]
            assert len(won) == (1 if tried else 0), (slot, tried, won)


def test_three_computers_syncing_through_interruptions_converge_and_lose_nothing(
    live_server: LiveServer, factory: Factory, tmp_path: Path
) -> None:
    # Hypothesis builds a machine per example; its stub asks for a class, it takes any
    # factory.
    run_state_machine_as_test(
        lambda: ThreeComputers(live_server, factory, tmp_path),  # type: ignore[arg-type]
        settings=settings(max_examples=25, stateful_step_count=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow,
                                                 HealthCheck.data_too_large]),
    )


def test_a_computer_that_sends_a_push_again_after_losing_the_answers_ends_with_the_servers_copy(
    live_server: LiveServer, factory: Factory, tmp_path: Path
) -> None:
    """The shortest case the machine above found (then fixed: a replayed change answers
    with the record as it is now). pc1 edits a patient's phone and pushes; the server
    applies it but the answers never arrive, so the edit stays in the outbox. Staff then
    change the patient's address on the server, and pc1 pulls: the pull leaves the patient
    alone (an edit of it is still waiting to be pushed) and moves its cursor past the new
    version. The answer to the push sent again is all that can bring pc1 the address."""
    machine = ThreeComputers(live_server, factory, tmp_path)
    try:
        machine.edit(i=1, pick=0, field="phone", word="a", ascii_word="a")
        machine.push(i=1, answers_lost=4, killed_at=None)
        machine.staff_edit_on_server(pick=0, field="address", word="b", ascii_word="b")
        machine.pull(i=1, killed_at=None)
    finally:
        machine.teardown()  # syncs everyone until quiet, then checks as after every example
