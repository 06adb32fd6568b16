"""SPAPIResource and ReportsClient against the local emulator over loopback HTTP.

Every emulator runs 1000 times faster than Amazon, and the resource below polls and backs off
in hundredths of a second, so each report takes well under a second.
"""

import contextlib
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx
import pytest
from conftest import EmulatorCaller

from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorHandle,
    Fault,
)
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER, ReportType
from amazon_sc_assets.sp_api import (
    ReportFatalError,
    ReportFetchResult,
    ReportNotReadyError,
    SPAPIResource,
    SPAPIRetryableError,
    SPAPIServerError,
    SPAPIThrottledError,
)
from amazon_sc_assets.sp_api.auth import LWAAuth
from amazon_sc_assets.sp_api.client import ClientSettings, ReportsClient, seller_key
from amazon_sc_assets.sp_api.rate_limits import bucket_for


def make_resource(emulator: EmulatorHandle, **overrides: Any) -> SPAPIResource:
    """A resource aimed at the emulator, with waits scaled down for tests."""
    fields: dict[str, Any] = {
        "lwa_client_id": EMULATOR_CLIENT_ID,
        "lwa_client_secret": EMULATOR_CLIENT_SECRET,
        "refresh_token": EMULATOR_REFRESH_TOKEN,
        "region": "na",
        "marketplace_ids": ["ATVPDKIKX0DER"],
        "endpoint": emulator.base_url,
        "lwa_token_url": emulator.token_url,
        "read_timeout_seconds": 5.0,
        "poll_initial_seconds": 0.01,
        "poll_max_seconds": 0.05,
        "report_deadline_seconds": 10.0,
        "retry_initial_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "resume_lookback_hours": 1.0,
        **overrides,
    }
    return SPAPIResource(**fields)


@contextlib.contextmanager
def running(resource: SPAPIResource) -> Iterator[SPAPIResource]:
    """Initialize the resource as a run would: setup on entry, teardown on exit."""
    with dg.build_resources({"sp_api": resource}) as resources:
        yield resources.sp_api


def recent_window(days: float = 3.0) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    return end - timedelta(days=days), end


def fetch(
    emulator: EmulatorHandle,
    report_type: ReportType = ReportType.LAST_UPDATE,
    window: tuple[datetime, datetime] | None = None,
    **overrides: Any,
) -> ReportFetchResult:
    start, end = window or recent_window()
    with running(make_resource(emulator, **overrides)) as sp_api:
        result = sp_api.fetch_report(report_type, start, end, work_dir=sp_api.work_dir)
        # Read the document before teardown removes the work directory.
        for report in result.reports:
            if report.document is not None:
                report.document.path.read_bytes()
        return result


def fetch_text(
    emulator: EmulatorHandle, window: tuple[datetime, datetime] | None = None, **overrides: Any
) -> tuple[ReportFetchResult, list[str]]:
    """Fetch one report and return it with the decoded documents' texts."""
    start, end = window or recent_window()
    with running(make_resource(emulator, **overrides)) as sp_api:
        result = sp_api.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=sp_api.work_dir)
        texts = [
            report.document.path.read_bytes().decode(report.document.charset)
            for report in result.reports
            if report.document is not None
        ]
    return result, texts


def test_fetch_report_rows_match_emulator(emulator: EmulatorHandle, caller: EmulatorCaller) -> None:
    result, texts = fetch_text(emulator)
    document = result.reports[0].document
    expected = caller.download_text(document.report_document_id)
    lines = texts[0].splitlines()
    assert result.reports[0].processing_status == "DONE"
    assert texts[0] == expected
    assert lines[0].split("\t") == list(ORDER_REPORT_HEADER)
    assert len(lines) > 1


def test_fetch_report_records_sizes(emulator: EmulatorHandle) -> None:
    result, texts = fetch_text(emulator)
    document = result.reports[0].document
    assert document.decompressed_bytes == len(texts[0].encode("utf-8"))
    assert 0 < document.compressed_bytes < document.decompressed_bytes


def test_fetch_report_removes_work_dir_at_teardown(emulator: EmulatorHandle) -> None:
    start, end = recent_window()
    with running(make_resource(emulator)) as sp_api:
        work_dir = sp_api.work_dir
        result = sp_api.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=work_dir)
        assert result.reports[0].document.path.parent == work_dir
    assert not work_dir.exists()


@pytest.mark.parametrize(
    ("charset", "codec"),
    [
        ("UTF-8", "utf-8"),
        ("Cp1252", "cp1252"),  # EU documents
        ("Windows-31J", "cp932"),  # Japanese documents
    ],
)
def test_fetch_report_charset_from_content_type(
    emulator_factory: Callable[..., EmulatorHandle],
    caller_factory: Callable[[EmulatorHandle], EmulatorCaller],
    charset: str,
    codec: str,
) -> None:
    emulator = emulator_factory(charset=charset)
    result, texts = fetch_text(emulator)
    document = result.reports[0].document
    assert document.charset == codec
    assert texts[0] == caller_factory(emulator).download_text(document.report_document_id)


