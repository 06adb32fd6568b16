"""Faults that the emulator injects into its responses, and the registry that stores them."""

import json
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

OPERATIONS = (
    "token",
    "createReport",
    "getReport",
    "getReports",
    "cancelReport",
    "getReportDocument",
    "downloadDocument",
)

# Kinds that act on the request they are consumed by, whatever its operation.
REQUEST_KINDS = ("throttle", "server_error", "slow")

# Kinds that act on one operation only, mapped to the operations they accept. The report kinds
# attach to the next created report, so both createReport and getReport are accepted for them.
OPERATION_KINDS: dict[str, tuple[str, ...]] = {
    "drop_connection": ("downloadDocument",),
    "truncate_gzip": ("downloadDocument",),
    "expired_url": ("getReportDocument",),
    "not_found": ("getReport",),
    "stuck_in_queue": ("createReport", "getReport"),
    "fatal": ("createReport", "getReport"),
    "error_document": ("createReport", "getReport"),
    "expire_token": OPERATIONS,
}

FAULT_KINDS = REQUEST_KINDS + tuple(OPERATION_KINDS)

DEFAULT_FATAL_MESSAGE = "The report could not be generated because of an internal error."
DEFAULT_ERROR_DOCUMENT_MESSAGE = "Date range exceeded. Report can be requested only upto 30 days"


@dataclass(frozen=True)
class Fault:
    """A fault to inject into the next `times` matching requests or reports.

    Kinds:
        throttle: 429 QuotaExceeded, without taking a quota token.
        server_error: `status` (500 by default, or 503) with an `errors` body.
        slow: sleep `delay_seconds`, then handle the request normally.
        drop_connection: downloadDocument sends part of the body, then closes the connection.
        truncate_gzip: downloadDocument sends a complete response whose gzip body is cut in
            the middle (Content-Length matches the cut body).
        expired_url: getReportDocument returns a URL that has already expired.
        not_found: getReport returns 404 NotFound.
        stuck_in_queue: the next created report stays IN_QUEUE for `times` getReport polls,
            then proceeds.
        fatal: each of the next `times` created reports ends FATAL with the error document
            `{"errorDetails": message}`.
        error_document: each of the next `times` created reports ends DONE, but its document
            is the single sentence `message`.
        expire_token: every access token issued so far expires when the fault is injected.

    Raises:
        ValueError: on an unknown operation or kind, a kind that does not apply to the
            operation, `times` below 1, a negative delay, or a status other than 500 or 503.
    """

    operation: str
    kind: str
    times: int = 1
    status: int | None = None
    delay_seconds: float = 0.0
    message: str | None = None

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise ValueError(
                f"Invalid fault operation {self.operation!r}: expected one of {OPERATIONS}."
            )
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"Invalid fault kind {self.kind!r}: expected one of {FAULT_KINDS}.")
        accepted = OPERATION_KINDS.get(self.kind, OPERATIONS)
        if self.operation not in accepted:
            raise ValueError(
                f"Fault kind {self.kind!r} does not apply to operation {self.operation!r}: "
                f"use one of {accepted}."
            )
        if self.times < 1:
            raise ValueError(f"Invalid fault times {self.times}: expected 1 or more.")
        if self.delay_seconds < 0:
            raise ValueError(
                f"Invalid fault delay_seconds {self.delay_seconds}: expected 0 or more."
            )
        if self.status not in (None, 500, 503):
            raise ValueError(f"Invalid fault status {self.status}: expected 500 or 503.")

    @classmethod
    def from_json(cls, data: Any) -> "Fault":
        """Build a Fault from a JSON object with the dataclass's field names.

        Raises:
            ValueError: when `data` is not an object, has unknown or missing fields, or the
                fault itself is invalid.
        """
        if not isinstance(data, dict):
            raise ValueError(f"Invalid fault {data!r}: expected a JSON object.")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown fault fields {unknown}: expected only {sorted(known)}.")
        try:
            return cls(**data)
        except TypeError as error:
            raise ValueError(f"Invalid fault {data!r}: {error}.") from error

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def load_faults(path: Path) -> list[Fault]:
    """Read a JSON list of fault objects from `path`.

    Raises:
        ValueError: when the file is not a JSON list or one of its faults is invalid.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"Invalid faults file {path}: expected a JSON list of fault objects.")
    return [Fault.from_json(item) for item in data]


@dataclass
class _ActiveFault:
    fault: Fault
    remaining: int


class FaultRegistry:
    """Thread-safe queue of injected faults; each is consumed `times` times, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[_ActiveFault] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._active.append(_ActiveFault(fault, fault.times))

    def take(self, operation: str, kinds: tuple[str, ...]) -> Fault | None:
        """Consume one use of the oldest fault for `operation` whose kind is in `kinds`."""
        with self._lock:
            for active in self._active:
                if active.fault.operation == operation and active.fault.kind in kinds:
                    return self._consume(active)
        return None

    def take_kind(self, kind: str) -> Fault | None:
        """Consume one use of the oldest fault of `kind`, whatever its operation."""
        with self._lock:
            for active in self._active:
                if active.fault.kind == kind:
                    return self._consume(active)
        return None

    def take_all_uses(self, kind: str) -> Fault | None:
        """Remove the oldest fault of `kind` and return it with every remaining use."""
        with self._lock:
            for active in self._active:
                if active.fault.kind == kind:
                    self._active.remove(active)
                    return active.fault
        return None

    def active(self) -> list[dict[str, Any]]:
        """Return the pending faults with their remaining uses, as JSON-ready dicts."""
        with self._lock:
            return [
                {**active.fault.to_json(), "remaining": active.remaining} for active in self._active
            ]

    def clear(self) -> None:
        with self._lock:
            self._active.clear()

    def _consume(self, active: _ActiveFault) -> Fault:
        active.remaining -= 1
        if active.remaining == 0:
            self._active.remove(active)
        return active.fault
