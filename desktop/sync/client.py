"""The sync engine: push the outbox in batches, then pull pages by cursor.

Each pulled page is applied in one local transaction together with its cursor, so a
process killed mid-page resumes from the last complete page. Outbox entries are removed
only in the transaction that applies the server's answer to them; pushing a batch again
after a lost answer is harmless because the server answers replays from its records.

Network and local work overlap, in both directions. While a pulled page is being
applied, another thread already fetches and reads the next one (each request needs only
the previous answer's cursor); nothing fetched ahead is kept unless its own transaction
commits. While the answer to a pushed batch is being recorded, the next batch is already
with the server, which received it after answering the one before.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, Table, delete, func, insert, select, update

from desktop.store.local import attention, outbox, sync_state
from desktop.store.records import to_row
from desktop.sync.errors import SyncAuthError, SyncNetworkError, SyncProtocolError
from desktop.threads import check_not_gui_thread
from shared_models.tables import (
    allergy,
    appointment,
    availability_exception,
    availability_rule,
    clinical_note,
    condition,
    lab_order,
    lab_result,
    medication,
    patient,
    payment,
    pharmacy,
    prescription,
    prescription_item,
    provider,
    signing_key,
    vital_signs,
)

TABLES: dict[str, Table] = {
    "patient": patient, "provider": provider, "availability_rule": availability_rule,
    "availability_exception": availability_exception, "appointment": appointment,
    "clinical_note": clinical_note, "payment": payment, "allergy": allergy,
    "condition": condition, "medication": medication, "vital_signs": vital_signs,
    "pharmacy": pharmacy, "signing_key": signing_key, "prescription": prescription,
    "prescription_item": prescription_item, "lab_order": lab_order, "lab_result": lab_result,
}
DEFAULT_BATCH = 200
DEFAULT_PAGE = 500
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 0.5
CURSOR_KEY = "pull_cursor"
# Pages read ahead of the one being applied: enough to keep the network busy, few enough
# that a full pull holds little more memory than one page.
PREFETCH_PAGES = 2


@dataclass
class Progress:
    pushed: int = 0
    rejected: int = 0
    pulled: int = 0


Reporter = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class _Known:
    """The local store as settling one pushed batch finds it: the newest outbox entry of
    each record, and the local version of each record the answers carry (kept up to date
    as answers are stored)."""

    latest_edit: dict[uuid.UUID, int]
    versions: dict[tuple[str, uuid.UUID], int]


@contextlib.contextmanager
def _writing(conn: Connection) -> Iterator[None]:
    """A local transaction that holds the write lock from its first statement: what it
    reads (the outbox, local versions) cannot change under it before it writes, whatever
    else on this computer is saving an edit meanwhile."""
    with conn.begin():
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield


@dataclass(frozen=True, slots=True)
class _Page:
    """One pulled page, read into rows of the local store by entity."""

    changes: int
    rows: dict[str, list[dict[str, Any]]]
    next_cursor: str
    has_more: bool


class _Prefetch:
    """Runs a page generator on its own thread, at most PREFETCH_PAGES ahead of the
    reader. An error on that thread (SyncNetworkError...) reaches the reader after the
    pages before it, where the request would have failed without prefetching. Leaving
    the block stops the thread and waits for it, so nothing of a pull outlives it."""

    def __init__(self, pages: Callable[[str | None], Iterator[_Page]], cursor: str | None
                 ) -> None:
        self._queue: queue.Queue[_Page | BaseException] = queue.Queue(PREFETCH_PAGES)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pages, cursor),
                                        name="sync-pull-prefetch", daemon=True)

    def _run(self, pages: Callable[[str | None], Iterator[_Page]], cursor: str | None
             ) -> None:
        try:
            for page in pages(cursor):
                self._queue.put(page)
                if self._stop.is_set():  # before asking the server for another page
                    return
        except BaseException as exc:  # handed to the reader, which raises it
            self._queue.put(exc)

    def __enter__(self) -> Iterator[_Page]:
        self._thread.start()
        return self._read()

    def _read(self) -> Iterator[_Page]:
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            yield item
            if not item.has_more:
                return

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self._stop.set()
        # Make room for a page the thread may be waiting to hand over; it then sees the
        # stop before asking for another.
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.05)
        self._thread.join()


class SyncClient:
    """Pushes and pulls one local store. `token` is also called from the threads that
    send pushed batches and fetch pulled pages ahead."""

    def __init__(self, engine: Engine, http: httpx.Client, *, token: Callable[[], str],
                 batch: int = DEFAULT_BATCH, page: int = DEFAULT_PAGE,
                 attempts: int = DEFAULT_ATTEMPTS, backoff_s: float = DEFAULT_BACKOFF_S,
                 on_progress: Reporter | None = None, cursor_key: str = CURSOR_KEY) -> None:
        self.engine = engine
        # What a pull brings depends on the role, so each role signing in on this
        # computer follows its own cursor; one shared cursor would skip, for a doctor,
        # the notes a receptionist's pulls never asked for.
        self.cursor_key = cursor_key
        self.http = http
        self.token = token
        self.batch = batch
        self.page = page
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.on_progress = on_progress or (lambda _p: None)

    # --- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        check_not_gui_thread("a request to the server")
        for attempt in range(self.attempts):
            try:
                response = self.http.request(
                    method, path, headers={"Authorization": f"Bearer {self.token()}"},
                    **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 == self.attempts:
                    raise SyncNetworkError(
                        "The server cannot be reached; your changes are kept on this "
                        "computer and will be sent later.") from exc
                time.sleep(self.backoff_s * 2**attempt)
                continue
            if response.status_code == 401:
                message = response.json().get("error", {}).get("message", "Sign in again.")
                raise SyncAuthError(message)
            if response.status_code >= 500:
                if attempt + 1 == self.attempts:
                    raise SyncNetworkError("The server is having trouble; your changes are "
                                           "kept and will be sent later.")
                time.sleep(self.backoff_s * 2**attempt)
                continue
            if response.status_code != 200:
                raise SyncProtocolError(f"The server refused the sync ({response.status_code}): "
                                        f"{response.text[:200]}")
            body: dict[str, Any] = response.json()
            return body
        raise AssertionError("unreachable")

    # --- push --------------------------------------------------------------------------

    def push(self, progress: Progress | None = None) -> Progress:
        progress = progress or Progress()
        # The next batch goes out as soon as the server has answered the one before (the
        # server applies batches in the order it receives them); recording that answer
        # here overlaps the server's work on the next.
        with self.engine.connect() as conn, ThreadPoolExecutor(
                1, thread_name_prefix="sync-push-send") as sender:
            rows = self._batch_after(conn, None)
            answer = sender.submit(self._send, rows) if rows else None
            while answer is not None:
                body = answer.result()
                following = self._batch_after(conn, rows[-1].seq)
                answer = sender.submit(self._send, following) if following else None
                results = {uuid.UUID(r["mutation_id"]): r for r in body["results"]}
                with _writing(conn):
                    known = self._known(conn, rows, results)
                    for row in rows:
                        result = results.get(row.mutation_id)
                        if result is None:
                            raise SyncProtocolError("The server skipped a change; it will "
                                                    "be sent again.")
                        self._settle(conn, row, result, known)
                        progress.pushed += 1
                        progress.rejected += result["status"] == "rejected"
                self.on_progress(progress)
                if answer is None:  # changes made while pushing go in this push too
                    following = self._batch_after(conn, None)
                    answer = sender.submit(self._send, following) if following else None
                rows = following
        return progress

    def _batch_after(self, conn: Connection, seq: int | None) -> list[Any]:
        """The next outbox entries to send, oldest first, after `seq`."""
        stmt = select(outbox).order_by(outbox.c.seq).limit(self.batch)
        if seq is not None:
            stmt = stmt.where(outbox.c.seq > seq)
        with conn.begin():
            return list(conn.execute(stmt).all())

    def _send(self, rows: list[Any]) -> dict[str, Any]:
        return self._call("POST", "/api/v1/sync/push", json={"mutations": [
            {"mutation_id": str(r.mutation_id), "entity": r.entity, "op": r.op,
             "record_id": str(r.record_id), "base_version": r.base_version,
             "changes": r.changes, "base": r.base, "hlc": r.hlc} for r in rows]})

    def _known(self, conn: Connection, rows: list[Any], results: dict[uuid.UUID, Any]
               ) -> _Known:
        """What settling a batch needs to know about the local store, read in one
        statement per table rather than in several per answer."""
        latest_edit: dict[uuid.UUID, int] = {
            record_id: seq for record_id, seq in conn.execute(
                select(outbox.c.record_id, func.max(outbox.c.seq))
                .where(outbox.c.record_id.in_({row.record_id for row in rows}))
                .group_by(outbox.c.record_id))}
        records: dict[str, set[uuid.UUID]] = {}
        for row in rows:
            result = results.get(row.mutation_id)
            if result is not None and result.get("record"):
                records.setdefault(row.entity, set()).add(uuid.UUID(result["record"]["id"]))
        versions: dict[tuple[str, uuid.UUID], int] = {}
        for entity, ids in records.items():
            table = TABLES[entity]
            versions.update(((entity, record_id), version) for record_id, version in conn.execute(
                select(table.c.id, table.c.server_version).where(table.c.id.in_(ids))))
        return _Known(latest_edit, versions)

    def _settle(self, conn: Connection, row: Any, result: dict[str, Any], known: _Known
                ) -> None:
        # None for what has no local table: a chart read only reaches the audit log.
        table = TABLES.get(row.entity)
        # A change made here while this one was on its way stays on screen until it too
        # has been answered; the server's record then includes it.
        newer_local_edit = known.latest_edit.get(row.record_id, row.seq) > row.seq
        if table is not None and result.get("record") and not newer_local_edit:
            self._store(conn, table, result["record"], result["server_version"], known)
        if result["status"] == "rejected" and row.entity == "medication" \
                and self._withdrawn_medication(conn, row.record_id):
            # Added by a prescription the server refused: that refusal is the one a
            # person needs to see.
            conn.execute(delete(outbox).where(outbox.c.seq == row.seq))
            return
        if result["status"] in ("rejected", "conflict"):
            conn.execute(insert(attention).values(
                mutation_id=row.mutation_id, entity=row.entity, record_id=row.record_id,
                status=result["status"], code=result.get("code"), reason=result.get("reason"),
                detail={"alternatives": result.get("alternatives", []),
                        "conflicts": result.get("conflicts", [])},
                created_at=datetime.now(UTC)))
            if result["status"] == "rejected" and row.entity == "appointment" \
                    and row.op == "book":
                conn.execute(update(table).where(table.c.id == row.record_id)
                             .values(status="rejected"))
            if result["status"] == "rejected" and row.entity == "prescription" \
                    and row.op == "sign":
                self._withdraw_prescription(conn, row.record_id)
        conn.execute(delete(outbox).where(outbox.c.seq == row.seq))

    def _withdraw_prescription(self, conn: Connection, prescription_id: uuid.UUID) -> None:
        """The server refused a prescription signed here, so it never reached a pharmacy:
        the medicines it put on the patient's active list come off again, and their own
        changes are not sent. The prescription stays, shown as refused with the reason
        (the attention entry), for the doctor to correct and sign again."""
        added = select(medication.c.id).where(medication.c.prescription_id == prescription_id)
        conn.execute(update(medication).where(medication.c.prescription_id == prescription_id)
                     .values(deleted_at=datetime.now(UTC)))
        conn.execute(delete(outbox).where(outbox.c.entity == "medication",
                                          outbox.c.record_id.in_(added)))

    def _withdrawn_medication(self, conn: Connection, medication_id: uuid.UUID) -> bool:
        refused = select(attention.c.record_id).where(
            attention.c.entity == "prescription", attention.c.status == "rejected")
        return conn.execute(select(medication.c.id).where(
            medication.c.id == medication_id, medication.c.deleted_at.is_not(None),
            medication.c.prescription_id.in_(refused))).first() is not None

    # --- pull --------------------------------------------------------------------------

    def _cursor(self, conn: Connection) -> str | None:
        value: str | None = conn.execute(
            select(sync_state.c.value).where(sync_state.c.key == self.cursor_key)
        ).scalar_one_or_none()
        return value

    def pull(self, progress: Progress | None = None) -> Progress:
        progress = progress or Progress()
        # One connection for the whole pull: opening one per page costs a key check, and
        # closing the last one checkpoints the write-ahead log each time.
        with self.engine.connect() as conn:
            with conn.begin():
                cursor = self._cursor(conn)
            with _Prefetch(self._fetch_pages, cursor) as pages:
                for page in pages:
                    with _writing(conn):
                        pending = set(conn.execute(select(outbox.c.record_id)).scalars())
                        for entity, rows in page.rows.items():
                            # A local edit still waiting to be pushed stays on screen until
                            # then.
                            kept = [row for row in rows if row["id"] not in pending]
                            if kept:
                                self._store_page(conn, TABLES[entity], kept)
                        self._save_cursor(conn, page.next_cursor)
                    progress.pulled += page.changes
                    self.on_progress(progress)
        return progress

    def _fetch_pages(self, cursor: str | None) -> Iterator[_Page]:
        """The pages from `cursor` on, each read as rows of the local store. Runs on the
        prefetching thread, so the next page is on its way while one is being applied;
        each request needs only the cursor the previous answer gave."""
        while True:
            params: dict[str, Any] = {"limit": self.page}
            if cursor:
                params["since"] = cursor
            body = self._call("GET", "/api/v1/sync/pull", params=params)
            rows: dict[str, list[dict[str, Any]]] = {}
            for change in body["changes"]:
                row = to_row(TABLES[change["entity"]], change["record"])
                row["server_version"] = change["server_version"]
                rows.setdefault(change["entity"], []).append(row)
            cursor = body["next_cursor"]
            yield _Page(changes=len(body["changes"]), rows=rows, next_cursor=body["next_cursor"],
                        has_more=body["has_more"])
            if not body["has_more"]:
                return

    def _save_cursor(self, conn: Any, cursor: str) -> None:
        if conn.execute(update(sync_state).where(sync_state.c.key == self.cursor_key)
                        .values(value=cursor)).rowcount == 0:
            conn.execute(insert(sync_state).values(key=self.cursor_key, value=cursor))

    def _store_page(self, conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
        """Apply one pulled page's rows of one table: one lookup, then bulk writes."""
        ids = [r["id"] for r in rows]
        local = dict(conn.execute(select(table.c.id, table.c.server_version)
                                  .where(table.c.id.in_(ids))).all())
        fresh = [r for r in rows if r["id"] not in local and "clinic_id" in r]
        if fresh:
            conn.execute(insert(table), fresh)
        for row in rows:
            if row["id"] in local and local[row["id"]] < row["server_version"]:
                conn.execute(update(table).where(table.c.id == row["id"]).values(**row))

    def _store(self, conn: Connection, table: Table, record: dict[str, Any], version: int,
               known: _Known) -> None:
        """Upsert a server record unless the local copy is already as new."""
        values = to_row(table, record)
        values["server_version"] = version
        key = (table.name, values["id"])
        current = known.versions.get(key)
        if current is None:
            if "clinic_id" not in values:
                return  # a tombstone of something this computer never had
            conn.execute(insert(table).values(**values))
        elif current < version:
            conn.execute(update(table).where(table.c.id == values["id"]).values(**values))
        else:
            return
        known.versions[key] = version

    def sync(self) -> Progress:
        progress = Progress()
        self.push(progress)
        self.pull(progress)
        return progress
