"""SP-API Reports client, LWA auth, quotas and the Dagster resource that wraps them."""

from amazon_sc_assets.sp_api.auth import LWAAuth
from amazon_sc_assets.sp_api.charsets import charset_from_response, resolve_charset
from amazon_sc_assets.sp_api.client import (
    ClientSettings,
    FetchedReport,
    Report,
    ReportDocument,
    ReportDocumentFile,
    ReportFetchResult,
    ReportsClient,
    split_report_window,
    validate_marketplace_ids,
)
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
    SPAPIRetryableError,
    SPAPIServerError,
    SPAPIThrottledError,
    UnknownCharsetError,
)
from amazon_sc_assets.sp_api.resource import SPAPIResource

__all__ = [
    "ClientSettings",
    "DocumentDownloadError",
    "FetchedReport",
    "LWAAuth",
    "LWAAuthError",
    "Report",
    "ReportDocument",
    "ReportDocumentFile",
    "ReportFatalError",
    "ReportFetchResult",
    "ReportNotReadyError",
    "ReportWindowError",
    "ReportsClient",
    "SPAPIAccessDeniedError",
    "SPAPIConfigError",
    "SPAPIError",
    "SPAPINotFoundError",
    "SPAPIRequestError",
    "SPAPIResource",
    "SPAPIRetryableError",
    "SPAPIServerError",
    "SPAPIThrottledError",
    "UnknownCharsetError",
    "charset_from_response",
    "resolve_charset",
    "split_report_window",
    "validate_marketplace_ids",
]
