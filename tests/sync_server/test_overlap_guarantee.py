"""The database's own guarantee, below the booking service: the app role writing raw SQL
cannot make two active appointments of one provider overlap, whatever the interleaving,
isolation level or a writer dying half-way (migration 0003's trigger)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import IsolationLevel
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from shared_models.ids import uuid7
from tests.conftest import libpq
from tests.factories import ClinicData, Factory

# The trigger does not look at working hours, so any future instant will do.
NINE = datetime(2031, 3, 10, 12, 0, tzinfo=UTC)
WAIT = 20  # seconds: generous, other test runs may share this machine's two cores

INSERT = (
    "INSERT INTO appointment (clinic_id, id, patient_id, provider_id, starts_at, ends_at, "
    "status, deleted_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def scope(conn: psycopg.Connection, clinic: ClinicData) -> None:
    """Scope the whole session to `clinic` (row-level security) and bound every wait."""
    conn.execute("SELECT set_config('app.clinic_id', %s, false)", (str(clinic.id),))
    conn.execute(f"SET lock_timeout = '{WAIT}s'")
    if not conn.autocommit:
        conn.commit()


@contextmanager
def connect(db_urls: tuple[URL, URL], clinic: ClinicData, *,
            isolation: IsolationLevel | None = None) -> Iterator[psycopg.Connection]:
    """Another raw app-role connection, scoped to `clinic`, in explicit transactions."""
    with psycopg.connect(libpq(db_urls[1])) as conn:
        conn.isolation_level = isolation
        scope(conn, clinic)
        yield conn


def add(conn: psycopg.Connection, clinic: ClinicData, *, provider: uuid.UUID | None = None,
        patient: uuid.UUID | None = None, start: datetime = NINE, minutes: int = 30,
        status: str = "booked", deleted: bool = False) -> uuid.UUID:
    appointment_id = uuid7()
    conn.execute(INSERT, (
        clinic.id, appointment_id, patient or clinic.patient_ids[0],
        provider or clinic.provider_ids[0], start, start + timedelta(minutes=minutes), status,
        datetime.now(UTC) if deleted else None))
    return appointment_id


def add_committed(conn: psycopg.Connection, clinic: ClinicData, **kwargs: Any) -> uuid.UUID:
    """`add` in its own transaction on an autocommit connection."""
    with conn.transaction():
        return add(conn, clinic, **kwargs)


def add_then_commit(conn: psycopg.Connection, clinic: ClinicData, **kwargs: Any) -> uuid.UUID:
    """`add` and commit on a connection in manual-commit mode; roll back on any error."""
    try:
        appointment_id = add(conn, clinic, **kwargs)
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return appointment_id


@pytest.fixture
def clinic(factory: Factory) -> ClinicData:
    return factory.clinic(patients=3, providers=2)


@pytest.fixture
def conn(app_conn: psycopg.Connection, clinic: ClinicData) -> psycopg.Connection:
    """`app_conn` scoped to the test's clinic, one transaction per `with conn.transaction()`."""
    app_conn.autocommit = True
    scope(app_conn, clinic)
    return app_conn


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def in_thread(pool: ThreadPoolExecutor, work: Callable[[], uuid.UUID]) -> Future[uuid.UUID]:
    return pool.submit(work)


