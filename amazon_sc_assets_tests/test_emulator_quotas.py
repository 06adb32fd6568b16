"""Token buckets of the emulator and the rate headers it sends."""

import pytest

from amazon_sc_assets.emulator.quotas import DEFAULT_USAGE_PLANS, QuotaTable, TokenBucket

REPORTS_PATH = "/reports/2021-06-30/reports"
LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_burst_then_empty():
    bucket = TokenBucket(rate=1.0, burst=3, clock=FakeClock())

    results = [bucket.try_acquire() for _ in range(4)]

    assert results == [True, True, True, False]


def test_token_bucket_refills_at_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=0.5, burst=1, clock=clock)
    bucket.try_acquire()

    clock.now = 1.0
    early = bucket.try_acquire()
    clock.now = 2.0
    on_time = bucket.try_acquire()

    assert early is False
    assert on_time is True


def test_token_bucket_never_exceeds_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, burst=2, clock=clock)
    clock.now = 3600.0

    results = [bucket.try_acquire() for _ in range(3)]

    assert results == [True, True, False]


def test_quota_table_scales_refill():
    clock = FakeClock()
    quotas = QuotaTable(time_scale=60.0, clock=clock)
    for _ in range(15):
        quotas.try_acquire("createReport")

    empty = quotas.try_acquire("createReport")
    # 0.0167 requests/s × 60 refills one token in just under a second.
    clock.now = 1.0
    refilled = quotas.try_acquire("createReport")

    assert empty is False
    assert refilled is True


@pytest.mark.parametrize(
    ("operation", "rate", "burst"),
    [
        ("createReport", 0.0167, 15),
        ("getReport", 2.0, 15),
        ("getReports", 0.0222, 10),
        ("cancelReport", 0.0222, 10),
        ("getReportDocument", 0.0167, 15),
    ],
)
def test_default_usage_plans(operation, rate, burst):
    assert DEFAULT_USAGE_PLANS[operation].rate == rate
    assert DEFAULT_USAGE_PLANS[operation].burst == burst


def test_rate_header_is_effective_rate():
    quotas = QuotaTable(time_scale=1000.0)

    assert quotas.rate_limit_header("createReport") == "16.7"
    assert quotas.rate_limit_header("getReport") == "2000"
    assert quotas.rate_limit_header("downloadDocument") is None


def test_get_reports_burst_then_429(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(time_scale=1.0))

    responses = [
        caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE}) for _ in range(11)
    ]
    throttled = responses[-1]
    error = throttled.json()["errors"][0]

    assert [r.status_code for r in responses[:10]] == [200] * 10
    assert responses[0].headers["x-amzn-RateLimit-Limit"] == "0.0222"
    assert throttled.status_code == 429
    assert error["code"] == "QuotaExceeded"
    assert error["message"] == "You exceeded your quota for the requested resource."
    assert "x-amzn-RateLimit-Limit" not in throttled.headers
    assert throttled.headers["x-amzn-RequestId"]


def test_create_report_burst_then_429(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(time_scale=1.0, queue_seconds=3600))

    statuses = [caller.create_report().status_code for _ in range(16)]

    assert statuses == [202] * 15 + [429]


def test_quota_not_taken_by_rejected_token(emulator_factory, caller_factory):
    emulator = emulator_factory(time_scale=1.0)
    caller = caller_factory(emulator)
    for _ in range(12):
        caller.http.get(
            REPORTS_PATH,
            params={"reportTypes": LAST_UPDATE},
            headers={"x-amz-access-token": "Atza|made-up"},
        )

    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})

    assert emulator.count("getReports", 403) == 12
    assert response.status_code == 200
