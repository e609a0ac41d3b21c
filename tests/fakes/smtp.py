"""A real SMTP server on loopback (aiosmtpd) that keeps what it accepts."""

from __future__ import annotations

import asyncio
import email
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    recipients: tuple[str, ...]
    raw: bytes

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message()["Message-ID"])


class Mailbox:
    """The aiosmtpd handler: accepts every message (after `delay` seconds, if set), refuses
    recipients in `refused` with 550, or answers 451 to `fail_next` messages."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused: set[str] = set()
        self.delay = 0.0
        self.fail_next = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if address in self.refused:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            # A client that disconnects meanwhile cancels this handler: the message is
            # not kept, as a real server does not accept what it never acknowledged.
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.fail_next:
                self.fail_next -= 1
                return "451 4.3.0 Try again later"
            self.received.append(Received(tuple(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    def __init__(self) -> None:
        self.mailbox = Mailbox()
        self.port = _free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()
