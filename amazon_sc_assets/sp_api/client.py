"""The SP-API Reports 2021-06-30 client: create, poll, download and decompress reports.

`ReportsClient` wraps an `httpx.Client` whose auth adds the LWA access token (see `auth.py`).
It keeps each operation under Amazon's quota with process-wide token buckets, retries 429, 5xx,
timeouts and connection errors with capped, jittered backoff, and streams report documents to
disk so memory does not grow with the report size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from amazon_sc_assets.marketplaces import MARKETPLACES, Region, marketplaces_in_region
from amazon_sc_assets.report_types import MAX_REPORT_WINDOW, ReportType
from amazon_sc_assets.sp_api.charsets import charset_from_response
from amazon_sc_assets.sp_api.errors import (
    DocumentDownloadError,
    LWAAuthError,
    ReportFatalError,
    ReportNotReadyError,
    ReportWindowError,
    SPAPIAccessDeniedError,
    SPAPIConfigError,
    SPAPIError,
    SPAPINotFoundError,
    SPAPIRequestError,
    SPAPIServerError,
    SPAPIThrottledError,
)
from amazon_sc_assets.sp_api.rate_limits import bucket_for, parse_rate_limit_header

logger = logging.getLogger(__name__)

REPORTS_PATH = "/reports/2021-06-30/reports"
DOCUMENTS_PATH = "/reports/2021-06-30/documents"

TERMINAL_STATUSES = frozenset({"DONE", "CANCELLED", "FATAL"})
RESUMABLE_STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE")

# createReport accepts at most 25 marketplace ids.
MAX_MARKETPLACE_IDS = 25

DOWNLOAD_CHUNK_BYTES = 1024 * 1024
# Upper bound on one zlib output block, so a highly compressed chunk cannot inflate in one go.
DECOMPRESS_OUTPUT_BYTES = 8 * 1024 * 1024
# FATAL error documents are short sentences; read no more than this of one.
ERROR_DOCUMENT_MAX_BYTES = 64 * 1024
# getReports pages read when looking for a report to resume; each page costs one getReports call.
RESUME_MAX_PAGES = 3


@dataclass(frozen=True)
class ClientSettings:
    """Polling, deadline and retry settings of a `ReportsClient`.

    Attributes:
        poll_initial_seconds: First wait between getReport polls.
        poll_max_seconds: Maximum wait between getReport polls. The wait grows by
            `poll_growth` per poll until it reaches this.
        poll_growth: Factor by which the poll interval grows.
        report_deadline_seconds: How long one attempt polls a report before raising
            `ReportNotReadyError`.
        max_retries: Retries of one request after a 5xx, a timeout or a connection error.
        max_throttle_retries: Retries of one request after a 429.
        retry_initial_seconds: First backoff after a 5xx, timeout or connection error; it
            doubles on every further failure.
        retry_max_seconds: Maximum single wait before a retry, including 429 waits.
        not_found_retries: getReport 404s tolerated for a freshly created reportId.
        download_retries: Downloads retried, each with a newly fetched document URL, after a
            truncated body, a dropped connection or an expired URL.
        resume_lookback_hours: How far back getReports looks for an IN_QUEUE or IN_PROGRESS
            report of the same window to resume. 0 disables the lookup.
        done_report_max_age_minutes: A DONE report of the same window created at most this
            long ago is reused too, so a retry after a failed download or write needs no new
            report. An older one is not, so a rerun gets a fresh snapshot. 0 never reuses.
    """

    poll_initial_seconds: float = 2.0
    poll_max_seconds: float = 60.0
    poll_growth: float = 1.5
    report_deadline_seconds: float = 3600.0
    max_retries: int = 5
    max_throttle_retries: int = 5
    retry_initial_seconds: float = 1.0
    retry_max_seconds: float = 120.0
    not_found_retries: int = 5
    download_retries: int = 3
    resume_lookback_hours: float = 4.0
    done_report_max_age_minutes: float = 60.0


@dataclass(frozen=True)
class Report:
    """A report as getReport and getReports return it."""

    report_id: str
    report_type: str
    processing_status: str
    created_time: datetime | None
    data_start_time: datetime | None
    data_end_time: datetime | None
    marketplace_ids: tuple[str, ...]
    report_document_id: str | None

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Report:
        """Build a Report from an SP-API `Report` object."""
        return cls(
            report_id=str(payload["reportId"]),
            report_type=str(payload.get("reportType", "")),
            processing_status=str(payload["processingStatus"]),
            created_time=parse_time(payload.get("createdTime")),
            data_start_time=parse_time(payload.get("dataStartTime")),
            data_end_time=parse_time(payload.get("dataEndTime")),
            marketplace_ids=tuple(payload.get("marketplaceIds") or ()),
            report_document_id=payload.get("reportDocumentId"),
        )


@dataclass(frozen=True)
class ReportDocument:
    """A report document as getReportDocument returns it.

    `url` is presigned and expires 5 minutes after the call. It is left out of `repr` because
    its query string is a credential; log `url_without_query` instead.
    """

    report_document_id: str
    url: str = field(repr=False)
    compression_algorithm: str | None

    @property
    def url_without_query(self) -> str:
        """The document URL with its query string removed, safe to log."""
        return redact_url(self.url)


@dataclass(frozen=True)
class ReportDocumentFile:
    """A downloaded report document, decompressed on disk.

    Attributes:
        path: The decompressed document. The client never decodes it.
        charset: Python codec name from the download's Content-Type, or None when the
            Content-Type declared no charset.
        report_document_id: The document's reportDocumentId.
        compressed_bytes: Bytes received over HTTP.
        decompressed_bytes: Bytes written to `path`.
    """

    path: Path
    charset: str | None
    report_document_id: str
    compressed_bytes: int
    decompressed_bytes: int


@dataclass(frozen=True)
class FetchedReport:
    """One report requested with createReport (or resumed) and polled to a final status.

    Attributes:
        report_id: The reportId.
        processing_status: DONE or CANCELLED; FATAL raises `ReportFatalError` instead.
        data_start_time: Start of the data window that was requested.
        data_end_time: End of the data window that was requested.
        document: The decompressed document, or None for CANCELLED, which Amazon uses when
            the window has no data.
    """

    report_id: str
    processing_status: str
    data_start_time: datetime
    data_end_time: datetime
    document: ReportDocumentFile | None


@dataclass(frozen=True)
class ReportFetchResult:
    """The reports that together cover one requested data window.

    Attributes:
        report_type: The report type that was requested.
        data_start_time: Start of the whole requested window.
        data_end_time: End of the whole requested window.
        reports: One entry per report, in window order; a window longer than 30 days is
            split into consecutive windows of at most 30 days.
    """

    report_type: ReportType
    data_start_time: datetime
    data_end_time: datetime
    reports: list[FetchedReport]


def parse_time(value: str | None) -> datetime | None:
    """Parse an SP-API ISO 8601 timestamp (`Z` or `+00:00`) into an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format an aware datetime as SP-API expects it, in UTC with second precision."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _failed_request_url(error: httpx.RequestError) -> str | None:
    """Return the URL, without its query, of the request that raised `error`, if known."""
    try:
        request = error.request
    except RuntimeError:
        return None
    return str(request.url.copy_with(query=None))


