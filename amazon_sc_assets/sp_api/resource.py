"""The Dagster resource that gives assets an SP-API Reports client for the length of a run."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

import dagster as dg
import httpx
from pydantic import Field, PrivateAttr, ValidationInfo, field_validator

from amazon_sc_assets.marketplaces import LWA_TOKEN_URL, Region
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api.auth import LWAAuth
from amazon_sc_assets.sp_api.client import (
    ClientSettings,
    ReportFetchResult,
    ReportsClient,
    parse_region,
    seller_key,
    validate_marketplace_ids,
)
from amazon_sc_assets.sp_api.errors import SPAPIConfigError

USER_AGENT = "amazon-sc-assets/0.1.0 (Language=Python)"


class SPAPIResource(dg.ConfigurableResource):
    """Fetches SP-API order reports for one seller in one region.

    One `httpx.Client` and one temporary work directory exist per run: both are made in
    `setup_for_execution` and removed in `teardown_after_execution`.

    Example::

        sp_api = SPAPIResource(
            lwa_client_id=dg.EnvVar("SP_API_LWA_CLIENT_ID"),
            lwa_client_secret=dg.EnvVar("SP_API_LWA_CLIENT_SECRET"),
            refresh_token=dg.EnvVar("SP_API_REFRESH_TOKEN"),
            region="eu",
            marketplace_ids=["A1PA6795UKMFR9", "A13V1IB3VIYZZH"],
        )

        @dg.asset
        def orders(context: dg.AssetExecutionContext, sp_api: SPAPIResource):
            result = sp_api.fetch_report(
                ReportType.LAST_UPDATE, start, end, work_dir=sp_api.work_dir, log=context.log
            )
    """

    lwa_client_id: str = Field(description="LWA client id of the SP-API application.")
    # repr=False keeps the secrets out of reprs in logs and tracebacks.
    lwa_client_secret: str = Field(
        description="LWA client secret; pass dg.EnvVar('SP_API_LWA_CLIENT_SECRET').",
        repr=False,
    )
    refresh_token: str = Field(
        description="The seller's LWA refresh token (Atzr|...); pass "
        "dg.EnvVar('SP_API_REFRESH_TOKEN').",
        repr=False,
    )
    region: str = Field(
        default="na",
        description="SP-API region whose host serves the marketplaces: na, eu or fe.",
    )
    marketplace_ids: list[str] = Field(
        description="Marketplace ids requested in every report; all must belong to the region.",
    )
    endpoint: str | None = Field(
        default=None,
        description="SP-API base URL override, such as the local emulator's; empty uses the "
        "region's host.",
    )
    lwa_token_url: str | None = Field(
        default=None,
        description=f"LWA token URL override; empty uses {LWA_TOKEN_URL}.",
    )
    sandbox: bool = Field(
        default=False,
        description="Use the region's sandbox host. Its canned responses do not cover the order "
        "reports, so this only checks credentials and connectivity.",
    )
    connect_timeout_seconds: float = Field(
        default=10.0, description="Seconds to wait for a TCP and TLS connection."
    )
    read_timeout_seconds: float = Field(
        default=60.0,
        description="Seconds to wait for each read of a response, including document chunks.",
    )
    poll_initial_seconds: float = Field(
        default=2.0, description="First wait in seconds between getReport polls."
    )
    poll_max_seconds: float = Field(
        default=60.0, description="Maximum wait in seconds between getReport polls."
    )
    report_deadline_seconds: float = Field(
        default=3600.0,
        description="Seconds to poll one report before the step fails as retryable; the next "
        "attempt resumes the same report.",
    )
    max_retries: int = Field(
        default=5,
        description="Retries of one request after HTTP 5xx, a timeout or a connection error.",
    )
    max_throttle_retries: int = Field(
        default=5, description="Retries of one request after HTTP 429 QuotaExceeded."
    )
    retry_initial_seconds: float = Field(
        default=1.0,
        description="First backoff in seconds after a 5xx, timeout or connection error; it "
        "doubles per failure.",
    )
    retry_max_seconds: float = Field(
        default=120.0, description="Maximum single wait in seconds before any retry."
    )
    download_retries: int = Field(
        default=3,
        description="Document downloads retried with a new URL after truncation or expiry.",
    )
    resume_lookback_hours: float = Field(
        default=4.0,
        description="Hours back that getReports looks for an IN_QUEUE or IN_PROGRESS report of "
        "the same window to resume instead of creating one. 0 disables the lookup.",
    )
    done_report_max_age_minutes: float = Field(
        default=60.0,
        description="Minutes for which a DONE report of the same window is reused instead of "
        "requesting a new one, so a retry after a failed download or write costs no "
        "createReport call. A rerun after that gets a fresh snapshot. 0 never reuses.",
    )

    _http: httpx.Client | None = PrivateAttr(default=None)
    _client: ReportsClient | None = PrivateAttr(default=None)
    _work_dir: Path | None = PrivateAttr(default=None)

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        # An EnvVar is still its variable name here; it is checked after resolution.
        if isinstance(value, dg.EnvVar):
            return value
        return parse_region(value).value

    @field_validator("marketplace_ids")
    @classmethod
    def _check_marketplace_ids(cls, value: list[str], info: ValidationInfo) -> list[str]:
        region = info.data.get("region")
        ids = [marketplace_id.strip() for marketplace_id in value if marketplace_id.strip()]
        # Definitions must load with SP_API_MARKETPLACE_IDS unset, so an empty list is only
        # rejected in setup_for_execution.
        if not ids or region is None or isinstance(region, dg.EnvVar):
            return ids
        validate_marketplace_ids(region, ids)
        return ids

    @classmethod
    def from_env(cls, **overrides: object) -> SPAPIResource:
        """Build the resource from the SP_API_* environment variables.

        Secrets stay `dg.EnvVar`s, resolved at run launch. SP_API_REGION (default na),
        SP_API_MARKETPLACE_IDS (comma-separated), SP_API_ENDPOINT and SP_API_LWA_TOKEN_URL
        are read now. Keyword arguments override any field.
        """
        fields: dict[str, object] = {
            "lwa_client_id": dg.EnvVar("SP_API_LWA_CLIENT_ID"),
            "lwa_client_secret": dg.EnvVar("SP_API_LWA_CLIENT_SECRET"),
            "refresh_token": dg.EnvVar("SP_API_REFRESH_TOKEN"),
            "region": os.environ.get("SP_API_REGION", "na"),
            "marketplace_ids": os.environ.get("SP_API_MARKETPLACE_IDS", "").split(","),
            "endpoint": os.environ.get("SP_API_ENDPOINT") or None,
            "lwa_token_url": os.environ.get("SP_API_LWA_TOKEN_URL") or None,
        }
        fields.update(overrides)
        return cls(**fields)

    def _transport(self) -> httpx.BaseTransport | None:
        """Return the transport for the httpx client; None uses httpx's default.

        Tests override this to return an `httpx.MockTransport`.
        """
        return None

    def resolved_endpoint(self) -> str:
        """Return the SP-API base URL: the override, else the region's (sandbox) host."""
        if self.endpoint:
            return self.endpoint.rstrip("/")
        region = Region(self.region)
        return region.sandbox_endpoint if self.sandbox else region.endpoint

    def client_settings(self) -> ClientSettings:
        """Return the polling and retry settings of this resource's client."""
        return ClientSettings(
            poll_initial_seconds=self.poll_initial_seconds,
            poll_max_seconds=self.poll_max_seconds,
            report_deadline_seconds=self.report_deadline_seconds,
            max_retries=self.max_retries,
            max_throttle_retries=self.max_throttle_retries,
            retry_initial_seconds=self.retry_initial_seconds,
            retry_max_seconds=self.retry_max_seconds,
            download_retries=self.download_retries,
            resume_lookback_hours=self.resume_lookback_hours,
            done_report_max_age_minutes=self.done_report_max_age_minutes,
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        region = validate_marketplace_ids(self.region, self.marketplace_ids)
        for name in ("lwa_client_id", "lwa_client_secret", "refresh_token"):
            if not getattr(self, name):
                raise SPAPIConfigError(
                    f"SPAPIResource.{name} is empty: set the environment variable that "
                    "provides it (SP_API_LWA_CLIENT_ID, SP_API_LWA_CLIENT_SECRET or "
                    "SP_API_REFRESH_TOKEN)."
                )

        # One override without the other sends credentials or tokens to the wrong service: an
        # emulator's tokens to Amazon, or real LWA credentials next to a local endpoint.
        if bool(self.endpoint) != bool(self.lwa_token_url):
            raise SPAPIConfigError(
                "SP_API_ENDPOINT and SP_API_LWA_TOKEN_URL must be set together: only "
                f"{'SP_API_ENDPOINT' if self.endpoint else 'SP_API_LWA_TOKEN_URL'} is set. Set "
                "both (for example to the emulator's endpoint and token URL) or neither (for "
                "Amazon's hosts)."
            )

        auth = LWAAuth(
            self.lwa_client_id,
            self.lwa_client_secret,
            self.refresh_token,
            self.lwa_token_url or LWA_TOKEN_URL,
        )
        self._http = httpx.Client(
            auth=auth,
            timeout=httpx.Timeout(self.read_timeout_seconds, connect=self.connect_timeout_seconds),
            transport=self._transport(),
            headers={"user-agent": USER_AGENT},
        )
        self._client = ReportsClient(
            self._http,
            endpoint=self.resolved_endpoint(),
            marketplace_ids=self.marketplace_ids,
            seller_key=seller_key(self.lwa_client_id, self.refresh_token),
            settings=self.client_settings(),
        )
        self._work_dir = Path(tempfile.mkdtemp(prefix="sp-api-"))
        context.log.debug(
            "SP-API client ready for region %s at %s, work dir %s",
            region.value,
            self.resolved_endpoint(),
            self._work_dir,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        self._client = None
        if self._work_dir is not None:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    @property
    def client(self) -> ReportsClient:
        """The run's `ReportsClient`."""
        if self._client is None:
            raise RuntimeError(
                "SPAPIResource is not set up: use it inside a Dagster run, or call "
                "setup_for_execution(dg.build_init_resource_context()) first."
            )
        return self._client

    @property
    def work_dir(self) -> Path:
        """The run's temporary directory for downloaded documents, removed at teardown."""
        if self._work_dir is None:
            raise RuntimeError(
                "SPAPIResource is not set up, so it has no work_dir: use it inside a Dagster "
                "run, or call setup_for_execution(dg.build_init_resource_context()) first."
            )
        return self._work_dir

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

        See `ReportsClient.fetch_report` for the behaviour and the errors raised.

        Args:
            report_type: The report type to request.
            start: Aware start of the data window.
            end: Aware end of the data window; not in the future.
            work_dir: Directory for the decompressed documents, usually `self.work_dir`.
            log: Logger for progress and retries, such as `context.log`.
            reuse_done_reports: Whether a recent DONE report of the same window may be reused.
        """
        return self.client.fetch_report(
            report_type,
            start,
            end,
            work_dir=work_dir,
            log=log,
            reuse_done_reports=reuse_done_reports,
        )