def test_fetch_report_splits_long_window(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emulator = emulator_factory(history_days=50, orders_per_day=2.0)
    start, end = recent_window(days=45)
    result = fetch(emulator, window=(start, end))
    windows = [(report.data_start_time, report.data_end_time) for report in result.reports]
    assert windows == [(start, start + timedelta(days=30)), (start + timedelta(days=30), end)]
    assert emulator.count("createReport", status=202) == 2


def test_fetch_report_empty_window_cancelled(emulator: EmulatorHandle) -> None:
    # The emulator's history covers the last 14 days only, so this window has no orders.
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(days=40)
    result = fetch(emulator, window=(end - timedelta(days=3), end))
    assert result.reports[0].processing_status == "CANCELLED"
    assert result.reports[0].document is None


def test_fetch_report_order_date_type(emulator: EmulatorHandle) -> None:
    result = fetch(emulator, ReportType.ORDER_DATE)
    assert result.report_type is ReportType.ORDER_DATE
    assert result.reports[0].processing_status == "DONE"


def test_fault_throttle_retried(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="throttle", times=3))
    result = fetch(emulator)
    assert result.reports[0].processing_status == "DONE"
    assert emulator.count("createReport", status=429) == 3
    assert emulator.count("createReport", status=202) == 1


def test_fault_throttle_exhausts_retries(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="throttle", times=10))
    with pytest.raises(SPAPIThrottledError) as caught:
        fetch(emulator, max_throttle_retries=2)
    assert str(caught.value).startswith("QuotaExceeded after 2 retries")
    assert caught.value.request_id is not None
    assert emulator.count("createReport", status=429) == 3


def test_fault_server_error_retried(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="getReportDocument", kind="server_error", times=2, status=503))
    result = fetch(emulator)
    assert result.reports[0].document is not None
    assert emulator.count("getReportDocument", status=503) == 2


def test_fault_server_error_exhausts_retries(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="server_error", times=10))
    with pytest.raises(SPAPIServerError) as caught:
        fetch(emulator, max_retries=1)
    assert "InternalFailure" in str(caught.value)
    assert isinstance(caught.value, SPAPIRetryableError)


def test_fault_slow_times_out_then_retried(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="getReport", kind="slow", delay_seconds=1.0))
    result = fetch(emulator, read_timeout_seconds=0.2)
    assert result.reports[0].processing_status == "DONE"


def test_fault_drop_connection_download_retried(
    emulator: EmulatorHandle, caller: EmulatorCaller
) -> None:
    emulator.inject(Fault(operation="downloadDocument", kind="drop_connection"))
    result, texts = fetch_text(emulator)
    document_urls_fetched = emulator.count("getReportDocument", status=200)
    document = result.reports[0].document
    assert texts[0] == caller.download_text(document.report_document_id)
    assert document_urls_fetched == 2


def test_fault_truncate_gzip_download_retried(
    emulator: EmulatorHandle, caller: EmulatorCaller
) -> None:
    emulator.inject(Fault(operation="downloadDocument", kind="truncate_gzip"))
    result, texts = fetch_text(emulator)
    downloads = emulator.count("downloadDocument", status=200)
    document = result.reports[0].document
    assert texts[0] == caller.download_text(document.report_document_id)
    assert downloads == 2


def test_fault_expired_url_refetched(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="getReportDocument", kind="expired_url"))
    result = fetch(emulator)
    assert result.reports[0].document is not None
    assert emulator.count("downloadDocument", status=403) == 1
    assert emulator.count("getReportDocument", status=200) == 2


def test_fault_not_found_on_new_report_retried(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="getReport", kind="not_found", times=2))
    result = fetch(emulator)
    assert result.reports[0].processing_status == "DONE"
    assert emulator.count("getReport", status=404) == 2


def test_fault_stuck_in_queue_raises_then_resumes(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="stuck_in_queue", times=40))
    window = recent_window()
    with pytest.raises(ReportNotReadyError) as caught:
        fetch(emulator, window=window, report_deadline_seconds=0.1, poll_max_seconds=0.01)
    assert caught.value.processing_status == "IN_QUEUE"
    assert caught.value.report_id in str(caught.value)

    result = fetch(emulator, window=window)
    assert result.reports[0].report_id == caught.value.report_id
    assert result.reports[0].processing_status == "DONE"
    assert emulator.count("createReport", status=202) == 1


