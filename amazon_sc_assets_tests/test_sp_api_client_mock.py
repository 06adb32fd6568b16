"""ReportsClient cases the emulator cannot produce, served by an httpx.MockTransport.

The fake API below serves the five Reports operations, the LWA token route and document
downloads from in-memory state. Each test sets the responses it needs.
"""

import gzip
import json
import os
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api.auth import LWAAuth
from amazon_sc_assets.sp_api.client import ClientSettings, ReportsClient, split_report_window
from amazon_sc_assets.sp_api.errors import (
    DocumentDownloadError,
    LWAAuthError,
    ReportFatalError,
    ReportWindowError,
    SPAPIAccessDeniedError,
    SPAPIServerError,
    SPAPIThrottledError,
    UnknownCharsetError,
)

BASE_URL = "http://127.0.0.1:9"
TOKEN_URL = "http://127.0.0.1:9/auth/o2/token"
DOCUMENT_URL = "http://127.0.0.1:9/download/doc-1?X-Amz-Signature=s3cr3tsig&X-Amz-Expires=300"
CLIENT_SECRET = "mock-client-secret"
REFRESH_TOKEN = "Atzr|mock-refresh-token"
TSV = "amazon-order-id\tproduct-name\r\n111-0000000-0000001\tGröße “deluxe”\r\n"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
START = NOW - timedelta(days=3)

FAST = ClientSettings(
    poll_initial_seconds=0.0,
    poll_max_seconds=0.0,
    report_deadline_seconds=5.0,
    max_retries=2,
    max_throttle_retries=2,
    retry_initial_seconds=0.0,
    retry_max_seconds=0.0,
    download_retries=2,
    resume_lookback_hours=0,
)


class FakeSPAPI:
    """In-memory Reports API; `download` and `overrides` let a test shape the responses."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        self.status_sequence = ["IN_QUEUE", "IN_PROGRESS", "DONE"]
        self.document_id: str | None = "doc-1"
        self.compression: str | None = "GZIP"
        self.download: Callable[[httpx.Request], httpx.Response] = lambda request: streamed(
            200,
            {"Content-Type": "text/plain;charset=UTF-8"},
            gzip.compress(TSV.encode("utf-8")),
        )
        self.overrides: dict[str, list[httpx.Response | Exception]] = {}
        self.listed_reports: list[dict] = []
        self._polls = 0

    def count(self, operation: str) -> int:
        return sum(1 for request in self.requests if self.operation(request) == operation)

    @staticmethod
    def operation(request: httpx.Request) -> str:
        path = request.url.path
        if path == "/auth/o2/token":
            return "token"
        if path.startswith("/download/"):
            return "download"
        if path.startswith("/reports/2021-06-30/documents/"):
            return "getReportDocument"
        if path == "/reports/2021-06-30/reports":
            return "createReport" if request.method == "POST" else "getReports"
        return "getReport"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        operation = self.operation(request)
        queued = self.overrides.get(operation)
        if queued:
            item = queued.pop(0)
            if isinstance(item, Exception):
                raise item
            return item

        headers = {"x-amzn-RequestId": "req-1", "x-amzn-RateLimit-Limit": "1000"}
        if operation == "token":
            self.tokens_issued += 1
            body = {"access_token": f"Atza|token-{self.tokens_issued}", "expires_in": 3600}
            return httpx.Response(200, json=body)
        if operation == "download":
            return self.download(request)
        if operation == "createReport":
            return httpx.Response(202, json={"reportId": "1001"}, headers=headers)
        if operation == "getReports":
            return httpx.Response(200, json={"reports": self.listed_reports}, headers=headers)
        if operation == "getReportDocument":
            body = {"reportDocumentId": "doc-1", "url": DOCUMENT_URL}
            if self.compression:
                body["compressionAlgorithm"] = self.compression
            return httpx.Response(200, json=body, headers=headers)
        status = self.status_sequence[min(self._polls, len(self.status_sequence) - 1)]
        self._polls += 1
        report = {
            "reportId": request.url.path.rsplit("/", 1)[1],
            "reportType": ReportType.LAST_UPDATE.value,
            "processingStatus": status,
            "createdTime": "2026-03-01T00:00:00+00:00",
        }
        if status in ("DONE", "FATAL") and self.document_id:
            report["reportDocumentId"] = self.document_id
        return httpx.Response(200, json=report, headers=headers)


def streamed(status: int, headers: dict[str, str], body: bytes) -> httpx.Response:
    """Build a download response whose body is streamed, as from a real socket."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


