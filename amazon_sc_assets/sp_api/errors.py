"""Exceptions raised by the SP-API Reports client.

Every message names the operation or report, the value that failed and what to do next. No
message contains a secret, an access token, a refresh token or the query string of a presigned
document URL.

Errors that a later attempt can fix subclass `SPAPIRetryableError` and carry
`retry_after_seconds`, so Dagster code can turn them into a retry::

    try:
        result = sp_api.fetch_report(...)
    except SPAPIRetryableError as err:
        raise dg.RetryRequested(max_retries=3, seconds_to_wait=err.retry_after_seconds) from err
"""

from __future__ import annotations


class SPAPIError(Exception):
    """Base class of every error raised by `amazon_sc_assets.sp_api`."""


class SPAPIRetryableError(SPAPIError):
    """An error that a later attempt of the same request can fix.

    Attributes:
        retry_after_seconds: Suggested wait before the next attempt, in seconds.
    """

    retry_after_seconds: float = 60.0


class SPAPIConfigError(SPAPIError, ValueError):
    """Invalid client or resource configuration, such as a marketplace id outside the region."""


class ReportWindowError(SPAPIError, ValueError):
    """A requested data window that Amazon would reject, such as start >= end."""


class UnknownCharsetError(SPAPIError, ValueError):
    """A charset in a document's Content-Type that neither Amazon's Java names nor Python know."""


class LWAAuthError(SPAPIError):
    """The Login with Amazon token exchange failed.

    Attributes:
        status_code: HTTP status of the token endpoint's response.
        error_code: OAuth `error` field, such as `invalid_grant`, or None when absent.
    """

    def __init__(self, message: str, *, status_code: int, error_code: str | None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code


class SPAPIRequestError(SPAPIError):
    """An SP-API operation that failed with an HTTP error response.

    Attributes:
        operation: Operation name, such as `createReport`.
        status_code: HTTP status of the last response.
        code: Amazon's error code, such as `QuotaExceeded`, or None when the body had none.
        error_message: Amazon's error message, or None.
        details: Amazon's error details, or None.
        request_id: The `x-amzn-RequestId` header, which Amazon support requests, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        status_code: int | None,
        code: str | None = None,
        error_message: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.status_code = status_code
        self.code = code
        self.error_message = error_message
        self.details = details
        self.request_id = request_id


class SPAPINotFoundError(SPAPIRequestError):
    """HTTP 404, such as a reportId that getReport cannot see yet."""


class SPAPIAccessDeniedError(SPAPIRequestError):
    """HTTP 403, or a 400 saying the account may not request this report type."""


class SPAPIThrottledError(SPAPIRequestError, SPAPIRetryableError):
    """HTTP 429 `QuotaExceeded` on every attempt until the throttle retry limit."""


class SPAPIServerError(SPAPIRequestError, SPAPIRetryableError):
    """HTTP 5xx, a timeout or a connection error on every attempt until the retry limit."""


class ReportFatalError(SPAPIError):
    """A report that ended in processingStatus FATAL.

    Do not poll or reuse this reportId again: request a new report after a cooldown.

    Attributes:
        report_id: The FATAL report's reportId.
        report_type: The report type that was requested.
        error_text: Text of Amazon's error document, or None when the report had no document.
    """

    def __init__(
        self, message: str, *, report_id: str, report_type: str, error_text: str | None
    ) -> None:
        super().__init__(message)
        self.report_id = report_id
        self.report_type = report_type
        self.error_text = error_text


class ReportNotReadyError(SPAPIRetryableError):
    """A report still IN_QUEUE or IN_PROGRESS when the polling deadline passed.

    The next `fetch_report` call for the same window finds this report through getReports and
    resumes polling it instead of creating a new one.

    Attributes:
        report_id: reportId of the report that is still processing.
        processing_status: Its last processingStatus.
        elapsed_seconds: How long this attempt polled it.
    """

    def __init__(
        self,
        message: str,
        *,
        report_id: str,
        processing_status: str,
        elapsed_seconds: float,
        retry_after_seconds: float,
    ) -> None:
        super().__init__(message)
        self.report_id = report_id
        self.processing_status = processing_status
        self.elapsed_seconds = elapsed_seconds
        self.retry_after_seconds = retry_after_seconds


class DocumentDownloadError(SPAPIRetryableError):
    """A report document that stayed truncated, expired or unreadable after every retry.

    Attributes:
        report_document_id: The reportDocumentId whose download failed.
    """

    def __init__(self, message: str, *, report_document_id: str) -> None:
        super().__init__(message)
        self.report_document_id = report_document_id
