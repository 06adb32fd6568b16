"""The emulator's log of the requests it handled, for tests and the admin routes."""

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """One handled request.

    Attributes:
        operation: SP-API operation name (createReport, getReport, ...), `token` for the LWA
            route, `downloadDocument` for a document download, `unknown` for unrouted paths.
        method: HTTP method.
        path: URL path without the query string, so presigned signatures never reach the log.
        status: HTTP status sent to the client.
        time: when the request arrived, in UTC.
        request_id: the `x-amzn-RequestId` header value sent with the response.
        report_type: the requested report type, for createReport only.
    """

    operation: str
    method: str
    path: str
    status: int
    time: datetime
    request_id: str
    report_type: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict with an ISO 8601 time."""
        record = asdict(self)
        record["time"] = self.time.isoformat()
        return record


class RequestLog:
    """Thread-safe, append-only list of RequestRecord, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """Return a copy of every record so far."""
        with self._lock:
            return list(self._records)

    def count(self, operation: str, status: int | None = None) -> int:
        """Count the records of an operation, optionally only those with response `status`."""
        with self._lock:
            return sum(
                1
                for record in self._records
                if record.operation == operation and (status is None or record.status == status)
            )

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
