"""Token buckets with Amazon's default usage plans for the Reports API 2021-06-30 operations."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class UsagePlan:
    """A default usage plan: `rate` requests per second refill a bucket of `burst` tokens."""

    rate: float
    burst: int


# Default plans from the operation descriptions of Amazon's reports_2021-06-30.json model.
DEFAULT_USAGE_PLANS: dict[str, UsagePlan] = {
    "createReport": UsagePlan(rate=0.0167, burst=15),
    "getReport": UsagePlan(rate=2.0, burst=15),
    "getReports": UsagePlan(rate=0.0222, burst=10),
    "cancelReport": UsagePlan(rate=0.0222, burst=10),
    "getReportDocument": UsagePlan(rate=0.0167, burst=15),
}


class TokenBucket:
    """A bucket that starts full, refills continuously and contains at most `burst` tokens.

    Args:
        rate: tokens added per second of `clock` time.
        burst: bucket capacity.
        clock: monotonic clock in seconds, which tests replace to control refill.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token if the bucket has one; return False when it is empty."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True


class QuotaTable:
    """One TokenBucket per operation, refilling `time_scale` times faster than Amazon's plan."""

    def __init__(self, time_scale: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets = {
            operation: TokenBucket(plan.rate * time_scale, plan.burst, clock)
            for operation, plan in DEFAULT_USAGE_PLANS.items()
        }

    def try_acquire(self, operation: str) -> bool:
        """Take a token for `operation`. Operations without a usage plan are never throttled."""
        bucket = self._buckets.get(operation)
        return bucket is None or bucket.try_acquire()

    def rate_limit_header(self, operation: str) -> str | None:
        """Return the `x-amzn-RateLimit-Limit` value (effective requests per second) or None."""
        bucket = self._buckets.get(operation)
        if bucket is None:
            return None
        return f"{round(bucket.rate, 6):g}"
