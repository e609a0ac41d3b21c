"""A Twilio-style SMS/WhatsApp provider on loopback.

POST /2010-04-01/Accounts/{account}/Messages.json with To, From, Body (form), basic auth
and an `Idempotency-Key` header. A key already delivered is answered with the first
message's sid and not delivered again, as the real providers do. Tests script failures:
`fail_first` answers 500 to the first N requests of each key, `always_fail` to all,
numbers in `invalid` get 400 with code 21211, and `delay` holds each answer after the
message was taken (the moment a client that dies loses the answer but not the message).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ACCOUNT = "AC-test-account"
TOKEN = "test-provider-token"


@dataclass(frozen=True)
class Delivered:
    key: str
    to: str
    sender: str
    body: str
    sid: str


class TextProvider:
    def __init__(self) -> None:
        self.delivered: dict[str, Delivered] = {}
        self.requests: Counter[str] = Counter()
        self.statuses: list[tuple[str, int]] = []
        self.fail_first = 0
        self.always_fail = False
        self.invalid: set[str] = set()
        self.delay = 0.0
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                provider._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> TextProvider:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any],
                key: str) -> None:
        with self.lock:
            self.statuses.append((key, status))
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        key = handler.headers.get("Idempotency-Key") or ""
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if handler.path != f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json":
            return self._answer(handler, 404, {"code": 20404, "message": "not found"}, key)
        if handler.headers.get("Authorization") != expected:
            return self._answer(handler, 401, {"code": 20003, "message": "auth"}, key)
        with self.lock:
            self.requests[key] += 1
            tries = self.requests[key]
            already = self.delivered.get(key)
        number = form.get("To", "").removeprefix("whatsapp:")
        if already is not None:
            return self._answer(handler, 201, {"sid": already.sid, "status": "queued"}, key)
        if number in self.invalid:
            return self._answer(handler, 400, {"code": 21211, "message": "invalid To"}, key)
        if self.always_fail or tries <= self.fail_first:
            return self._answer(handler, 500, {"code": 20500, "message": "error"}, key)
        sent = Delivered(key, form.get("To", ""), form.get("From", ""), form.get("Body", ""),
                         f"SM{uuid.uuid4().hex}")
        with self.lock:
            self.delivered[key] = sent
        if self.delay:
            time.sleep(self.delay)
        return self._answer(handler, 201, {"sid": sent.sid, "status": "queued"}, key)

    def messages(self) -> list[Delivered]:
        with self.lock:
            return list(self.delivered.values())
