"""Client-side token buckets."""

import threading

from amazon_sc_assets.sp_api.rate_limits import (
    DEFAULT_RATE_LIMITS,
    TokenBucket,
    bucket_for,
    parse_rate_limit_header,
)


class FakeClock:
    """A clock that only advances when the bucket sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_token_bucket_allows_burst_without_waiting() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]


def test_token_bucket_waits_one_refill_after_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    waited = bucket.acquire()
    assert abs(waited - 2.0) < 1e-9


def test_token_bucket_set_rate_changes_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=0.0167, burst=1, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.set_rate(100.0)
    waited = bucket.acquire()
    assert abs(waited - 0.01) < 1e-9


def test_token_bucket_drain_forces_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=15, clock=clock, sleep=clock.sleep)
    bucket.drain()
    waited = bucket.acquire()
    assert abs(waited - 0.25) < 1e-9


def test_token_bucket_threads_share_tokens() -> None:
    bucket = TokenBucket(rate=20.0, burst=5)
    results: list[float] = []
    lock = threading.Lock()

    def take() -> None:
        waited = bucket.acquire()
        with lock:
            results.append(waited)

    threads = [threading.Thread(target=take) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10
    # Only the burst can go without waiting.
    assert sum(1 for waited in results if waited == 0.0) <= 5


def test_bucket_for_shares_one_bucket_per_key() -> None:
    first = bucket_for("http://127.0.0.1:1/", "seller-a", "createReport")
    second = bucket_for("http://127.0.0.1:1", "seller-a", "createReport")
    assert first is second


def test_bucket_for_separates_sellers() -> None:
    first = bucket_for("http://127.0.0.1:1", "seller-a", "getReport")
    second = bucket_for("http://127.0.0.1:1", "seller-b", "getReport")
    assert first is not second


def test_bucket_for_uses_amazon_defaults() -> None:
    bucket = bucket_for("http://127.0.0.1:2", "seller-defaults", "getReports")
    assert (bucket.rate, bucket.burst) == (0.0222, 10)


def test_default_rate_limits_cover_every_operation() -> None:
    assert set(DEFAULT_RATE_LIMITS) == {
        "createReport",
        "getReport",
        "getReports",
        "cancelReport",
        "getReportDocument",
    }


def test_parse_rate_limit_header_values() -> None:
    assert parse_rate_limit_header("0.0167") == 0.0167
    assert parse_rate_limit_header(None) is None
    assert parse_rate_limit_header("fast") is None
    assert parse_rate_limit_header("0") is None
    assert parse_rate_limit_header("nan") is None
