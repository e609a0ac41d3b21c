"""The lab technician's work, online: the worklist, moving an order through its steps,
and entering results, which the server flags against the ranges in use.

Each call is one request through the signed-in person's ServerLink on the network
worker; offline they raise SyncNetworkError, and a refusal by the server (completing an
order with tests still missing results, a step out of order) comes back as
RequestRefused with the server's own message (desktop.sync.errors). What can be known
here is checked before asking: LabWorkError says what to fix.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from desktop.sync.errors import SyncProtocolError
from shared_models import lab_tests
from shared_models.schemas.lab_orders import (
    NEXT_LAB_STATUS,
    RESULTS_OPEN,
    LabOrderPublic,
    LabOrdersPublic,
    LabOrderTransition,
    LabResultIn,
    LabResultsEntry,
)

PAGE_SIZE = 50
# How a flag is marked beside a value, as lab reports print it.
FLAG_MARKS: dict[str, str] = {"normal": "", "low": "L", "high": "H", "critical_low": "LL",
                              "critical_high": "HH", "abnormal": "A"}

M = TypeVar("M", bound=BaseModel)


class Server(Protocol):
    """What these calls need of desktop.server_link.ServerLink."""

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


class LabWorkError(Exception):
    """The step or the results cannot be sent as they are; the message says why."""


def _read(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise SyncProtocolError("The server's answer about lab orders could not be read; "
                                "this computer may need an update.") from exc


def worklist(server: Server, *, status: str | None = None, limit: int = PAGE_SIZE,
             offset: int = 0) -> LabOrdersPublic:
    """The lab's orders (in `status`, or all open ones as the server lists them), urgent
    first, oldest first within each priority."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = status
    return _read(LabOrdersPublic, server.request("GET", "/api/v1/lab-orders", params=params))


def order(server: Server, order_id: uuid.UUID) -> LabOrderPublic:
    return _read(LabOrderPublic, server.request("GET", f"/api/v1/lab-orders/{order_id}"))


def next_steps(current: LabOrderPublic) -> list[str]:
    """The statuses the order may move to now (the buttons a screen enables)."""
    return sorted(NEXT_LAB_STATUS[current.status],
                  key=("sample_received", "processing", "completed", "cancelled").index)


def missing_results(current: LabOrderPublic) -> list[str]:
    """The order's tests with no result yet: completing waits for them."""
    done = {r.test_code for r in current.results}
    return [code for code in current.tests if code not in done]


def flag_mark(flag: str) -> str:
    return FLAG_MARKS.get(flag, "?")


def move(server: Server, order_id: uuid.UUID, to: str, *, reason: str | None = None
         ) -> LabOrderPublic:
    """Move the order to `to` (sample_received, processing, completed, or cancelled with
    a reason)."""
    if to == "cancelled" and not (reason or "").strip():
        raise LabWorkError("Say why the order is cancelled (for example: sample "
                           "haemolysed).")
    try:
        step = LabOrderTransition.model_validate({"to": to, "reason": reason})
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        if field == "reason":
            raise LabWorkError("The reason needs 3 to 500 characters.") from None
        raise LabWorkError(f"'{to}' is not a step of a lab order.") from None
    return _read(LabOrderPublic, server.request(
        "POST", f"/api/v1/lab-orders/{order_id}/status",
        json=step.model_dump(exclude_none=True)))


def _label(result: Mapping[str, Any], index: int) -> str:
    test, name = result.get("test_code"), result.get("analyte")
    return f"{test} {name}" if test and name else f"Result {index + 1}"


def _checked(results: Iterable[Mapping[str, Any]], tests: list[str] | None
             ) -> LabResultsEntry:
    rows = [dict(r) for r in results]
    if not rows:
        raise LabWorkError("Enter at least one result.")
    for index, row in enumerate(rows):
        try:
            LabResultIn.model_validate(row)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else "value"
            if field == "value" and error["type"] in ("string_too_short", "missing"):
                problem = "the value is empty"
            elif error["type"] == "string_too_long":
                problem = (f"the {field.replace('_', ' ')} is too long (at most "
                           f"{(error.get('ctx') or {}).get('max_length')} characters)")
            else:
                problem = str(error["msg"]).removeprefix("Value error, ")
            raise LabWorkError(f"{_label(row, index)}: {problem}.") from None
        if tests is not None and row["test_code"] not in tests:
            raise LabWorkError(f"{_label(row, index)}: the test {row['test_code']} is not "
                               "part of this order.")
        try:
            lab_tests.analyte(row["test_code"], row["analyte"])
        except lab_tests.UnknownTestError:
            raise LabWorkError(f"{_label(row, index)}: the test {row['test_code']} does not "
                               f"measure '{row['analyte']}'.") from None
    try:
        return LabResultsEntry.model_validate({"results": rows})
    except ValidationError:
        raise LabWorkError(f"Enter at most 100 results at a time; this has {len(rows)}."
                           ) from None


def enter_results(server: Server, order_id: uuid.UUID,
                  results: Iterable[Mapping[str, Any]], *,
                  current: LabOrderPublic | None = None) -> LabOrderPublic:
    """Send values (each: test_code, analyte, value, and optionally the lab's own unit
    and range); the answer carries every result of the order with its flag. A value sent
    again for the same analyte replaces the earlier one while the order is open.

    With `current` (the order as the screen shows it), values for tests the order does
    not have, or for an order that no longer takes results, are refused here first."""
    if current is not None and current.status not in RESULTS_OPEN:
        raise LabWorkError("Results are entered while the sample is in the lab (sample "
                           f"received or processing); this order is {current.status}.")
    entry = _checked(results, current.tests if current is not None else None)
    return _read(LabOrderPublic, server.request(
        "PUT", f"/api/v1/lab-orders/{order_id}/results",
        json=entry.model_dump(mode="json", exclude_none=True)))
