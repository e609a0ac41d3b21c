"""A desktop process that dies for real, for the crash tests: it opens an encrypted store,
runs one sync step (pull or push) against a server, and sends itself SIGKILL just before
SQLite runs the Nth statement that starts with a given prefix, so it dies inside the
local transaction that statement belongs to.

    python -m tests.e2e.crashing_desktop {pull,push} STORE SERVER_URL \
        --kill-before "INSERT INTO patient" --kill-at 25 [--page N] [--batch N]

The store key (hex) and the access token come in the environment (`STORE_KEY_ENV`,
`TOKEN_ENV`), never on the command line, where any user of the machine could read them.
It exits 0 if the sync step finished without reaching the statement.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx
import sqlcipher3
from sqlalchemy import event

from desktop.store.database import open_store
from desktop.sync.client import SyncClient

STORE_KEY_ENV = "CONSULTA_TEST_STORE_KEY"
TOKEN_ENV = "CONSULTA_TEST_TOKEN"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crashing_desktop", description=__doc__)
    parser.add_argument("step", choices=["pull", "push"])
    parser.add_argument("store", type=Path)
    parser.add_argument("server_url")
    parser.add_argument("--kill-before", required=True, help="statement prefix to count")
    parser.add_argument("--kill-at", type=int, required=True, help="die before this one")
    parser.add_argument("--page", type=int, default=10)
    parser.add_argument("--batch", type=int, default=200)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    key = bytes.fromhex(os.environ[STORE_KEY_ENV])
    token = os.environ[TOKEN_ENV]
    engine = open_store(args.store, key)
    seen = 0

    def trace(statement: str) -> None:
        # SQLite reports each statement as it starts, each row of an executemany included.
        nonlocal seen
        if statement.startswith(args.kill_before):
            seen += 1
            if seen == args.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    @event.listens_for(engine, "connect")
    def _install(dbapi_conn: sqlcipher3.Connection, _record: object) -> None:
        dbapi_conn.set_trace_callback(trace)

    engine.dispose()  # the store keeps connections: start afresh so each one is traced

    with httpx.Client(base_url=args.server_url, timeout=30) as http:
        client = SyncClient(engine, http, token=lambda: token, page=args.page,
                            batch=args.batch, backoff_s=0.01)
        progress = client.pull() if args.step == "pull" else client.push()
    print(f"finished without dying: {progress}, {seen} matching statements", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
