"""The emulator's report store: report lifecycle, document building and report listing.

A report moves IN_QUEUE → IN_PROGRESS → DONE, CANCELLED or FATAL. The queue and processing
durations come from the configuration divided by its time scale. Its document is built on a
worker thread as soon as the report is created, and the report only turns terminal once that
build has finished, so a getReport call never waits for a document.
"""

import logging
import random
import threading
import uuid
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from amazon_sc_assets.marketplaces import Region
from amazon_sc_assets.report_types import MAX_REPORT_WINDOW, ReportType

from .documents import write_error_document, write_flat_file, write_text_document
from .faults import DEFAULT_ERROR_DOCUMENT_MESSAGE, DEFAULT_FATAL_MESSAGE, Fault

logger = logging.getLogger(__name__)

PROCESSING_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL")
TERMINAL_STATUSES = ("DONE", "CANCELLED", "FATAL")

DATE_RANGE_EXCEEDED = "Date range exceeded. Report can be requested only upto 30 days"

# A build of a cancelled report, or of a stopping emulator, ends at the next multiple of this
# many rows.
CANCEL_CHECK_ROWS = 10_000


class OrderSource(Protocol):
    """Source of report rows: the generated order history or replayed flat files."""

    def header(self, report_type: ReportType) -> list[str]: ...

    def iter_rows(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        *,
        marketplace_ids: Collection[str] | None,
        as_of: datetime,
    ) -> Iterator[list[str]]: ...


def format_time(value: datetime) -> str:
    """Format a time as Amazon does in report JSON: seconds precision, `+00:00` offset."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


@dataclass
class Report:
    """One report and the moments of its lifecycle. Changes happen under the store's lock."""

    report_id: str
    report_type: ReportType
    marketplace_ids: list[str]
    data_start_time: datetime
    data_end_time: datetime
    created_time: datetime
    queue_end: datetime | None
    processing_end: datetime | None
    document_id: str
    document_path: Path
    stuck_polls: int = 0
    cancelled_time: datetime | None = None
    outcome: str | None = None
    has_document: bool = False
    build_end: datetime | None = None
    row_count: int = 0
    build: Future[None] | None = field(default=None, repr=False)

    def status(self, now: datetime) -> str:
        """Return the processingStatus at `now`, without counting a poll."""
        if self.cancelled_time is not None:
            return "CANCELLED"
        if self.queue_end is None or now < self.queue_end:
            return "IN_QUEUE"
        assert self.processing_end is not None
        if now < self.processing_end or self.outcome is None:
            return "IN_PROGRESS"
        return self.outcome

    def to_json(self, now: datetime) -> dict[str, Any]:
        """Return the Report model of the 2021-06-30 API as of `now`."""
        status = self.status(now)
        report: dict[str, Any] = {
            "marketplaceIds": list(self.marketplace_ids),
            "reportId": self.report_id,
            "reportType": self.report_type.value,
            "dataStartTime": format_time(self.data_start_time),
            "dataEndTime": format_time(self.data_end_time),
            "createdTime": format_time(self.created_time),
            "processingStatus": status,
        }
        if status == "IN_QUEUE" or self.cancelled_time is not None:
            return report
        assert self.queue_end is not None and self.processing_end is not None
        report["processingStartTime"] = format_time(self.queue_end)
        if status in TERMINAL_STATUSES:
            assert self.build_end is not None
            report["processingEndTime"] = format_time(max(self.processing_end, self.build_end))
            if self.has_document:
                report["reportDocumentId"] = self.document_id
        return report


