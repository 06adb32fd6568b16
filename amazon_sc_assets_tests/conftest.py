"""Shared fixtures: the local SP-API emulator and a plain httpx caller for it."""

import contextlib
import gzip
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

# Imported before any test runs. Otherwise Hypothesis's pytest plugin imports it in the terminal
# summary, where pytest's assertion rewriter parses it with ast.parse. On CPython 3.11.7 that
# parse failed with "SystemError: AST constructor recursion depth mismatch" after the DuckDB IO
# manager tests, which turned a passing run into exit code 1.
import hypothesis  # noqa: F401
import pytest

from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorConfig,
    EmulatorHandle,
    run_emulator,
)

# Small enough that an emulator starts and builds a report in well under a second.
TEST_EMULATOR_SETTINGS: dict[str, Any] = {
    "seed": 1,
    "time_scale": 1000.0,
    "history_days": 14,
    "orders_per_day": 20.0,
}

REPORTS_PATH = "/reports/2021-06-30/reports"
DOCUMENTS_PATH = "/reports/2021-06-30/documents"
TERMINAL_STATUSES = ("DONE", "CANCELLED", "FATAL")


class EmulatorCaller:
    """Plain httpx calls against one emulator, for tests that check the raw HTTP responses."""

    def __init__(self, emulator: EmulatorHandle) -> None:
        self.emulator = emulator
        self.http = httpx.Client(base_url=emulator.base_url, timeout=10.0)
        self._access_token: str | None = None

    def request_token(self, **overrides: str) -> httpx.Response:
        form = {
            "grant_type": "refresh_token",
            "client_id": EMULATOR_CLIENT_ID,
            "client_secret": EMULATOR_CLIENT_SECRET,
            "refresh_token": EMULATOR_REFRESH_TOKEN,
            **overrides,
        }
        return self.http.post(self.emulator.token_url, data=form)

    @property
    def access_token(self) -> str:
        if self._access_token is None:
            self._access_token = self.request_token().json()["access_token"]
        return self._access_token

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send an SP-API request with the cached access token."""
        headers = {"x-amz-access-token": self.access_token, **kwargs.pop("headers", {})}
        return self.http.request(method, path, headers=headers, **kwargs)

    def create_report(
        self,
        report_type: str = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",
        marketplace_ids: list[str] | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        """Call createReport; start and end default to the 3 days before now."""
        now = datetime.now(UTC).replace(microsecond=0)
        start = start or now - timedelta(days=3)
        end = end or now - timedelta(seconds=1)
        body = {
            "reportType": report_type,
            "marketplaceIds": marketplace_ids or ["ATVPDKIKX0DER"],
            "dataStartTime": start if isinstance(start, str) else start.isoformat(),
            "dataEndTime": end if isinstance(end, str) else end.isoformat(),
            **extra,
        }
        return self.call("POST", REPORTS_PATH, json=body)

    def get_report(self, report_id: str) -> httpx.Response:
        return self.call("GET", f"{REPORTS_PATH}/{report_id}")

    def wait_for_report(self, report_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """Poll getReport until the report is terminal and return its JSON."""
        deadline = time.monotonic() + timeout
        while True:
            report = self.get_report(report_id).json()
            if report["processingStatus"] in TERMINAL_STATUSES:
                return report
            if time.monotonic() > deadline:
                raise AssertionError(f"Report {report_id} is not terminal: {report}")
            time.sleep(0.01)

    def run_report(self, **create_arguments: Any) -> dict[str, Any]:
        """Create a report and wait until it is terminal."""
        response = self.create_report(**create_arguments)
        assert response.status_code == 202, response.text
        return self.wait_for_report(response.json()["reportId"])

    def get_report_document(self, document_id: str, **params: str) -> httpx.Response:
        return self.call("GET", f"{DOCUMENTS_PATH}/{document_id}", params=params)

    def download(self, document_id: str) -> httpx.Response:
        """Fetch the document's URL without SP-API headers, as Amazon's S3 URLs are fetched."""
        url = self.get_report_document(document_id).json()["url"]
        return httpx.get(url, timeout=10.0)

    def download_text(self, document_id: str) -> str:
        """Download, gunzip and decode a document with the charset of its Content-Type."""
        response = self.download(document_id)
        charset = response.headers["content-type"].split("charset=")[1]
        codec = {"UTF-8": "utf-8", "Cp1252": "cp1252", "Windows-31J": "cp932"}[charset]
        return gzip.decompress(response.content).decode(codec)

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorHandle]]:
    """Start emulators with keyword overrides of EmulatorConfig; all stop at teardown.

    Unspecified settings come from TEST_EMULATOR_SETTINGS (seed 1, time scale 1000, 14 days
    of 20 orders a day), then from EmulatorConfig's defaults.
    """
    with contextlib.ExitStack() as stack:

        def start(**overrides: Any) -> EmulatorHandle:
            config = EmulatorConfig(**{**TEST_EMULATOR_SETTINGS, **overrides})
            return stack.enter_context(run_emulator(config))

        yield start


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    """An emulator with seed 1, time scale 1000 and a small generated history."""
    return emulator_factory()


@pytest.fixture
def caller_factory() -> Iterator[Callable[[EmulatorHandle], EmulatorCaller]]:
    """Make an EmulatorCaller for any emulator; their HTTP clients close at teardown."""
    callers: list[EmulatorCaller] = []

    def make(emulator: EmulatorHandle) -> EmulatorCaller:
        caller = EmulatorCaller(emulator)
        callers.append(caller)
        return caller

    yield make
    for caller in callers:
        caller.close()


@pytest.fixture
def caller(
    emulator: EmulatorHandle, caller_factory: Callable[[EmulatorHandle], EmulatorCaller]
) -> EmulatorCaller:
    """An EmulatorCaller for the `emulator` fixture."""
    return caller_factory(emulator)