def make_client(
    fake: FakeSPAPI,
    settings: ClientSettings = FAST,
    sleep: Callable[[float], None] = lambda seconds: None,
) -> ReportsClient:
    auth = LWAAuth("mock-client-id", CLIENT_SECRET, REFRESH_TOKEN, TOKEN_URL)
    http = httpx.Client(auth=auth, transport=httpx.MockTransport(fake))
    return ReportsClient(
        http,
        endpoint=BASE_URL,
        marketplace_ids=["ATVPDKIKX0DER"],
        # A fresh seller key gives each test its own full quota buckets.
        seller_key=uuid.uuid4().hex,
        settings=settings,
        sleep=sleep,
        now=lambda: NOW,
    )


def error_body(code: str, message: str, details: str = "") -> dict:
    return {"errors": [{"code": code, "message": message, "details": details}]}


def test_fetch_report_downloads_and_gunzips(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    document = result.reports[0].document
    assert document is not None
    assert document.path.read_bytes() == TSV.encode("utf-8")
    assert document.charset == "utf-8"
    assert document.decompressed_bytes == len(TSV.encode("utf-8"))


def test_fetch_report_download_has_no_access_token(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    download = next(r for r in fake.requests if fake.operation(r) == "download")
    api_call = next(r for r in fake.requests if fake.operation(r) == "createReport")
    assert "x-amz-access-token" not in download.headers
    assert api_call.headers["x-amz-access-token"] == "Atza|token-1"


def test_fetch_report_gzip_encoding_decoded_once(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.download = lambda request: streamed(
        200,
        {"Content-Type": "text/plain;charset=UTF-8", "Content-Encoding": "gzip"},
        gzip.compress(TSV.encode("utf-8")),
    )
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert result.reports[0].document.path.read_bytes() == TSV.encode("utf-8")


def test_fetch_report_plain_document_kept_as_is(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.compression = None
    fake.download = lambda request: streamed(
        200, {"Content-Type": "text/plain"}, TSV.encode("cp1252")
    )
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    document = result.reports[0].document
    assert document.path.read_bytes() == TSV.encode("cp1252")
    # No declared charset: the parser decides, the client passes None.
    assert document.charset is None


def test_fetch_report_multi_member_gzip(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    first, second = TSV[:20].encode(), TSV[20:].encode()
    fake.download = lambda request: streamed(
        200,
        {"Content-Type": "text/plain;charset=utf8"},
        gzip.compress(first) + gzip.compress(second),
    )
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert result.reports[0].document.path.read_bytes() == TSV.encode()


def test_fetch_report_short_body_retried(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    payload = gzip.compress(TSV.encode())
    responses = [
        # Content-Length promises more bytes than the body carries.
        streamed(
            200, {"Content-Type": "text/plain;charset=UTF-8", "Content-Length": "9999"}, payload
        ),
        streamed(200, {"Content-Type": "text/plain;charset=UTF-8"}, payload),
    ]
    fake.download = lambda request: responses.pop(0)
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert result.reports[0].document.path.read_bytes() == TSV.encode()
    assert fake.count("getReportDocument") == 2


def test_fetch_report_persistent_truncation_raises(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    cut = gzip.compress(TSV.encode())[:-8]
    fake.download = lambda request: streamed(200, {"Content-Type": "text/plain;charset=UTF-8"}, cut)
    with pytest.raises(DocumentDownloadError, match="trailer") as caught:
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert "s3cr3tsig" not in str(caught.value)
    assert fake.count("download") == FAST.download_retries + 1


def test_fetch_report_unknown_charset_raises(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.download = lambda request: streamed(
        200, {"Content-Type": "text/plain;charset=x-ebcdic-klingon"}, b"x"
    )
    with pytest.raises(UnknownCharsetError, match="x-ebcdic-klingon"):
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)


def test_fetch_report_fatal_plain_text_document(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.status_sequence = ["FATAL"]
    fake.compression = None
    fake.download = lambda request: streamed(
        200, {"Content-Type": "text/plain"}, b"Report could not be built.\n"
    )
    with pytest.raises(ReportFatalError) as caught:
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert caught.value.error_text == "Report could not be built."
    assert "1001" in str(caught.value)


def test_fetch_report_fatal_without_document(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.status_sequence = ["FATAL"]
    fake.document_id = None
    with pytest.raises(ReportFatalError, match="no error document"):
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)


def test_request_timeout_retried(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.overrides["createReport"] = [httpx.ReadTimeout("slow"), httpx.ConnectError("refused")]
    result = make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert result.reports[0].processing_status == "DONE"
    assert fake.count("createReport") == 3


def test_request_timeouts_exhaust_retries(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.overrides["createReport"] = [httpx.ReadTimeout("slow")] * 3
    with pytest.raises(SPAPIServerError, match="createReport failed after 2 retries"):
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)


def test_request_throttled_error_names_quota(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    throttled = httpx.Response(
        429,
        json=error_body("QuotaExceeded", "You exceeded your quota for the requested resource."),
        headers={"x-amzn-RequestId": "req-429", "x-amzn-RateLimit-Limit": "1000"},
    )
    fake.overrides["createReport"] = [throttled] * 3
    with pytest.raises(SPAPIThrottledError) as caught:
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    message = str(caught.value)
    assert message.startswith("QuotaExceeded after 2 retries: Amazon is throttling createReport")
    assert "req-429" in message
    assert caught.value.retry_after_seconds > 0


def test_request_unauthorized_not_throttling(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    denied = httpx.Response(
        403,
        json=error_body("Unauthorized", "Access to requested resource is denied."),
        headers={"x-amzn-RequestId": "req-403"},
    )
    fake.overrides["createReport"] = [denied]
    with pytest.raises(SPAPIAccessDeniedError) as caught:
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert "not throttled" in str(caught.value)
    assert caught.value.code == "Unauthorized"
    assert caught.value.request_id == "req-403"


def test_request_not_allowed_400_is_access_denied(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.overrides["createReport"] = [
        httpx.Response(400, json=error_body("InvalidInput", "Report type is not allowed."))
    ]
    with pytest.raises(SPAPIAccessDeniedError):
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)


def test_auth_caches_token_across_calls(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert fake.tokens_issued == 1


def test_auth_refreshes_once_on_expired_token(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.overrides["createReport"] = [
        httpx.Response(
            403,
            json=error_body(
                "Unauthorized",
                "Access to requested resource is denied.",
                "The access token you provided has expired.",
            ),
        )
    ]
    make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    retried = [r for r in fake.requests if fake.operation(r) == "createReport"]
    assert fake.tokens_issued == 2
    assert retried[-1].headers["x-amz-access-token"] == "Atza|token-2"


def test_auth_short_token_half_lifetime() -> None:
    now = [0.0]
    auth = LWAAuth("id", CLIENT_SECRET, REFRESH_TOKEN, TOKEN_URL, clock=lambda: now[0])
    auth.store_token_response(httpx.Response(200, json={"access_token": "a", "expires_in": 120}))
    now[0] = 59.0
    assert auth._cached_token() == "a"
    now[0] = 61.0
    assert auth._cached_token() is None


def test_auth_refreshes_five_minutes_before_expiry() -> None:
    now = [0.0]
    auth = LWAAuth("id", CLIENT_SECRET, REFRESH_TOKEN, TOKEN_URL, clock=lambda: now[0])
    auth.store_token_response(httpx.Response(200, json={"access_token": "a", "expires_in": 3600}))
    now[0] = 3299.0
    assert auth._cached_token() == "a"
    now[0] = 3301.0
    assert auth._cached_token() is None


def test_auth_rejected_grant_raises_without_secret(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.overrides["token"] = [
        httpx.Response(400, json={"error": "invalid_grant", "error_description": "bad token"})
    ]
    with pytest.raises(LWAAuthError) as caught:
        make_client(fake).fetch_report(ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path)
    assert "invalid_grant" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)
    assert REFRESH_TOKEN not in str(caught.value)


def test_resume_reuses_matching_report(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.listed_reports = [
        {
            "reportId": "777",
            "reportType": ReportType.LAST_UPDATE.value,
            "processingStatus": "IN_PROGRESS",
            "createdTime": "2026-02-28T23:00:00+00:00",
            "dataStartTime": "2026-02-26T00:00:00+00:00",
            "dataEndTime": "2026-03-01T00:00:00+00:00",
            "marketplaceIds": ["ATVPDKIKX0DER"],
        }
    ]
    settings = ClientSettings(**{**FAST.__dict__, "resume_lookback_hours": 6.0})
    result = make_client(fake, settings).fetch_report(
        ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path
    )
    assert result.reports[0].report_id == "777"
    assert fake.count("createReport") == 0


def test_resume_ignores_other_window(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    fake.listed_reports = [
        {
            "reportId": "778",
            "reportType": ReportType.LAST_UPDATE.value,
            "processingStatus": "DONE",
            "createdTime": "2026-02-28T23:00:00+00:00",
            "dataStartTime": "2026-02-25T00:00:00+00:00",
            "dataEndTime": "2026-03-01T00:00:00+00:00",
        }
    ]
    settings = ClientSettings(**{**FAST.__dict__, "resume_lookback_hours": 6.0})
    result = make_client(fake, settings).fetch_report(
        ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path
    )
    assert result.reports[0].report_id == "1001"
    assert fake.count("createReport") == 1


@pytest.mark.parametrize(
    ("created_time", "expected_report_id", "expected_creates"),
    [
        # a DONE report 30 minutes old: a retry reuses it and creates nothing
        ("2026-02-28T23:30:00+00:00", "779", 0),
        # a DONE report 3 hours old: a rerun wants a fresh snapshot
        ("2026-02-28T21:00:00+00:00", "1001", 1),
    ],
)
def test_resume_done_report_only_when_recent(
    tmp_path: Path, created_time: str, expected_report_id: str, expected_creates: int
) -> None:
    fake = FakeSPAPI()
    fake.listed_reports = [
        {
            "reportId": "779",
            "reportType": ReportType.LAST_UPDATE.value,
            "processingStatus": "DONE",
            "createdTime": created_time,
            "dataStartTime": "2026-02-26T00:00:00+00:00",
            "dataEndTime": "2026-03-01T00:00:00+00:00",
            "reportDocumentId": "doc-1",
        }
    ]
    settings = ClientSettings(
        **{**FAST.__dict__, "resume_lookback_hours": 6.0, "done_report_max_age_minutes": 60.0}
    )
    result = make_client(fake, settings).fetch_report(
        ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path
    )
    assert result.reports[0].report_id == expected_report_id
    assert fake.count("createReport") == expected_creates


def test_create_report_request_body(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    make_client(fake).fetch_report(ReportType.ORDER_DATE, START, NOW, work_dir=tmp_path)
    create = next(r for r in fake.requests if fake.operation(r) == "createReport")
    assert json.loads(create.content) == {
        "reportType": "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
        "marketplaceIds": ["ATVPDKIKX0DER"],
        "dataStartTime": "2026-02-26T00:00:00Z",
        "dataEndTime": "2026-03-01T00:00:00Z",
    }


def test_split_report_window_caps_at_30_days() -> None:
    windows = split_report_window(NOW - timedelta(days=65), NOW, now=NOW)
    assert [end - start for start, end in windows] == [
        timedelta(days=30),
        timedelta(days=30),
        timedelta(days=5),
    ]
    assert windows[0][0] == NOW - timedelta(days=65)
    assert windows[-1][1] == NOW


def test_split_report_window_rejects_reversed() -> None:
    with pytest.raises(ReportWindowError, match="is not before end"):
        split_report_window(NOW, NOW - timedelta(hours=1), now=NOW)


def test_split_report_window_rejects_future_end() -> None:
    with pytest.raises(ReportWindowError, match="in the future"):
        split_report_window(START, NOW + timedelta(hours=1), now=NOW)


def test_split_report_window_rejects_naive() -> None:
    with pytest.raises(ReportWindowError, match="no time zone"):
        split_report_window(datetime(2026, 2, 1), NOW, now=NOW)


def test_throttle_wait_at_least_refill_interval() -> None:
    fake = FakeSPAPI()
    throttled = httpx.Response(
        429,
        json=error_body("QuotaExceeded", "You exceeded your quota for the requested resource."),
        # One request every 2 seconds.
        headers={"x-amzn-RateLimit-Limit": "0.5"},
    )
    fake.overrides["createReport"] = [throttled, throttled]
    sleeps: list[float] = []
    settings = ClientSettings(
        **{**FAST.__dict__, "retry_initial_seconds": 0.1, "retry_max_seconds": 3.0}
    )
    make_client(fake, settings, sleep=sleeps.append).create_report(
        ReportType.LAST_UPDATE, START, NOW
    )
    assert len(sleeps) == 2
    for wait in sleeps:
        assert wait >= 2.0
        assert wait <= 3.0


def test_server_error_backoff_grows_and_caps() -> None:
    fake = FakeSPAPI()
    failure = httpx.Response(500, json=error_body("InternalFailure", "internal error"))
    fake.overrides["createReport"] = [failure] * 4
    sleeps: list[float] = []
    settings = ClientSettings(
        **{
            **FAST.__dict__,
            "max_retries": 4,
            "retry_initial_seconds": 1.0,
            "retry_max_seconds": 3.0,
        }
    )
    make_client(fake, settings, sleep=sleeps.append).create_report(
        ReportType.LAST_UPDATE, START, NOW
    )
    ceilings = [1.0, 2.0, 3.0, 3.0]
    assert len(sleeps) == 4
    for wait, ceiling in zip(sleeps, ceilings, strict=True):
        # Jitter draws each wait from the upper half of its ceiling.
        assert ceiling / 2 <= wait <= ceiling


def test_poll_interval_grows_to_max() -> None:
    fake = FakeSPAPI()
    fake.status_sequence = ["IN_QUEUE"] * 5 + ["DONE"]
    sleeps: list[float] = []
    settings = ClientSettings(
        **{
            **FAST.__dict__,
            "poll_initial_seconds": 1.0,
            "poll_max_seconds": 3.0,
            "poll_growth": 1.5,
        }
    )
    # A deadline no test reaches, because the client's sleep does not advance the clock.
    settings = ClientSettings(**{**settings.__dict__, "report_deadline_seconds": 1e6})
    report = make_client(fake, settings, sleep=sleeps.append).wait_for_report("1001")
    assert report.processing_status == "DONE"
    assert sleeps == [1.0, 1.5, 2.25, 3.0, 3.0]


def test_poll_respects_get_report_rate() -> None:
    fake = FakeSPAPI()
    fake.status_sequence = ["IN_QUEUE"] * 3 + ["DONE"]
    real_call = fake.__call__

    def slow_quota(request: httpx.Request) -> httpx.Response:
        response = real_call(request)
        if fake.operation(request) == "getReport":
            # getReport allows one request every 4 seconds for this seller.
            response.headers["x-amzn-RateLimit-Limit"] = "0.25"
        return response

    sleeps: list[float] = []
    settings = ClientSettings(**{**FAST.__dict__, "report_deadline_seconds": 1e6})
    auth = LWAAuth("mock-client-id", CLIENT_SECRET, REFRESH_TOKEN, TOKEN_URL)
    client = ReportsClient(
        httpx.Client(auth=auth, transport=httpx.MockTransport(slow_quota)),
        endpoint=BASE_URL,
        marketplace_ids=["ATVPDKIKX0DER"],
        seller_key=uuid.uuid4().hex,
        settings=settings,
        sleep=sleeps.append,
    )
    client.wait_for_report("1001")
    assert len(sleeps) == 3
    for wait in sleeps:
        assert wait >= 4.0


class RepeatingStream(httpx.SyncByteStream):
    """A gzip body of `members` identical members, generated chunk by chunk."""

    def __init__(self, member: bytes, members: int) -> None:
        self.member = member
        self.members = members

    def __iter__(self):
        for _ in range(self.members):
            yield self.member


def test_download_large_document_bounded_memory(tmp_path: Path) -> None:
    fake = FakeSPAPI()
    # Random bytes do not compress, so both the download (48 MiB) and the decompressed
    # document (48 MiB) would exceed the bound below if either were held in memory.
    member = gzip.compress(os.urandom(1024 * 1024), compresslevel=1)
    fake.download = lambda request: httpx.Response(
        200,
        headers={"Content-Type": "text/plain;charset=UTF-8"},
        stream=RepeatingStream(member, 48),
    )
    tracemalloc.start()
    try:
        result = make_client(fake).fetch_report(
            ReportType.LAST_UPDATE, START, NOW, work_dir=tmp_path
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    document = result.reports[0].document
    assert document.decompressed_bytes == 48 * 1024 * 1024
    assert document.compressed_bytes > 48 * 1024 * 1024
    assert document.path.stat().st_size == document.decompressed_bytes
    assert peak < 24 * 1024 * 1024
