"""The sync engine: push the outbox in batches, then pull pages by cursor.

Each pulled page is applied in one local transaction together with its cursor, so a
process killed mid-page resumes from the last complete page. Outbox entries are removed
only in the transaction that applies the server's answer to them; pushing a batch again
after a lost answer is harmless because the server answers replays from its records.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, Table, delete, insert, select, update

from desktop.store.local import attention, outbox, sync_state
from desktop.store.records import to_row
from desktop.sync.errors import SyncAuthError, SyncNetworkError, SyncProtocolError
from shared_models.tables import (
    appointment,
    availability_exception,
    availability_rule,
    clinical_note,
    patient,
    provider,
)

TABLES: dict[str, Table] = {
    "patient": patient, "provider": provider, "availability_rule": availability_rule,
    "availability_exception": availability_exception, "appointment": appointment,
    "clinical_note": clinical_note,
}
DEFAULT_BATCH = 200
DEFAULT_PAGE = 500
DEFAULT_ATTEMPTS = 4
DEFAULT_BACKOFF_S = 0.5
CURSOR_KEY = "pull_cursor"


@dataclass
class Progress:
    pushed: int = 0
    rejected: int = 0
    pulled: int = 0


Reporter = Callable[[Progress], None]


class SyncClient:
    def __init__(self, engine: Engine, http: httpx.Client, *, token: Callable[[], str],
                 batch: int = DEFAULT_BATCH, page: int = DEFAULT_PAGE,
                 attempts: int = DEFAULT_ATTEMPTS, backoff_s: float = DEFAULT_BACKOFF_S,
                 on_progress: Reporter | None = None) -> None:
        self.engine = engine
        self.http = http
        self.token = token
        self.batch = batch
        self.page = page
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.on_progress = on_progress or (lambda _p: None)

    # --- transport ---------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
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
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(select(outbox).order_by(outbox.c.seq)
                                    .limit(self.batch)).all()
            if not rows:
                return progress
            body = self._call("POST", "/api/v1/sync/push", json={"mutations": [
                {"mutation_id": str(r.mutation_id), "entity": r.entity, "op": r.op,
                 "record_id": str(r.record_id), "base_version": r.base_version,
                 "changes": r.changes, "base": r.base, "hlc": r.hlc} for r in rows]})
            results = {uuid.UUID(r["mutation_id"]): r for r in body["results"]}
            with self.engine.begin() as conn:
                for row in rows:
                    result = results.get(row.mutation_id)
                    if result is None:
                        raise SyncProtocolError("The server skipped a change; it will be "
                                                "sent again.")
                    self._settle(conn, row, result)
                    progress.pushed += 1
                    progress.rejected += result["status"] == "rejected"
            self.on_progress(progress)

    def _settle(self, conn: Any, row: Any, result: dict[str, Any]) -> None:
        table = TABLES[row.entity]
        newer_local_edit = conn.execute(
            select(outbox.c.seq).where(outbox.c.record_id == row.record_id,
                                       outbox.c.seq > row.seq).limit(1)).first()
        # A change made here while this one was on its way stays on screen until it too
        # has been answered; the server's record then includes it.
        if result.get("record") and newer_local_edit is None:
            self._store(conn, table, result["record"], result["server_version"])
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
        conn.execute(delete(outbox).where(outbox.c.seq == row.seq))

    # --- pull --------------------------------------------------------------------------

    def _cursor(self) -> str | None:
        with self.engine.connect() as conn:
            value: str | None = conn.execute(
                select(sync_state.c.value).where(sync_state.c.key == CURSOR_KEY)
            ).scalar_one_or_none()
            return value

    def pull(self, progress: Progress | None = None) -> Progress:
        progress = progress or Progress()
        while True:
            params: dict[str, Any] = {"limit": self.page}
            cursor = self._cursor()
            if cursor:
                params["since"] = cursor
            body = self._call("GET", "/api/v1/sync/pull", params=params)
            with self.engine.begin() as conn:
                pending = set(conn.execute(select(outbox.c.record_id)).scalars())
                by_entity: dict[str, list[dict[str, Any]]] = {}
                for change in body["changes"]:
                    # A local edit still waiting to be pushed stays on screen until then.
                    if uuid.UUID(change["id"]) not in pending:
                        by_entity.setdefault(change["entity"], []).append(change)
                for entity, changes in by_entity.items():
                    self._store_page(conn, TABLES[entity], changes)
                self._save_cursor(conn, body["next_cursor"])
            progress.pulled += len(body["changes"])
            self.on_progress(progress)
            if not body["has_more"]:
                return progress

    def _save_cursor(self, conn: Any, cursor: str) -> None:
        if conn.execute(update(sync_state).where(sync_state.c.key == CURSOR_KEY)
                        .values(value=cursor)).rowcount == 0:
            conn.execute(insert(sync_state).values(key=CURSOR_KEY, value=cursor))

    def _store_page(self, conn: Any, table: Table, changes: list[dict[str, Any]]) -> None:
        """Apply one pulled page's records of one table: one lookup, then bulk writes."""
        rows = [to_row(table, {**c["record"], "server_version": c["server_version"]})
                for c in changes]
        ids = [r["id"] for r in rows]
        local = dict(conn.execute(select(table.c.id, table.c.server_version)
                                  .where(table.c.id.in_(ids))).all())
        fresh = [r for r in rows if r["id"] not in local and "clinic_id" in r]
        if fresh:
            conn.execute(insert(table), fresh)
        for row in rows:
            if row["id"] in local and local[row["id"]] < row["server_version"]:
                conn.execute(update(table).where(table.c.id == row["id"]).values(**row))

    def _store(self, conn: Any, table: Table, record: dict[str, Any], version: int) -> None:
        """Upsert a server record unless the local copy is already as new."""
        values = to_row(table, {**record, "server_version": version})
        record_id = values["id"]
        current = conn.execute(select(table.c.server_version, table.c.clinic_id)
                               .where(table.c.id == record_id)).first()
        if current is None:
            if "clinic_id" not in values:
                return  # a tombstone of something this computer never had
            conn.execute(insert(table).values(**values))
        elif current.server_version < version:
            conn.execute(update(table).where(table.c.id == record_id).values(**values))

    def sync(self) -> Progress:
        progress = Progress()
        self.push(progress)
        self.pull(progress)
        return progress
