"""The ways a message reaches a patient: e-mail over SMTP, SMS and WhatsApp through a
Twilio-style HTTP API, and a folder of files for the demo.

Each adapter sends one message and answers with the provider's id for it, or raises
`DeliveryError`: `permanent` when this address will never work on this channel (a
refused mailbox, an invalid number), so the dispatcher moves on to the patient's next
channel; otherwise the failure is temporary and the message is retried later. Every send
carries the message's idempotency key: the HTTP providers answer a repeated key with the
first message instead of sending a second, and e-mail uses it as the Message-ID.
Errors carry codes and short reasons, never an address or message text.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import tempfile
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import httpx

from shared_models.enums import Channel
from sync_server.reminders.messages import Message

# Twilio error codes that say the number itself cannot receive the message.
UNREACHABLE_NUMBER_CODES = frozenset({21211, 21214, 21217, 21408, 21610, 21612, 21614, 63003})
SMTP_IDLE_SECONDS = 20.0


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason[:300]
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str | None
    phone: str | None  # E.164


class Adapter(Protocol):
    channel: Channel

    def reaches(self, to: Recipient) -> bool: ...

    def send(self, message: Message, to: Recipient) -> str: ...

    def close(self) -> None: ...


def email_message(message: Message, *, sender: str, to: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message.key}@{sender.rpartition('@')[2] or 'consulta'}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    if message.ics:  # care notices carry no calendar entry
        method = "CANCEL" if message.kind == "cancelled" else "REQUEST"
        mail.add_attachment(message.ics, maintype="text", subtype="calendar",
                            filename="cita.ics", params={"method": method})
    return mail


class EmailChannel:
    """SMTP with one connection kept open between messages (reopened when idle or
    broken); STARTTLS or implicit TLS when configured."""

    channel = Channel.EMAIL

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None,
                 password: str | None = None, tls: str = "none", timeout: float = 10.0
                 ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.tls, self.timeout = tls, timeout
        self._smtp: smtplib.SMTP | None = None
        self._used = 0.0

    def reaches(self, to: Recipient) -> bool:
        return bool(to.email)

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None and time.monotonic() - self._used > SMTP_IDLE_SECONDS:
            self.close()
        if self._smtp is None:
            context = ssl.create_default_context()
            if self.tls == "implicit":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                     context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.tls == "starttls":
                    smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            self._smtp = smtp
        return self._smtp

    def send(self, message: Message, to: Recipient) -> str:
        assert to.email
        mail = email_message(message, sender=self.sender, to=to.email)
        try:
            self._connection().send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            code = next(iter(exc.recipients.values()))[0]
            raise DeliveryError(f"smtp {code}: the mail server refused the address",
                                permanent=500 <= code < 600) from None
        except smtplib.SMTPResponseException as exc:
            self.close()
            permanent = 500 <= exc.smtp_code < 600 and not isinstance(
                exc, smtplib.SMTPSenderRefused | smtplib.SMTPAuthenticationError)
            raise DeliveryError(f"smtp {exc.smtp_code}: the mail server did not take the "
                                "message", permanent=permanent) from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise DeliveryError(f"smtp: {type(exc).__name__}", permanent=False) from None
        self._used = time.monotonic()
        return str(mail["Message-ID"])

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            with contextlib.suppress(OSError):
                self._smtp.close()
        self._smtp = None


class HttpTextChannel:
    """SMS or WhatsApp through a Twilio-style API: POST
    {base}/2010-04-01/Accounts/{account}/Messages.json with To, From and Body, basic auth,
    and the idempotency key in an `Idempotency-Key` header."""

    def __init__(self, channel: Channel, base_url: str, account: str, token: str, sender: str,
                 *, timeout: float = 10.0) -> None:
        self.channel = channel
        self.sender = sender
        self._prefix = "whatsapp:" if channel is Channel.WHATSAPP else ""
        self._http = httpx.Client(base_url=base_url.rstrip("/"), auth=(account, token),
                                  timeout=timeout)
        self._path = f"/2010-04-01/Accounts/{account}/Messages.json"

    def reaches(self, to: Recipient) -> bool:
        return bool(to.phone)

    def send(self, message: Message, to: Recipient) -> str:
        assert to.phone
        try:
            response = self._http.post(
                self._path, headers={"Idempotency-Key": message.key},
                data={"To": f"{self._prefix}{to.phone}", "From": f"{self._prefix}{self.sender}",
                      "Body": message.short})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.channel}: {type(exc).__name__}", permanent=False) from None
        if response.is_success:
            try:
                return str(response.json()["sid"])[:100]
            except (ValueError, KeyError, TypeError):
                raise DeliveryError(f"{self.channel}: the provider's answer had no message id",
                                    permanent=False) from None
        code = _provider_code(response)
        status = response.status_code
        permanent = code in UNREACHABLE_NUMBER_CODES or (
            400 <= status < 500 and status not in (401, 403, 408, 409, 429))
        detail = f" (code {code})" if code is not None else ""
        raise DeliveryError(f"{self.channel}: provider answered {status}{detail}",
                            permanent=permanent)

    def close(self) -> None:
        self._http.close()


def _provider_code(response: httpx.Response) -> int | None:
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        return None
    return code if isinstance(code, int) else None


class OutboxChannel:
    """Writes each message to a folder instead of sending it (the demo, and a way to see
    what patients would receive): `<key>.eml` for e-mail, `<key>.txt` for text messages.
    A message whose file exists is not written again."""

    def __init__(self, channel: Channel, folder: Path) -> None:
        self.channel = channel
        self.folder = folder

    def reaches(self, to: Recipient) -> bool:
        return bool(to.email if self.channel is Channel.EMAIL else to.phone)

    def send(self, message: Message, to: Recipient) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.channel is Channel.EMAIL:
            assert to.email
            path = self.folder / f"{message.key}.eml"
            body = email_message(message, sender="recordatorios@consulta.invalid",
                                 to=to.email).as_bytes()
        else:
            path = self.folder / f"{message.key}.txt"
            body = f"To: {self.channel}:{to.phone}\n\n{message.short}\n".encode()
        if not path.exists():
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".sending-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(body)
                os.replace(temp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        return path.name

    def close(self) -> None:
        pass