def test_fault_fatal_raises_with_error_document(emulator: EmulatorHandle) -> None:
    emulator.inject(
        Fault(
            operation="createReport",
            kind="fatal",
            message="Report can be requested only upto 30 days",
        )
    )
    with pytest.raises(ReportFatalError) as caught:
        fetch(emulator)
    assert caught.value.error_text == "Report can be requested only upto 30 days"
    assert caught.value.report_id in str(caught.value)
    assert "upto 30 days" in str(caught.value)


def test_fault_fatal_report_not_reused(emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="fatal"))
    window = recent_window()
    with pytest.raises(ReportFatalError) as caught:
        fetch(emulator, window=window)
    result = fetch(emulator, window=window)
    assert result.reports[0].report_id != caught.value.report_id
    assert emulator.count("createReport", status=202) == 2


def test_fault_error_document_returned_as_document(emulator: EmulatorHandle) -> None:
    # A DONE report whose document is one sentence: the parser, not the client, rejects it.
    emulator.inject(Fault(operation="createReport", kind="error_document"))
    result, texts = fetch_text(emulator)
    assert result.reports[0].processing_status == "DONE"
    assert texts[0] == "Date range exceeded. Report can be requested only upto 30 days"


def test_fault_expire_token_refreshes_once(emulator: EmulatorHandle) -> None:
    start, end = recent_window()
    with running(make_resource(emulator)) as sp_api:
        sp_api.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=sp_api.work_dir)
        emulator.inject(Fault(operation="getReport", kind="expire_token"))
        result = sp_api.fetch_report(ReportType.ORDER_DATE, start, end, work_dir=sp_api.work_dir)
    assert result.reports[0].processing_status == "DONE"
    assert emulator.count("token", status=200) == 2
    assert emulator.count("getReports", status=403) == 1


def test_client_without_dagster(emulator: EmulatorHandle) -> None:
    auth = LWAAuth(
        EMULATOR_CLIENT_ID, EMULATOR_CLIENT_SECRET, EMULATOR_REFRESH_TOKEN, emulator.token_url
    )
    start, end = recent_window()
    with httpx.Client(auth=auth, timeout=5.0) as http:
        client = ReportsClient(
            http,
            endpoint=emulator.base_url,
            marketplace_ids=["ATVPDKIKX0DER"],
            seller_key="plain-client-test",
            settings=ClientSettings(poll_initial_seconds=0.01, poll_max_seconds=0.05),
        )
        report_id = client.create_report(ReportType.LAST_UPDATE, start, end)
        report = client.wait_for_report(report_id)
    assert report.processing_status == "DONE"
    assert report.report_document_id is not None


def test_logs_never_contain_secrets(
    emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    access_tokens: list[str] = []
    document_queries: list[str] = []
    store_token = LWAAuth.store_token_response
    get_document = ReportsClient.get_report_document

    def record_token(self: LWAAuth, response: Any) -> str:
        token = store_token(self, response)
        access_tokens.append(token)
        return token

    def record_document(self: ReportsClient, *args: Any, **kwargs: Any) -> Any:
        document = get_document(self, *args, **kwargs)
        document_queries.append(document.url.split("?", 1)[1])
        return document

    monkeypatch.setattr(LWAAuth, "store_token_response", record_token)
    monkeypatch.setattr(ReportsClient, "get_report_document", record_document)
    for name in ("", "httpx", "httpcore", "amazon_sc_assets"):
        caplog.set_level(logging.DEBUG, logger=name)

    emulator.inject(Fault(operation="createReport", kind="throttle", times=2))
    emulator.inject(Fault(operation="getReportDocument", kind="expired_url"))
    emulator.inject(Fault(operation="downloadDocument", kind="drop_connection"))
    emulator.inject(Fault(operation="createReport", kind="fatal"))
    start, end = recent_window()
    with running(make_resource(emulator)) as sp_api:
        with pytest.raises(ReportFatalError) as caught:
            sp_api.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=sp_api.work_dir)
        emulator.inject(Fault(operation="getReport", kind="expire_token"))
        sp_api.fetch_report(ReportType.LAST_UPDATE, start, end, work_dir=sp_api.work_dir)

    logged = "\n".join(record.getMessage() for record in caplog.records) + str(caught.value)
    secrets = [EMULATOR_CLIENT_SECRET, EMULATOR_REFRESH_TOKEN, *access_tokens, *document_queries]
    assert len(access_tokens) == 2
    assert len(document_queries) >= 3
    assert any(record.name == "httpx" for record in caplog.records)
    for secret in secrets:
        assert secret not in logged


def test_rate_limit_header_adjusts_bucket(emulator: EmulatorHandle) -> None:
    fetch(emulator)
    key = seller_key(EMULATOR_CLIENT_ID, EMULATOR_REFRESH_TOKEN)
    create_bucket = bucket_for(emulator.base_url, key, "createReport")
    # The emulator runs 1000 times faster, so it reports 1000 x 0.0167 requests per second.
    assert create_bucket.rate == pytest.approx(16.7)
