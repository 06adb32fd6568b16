"""Starlette app of the emulator: LWA token, the Reports API 2021-06-30, downloads, admin routes.

Every SP-API operation goes through the same steps, in Amazon's order as far as it is known:
access token check (403), injected request faults, token bucket (429), then the operation. The
responses follow the Reports API model: bare JSON objects on success and an `errors` list on
failure, `x-amzn-RequestId` on every response and `x-amzn-RateLimit-Limit` on 2xx, 400 and 404.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amazon_sc_assets.marketplaces import MARKETPLACES, marketplaces_in_region
from amazon_sc_assets.report_types import ReportType

from .documents import AMZ_DATE_FORMAT, DocumentFileResponse, UrlSigner, content_type, s3_error_xml
from .faults import REQUEST_KINDS, Fault, FaultRegistry
from .quotas import QuotaTable
from .reports import PROCESSING_STATUSES, ReportStore, format_time
from .request_log import RequestLog, RequestRecord

if TYPE_CHECKING:
    from .server import EmulatorConfig

logger = logging.getLogger(__name__)

API_PREFIX = "/reports/2021-06-30"
TOKEN_PATH = "/auth/o2/token"
DOWNLOAD_PREFIX = "/report-documents"
ADMIN_PREFIX = "/_emulator"

# Limits of the Reports API model for createReport and getReports.
MAX_CREATE_MARKETPLACE_IDS = 25
MAX_LIST_MARKETPLACE_IDS = 10
MAX_LIST_REPORT_TYPES = 10
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
REPORT_RETENTION = timedelta(days=90)

ACCESS_DENIED = "Access to requested resource is denied."
TOKEN_INVALID = "The access token you provided is revoked, malformed or invalid."
TOKEN_EXPIRED = "The access token you provided has expired."
QUOTA_EXCEEDED = "You exceeded your quota for the requested resource."
REPORT_NOT_FOUND = "One or more of the provided ReportRequestIds could not be found."


class InvalidInput(Exception):
    """A request parameter failed validation. The message becomes the 400 InvalidInput message."""


class AccessTokens:
    """LWA access tokens issued by the emulator and the monotonic time each one expires."""

    def __init__(self, lifetime_seconds: int) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def issue(self) -> str:
        token = "Atza|" + secrets.token_urlsafe(48)
        with self._lock:
            self._expiry[token] = time.monotonic() + self.lifetime_seconds
        return token

    def check(self, token: str | None) -> str | None:
        """Return None for a valid token, else the 403 details to send."""
        with self._lock:
            expiry = self._expiry.get(token) if token else None
        if expiry is None:
            return TOKEN_INVALID
        if time.monotonic() >= expiry:
            return TOKEN_EXPIRED
        return None

    def expire_all(self) -> None:
        """Make every token issued so far expired."""
        now = time.monotonic()
        with self._lock:
            for token in self._expiry:
                self._expiry[token] = min(self._expiry[token], now)


@dataclass
class EmulatorState:
    """Everything the routes share: configuration, tokens, quotas, faults, reports, the log."""

    config: EmulatorConfig
    store: ReportStore
    tokens: AccessTokens
    quotas: QuotaTable
    faults: FaultRegistry
    requests: RequestLog
    signer: UrlSigner

    def inject(self, fault: Fault) -> None:
        """Activate a fault. expire_token acts at once, the other kinds wait for their request."""
        if fault.kind == "expire_token":
            self.tokens.expire_all()
        else:
            self.faults.add(fault)


# Responses


def errors_response(status: int, code: str, message: str, details: str = "") -> JSONResponse:
    """Return an SP-API `ErrorList` response."""
    return JSONResponse(
        {"errors": [{"code": code, "message": message, "details": details}]}, status_code=status
    )


def invalid_input(message: str) -> JSONResponse:
    return errors_response(400, "InvalidInput", message)


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    """Return an LWA (OAuth 2.0) error response."""
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def fault_response(operation: str, fault: Fault) -> Response:
    """Return the response of a throttle or server_error fault, shaped for the operation."""
    status = 429 if fault.kind == "throttle" else fault.status or 500
    if operation == "token":
        error = {429: "too_many_requests", 500: "server_error", 503: "temporarily_unavailable"}
        return oauth_error(status, error[status], "Injected emulator fault.")
    if status == 429:
        return errors_response(429, "QuotaExceeded", QUOTA_EXCEEDED)
    if status == 503:
        return errors_response(503, "ServiceUnavailable", "Service temporarily unavailable.")
    return errors_response(500, "InternalFailure", "We encountered an internal error.")


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator


async def apply_request_fault(state: EmulatorState, operation: str) -> Response | None:
    """Consume a throttle, server_error or slow fault for the operation, if one is waiting."""
    fault = state.faults.take(operation, REQUEST_KINDS)
    if fault is None:
        return None
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay_seconds)
        return None
    return fault_response(operation, fault)


# Request parsing


def parse_time(name: str, value: Any) -> datetime:
    """Parse an ISO 8601 date-time parameter. A value without offset is taken as UTC."""
    if not isinstance(value, str):
        raise InvalidInput(f"Invalid {name} {value!r}: expected an ISO 8601 date-time string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"Invalid {name} {value!r}: expected an ISO 8601 date-time such as "
            "2024-05-01T00:00:00Z."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_marketplace_ids(state: EmulatorState, values: Any, max_count: int) -> list[str]:
    """Validate a list of marketplace ids against the emulated region."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidInput(f"Invalid marketplaceIds {values!r}: expected a list of strings.")
    if not 1 <= len(values) <= max_count:
        raise InvalidInput(
            f"Invalid marketplaceIds: {len(values)} given, expected between 1 and {max_count}."
        )
    # NOTE: whether Amazon rejects ids of another region on a regional host is not documented.
    region = state.config.region
    valid = [m.marketplace_id for m in marketplaces_in_region(region)]
    for value in values:
        if value not in valid:
            where = "unknown" if value not in MARKETPLACES else f"not in region {region.name}"
            raise InvalidInput(
                f"Invalid marketplaceId {value!r} ({where}): expected one of {', '.join(valid)}."
            )
    return values


