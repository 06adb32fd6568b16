"""Client-side token buckets that keep SP-API calls under Amazon's per-operation quotas.

Amazon meters each operation with a token bucket per selling partner and application. Tokens
refill at `rate` per second up to `burst`, each call takes one, and an empty bucket returns
HTTP 429. The client mirrors that bucket, so it waits before calling instead of collecting 429s.
The process keeps one bucket per (endpoint, seller, operation), shared by every client and
resource instance, so concurrent partitions of one seller share one quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """Default usage plan of one operation.

    Attributes:
        rate: Sustained requests per second.
        burst: Maximum number of requests that can be made at once.
    """

    rate: float
    burst: int


# Amazon's default usage plans for the Reports API 2021-06-30 (reports_2021-06-30.json model).
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "createReport": RateLimit(rate=0.0167, burst=15),
    "getReport": RateLimit(rate=2.0, burst=15),
    "getReports": RateLimit(rate=0.0222, burst=10),
    "cancelReport": RateLimit(rate=0.0222, burst=10),
    "getReportDocument": RateLimit(rate=0.0167, burst=15),
}


class TokenBucket:
    """A thread-safe token bucket that blocks callers until a token is available.

    Args:
        rate: Tokens added per second.
        burst: Bucket capacity; the bucket starts full.
        clock: Monotonic clock in seconds.
        sleep: Function that sleeps for a number of seconds.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"Invalid token bucket rate={rate} burst={burst}: both must be > 0.")
        self._rate = rate
        self._burst = burst
        self._tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        """Current refill rate in tokens per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """Bucket capacity in tokens."""
        return self._burst

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token if one is available.

        Returns:
            0.0 when a token was taken, otherwise the seconds until one becomes available.
        """
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self._rate

    def acquire(self) -> float:
        """Block until a token is available and take it.

        Returns:
            Total seconds spent waiting.
        """
        waited = 0.0
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return waited
            # Sleep outside the lock so other threads can refill-check meanwhile.
            self._sleep(wait)
            waited += wait

    def set_rate(self, rate: float) -> None:
        """Change the refill rate, for example to the one in `x-amzn-RateLimit-Limit`."""
        if rate <= 0:
            return
        with self._lock:
            self._refill()
            self._rate = rate

    def drain(self) -> None:
        """Empty the bucket, because Amazon's bucket was empty when it returned HTTP 429."""
        with self._lock:
            self._refill()
            self._tokens = 0.0


_registry: dict[tuple[str, str, str], TokenBucket] = {}
_registry_lock = threading.Lock()


def bucket_for(endpoint: str, seller_key: str, operation: str) -> TokenBucket:
    """Return the process-wide bucket of one operation for one seller on one endpoint.

    Args:
        endpoint: SP-API base URL, so the emulator and Amazon never share a bucket.
        seller_key: A stable, non-secret id of the seller and application, such as a hash of
            the LWA client id and refresh token.
        operation: Operation name, a key of `DEFAULT_RATE_LIMITS`.
    """
    key = (endpoint.rstrip("/"), seller_key, operation)
    with _registry_lock:
        bucket = _registry.get(key)
        if bucket is None:
            limit = DEFAULT_RATE_LIMITS[operation]
            bucket = TokenBucket(limit.rate, limit.burst)
            _registry[key] = bucket
        return bucket


def parse_rate_limit_header(value: str | None) -> float | None:
    """Parse `x-amzn-RateLimit-Limit` (requests per second); None when absent or invalid."""
    if value is None:
        return None
    try:
        rate = float(value)
    except ValueError:
        return None
    if rate <= 0 or rate != rate or rate == float("inf"):
        return None
    return rate