def wait_for_advisory_lock(owner_engine: Engine, pid: int) -> None:
    """Return once backend `pid` is queued on an advisory lock, i.e. inside the trigger,
    behind the other writer."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        with owner_engine.connect() as owner:
            waiting = owner.execute(text(
                "SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = :pid"
            ), {"pid": pid}).first()
        if waiting is not None and tuple(waiting) == ("Lock", "advisory"):
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited on the advisory lock")


def stored(factory: Factory, clinic: ClinicData) -> dict[uuid.UUID, tuple[Any, ...]]:
    return {i: (r.provider_id, r.starts_at, r.ends_at, r.status)
            for i, r in factory.appointments(clinic).items()}


# --- one writer ---------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "booked", "checked_in", "in_progress"])
@pytest.mark.parametrize("offset", [0, 15, -15, -5])
def test_raw_insert_overlapping_an_active_appointment_is_refused_with_23p01(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory, status: str, offset: int
) -> None:
    kept = add_committed(conn, clinic, status=status)
    with pytest.raises(psycopg.errors.ExclusionViolation) as refused:
        add_committed(conn, clinic, patient=clinic.patient_ids[1],
                      start=NINE + timedelta(minutes=offset), minutes=20)
    assert refused.value.sqlstate == "23P01"
    assert refused.value.diag.constraint_name == "appointment_no_overlap"
    assert list(stored(factory, clinic)) == [kept]
    assert factory.overlapping_appointments(clinic) == []


def test_raw_insert_inside_a_longer_active_appointment_is_refused(
    conn: psycopg.Connection, clinic: ClinicData
) -> None:
    add_committed(conn, clinic, minutes=90)
    with pytest.raises(psycopg.errors.ExclusionViolation):
        add_committed(conn, clinic, start=NINE + timedelta(minutes=30), minutes=30)


@pytest.mark.parametrize("status", ["cancelled", "completed", "no_show", "rejected"])
def test_inactive_appointment_does_not_block_the_time(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory, status: str
) -> None:
    add_committed(conn, clinic, status=status)
    add_committed(conn, clinic, patient=clinic.patient_ids[1])
    # Inactive rows may also be written over an active one (a cancelled history entry).
    add_committed(conn, clinic, patient=clinic.patient_ids[2], status=status)
    assert len(stored(factory, clinic)) == 3
    assert factory.overlapping_appointments(clinic) == []


def test_tombstoned_appointment_does_not_block_the_time(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory
) -> None:
    add_committed(conn, clinic, deleted=True)
    add_committed(conn, clinic, patient=clinic.patient_ids[1])
    assert len(stored(factory, clinic)) == 2


def test_adjacent_appointments_end_equal_start_are_allowed(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory
) -> None:
    add_committed(conn, clinic)
    add_committed(conn, clinic, start=NINE + timedelta(minutes=30))
    add_committed(conn, clinic, start=NINE - timedelta(minutes=30))
    assert len(stored(factory, clinic)) == 3
    assert factory.overlapping_appointments(clinic) == []


def test_another_provider_at_the_same_time_is_allowed(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory
) -> None:
    add_committed(conn, clinic, provider=clinic.provider_ids[0])
    add_committed(conn, clinic, provider=clinic.provider_ids[1], patient=clinic.patient_ids[1])
    assert len(stored(factory, clinic)) == 2


def test_update_moving_an_appointment_onto_another_is_refused_and_keeps_its_time(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory
) -> None:
    add_committed(conn, clinic)
    later = NINE + timedelta(hours=2)
    moved = add_committed(conn, clinic, patient=clinic.patient_ids[1], start=later)
    other = add_committed(conn, clinic, provider=clinic.provider_ids[1], start=later)
    before = stored(factory, clinic)
    with pytest.raises(psycopg.errors.ExclusionViolation), conn.transaction():
        conn.execute("UPDATE appointment SET starts_at = %s, ends_at = %s WHERE id = %s",
                     (NINE + timedelta(minutes=10), NINE + timedelta(minutes=40), moved))
    with pytest.raises(psycopg.errors.ExclusionViolation), conn.transaction():
        conn.execute("UPDATE appointment SET provider_id = %s WHERE id = %s",
                     (clinic.provider_ids[0], other))
    assert stored(factory, clinic) == before
    # Moving within its own time (a longer visit) does not collide with itself.
    with conn.transaction():
        conn.execute("UPDATE appointment SET ends_at = %s WHERE id = %s",
                     (later + timedelta(minutes=45), moved))


def test_reactivating_a_cancelled_or_tombstoned_appointment_onto_a_taken_time_is_refused(
    conn: psycopg.Connection, clinic: ClinicData, factory: Factory
) -> None:
    cancelled = add_committed(conn, clinic, status="cancelled")
    tombstoned = add_committed(conn, clinic, deleted=True)
    add_committed(conn, clinic, patient=clinic.patient_ids[1])
    before = stored(factory, clinic)
    with pytest.raises(psycopg.errors.ExclusionViolation), conn.transaction():
        conn.execute("UPDATE appointment SET status = 'booked' WHERE id = %s", (cancelled,))
    with pytest.raises(psycopg.errors.ExclusionViolation), conn.transaction():
        conn.execute("UPDATE appointment SET deleted_at = NULL WHERE id = %s", (tombstoned,))
    assert stored(factory, clinic) == before


def test_overlap_check_of_these_tests_finds_a_pair_planted_behind_the_triggers_back(
    clinic: ClinicData, factory: Factory, owner_engine: Engine
) -> None:
    # Pins that `overlapping_appointments`, which every race test relies on, is not
    # vacuous. The table owner switches the trigger off inside a transaction that is
    # rolled back, so no other writer ever runs without it.
    with owner_engine.connect() as owner, owner.begin() as transaction:
        owner.execute(text("ALTER TABLE appointment DISABLE TRIGGER appointment_no_overlap"))
        owner.execute(text("SELECT set_config('app.clinic_id', :c, true)"),
                      {"c": str(clinic.id)})
        for patient_id, minutes in ((clinic.patient_ids[0], 0), (clinic.patient_ids[1], 20)):
            owner.execute(text(
                "INSERT INTO appointment (clinic_id, id, patient_id, provider_id, starts_at, "
                "ends_at, status) VALUES (:c, :i, :pa, :pr, :s, :e, 'booked')"
            ), {"c": clinic.id, "i": uuid7(), "pa": patient_id, "pr": clinic.provider_ids[0],
                "s": NINE + timedelta(minutes=minutes),
                "e": NINE + timedelta(minutes=minutes + 30)})
        found = factory.overlapping_appointments(clinic, conn=owner)
        transaction.rollback()
    assert [(row.first_start, row.second_start) for row in found] == [
        (NINE, NINE + timedelta(minutes=20))]
    assert factory.appointments(clinic) == {}
    with owner_engine.connect() as owner:
        assert owner.execute(text(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'appointment_no_overlap'"
        )).scalar_one() == "O"


# --- racing writers ------------------------------------------------------------------


def test_concurrent_writer_waits_on_the_lock_and_is_refused_once_the_first_commits(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, owner_engine: Engine,
    pool: ThreadPoolExecutor,
) -> None:
    with connect(db_urls, clinic) as first, connect(db_urls, clinic) as second:
        winner = add(first, clinic)  # open transaction: holds the provider's lock
        race = in_thread(pool, lambda: add_then_commit(second, clinic,
                                                       patient=clinic.patient_ids[1]))
        wait_for_advisory_lock(owner_engine, second.info.backend_pid)
        assert not race.done()
        first.commit()
        with pytest.raises(psycopg.errors.ExclusionViolation):
            race.result(timeout=WAIT)
    assert list(stored(factory, clinic)) == [winner]


def test_concurrent_writer_waits_on_the_lock_and_succeeds_once_the_first_rolls_back(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, owner_engine: Engine,
    pool: ThreadPoolExecutor,
) -> None:
    with connect(db_urls, clinic) as first, connect(db_urls, clinic) as second:
        add(first, clinic)
        race = in_thread(pool, lambda: add_then_commit(second, clinic,
                                                       patient=clinic.patient_ids[1]))
        wait_for_advisory_lock(owner_engine, second.info.backend_pid)
        assert not race.done()
        first.rollback()
        winner = race.result(timeout=WAIT)
    assert list(stored(factory, clinic)) == [winner]


def test_writers_of_different_providers_do_not_wait_for_each_other(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory
) -> None:
    with connect(db_urls, clinic) as first, connect(db_urls, clinic) as second:
        second.execute("SET lock_timeout = '1s'")
        add(first, clinic, provider=clinic.provider_ids[0])
        add_then_commit(second, clinic, provider=clinic.provider_ids[1])  # no wait
        first.commit()
    assert len(stored(factory, clinic)) == 2


def test_repeatable_read_writer_of_an_active_appointment_is_refused(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, conn: psycopg.Connection
) -> None:
    cancelled = add_committed(conn, clinic, status="cancelled", start=NINE + timedelta(hours=3))
    with connect(db_urls, clinic, isolation=IsolationLevel.REPEATABLE_READ) as stale:
        with pytest.raises(psycopg.errors.RaiseException, match="REPEATABLE READ"):
            add_then_commit(stale, clinic)
        with pytest.raises(psycopg.errors.RaiseException, match="REPEATABLE READ"):
            stale.execute("UPDATE appointment SET status = 'booked' WHERE id = %s",
                          (cancelled,))
        stale.rollback()
        # Writing an inactive appointment takes no time, so it is allowed there.
        add_then_commit(stale, clinic, status="cancelled")
    assert sorted(s[3] for s in stored(factory, clinic).values()) == ["cancelled", "cancelled"]


def test_serializable_writer_with_a_stale_snapshot_cannot_commit_an_overlap(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, owner_engine: Engine,
    pool: ThreadPoolExecutor,
) -> None:
    serializable = IsolationLevel.SERIALIZABLE
    with connect(db_urls, clinic, isolation=serializable) as first, \
            connect(db_urls, clinic, isolation=serializable) as second:
        # Both snapshots are taken before either writes: neither can see the other's row.
        for c in (first, second):
            assert c.execute("SELECT count(*) FROM appointment").fetchone() == (0,)
        add(first, clinic)
        race = in_thread(pool, lambda: add_then_commit(second, clinic,
                                                       patient=clinic.patient_ids[1]))
        wait_for_advisory_lock(owner_engine, second.info.backend_pid)
        first.commit()
        # Its snapshot cannot see the committed row, so the trigger's check passes; the
        # serializable conflict detection is what refuses it.
        with pytest.raises(psycopg.errors.SerializationFailure):
            race.result(timeout=WAIT)
    assert len(stored(factory, clinic)) == 1
    assert factory.overlapping_appointments(clinic) == []


def test_serializable_writers_racing_freely_leave_at_most_one_appointment(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, pool: ThreadPoolExecutor,
) -> None:
    serializable = IsolationLevel.SERIALIZABLE
    rounds = 8
    with connect(db_urls, clinic, isolation=serializable) as first, \
            connect(db_urls, clinic, isolation=serializable) as second:
        for n in range(rounds):
            start = NINE + timedelta(hours=n)
            races = [
                in_thread(pool, lambda c=c, p=p, s=start, m=30 + 5 * n: add_then_commit(
                    c, clinic, patient=p, start=s, minutes=m))
                for c, p in ((first, clinic.patient_ids[0]), (second, clinic.patient_ids[1]))
            ]
            outcomes = []
            for race in races:
                try:
                    outcomes.append(race.result(timeout=WAIT))
                except (psycopg.errors.SerializationFailure,
                        psycopg.errors.ExclusionViolation):
                    outcomes.append(None)
            assert sum(o is not None for o in outcomes) == 1, outcomes
    assert len(stored(factory, clinic)) == rounds
    assert factory.overlapping_appointments(clinic) == []


# --- a writer dying mid-booking -------------------------------------------------------


def terminate(owner_engine: Engine, pid: int) -> None:
    with owner_engine.connect() as owner:
        # With a timeout, pg_terminate_backend waits until the backend has exited.
        gone = owner.execute(text("SELECT pg_terminate_backend(:pid, :ms)"),
                             {"pid": pid, "ms": WAIT * 1000}).scalar_one()
    assert gone is True


def test_terminated_writer_leaves_no_appointment_and_no_lock(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, owner_engine: Engine,
    conn: psycopg.Connection,
) -> None:
    with connect(db_urls, clinic) as doomed:
        add(doomed, clinic)
        terminate(owner_engine, doomed.info.backend_pid)
        with pytest.raises(psycopg.OperationalError):
            doomed.commit()
    assert stored(factory, clinic) == {}
    conn.execute("SET lock_timeout = '2s'")
    booked = add_committed(conn, clinic, patient=clinic.patient_ids[1])
    assert list(stored(factory, clinic)) == [booked]


def test_writer_queued_behind_a_terminated_one_gets_the_slot(
    db_urls: tuple[URL, URL], clinic: ClinicData, factory: Factory, owner_engine: Engine,
    pool: ThreadPoolExecutor,
) -> None:
    with connect(db_urls, clinic) as doomed, connect(db_urls, clinic) as waiting:
        add(doomed, clinic)
        race = in_thread(pool, lambda: add_then_commit(waiting, clinic,
                                                       patient=clinic.patient_ids[1]))
        wait_for_advisory_lock(owner_engine, waiting.info.backend_pid)
        terminate(owner_engine, doomed.info.backend_pid)
        booked = race.result(timeout=WAIT)
        with pytest.raises(psycopg.OperationalError):
            doomed.commit()
    assert list(stored(factory, clinic)) == [booked]