class ReportStore:
    """Create, poll, cancel and list reports, and build their documents on worker threads.

    Args:
        source: the order source the documents are built from.
        document_dir: folder for the gzip documents, which the caller owns and removes.
        region: the emulated region, for document ids.
        charset: Amazon's name of the documents' charset.
        queue_delay: how long a new report stays IN_QUEUE.
        processing_delay: how long it stays IN_PROGRESS at least.
        seed: seeds report and document ids.
    """

    def __init__(
        self,
        *,
        source: OrderSource,
        document_dir: Path,
        region: Region,
        charset: str,
        queue_delay: timedelta,
        processing_delay: timedelta,
        seed: int,
    ) -> None:
        self._source = source
        self._document_dir = document_dir
        self._region = region
        self._charset = charset
        self._queue_delay = queue_delay
        self._processing_delay = processing_delay
        self._random = random.Random(seed)
        self._next_report_number = self._random.randrange(500_000_000_000, 600_000_000_000)
        self._lock = threading.Lock()
        self._reports: dict[str, Report] = {}
        self._documents: dict[str, Report] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="report-builder")
        self._closing = threading.Event()

    def create(
        self,
        report_type: ReportType,
        marketplace_ids: list[str],
        data_start_time: datetime,
        data_end_time: datetime,
        *,
        fatal: Fault | None = None,
        error_document: Fault | None = None,
        stuck_in_queue: Fault | None = None,
    ) -> Report:
        """Create a report and start building its document.

        Args:
            report_type: the validated report type.
            marketplace_ids: the validated marketplace ids of the request.
            data_start_time: start of the data range, inclusive.
            data_end_time: end of the data range, inclusive.
            fatal: a fault that makes the report end FATAL with its message.
            error_document: a fault that makes the report end DONE with its message as
                the whole document.
            stuck_in_queue: a fault that keeps the report IN_QUEUE for `times` polls.
        """
        now = datetime.now(UTC)
        with self._lock:
            self._next_report_number += self._random.randrange(1, 1_000)
            report_id = str(self._next_report_number)
            document_id = self._new_document_id()
            stuck_polls = stuck_in_queue.times if stuck_in_queue is not None else 0
            queue_end = None if stuck_polls else now + self._queue_delay
            report = Report(
                report_id=report_id,
                report_type=report_type,
                marketplace_ids=list(marketplace_ids),
                data_start_time=data_start_time,
                data_end_time=data_end_time,
                created_time=now,
                queue_end=queue_end,
                processing_end=None if queue_end is None else queue_end + self._processing_delay,
                document_id=document_id,
                document_path=self._document_dir / f"{report_id}.txt.gz",
                stuck_polls=stuck_polls,
            )
            self._reports[report_id] = report
            report.build = self._executor.submit(self._build, report, fatal, error_document)
        logger.info(
            "Created report %s (%s, %s to %s)",
            report_id,
            report_type.value,
            format_time(data_start_time),
            format_time(data_end_time),
        )
        return report

    def poll(self, report_id: str) -> dict[str, Any] | None:
        """Return the report's JSON for a getReport call, or None for an unknown id.

        A poll counts against a stuck_in_queue fault; the report proceeds once it is used up.
        """
        now = datetime.now(UTC)
        with self._lock:
            report = self._reports.get(report_id)
            if report is None:
                return None
            if report.stuck_polls and report.cancelled_time is None:
                report.stuck_polls -= 1
                body = report.to_json(now)
                if report.stuck_polls == 0:
                    report.queue_end = now
                    report.processing_end = now + self._processing_delay
                return body
            return report.to_json(now)

    def cancel(self, report_id: str) -> str | None:
        """Cancel a report that is IN_QUEUE.

        Returns:
            None when cancelled, `not_found` for an unknown id, or the report's current
            processingStatus when it is not IN_QUEUE.
        """
        now = datetime.now(UTC)
        with self._lock:
            report = self._reports.get(report_id)
            if report is None:
                return "not_found"
            status = report.status(now)
            if status != "IN_QUEUE":
                return status
            report.cancelled_time = now
        logger.info("Cancelled report %s", report_id)
        return None

    def list_reports(
        self,
        *,
        report_types: Collection[str],
        processing_statuses: Collection[str] | None,
        marketplace_ids: Collection[str] | None,
        created_since: datetime,
        created_until: datetime,
    ) -> list[dict[str, Any]]:
        """Return matching reports as JSON, newest first, for getReports."""
        now = datetime.now(UTC)
        with self._lock:
            reports = sorted(self._reports.values(), key=lambda r: r.created_time, reverse=True)
            selected = []
            for report in reports:
                if report.report_type.value not in report_types:
                    continue
                if not created_since <= report.created_time <= created_until:
                    continue
                if marketplace_ids is not None and not set(marketplace_ids) & set(
                    report.marketplace_ids
                ):
                    continue
                body = report.to_json(now)
                statuses = processing_statuses
                if statuses is not None and body["processingStatus"] not in statuses:
                    continue
                selected.append(body)
            return selected

    def document(self, document_id: str) -> Report | None:
        """Return the report whose finished document has this id, or None."""
        now = datetime.now(UTC)
        with self._lock:
            report = self._documents.get(document_id)
            if report is None or report.status(now) not in TERMINAL_STATUSES:
                return None
            return report

    def wait_for_builds(self, timeout: float | None = None) -> None:
        """Block until every document build submitted so far has finished."""
        with self._lock:
            builds = [r.build for r in self._reports.values() if r.build is not None]
        for build in builds:
            build.result(timeout=timeout)

    def close(self) -> None:
        """Cancel builds that have not started and stop the running ones early."""
        self._closing.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _new_document_id(self) -> str:
        document_uuid = uuid.UUID(int=self._random.getrandbits(128), version=4)
        suffix = self._random.randrange(10**14)
        return f"amzn1.spdoc.1.4.{self._region.value}.{document_uuid}.T{suffix:014d}"

    def _build(self, report: Report, fatal: Fault | None, error_document: Fault | None) -> None:
        try:
            outcome, has_document = self._write_document(report, fatal, error_document)
        except Exception:
            logger.exception("Building the document of report %s failed", report.report_id)
            write_error_document(
                report.document_path, "The report document could not be built.", self._charset
            )
            outcome, has_document = "FATAL", True
        with self._lock:
            report.outcome = outcome
            report.has_document = has_document
            report.build_end = datetime.now(UTC)
            if has_document:
                self._documents[report.document_id] = report
        logger.info(
            "Report %s finished as %s with %d rows", report.report_id, outcome, report.row_count
        )

    def _write_document(
        self, report: Report, fatal: Fault | None, error_document: Fault | None
    ) -> tuple[str, bool]:
        path = report.document_path
        if fatal is not None:
            write_error_document(path, fatal.message or DEFAULT_FATAL_MESSAGE, self._charset)
            return "FATAL", True
        if report.data_end_time - report.data_start_time > MAX_REPORT_WINDOW:
            write_error_document(path, DATE_RANGE_EXCEEDED, self._charset)
            return "FATAL", True
        if error_document is not None:
            message = error_document.message or DEFAULT_ERROR_DOCUMENT_MESSAGE
            write_text_document(path, message, self._charset)
            return "DONE", True

        # LAST_UPDATE reports cover every marketplace of the region, whatever marketplaceIds lists.
        marketplace_ids = (
            None if report.report_type is ReportType.LAST_UPDATE else report.marketplace_ids
        )
        rows = self._source.iter_rows(
            report.report_type,
            report.data_start_time,
            report.data_end_time,
            marketplace_ids=marketplace_ids,
            as_of=report.created_time,
        )
        header = self._source.header(report.report_type)
        report.row_count = write_flat_file(
            path, header, self._rows_until_cancelled(report, rows), self._charset
        )
        if report.row_count == 0 or report.cancelled_time is not None:
            path.unlink(missing_ok=True)
            return "CANCELLED", False
        return "DONE", True

    def _rows_until_cancelled(
        self, report: Report, rows: Iterator[list[str]]
    ) -> Iterator[list[str]]:
        for index, row in enumerate(rows, start=1):
            yield row
            if index % CANCEL_CHECK_ROWS == 0 and (
                report.cancelled_time is not None or self._closing.is_set()
            ):
                return