def redact_url(url: str | httpx.URL) -> str:
    """Return `url` without its query string and fragment, so presigned URLs can be logged."""
    parsed = httpx.URL(str(url))
    return str(parsed.copy_with(query=None, fragment=None))


def seller_key(lwa_client_id: str, refresh_token: str) -> str:
    """Return a stable, non-secret id of a seller and application for the quota buckets."""
    digest = hashlib.sha256(f"{lwa_client_id}\0{refresh_token}".encode()).hexdigest()
    return digest[:16]


def parse_region(region: Region | str) -> Region:
    """Convert a region name such as `eu` to a `Region`.

    Raises:
        SPAPIConfigError: If the name is not na, eu or fe.
    """
    try:
        return Region(str(region).strip().lower())
    except ValueError:
        valid_regions = ", ".join(r.value for r in Region)
        raise SPAPIConfigError(
            f"Invalid SP-API region {region!r}: expected one of {valid_regions}. Set "
            "SP_API_REGION to the region whose host serves your marketplaces."
        ) from None


def validate_marketplace_ids(region: Region | str, marketplace_ids: Sequence[str]) -> Region:
    """Check that every marketplace id belongs to the region's host.

    Returns:
        The region as a `Region`.

    Raises:
        SPAPIConfigError: On an unknown region, no ids, more than 25 ids, or an id that is
            unknown or served by another region. The message lists the region's valid ids.
    """
    resolved = parse_region(region)
    valid = [m.marketplace_id for m in marketplaces_in_region(resolved)]
    listing = ", ".join(
        f"{m.marketplace_id} ({m.country_code})" for m in marketplaces_in_region(resolved)
    )
    if not marketplace_ids:
        raise SPAPIConfigError(
            f"No marketplace ids configured for region {resolved.value}: set "
            f"SP_API_MARKETPLACE_IDS to one or more of {listing}."
        )
    if len(marketplace_ids) > MAX_MARKETPLACE_IDS:
        raise SPAPIConfigError(
            f"{len(marketplace_ids)} marketplace ids configured, but createReport accepts at "
            f"most {MAX_MARKETPLACE_IDS}: remove some from SP_API_MARKETPLACE_IDS."
        )
    for marketplace_id in marketplace_ids:
        if marketplace_id in valid:
            continue
        known = MARKETPLACES.get(marketplace_id)
        where = (
            f"it belongs to region {known.region.value} ({known.country_code})"
            if known
            else "it is not a known Amazon marketplace id"
        )
        raise SPAPIConfigError(
            f"Invalid marketplace id {marketplace_id!r} for region {resolved.value}: {where}. "
            f"Valid ids for {resolved.value} are {listing}; fix SP_API_MARKETPLACE_IDS or "
            "SP_API_REGION."
        )
    return resolved