def query_list(request: Request, name: str) -> list[str] | None:
    """Read a comma-separated or repeated query parameter, or return None when it is absent."""
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    return [item for value in raw for item in value.split(",") if item]


# LWA


async def token(request: Request) -> Response:
    state = _state(request)
    request.state.operation = "token"
    response = await apply_request_fault(state, "token")
    if response is not None:
        return response

    form = dict(parse_qsl((await request.body()).decode("utf-8", errors="replace")))
    config = state.config
    if form.get("client_id") != config.client_id or form.get("client_secret") != (
        config.client_secret
    ):
        return oauth_error(400, "invalid_client", "Client authentication failed")
    if form.get("grant_type") != "refresh_token":
        return oauth_error(
            400, "invalid_grant", "The request has an invalid grant parameter : grant_type"
        )
    if form.get("refresh_token") != config.refresh_token:
        return oauth_error(
            400, "invalid_grant", "The request has an invalid grant parameter : refresh_token"
        )
    return JSONResponse(
        {
            "access_token": state.tokens.issue(),
            "refresh_token": config.refresh_token,
            "token_type": "bearer",
            "expires_in": config.token_lifetime_seconds,
        }
    )


# SP-API operations

Handler = Callable[[Request, EmulatorState], Awaitable[Response]]


def sp_api_operation(operation: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an operation handler with the token check, faults, quota and rate header."""

    async def endpoint(request: Request) -> Response:
        state = _state(request)
        request.state.operation = operation
        details = state.tokens.check(request.headers.get("x-amz-access-token"))
        if details is not None:
            return errors_response(403, "Unauthorized", ACCESS_DENIED, details)
        response = await apply_request_fault(state, operation)
        if response is not None:
            return response
        if not state.quotas.try_acquire(operation):
            return errors_response(429, "QuotaExceeded", QUOTA_EXCEEDED)

        try:
            response = await handler(request, state)
        except InvalidInput as error:
            response = invalid_input(str(error))
        if response.status_code in (200, 202, 400, 404):
            rate = state.quotas.rate_limit_header(operation)
            if rate is not None:
                response.headers["x-amzn-RateLimit-Limit"] = rate
        return response

    return endpoint


async def create_report(request: Request, state: EmulatorState) -> Response:
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidInput("Invalid request body: expected a JSON object.") from None
    if not isinstance(body, dict):
        raise InvalidInput("Invalid request body: expected a JSON object.")

    report_type_name = body.get("reportType")
    request.state.report_type = report_type_name if isinstance(report_type_name, str) else None
    if not isinstance(report_type_name, str) or not report_type_name:
        raise InvalidInput("Missing reportType: expected one of the report type values.")
    try:
        report_type = ReportType(report_type_name)
    except ValueError:
        raise InvalidInput(f"Invalid Report Type {report_type_name}") from None
    if "marketplaceIds" not in body:
        raise InvalidInput("Missing marketplaceIds: expected a list of 1 to 25 marketplace ids.")
    marketplace_ids = parse_marketplace_ids(
        state, body["marketplaceIds"], MAX_CREATE_MARKETPLACE_IDS
    )
    options = body.get("reportOptions", {})
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise InvalidInput(f"Invalid reportOptions {options!r}: expected an object of strings.")

    # Both times default to now, as in Amazon's model, so a missing start gives an instant range.
    now = datetime.now(UTC)
    end = parse_time("dataEndTime", body["dataEndTime"]) if "dataEndTime" in body else now
    start = parse_time("dataStartTime", body["dataStartTime"]) if "dataStartTime" in body else end
    for name, value in (("dataStartTime", start), ("dataEndTime", end)):
        if value > now:
            raise InvalidInput(
                f"Invalid {name} {format_time(value)}: it is in the future. The current time "
                f"is {format_time(now)}."
            )
    if start > end:
        raise InvalidInput(
            f"Invalid date range: dataStartTime {format_time(start)} is after dataEndTime "
            f"{format_time(end)}."
        )

    report = state.store.create(
        report_type,
        marketplace_ids,
        start,
        end,
        fatal=state.faults.take_kind("fatal"),
        error_document=state.faults.take_kind("error_document"),
        stuck_in_queue=state.faults.take_all_uses("stuck_in_queue"),
    )
    return JSONResponse({"reportId": report.report_id}, status_code=202)


async def get_report(request: Request, state: EmulatorState) -> Response:
    if state.faults.take("getReport", ("not_found",)) is not None:
        return errors_response(404, "NotFound", REPORT_NOT_FOUND)
    report = state.store.poll(request.path_params["reportId"])
    if report is None:
        return errors_response(404, "NotFound", REPORT_NOT_FOUND)
    return JSONResponse(report)


async def cancel_report(request: Request, state: EmulatorState) -> Response:
    report_id = request.path_params["reportId"]
    result = state.store.cancel(report_id)
    if result is None:
        return Response(status_code=200)
    if result == "not_found":
        return errors_response(404, "NotFound", REPORT_NOT_FOUND)
    # NOTE: Amazon does not document this error. The emulator assumes a 400 InvalidInput.
    raise InvalidInput(
        f"Report {report_id} cannot be cancelled: its processingStatus is {result}, and only "
        "IN_QUEUE reports can be cancelled."
    )


async def get_reports(request: Request, state: EmulatorState) -> Response:
    params = request.query_params
    if "nextToken" in params:
        others = sorted(set(params) - {"nextToken"})
        if others:
            raise InvalidInput(
                f"Invalid request: nextToken must be sent alone, but {', '.join(others)} "
                "was also sent."
            )
        query = decode_next_token(params["nextToken"])
    else:
        query = parse_list_query(request, state)

    reports = state.store.list_reports(
        report_types=query["reportTypes"],
        processing_statuses=query["processingStatuses"],
        marketplace_ids=query["marketplaceIds"],
        created_since=datetime.fromisoformat(query["createdSince"]),
        created_until=datetime.fromisoformat(query["createdUntil"]),
    )
    offset = query["offset"]
    page_size = query["pageSize"]
    body: dict[str, Any] = {"reports": reports[offset : offset + page_size]}
    if offset + page_size < len(reports):
        body["nextToken"] = encode_next_token({**query, "offset": offset + page_size})
    return JSONResponse(body)


def parse_list_query(request: Request, state: EmulatorState) -> dict[str, Any]:
    """Validate getReports parameters into the query that a nextToken also carries."""
    report_types = query_list(request, "reportTypes")
    if report_types is None:
        raise InvalidInput("Missing reportTypes: send reportTypes or nextToken.")
    if len(report_types) > MAX_LIST_REPORT_TYPES:
        raise InvalidInput(
            f"Invalid reportTypes: {len(report_types)} given, expected at most "
            f"{MAX_LIST_REPORT_TYPES}."
        )
    statuses = query_list(request, "processingStatuses")
    for status in statuses or []:
        if status not in PROCESSING_STATUSES:
            raise InvalidInput(
                f"Invalid processingStatuses value {status!r}: expected one of "
                f"{', '.join(PROCESSING_STATUSES)}."
            )
    marketplace_ids = query_list(request, "marketplaceIds")
    if marketplace_ids is not None:
        parse_marketplace_ids(state, marketplace_ids, MAX_LIST_MARKETPLACE_IDS)

    raw_page_size = request.query_params.get("pageSize", str(DEFAULT_PAGE_SIZE))
    try:
        page_size = int(raw_page_size)
    except ValueError:
        page_size = 0
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"Invalid pageSize {raw_page_size!r}: expected an integer from 1 to {MAX_PAGE_SIZE}."
        )

    now = datetime.now(UTC)
    params = request.query_params
    created_since = (
        parse_time("createdSince", params["createdSince"])
        if "createdSince" in params
        else now - REPORT_RETENTION
    )
    created_until = (
        parse_time("createdUntil", params["createdUntil"]) if "createdUntil" in params else now
    )
    if created_since > created_until:
        raise InvalidInput(
            f"Invalid range: createdSince {format_time(created_since)} is after createdUntil "
            f"{format_time(created_until)}."
        )
    return {
        "reportTypes": report_types,
        "processingStatuses": statuses,
        "marketplaceIds": marketplace_ids,
        "createdSince": created_since.isoformat(),
        "createdUntil": created_until.isoformat(),
        "pageSize": page_size,
        "offset": 0,
    }


def encode_next_token(query: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(query).encode("utf-8")).decode("ascii")


def decode_next_token(token: str) -> dict[str, Any]:
    try:
        query = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        query = None
    if not isinstance(query, dict) or "offset" not in query:
        raise InvalidInput(
            "Invalid nextToken: send the value from the previous getReports response unchanged."
        )
    return query


async def get_report_document(request: Request, state: EmulatorState) -> Response:
    document_id = request.path_params["reportDocumentId"]
    if state.store.document(document_id) is None:
        return errors_response(
            404, "NotFound", f"The report document {document_id} could not be found."
        )

    lifetime = state.config.document_url_lifetime_seconds
    issued = datetime.now(UTC)
    if state.faults.take("getReportDocument", ("expired_url",)) is not None:
        issued -= timedelta(seconds=lifetime + 1)
    wants_gzip = request.query_params.get("enableContentEncodingUrlHeader", "").lower() == "true"
    path = f"{DOWNLOAD_PREFIX}/{document_id}"
    query = state.signer.sign(path, issued, lifetime, "gzip" if wants_gzip else None)
    base_url = str(request.base_url).rstrip("/")
    return JSONResponse(
        {
            "reportDocumentId": document_id,
            "url": f"{base_url}{path}?{query}",
            "compressionAlgorithm": "GZIP",
        }
    )


# Document download


async def download_document(request: Request) -> Response:
    state = _state(request)
    request.state.operation = "downloadDocument"
    response = await apply_request_fault(state, "downloadDocument")
    if response is not None:
        return response

    request_id = request.state.request_id
    now = datetime.now(UTC)
    params = dict(request.query_params)
    problem = state.signer.verify(request.url.path, params, now)
    if problem == "expired":
        issued = params["X-Amz-Date"]
        expires = datetime.strptime(issued, AMZ_DATE_FORMAT).replace(tzinfo=UTC) + timedelta(
            seconds=int(params["X-Amz-Expires"])
        )
        body = s3_error_xml(
            "AccessDenied",
            "Request has expired",
            request_id,
            **{
                "X-Amz-Expires": params["X-Amz-Expires"],
                "Expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        return Response(body, status_code=403, media_type="application/xml")
    if problem == "signature":
        body = s3_error_xml(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            request_id,
        )
        return Response(body, status_code=403, media_type="application/xml")

    report = state.store.document(request.path_params["reportDocumentId"])
    if report is None or not report.document_path.exists():
        body = s3_error_xml("NoSuchKey", "The specified key does not exist.", request_id)
        return Response(body, status_code=404, media_type="application/xml")

    size = report.document_path.stat().st_size
    headers = {
        "content-type": content_type(state.config.charset),
        # Amazon labels its gzip documents identity unless the URL asked for gzip.
        "content-encoding": params.get("response-content-encoding", "identity"),
    }
    if state.faults.take("downloadDocument", ("drop_connection",)) is not None:
        return DocumentFileResponse(
            report.document_path,
            headers,
            send_bytes=size // 2,
            declared_length=size,
            complete=False,
        )
    if state.faults.take("downloadDocument", ("truncate_gzip",)) is not None:
        return DocumentFileResponse(
            report.document_path, headers, send_bytes=size // 2, declared_length=size // 2
        )
    return DocumentFileResponse(
        report.document_path, headers, send_bytes=size, declared_length=size
    )


# Admin routes


async def add_fault(request: Request) -> Response:
    try:
        fault = Fault.from_json(json.loads(await request.body()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return invalid_input("Invalid fault: expected a JSON object with operation and kind.")
    except ValueError as error:
        return invalid_input(str(error))
    _state(request).inject(fault)
    return JSONResponse({"fault": fault.to_json()}, status_code=201)


async def list_faults(request: Request) -> Response:
    return JSONResponse({"faults": _state(request).faults.active()})


async def clear_faults(request: Request) -> Response:
    _state(request).faults.clear()
    return Response(status_code=204)


async def list_requests(request: Request) -> Response:
    records = _state(request).requests.records()
    return JSONResponse({"requests": [record.to_json() for record in records]})


async def clear_requests(request: Request) -> Response:
    _state(request).requests.clear()
    return Response(status_code=204)


class RequestLogMiddleware:
    """Add `x-amzn-RequestId` to every response and record each non-admin request.

    The record is written when the response starts, before the client can read it, so a test
    that has its response also finds the record.
    """

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = str(uuid.uuid4())
        arrived = datetime.now(UTC)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        recorded = False

        def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            if scope["path"].startswith(ADMIN_PREFIX + "/"):
                return
            if status >= 400:
                logger.info(
                    "%s %s (%s) returned %d, request id %s",
                    scope["method"],
                    scope["path"],
                    state.get("operation", "unknown"),
                    status,
                    request_id,
                )
            self.log.append(
                RequestRecord(
                    operation=state.get("operation", "unknown"),
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    time=arrived,
                    request_id=request_id,
                    report_type=state.get("report_type"),
                )
            )

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-amzn-RequestId", request_id)
                record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if not recorded:
                record(500)


def create_app(state: EmulatorState) -> ASGIApp:
    """Build the ASGI app that serves `state`."""
    routes = [
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(
            f"{API_PREFIX}/reports",
            sp_api_operation("createReport", create_report),
            methods=["POST"],
        ),
        Route(
            f"{API_PREFIX}/reports", sp_api_operation("getReports", get_reports), methods=["GET"]
        ),
        Route(
            f"{API_PREFIX}/reports/{{reportId}}",
            sp_api_operation("getReport", get_report),
            methods=["GET"],
        ),
        Route(
            f"{API_PREFIX}/reports/{{reportId}}",
            sp_api_operation("cancelReport", cancel_report),
            methods=["DELETE"],
        ),
        Route(
            f"{API_PREFIX}/documents/{{reportDocumentId}}",
            sp_api_operation("getReportDocument", get_report_document),
            methods=["GET"],
        ),
        Route(f"{DOWNLOAD_PREFIX}/{{reportDocumentId}}", download_document, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/faults", add_fault, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/faults", list_faults, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/faults", clear_faults, methods=["DELETE"]),
        Route(f"{ADMIN_PREFIX}/requests", list_requests, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/requests", clear_requests, methods=["DELETE"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = state
    return RequestLogMiddleware(app, state.requests)
