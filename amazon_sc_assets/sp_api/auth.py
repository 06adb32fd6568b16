"""Login with Amazon (LWA) authentication for SP-API requests, as an `httpx.Auth`.

The auth exchanges the refresh token for an access token at the LWA token URL, sends it in the
`x-amz-access-token` header, and caches it until shortly before it expires. SP-API has not
required AWS Signature Version 4 since 2 October 2023, so no request is signed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator

import httpx

from amazon_sc_assets.sp_api.errors import LWAAuthError

logger = logging.getLogger(__name__)

ACCESS_TOKEN_HEADER = "x-amz-access-token"

# Refresh this long before expiry, or after half the lifetime when the lifetime is shorter.
REFRESH_MARGIN_SECONDS = 300.0


def is_expired_token_response(response: httpx.Response) -> bool:
    """Return True for a 403 whose error message or details state that the access token expired."""
    if response.status_code != 403:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return False
    for error in errors:
        if not isinstance(error, dict):
            continue
        text = f"{error.get('message') or ''} {error.get('details') or ''}".lower()
        if "expired" in text:
            return True
    return False


class LWAAuth(httpx.Auth):
    """An httpx auth flow that adds a cached LWA access token to every request.

    On a 403 whose details state that the token expired, the flow fetches a new token and
    resends the request once. Thread-safe: concurrent requests share one cached token.

    Args:
        client_id: LWA client id of the application.
        client_secret: LWA client secret.
        refresh_token: The seller's refresh token (starts with `Atzr|`).
        token_url: LWA token endpoint.
        clock: Monotonic clock in seconds, for the cache expiry.
    """

    requires_response_body = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_url: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._token_url = token_url
        self._clock = clock
        self._lock = threading.Lock()
        self._access_token: str | None = None
        self._refresh_at = 0.0

    def __repr__(self) -> str:
        return f"LWAAuth(token_url={self._token_url!r})"

    def _cached_token(self) -> str | None:
        with self._lock:
            if self._access_token is not None and self._clock() < self._refresh_at:
                return self._access_token
            return None

    def _invalidate(self, token: str) -> None:
        with self._lock:
            if self._access_token == token:
                self._access_token = None

    def build_token_request(self) -> httpx.Request:
        """Build the refresh_token grant request for the LWA token endpoint."""
        return httpx.Request(
            "POST",
            self._token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": self._refresh_token,
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            },
        )

    def store_token_response(self, response: httpx.Response) -> str:
        """Cache the access token from a token endpoint response and return it.

        Raises:
            LWAAuthError: If the response is not a 200 with an `access_token`.
        """
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}

        if response.status_code != 200 or not body.get("access_token"):
            error_code = body.get("error")
            description = body.get("error_description")
            raise LWAAuthError(
                f"LWA token exchange at {self._token_url} failed with HTTP "
                f"{response.status_code}, error {error_code!r}: {description!r}. Check "
                "SP_API_LWA_CLIENT_ID, SP_API_LWA_CLIENT_SECRET and SP_API_REFRESH_TOKEN, and "
                "that the seller has not revoked the application's authorization.",
                status_code=response.status_code,
                error_code=error_code,
            )

        token = str(body["access_token"])
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 2)
        with self._lock:
            self._access_token = token
            self._refresh_at = self._clock() + lifetime - margin
        logger.debug("Fetched an LWA access token valid for %.0f s", lifetime)
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._cached_token()
        if token is None:
            token_response = yield self.build_token_request()
            token = self.store_token_response(token_response)
        request.headers[ACCESS_TOKEN_HEADER] = token

        response = yield request
        if not is_expired_token_response(response):
            return

        logger.info("SP-API rejected the access token as expired; fetching a new one")
        self._invalidate(token)
        token_response = yield self.build_token_request()
        request.headers[ACCESS_TOKEN_HEADER] = self.store_token_response(token_response)
        yield request