def split_report_window(
    start: datetime,
    end: datetime,
    *,
    now: datetime | None = None,
    max_window: timedelta = MAX_REPORT_WINDOW,
) -> list[tuple[datetime, datetime]]:
    """Validate a data window and split it into consecutive windows of at most `max_window`.

    Both ends are converted to UTC and truncated to whole seconds, the precision SP-API uses.

    Raises:
        ReportWindowError: If a bound is naive, start >= end, or end is later than `now`.
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise ReportWindowError(
                f"Report window {name} {value.isoformat()} has no time zone: pass an aware "
                "datetime, for example datetime(..., tzinfo=UTC)."
            )
    start = start.astimezone(UTC).replace(microsecond=0)
    end = end.astimezone(UTC).replace(microsecond=0)
    now = (now or datetime.now(UTC)).astimezone(UTC)

    if start >= end:
        raise ReportWindowError(
            f"Invalid report window: start {start.isoformat()} is not before end "
            f"{end.isoformat()} (after truncating to whole seconds). Pass start < end."
        )
    if end > now:
        raise ReportWindowError(
            f"Invalid report window: end {end.isoformat()} is in the future (now is "
            f"{now.isoformat()}). Amazon rejects future dataEndTime values; pass an end <= now."
        )

    windows = []
    window_start = start
    while window_start < end:
        window_end = min(window_start + max_window, end)
        windows.append((window_start, window_end))
        window_start = window_end
    return windows


class _PresignedQueryFilter(logging.Filter):
    """Remove registered presigned query strings from httpx's request log lines.

    httpx logs every request URL at INFO, query string included. The client registers each
    document URL before downloading it, and this filter, installed on the `httpx` logger,
    strips the query from log records that contain one of those URLs.
    """

    def __init__(self, max_entries: int = 256) -> None:
        super().__init__()
        self._queries: deque[str] = deque(maxlen=max_entries)
        self._lock = threading.Lock()

    def register(self, url: str) -> None:
        query = httpx.URL(url).query.decode()
        if query:
            with self._lock:
                self._queries.append(query)

    def _contains_secret(self, text: str) -> bool:
        with self._lock:
            return any(query in text for query in self._queries)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(
                redact_url(arg)
                if isinstance(arg, httpx.URL | str) and self._contains_secret(str(arg))
                else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and self._contains_secret(record.msg):
            record.msg = "[log message removed: it contained a presigned URL query string]"
            record.args = ()
        return True


_presigned_query_filter = _PresignedQueryFilter()
logging.getLogger("httpx").addFilter(_presigned_query_filter)


class _IncompleteDownload(Exception):
    """A download that a fresh URL and another attempt may fix (truncated, expired, dropped)."""


class ReportsClient:
    """Create, poll and download SP-API order reports for one seller in one region.

    The caller owns `http` and closes it. Its auth must add the LWA access token (use
    `LWAAuth`), and its timeouts apply to every request. Document downloads are sent with
    `auth=None`, so the presigned URL never receives the access token.

    Example::

        auth = LWAAuth(client_id, client_secret, refresh_token, token_url)
        with httpx.Client(auth=auth, timeout=httpx.Timeout(60.0, connect=10.0)) as http:
            client = ReportsClient(
                http,
                endpoint=Region.NA.endpoint,
                marketplace_ids=["ATVPDKIKX0DER"],
                seller_key=seller_key(client_id, refresh_token),
            )
            result = client.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=tmp)

    Args:
        http: The httpx client that sends every request.
        endpoint: SP-API base URL, such as `Region.NA.endpoint` or the emulator's URL.
        marketplace_ids: Marketplace ids sent with every createReport.
        seller_key: Non-secret id of the seller and application (see `seller_key()`), which
            selects the process-wide quota buckets.
        settings: Polling, deadline and retry settings.
        log: Logger for progress and retries; defaults to this module's logger.
        clock: Monotonic clock in seconds, for deadlines and elapsed times.
        sleep: Function that sleeps for a number of seconds.
        now: Current UTC time, for window validation and the resume lookup.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        endpoint: str,
        marketplace_ids: Sequence[str],
        seller_key: str,
        settings: ClientSettings | None = None,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._http = http
        self._endpoint = endpoint.rstrip("/")
        self._marketplace_ids = list(marketplace_ids)
        self._seller_key = seller_key
        self.settings = settings or ClientSettings()
        self._log = log or logger
        self._clock = clock
        self._sleep = sleep
        self._now = now

    # ---- Requests with quotas and retries ---------------------------------------------------

    def _backoff_seconds(self, failures: int) -> float:
        """Return a capped exponential backoff, jittered within the upper half of its ceiling."""
        settings = self.settings
        ceiling = min(
            settings.retry_max_seconds, settings.retry_initial_seconds * 2 ** (failures - 1)
        )
        return ceiling * random.uniform(0.5, 1.0)

    def _throttle_seconds(self, rate: float, throttles: int) -> float:
        """Return the wait after a 429: at least 1/rate seconds, growing, jittered and capped."""
        settings = self.settings
        base = max(1.0 / rate, settings.retry_initial_seconds * 2 ** (throttles - 1))
        return min(settings.retry_max_seconds, base * random.uniform(1.0, 1.2))

    def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        expected_status: Iterable[int] = (200,),
        log: logging.Logger | None = None,
    ) -> httpx.Response:
        """Send one SP-API operation, waiting for quota and retrying transient failures.

        Args:
            operation: Operation name, which selects the quota bucket.
            method: HTTP method.
            path: Path below the endpoint.
            params: Query parameters.
            json_body: JSON request body.
            expected_status: Statuses that count as success.
            log: Logger for retries; defaults to the client's.

        Returns:
            The successful response, with its body read.

        Raises:
            SPAPIThrottledError: After `max_throttle_retries` retries that all got 429.
            SPAPIServerError: After `max_retries` retries that all got a 5xx, a timeout or a
                connection error.
            SPAPIAccessDeniedError: On 403, or a 400 saying the report type is not allowed.
            SPAPINotFoundError: On 404.
            SPAPIRequestError: On any other unexpected status.
            LWAAuthError: When the LWA token exchange is rejected.
        """
        log = log or self._log
        expected = set(expected_status)
        bucket = bucket_for(self._endpoint, self._seller_key, operation)
        url = self._endpoint + path
        failures = 0
        throttles = 0
        waited_after_throttle = False

        while True:
            # A retry after a 429 has already waited at least one refill interval (or the cap),
            # so it skips the bucket, which would otherwise add another full interval.
            if not waited_after_throttle:
                bucket.acquire()
            waited_after_throttle = False
            try:
                response = self._http.request(method, url, params=params, json=json_body)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as err:
                failures += 1
                if failures > self.settings.max_retries:
                    # The LWA auth flow sends its token request inside this call, so the failed
                    # request may be the token exchange rather than the SP-API operation.
                    failed_url = _failed_request_url(err) or url
                    setting = "SP_API_LWA_TOKEN_URL" if failed_url != url else "SP_API_ENDPOINT"
                    raise SPAPIServerError(
                        f"{operation} failed after {self.settings.max_retries} retries: "
                        f"{type(err).__name__}: {err}. Check that {redact_url(failed_url)} is "
                        f"reachable ({setting}), or raise the timeouts or max_retries.",
                        operation=operation,
                        status_code=None,
                    ) from err
                wait = self._backoff_seconds(failures)
                log.warning(
                    "%s attempt %d failed with %s; retrying in %.2f s",
                    operation,
                    failures,
                    type(err).__name__,
                    wait,
                )
                self._sleep(wait)
                continue
            except LWAAuthError as err:
                if err.status_code < 500 and err.status_code != 429:
                    raise
                failures += 1
                if failures > self.settings.max_retries:
                    raise
                wait = self._backoff_seconds(failures)
                log.warning(
                    "LWA token exchange for %s failed with HTTP %d (attempt %d); "
                    "retrying in %.2f s",
                    operation,
                    err.status_code,
                    failures,
                    wait,
                )
                self._sleep(wait)
                continue

            rate = parse_rate_limit_header(response.headers.get("x-amzn-RateLimit-Limit"))
            if rate is not None:
                bucket.set_rate(rate)

            status = response.status_code
            if status in expected:
                return response

            if status == 429:
                throttles += 1
                bucket.drain()
                if throttles > self.settings.max_throttle_retries:
                    raise self._throttled_error(operation, response, throttles - 1)
                wait = self._throttle_seconds(bucket.rate, throttles)
                log.warning(
                    "%s throttled (HTTP 429, attempt %d, x-amzn-RequestId %s); retrying in %.2f s",
                    operation,
                    throttles,
                    response.headers.get("x-amzn-RequestId"),
                    wait,
                )
                self._sleep(wait)
                waited_after_throttle = True
                continue

            if status >= 500:
                failures += 1
                if failures > self.settings.max_retries:
                    raise self._request_error(operation, response, retries=failures - 1)
                wait = self._backoff_seconds(failures)
                log.warning(
                    "%s failed with HTTP %d (attempt %d, x-amzn-RequestId %s); retrying in %.2f s",
                    operation,
                    status,
                    failures,
                    response.headers.get("x-amzn-RequestId"),
                    wait,
                )
                self._sleep(wait)
                continue

            raise self._request_error(operation, response, retries=failures + throttles)

    @staticmethod
    def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
        """Return Amazon's (code, message, details) from an `ErrorList` body."""
        try:
            body = response.json()
        except ValueError:
            return None, None, None
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
            return None, None, None
        first = errors[0]
        return first.get("code"), first.get("message"), first.get("details") or None

    def _throttled_error(
        self, operation: str, response: httpx.Response, retries: int
    ) -> SPAPIThrottledError:
        code, message, details = self._error_fields(response)
        request_id = response.headers.get("x-amzn-RequestId")
        return SPAPIThrottledError(
            f"QuotaExceeded after {retries} retries: Amazon is throttling {operation} for this "
            f"seller and application (HTTP 429 {code}: {message}; x-amzn-RequestId "
            f"{request_id}). Another process may be using the same quota; rerun later with "
            "fewer concurrent runs. If createReport stays throttled for hours, Amazon may have "
            "disabled this report type for the account.",
            operation=operation,
            status_code=429,
            code=code,
            error_message=message,
            details=details,
            request_id=request_id,
        )

    def _request_error(
        self, operation: str, response: httpx.Response, *, retries: int
    ) -> SPAPIRequestError:
        code, message, details = self._error_fields(response)
        request_id = response.headers.get("x-amzn-RequestId")
        status = response.status_code
        summary = (
            f"{operation} failed with HTTP {status} {code}: {message}"
            + (f" ({details})" if details else "")
            + f"; x-amzn-RequestId {request_id}"
        )
        kwargs: dict[str, Any] = {
            "operation": operation,
            "status_code": status,
            "code": code,
            "error_message": message,
            "details": details,
            "request_id": request_id,
        }
        text = f"{code} {message} {details}".lower()

        if status == 403 or (status == 400 and ("unauthorized" in text or "not allowed" in text)):
            return SPAPIAccessDeniedError(
                f"{summary}. Access denied, not throttled: the account or application may not "
                "request this report type or operation. Check the application's roles in "
                "Seller Central and that the seller's authorization is current.",
                **kwargs,
            )
        if status == 404:
            return SPAPINotFoundError(f"{summary}. The resource was not found.", **kwargs)
        if status >= 500:
            return SPAPIServerError(
                f"{summary}. Amazon kept failing after {retries} retries; rerun later.",
                **kwargs,
            )
        return SPAPIRequestError(f"{summary}. Amazon rejected the request.", **kwargs)

    # ---- Reports API operations -------------------------------------------------------------

    def create_report(
        self,
        report_type: ReportType | str,
        start: datetime,
        end: datetime,
        *,
        log: logging.Logger | None = None,
    ) -> str:
        """Request a report for [start, end] in every configured marketplace (createReport).

        Returns:
            The new reportId.
        """
        # NOTE: Amazon may have processed a createReport that timed out, so a retry can leave an
        # orphan report. The resume lookup of the next attempt reuses it.
        body = {
            "reportType": str(report_type),
            "marketplaceIds": self._marketplace_ids,
            "dataStartTime": format_time(start),
            "dataEndTime": format_time(end),
        }
        response = self.request(
            "createReport", "POST", REPORTS_PATH, json_body=body, expected_status=(202,), log=log
        )
        return str(response.json()["reportId"])

    def get_report(self, report_id: str, *, log: logging.Logger | None = None) -> Report:
        """Return a report's current state (getReport)."""
        response = self.request("getReport", "GET", f"{REPORTS_PATH}/{report_id}", log=log)
        return Report.from_json(response.json())

    def get_reports(
        self,
        report_types: Sequence[str],
        *,
        processing_statuses: Sequence[str] = (),
        created_since: datetime | None = None,
        page_size: int = 100,
        max_pages: int = RESUME_MAX_PAGES,
        log: logging.Logger | None = None,
    ) -> list[Report]:
        """List reports filtered by type, status and creation time (getReports).

        Follows `nextToken` for at most `max_pages` pages; each page is one getReports call.
        """
        params: dict[str, str] = {
            "reportTypes": ",".join(report_types),
            "marketplaceIds": ",".join(self._marketplace_ids[:10]),
            "pageSize": str(page_size),
        }
        if processing_statuses:
            params["processingStatuses"] = ",".join(processing_statuses)
        if created_since is not None:
            params["createdSince"] = format_time(created_since)

        reports: list[Report] = []
        for _ in range(max_pages):
            response = self.request("getReports", "GET", REPORTS_PATH, params=params, log=log)
            body = response.json()
            reports.extend(Report.from_json(item) for item in body.get("reports", []))
            next_token = body.get("nextToken")
            if not next_token:
                break
            # Amazon rejects nextToken combined with any other parameter.
            params = {"nextToken": next_token}
        return reports

    def cancel_report(self, report_id: str, *, log: logging.Logger | None = None) -> None:
        """Cancel a report that is still IN_QUEUE (cancelReport)."""
        self.request("cancelReport", "DELETE", f"{REPORTS_PATH}/{report_id}", log=log)

    def get_report_document(
        self, report_document_id: str, *, log: logging.Logger | None = None
    ) -> ReportDocument:
        """Return a document's presigned URL and compression (getReportDocument)."""
        response = self.request(
            "getReportDocument", "GET", f"{DOCUMENTS_PATH}/{report_document_id}", log=log
        )
        body = response.json()
        return ReportDocument(
            report_document_id=str(body["reportDocumentId"]),
            url=str(body["url"]),
            compression_algorithm=body.get("compressionAlgorithm"),
        )

    # ---- Report lifecycle -------------------------------------------------------------------

    def wait_for_report(
        self,
        report_id: str,
        *,
        deadline_seconds: float | None = None,
        log: logging.Logger | None = None,
    ) -> Report:
        """Poll getReport with growing intervals until the report is DONE, CANCELLED or FATAL.

        A 404 is retried up to `not_found_retries` times, because getReport sometimes cannot
        see a reportId that createReport has just returned.

        Raises:
            ReportNotReadyError: When the report is still IN_QUEUE or IN_PROGRESS after
                `deadline_seconds` (default `report_deadline_seconds`).
            SPAPINotFoundError: When the reportId stays unknown.
        """
        log = log or self._log
        settings = self.settings
        deadline = (
            settings.report_deadline_seconds if deadline_seconds is None else deadline_seconds
        )
        started = self._clock()
        interval = settings.poll_initial_seconds
        not_found = 0
        last_status: str | None = None

        while True:
            try:
                report = self.get_report(report_id, log=log)
            except SPAPINotFoundError:
                not_found += 1
                if not_found > settings.not_found_retries:
                    raise
                log.info(
                    "getReport returned 404 for new report %s (attempt %d); polling again",
                    report_id,
                    not_found,
                )
            else:
                elapsed = self._clock() - started
                if report.processing_status != last_status:
                    log.info(
                        "Report %s is %s after %.1f s",
                        report_id,
                        report.processing_status,
                        elapsed,
                    )
                    last_status = report.processing_status
                if report.processing_status in TERMINAL_STATUSES:
                    return report

            elapsed = self._clock() - started
            if elapsed >= deadline:
                raise ReportNotReadyError(
                    f"Report {report_id} is still {last_status or 'not visible'} after polling "
                    f"for {elapsed:.0f} s (deadline {deadline:.0f} s). Amazon is slow to build "
                    "it; retry later, and the next attempt for the same window resumes this "
                    "report instead of creating a new one.",
                    report_id=report_id,
                    processing_status=last_status or "UNKNOWN",
                    elapsed_seconds=elapsed,
                    retry_after_seconds=max(settings.poll_max_seconds, 60.0),
                )

            # Never poll faster than getReport's refill rate, even if the bucket has a burst.
            get_report_rate = bucket_for(self._endpoint, self._seller_key, "getReport").rate
            wait = min(max(interval, 1.0 / get_report_rate), deadline - elapsed)
            self._sleep(wait)
            interval = min(interval * settings.poll_growth, settings.poll_max_seconds)

    def find_resumable_report(
        self,
        report_type: ReportType | str,
        start: datetime,
        end: datetime,
        *,
        log: logging.Logger | None = None,
        include_done: bool = True,
    ) -> Report | None:
        """Find a recent IN_QUEUE, IN_PROGRESS or DONE report for exactly this window.

        Matches the report type, the exact dataStartTime and dataEndTime and the configured
        marketplace ids, created within `resume_lookback_hours`. A DONE report matches only
        when `include_done` is true and it is younger than `done_report_max_age_minutes`.
        FATAL and CANCELLED reports never match.

        Returns:
            The newest matching report, or None.
        """
        hours = self.settings.resume_lookback_hours
        if hours <= 0:
            return None
        created_since = self._now() - timedelta(hours=hours)
        candidates = self.get_reports(
            [str(report_type)],
            processing_statuses=RESUMABLE_STATUSES,
            created_since=created_since,
            log=log,
        )
        wanted_marketplaces = set(self._marketplace_ids)
        done_since = self._now() - timedelta(minutes=self.settings.done_report_max_age_minutes)
        matches = [
            report
            for report in candidates
            if report.report_type == str(report_type)
            and report.processing_status in RESUMABLE_STATUSES
            and report.data_start_time == start
            and report.data_end_time == end
            and (not report.marketplace_ids or set(report.marketplace_ids) == wanted_marketplaces)
            and (
                report.processing_status != "DONE"
                or (
                    include_done
                    and report.created_time is not None
                    and report.created_time >= done_since
                )
            )
        ]
        if not matches:
            return None
        oldest = datetime.min.replace(tzinfo=UTC)
        return max(matches, key=lambda report: report.created_time or oldest)

    def fetch_report(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        *,
        work_dir: Path,
        log: logging.Logger | None = None,
        reuse_done_reports: bool = True,
    ) -> ReportFetchResult:
        """Request, poll and download the reports that cover [start, end].

        A window longer than 30 days is split into consecutive windows of at most 30 days, one
        report each. For each window the client first looks for an unfinished report of the
        same window (see `find_resumable_report`) and creates one only when none exists.

        Args:
            report_type: The report type to request.
            start: Aware start of the data window.
            end: Aware end of the data window; not in the future.
            work_dir: Directory for downloaded documents; must exist.
            log: Logger for progress and retries; defaults to the client's.
            reuse_done_reports: Whether a recent DONE report of the same window may be reused;
                False always requests a new report unless one is still processing.

        Returns:
            The fetched reports, one per window, DONE with a document or CANCELLED without.

        Raises:
            ReportWindowError: If start >= end, a bound is naive, or end is in the future.
            ReportFatalError: If a report ends FATAL; the message contains its error document.
            ReportNotReadyError: If a report is still processing at the deadline.
            DocumentDownloadError: If a document stays truncated or expired after retries.
            SPAPIRequestError: If an operation fails (see `request`).
        """
        log = log or self._log
        windows = split_report_window(start, end, now=self._now())
        if len(windows) > 1:
            log.info(
                "Splitting %s window %s to %s into %d reports of at most %s",
                report_type,
                format_time(windows[0][0]),
                format_time(windows[-1][1]),
                len(windows),
                MAX_REPORT_WINDOW,
            )
        reports = [
            self._fetch_window(
                report_type, window_start, window_end, work_dir, log, reuse_done_reports
            )
            for window_start, window_end in windows
        ]
        return ReportFetchResult(
            report_type=report_type,
            data_start_time=windows[0][0],
            data_end_time=windows[-1][1],
            reports=reports,
        )

    def _fetch_window(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        work_dir: Path,
        log: logging.Logger,
        reuse_done_reports: bool,
    ) -> FetchedReport:
        report_id = self._resume_or_create(report_type, start, end, log, reuse_done_reports)
        report = self.wait_for_report(report_id, log=log)

        if report.processing_status == "FATAL":
            error_text = self._read_error_document(report, work_dir, log)
            raise ReportFatalError(
                f"Report {report_id} ({report_type}, {format_time(start)} to {format_time(end)}) "
                f"ended FATAL: {error_text or 'Amazon returned no error document'}. This "
                "reportId is not reused; the next attempt requests a new report.",
                report_id=report_id,
                report_type=str(report_type),
                error_text=error_text,
            )

        if report.processing_status == "CANCELLED":
            log.info(
                "Report %s for %s to %s is CANCELLED, which Amazon uses for a window without data",
                report_id,
                format_time(start),
                format_time(end),
            )
            return FetchedReport(report_id, "CANCELLED", start, end, document=None)

        if not report.report_document_id:
            raise SPAPIError(
                f"Report {report_id} is DONE but has no reportDocumentId. Rerun the partition; "
                "if it repeats, Amazon's report is broken and support needs this reportId."
            )
        document = self.download_report_document(
            report.report_document_id, work_dir, name=f"report-{report_id}", log=log
        )
        return FetchedReport(report_id, "DONE", start, end, document=document)

    def _resume_or_create(
        self,
        report_type: ReportType,
        start: datetime,
        end: datetime,
        log: logging.Logger,
        reuse_done_reports: bool,
    ) -> str:
        try:
            existing = self.find_resumable_report(
                report_type, start, end, log=log, include_done=reuse_done_reports
            )
        except SPAPIRequestError as err:
            log.warning(
                "Could not look up an unfinished report to resume (%s); creating a new one",
                err,
            )
            existing = None
        if existing is not None:
            log.info(
                "Resuming report %s (%s) for %s to %s",
                existing.report_id,
                existing.processing_status,
                format_time(start),
                format_time(end),
            )
            return existing.report_id

        report_id = self.create_report(report_type, start, end, log=log)
        log.info(
            "Created report %s (%s) for %s to %s",
            report_id,
            report_type,
            format_time(start),
            format_time(end),
        )
        return report_id

    # ---- Document download ------------------------------------------------------------------

    def download_report_document(
        self,
        report_document_id: str,
        work_dir: Path,
        *,
        name: str | None = None,
        log: logging.Logger | None = None,
    ) -> ReportDocumentFile:
        """Download a report document to `work_dir` and decompress it, streaming both steps.

        The presigned URL is fetched without the access token. A truncated gzip stream, a body
        shorter than its Content-Length, a dropped connection or an expired URL (403) leads to
        a new getReportDocument call and another download, up to `download_retries` times.

        Returns:
            The decompressed document on disk, with the charset its Content-Type declared.

        Raises:
            DocumentDownloadError: When every attempt failed.
            UnknownCharsetError: When the Content-Type declares an unknown charset.
        """
        log = log or self._log
        name = name or f"document-{hashlib.sha256(report_document_id.encode()).hexdigest()[:12]}"
        document = self.get_report_document(report_document_id, log=log)
        attempts = self.settings.download_retries + 1

        for attempt in range(1, attempts + 1):
            try:
                return self._download_once(document, work_dir, name, log)
            except _IncompleteDownload as err:
                if attempt == attempts:
                    raise DocumentDownloadError(
                        f"Download of report document {report_document_id} from "
                        f"{document.url_without_query} failed {attempts} times, last: {err}. "
                        "Rerun the partition; the report stays available for 90 days.",
                        report_document_id=report_document_id,
                    ) from err
                wait = self._backoff_seconds(attempt)
                log.warning(
                    "Download of report document %s failed (attempt %d: %s); fetching a new "
                    "URL and retrying in %.2f s",
                    report_document_id,
                    attempt,
                    err,
                    wait,
                )
                self._sleep(wait)
                document = self.get_report_document(report_document_id, log=log)
        raise AssertionError("unreachable")  # pragma: no cover

    def _download_once(
        self, document: ReportDocument, work_dir: Path, name: str, log: logging.Logger
    ) -> ReportDocumentFile:
        raw_path = work_dir / f"{name}.download"
        final_path = work_dir / f"{name}.txt"
        _presigned_query_filter.register(document.url)
        log.debug(
            "Downloading report document %s from %s",
            document.report_document_id,
            document.url_without_query,
        )

        try:
            with self._http.stream("GET", document.url, auth=None) as response:
                if response.status_code != 200:
                    raise _IncompleteDownload(self._describe_download_failure(response))
                charset = charset_from_response(response)
                content_encoding = response.headers.get("content-encoding", "identity").lower()
                content_length = response.headers.get("content-length")
                received = 0
                # iter_raw skips httpx's Content-Encoding decoding, so gzip is undone once, below.
                with raw_path.open("wb") as raw_file:
                    for chunk in response.iter_raw(DOWNLOAD_CHUNK_BYTES):
                        raw_file.write(chunk)
                        received += len(chunk)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as err:
            raise _IncompleteDownload(f"connection failed: {type(err).__name__}") from err

        if content_length is not None and received != int(content_length):
            raise _IncompleteDownload(
                f"received {received} bytes but Content-Length is {content_length}"
            )

        gzipped = document.compression_algorithm == "GZIP" or "gzip" in content_encoding
        if content_encoding not in ("identity", "gzip", ""):
            raise SPAPIError(
                f"Report document {document.report_document_id} has unsupported "
                f"Content-Encoding {content_encoding!r}; expected identity or gzip."
            )
        if gzipped:
            try:
                decompressed = _gunzip_file(raw_path, final_path)
            finally:
                raw_path.unlink(missing_ok=True)
        else:
            # NOTE: an uncompressed body without Content-Length cannot be checked for truncation.
            raw_path.replace(final_path)
            decompressed = received

        log.info(
            "Downloaded report document %s: %d bytes, %d decompressed, charset %s",
            document.report_document_id,
            received,
            decompressed,
            charset or "not declared",
        )
        return ReportDocumentFile(
            path=final_path,
            charset=charset,
            report_document_id=document.report_document_id,
            compressed_bytes=received,
            decompressed_bytes=decompressed,
        )

    @staticmethod
    def _describe_download_failure(response: httpx.Response) -> str:
        """Describe a failed download from its status and the S3-style XML error code."""
        body = response.read()[:2048].decode("utf-8", errors="replace")
        code = _xml_element(body, "Code") or "no error code"
        message = _xml_element(body, "Message") or "no message"
        return f"HTTP {response.status_code} {code}: {message}"

    def _read_error_document(
        self, report: Report, work_dir: Path, log: logging.Logger
    ) -> str | None:
        """Download a FATAL report's error document and return its text, or None."""
        if not report.report_document_id:
            return None
        try:
            document = self.download_report_document(
                report.report_document_id,
                work_dir,
                name=f"report-{report.report_id}-error",
                log=log,
            )
        except SPAPIError as err:
            log.warning(
                "Could not download the error document of report %s: %s", report.report_id, err
            )
            return None

        try:
            with document.path.open("rb") as error_file:
                raw = error_file.read(ERROR_DOCUMENT_MAX_BYTES)
        finally:
            document.path.unlink(missing_ok=True)
        text = raw.decode(document.charset or "utf-8", errors="replace").strip()

        try:
            payload = json.loads(text)
        except ValueError:
            return text
        if isinstance(payload, dict) and "errorDetails" in payload:
            details = payload["errorDetails"]
            return details if isinstance(details, str) else json.dumps(details)
        return text


