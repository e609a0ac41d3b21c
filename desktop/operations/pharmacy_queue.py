"""The pharmacist's work, online: the prescriptions routed to their pharmacy, and
receiving, dispensing or refusing one.

The server checks each signature, and this computer checks it again with the prescriber's
public key before anything is received or dispensed: a prescription whose content no
longer matches its signature, or whose key was revoked, is never handed over from here.
Each call is one or two requests through the signed-in person's ServerLink on the
network worker; offline they raise SyncNetworkError, and a refusal by the server comes
back as RequestRefused with the server's own message (desktop.sync.errors).

    PharmacyError        a message a pharmacist can act on (shown in a dialog)
    └── NotDispensable   the signature does not hold (`check` says why); refuse it
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from desktop.sync.errors import SyncProtocolError
from shared_models import signing
from shared_models.schemas.prescriptions import (
    PrescriptionPublic,
    PrescriptionRefuse,
    PrescriptionsPublic,
)

# As many prescriptions as a pharmacist works through on one screen.
PAGE_SIZE = 50
TAMPERED = ("This prescription's signature does not match its content; it may have been "
            "altered. Do not dispense it; contact the prescriber.")
REVOKED = ("This prescription was signed with a key that has been revoked. Do not dispense "
           "it; contact the prescriber.")
NOT_APPROVED = ("The prescriber's key is not approved by the clinic. Do not dispense it; "
                "contact the prescriber.")

M = TypeVar("M", bound=BaseModel)


class Server(Protocol):
    """What these calls need of desktop.server_link.ServerLink."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class PharmacyError(Exception):
    """The step cannot be taken; the message says why."""


class NotDispensable(PharmacyError):
    def __init__(self, check: Checked) -> None:
        super().__init__(check.problem)
        self.check = check


@dataclass(frozen=True)
class Checked:
    """A prescription as the server sent it, with this computer's own signature check."""

    prescription: PrescriptionPublic
    # The signature verified here against the content and the key the server sent.
    signature_valid: bool
    # Why it must not be received or dispensed (TAMPERED, REVOKED...); None when it may.
    problem: str | None

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signing key, as the prescriber's key screen shows it."""
        try:
            return signing.fingerprint(self.prescription.public_key)
        except signing.SignatureError:
            return ""

    @property
    def message(self) -> str:
        """The line to show beside the prescription."""
        if self.problem is not None:
            return self.problem
        return (f"Signature verified: {self.prescription.prescriber_name}, key "
                f"{self.fingerprint[:16]}.")

    @property
    def can_receive(self) -> bool:
        return self.problem is None and self.prescription.status == "sent"

    @property
    def can_dispense(self) -> bool:
        return self.problem is None and self.prescription.status == "received"

    @property
    def can_refuse(self) -> bool:
        return self.prescription.status in ("sent", "received")


@dataclass(frozen=True)
class IncomingPage:
    data: list[Checked]
    has_more: bool
    next_offset: int | None


def _read(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SyncProtocolError("The server's answer about prescriptions could not be read; "
                                "this computer may need an update.") from exc


def _signature_holds(p: PrescriptionPublic) -> bool:
    try:
        return signing.verify_prescription(
            p.public_key, p.model_dump(), [item.model_dump() for item in p.items])
    except (signing.SignatureError, ValueError):
        return False


def check(p: PrescriptionPublic) -> Checked:
    """Verify the prescription here, whatever the server said about it."""
    valid = _signature_holds(p)
    problem: str | None = None
    if not valid:
        problem = TAMPERED
    elif not p.server_check.valid:
        # The content holds here; the server distrusts the key (revoked for cause, never
        # approved) or found the stored copy changed.
        problem = {"revoked": REVOKED, "pending": NOT_APPROVED}.get(
            p.server_check.key_status, TAMPERED)
    return Checked(prescription=p, signature_valid=valid, problem=problem)


def incoming(server: Server, *, status: str | None = None, limit: int = PAGE_SIZE,
             offset: int = 0) -> IncomingPage:
    """The prescriptions routed to this pharmacist's pharmacy (in `status`, or all)."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    page = _read(PrescriptionsPublic,
                 server.request("GET", "/api/v1/prescriptions/incoming", params=params))
    return IncomingPage(data=[check(p) for p in page.data], has_more=page.has_more,
                        next_offset=page.next_offset)


def fetch(server: Server, prescription_id: uuid.UUID) -> Checked:
    """One prescription as the server holds it now, checked here."""
    return check(_read(PrescriptionPublic,
                       server.request("GET", f"/api/v1/prescriptions/{prescription_id}")))


def _step(server: Server, prescription_id: uuid.UUID, step: str) -> Checked:
    # Checked as the server holds it now, not as a screen showed it minutes ago.
    current = fetch(server, prescription_id)
    if current.problem is not None:
        raise NotDispensable(current)
    return check(_read(PrescriptionPublic, server.request(
        "POST", f"/api/v1/prescriptions/{prescription_id}/{step}")))


def receive(server: Server, prescription_id: uuid.UUID) -> Checked:
    """Take the prescription in at the counter (sent -> received)."""
    return _step(server, prescription_id, "receive")


def dispense(server: Server, prescription_id: uuid.UUID) -> Checked:
    """Hand the medicines over (received -> dispensed)."""
    return _step(server, prescription_id, "dispense")


def refuse(server: Server, prescription_id: uuid.UUID, reason: str) -> Checked:
    """Refuse it, saying why; also for one whose signature does not hold."""
    try:
        body = PrescriptionRefuse(reason=reason)
    except ValidationError:
        raise PharmacyError("Say why the prescription is refused (at least 3 "
                            "characters).") from None
    return check(_read(PrescriptionPublic, server.request(
        "POST", f"/api/v1/prescriptions/{prescription_id}/refuse",
        json=body.model_dump())))