def _xml_element(body: str, name: str) -> str | None:
    """Return the text of the first `<name>` element in an S3-style XML error body."""
    opening, closing = f"<{name}>", f"</{name}>"
    if opening not in body or closing not in body:
        return None
    return body.split(opening, 1)[1].split(closing, 1)[0]


def _gunzip_file(source: Path, target: Path) -> int:
    """Decompress a gzip file (one or more members) to `target` in bounded memory.

    Returns:
        Bytes written.

    Raises:
        _IncompleteDownload: If the stream is corrupt or ends before a member's trailer.
    """
    written = 0
    # wbits=31 selects the gzip container, so zlib verifies each member's CRC-32 and length.
    decompressor = zlib.decompressobj(wbits=31)
    try:
        with source.open("rb") as compressed, target.open("wb") as output:
            while chunk := compressed.read(DOWNLOAD_CHUNK_BYTES):
                data = chunk
                while data:
                    block = decompressor.decompress(data, DECOMPRESS_OUTPUT_BYTES)
                    output.write(block)
                    written += len(block)
                    if decompressor.eof:
                        data = decompressor.unused_data
                        if data:
                            decompressor = zlib.decompressobj(wbits=31)
                    else:
                        data = decompressor.unconsumed_tail
            block = decompressor.flush()
            output.write(block)
            written += len(block)
    except zlib.error as err:
        target.unlink(missing_ok=True)
        raise _IncompleteDownload(f"corrupt gzip stream: {err}") from err

    if not decompressor.eof:
        target.unlink(missing_ok=True)
        raise _IncompleteDownload("gzip stream ended before its trailer (truncated download)")
    return written
