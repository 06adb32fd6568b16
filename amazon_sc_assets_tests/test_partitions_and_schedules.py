"""Daily keys, their 72-hour report windows, and the partition keys the schedules request."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from amazon_sc_assets.partitions import build_daily_partitions, report_window
from amazon_sc_assets.schedules import build_schedules

PARTITIONS = build_daily_partitions("2023-01-01")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


DAILY, HOURLY = build_schedules("reports_job", PARTITIONS)


@pytest.mark.parametrize(
    ("key", "expected_start", "expected_end"),
    [
        # a past key: the 72 hours that end at the next midnight
        ("2025-03-01", "2025-02-27T00:00", "2025-03-02T00:00"),
        # across a leap day
        ("2024-03-01", "2024-02-28T00:00", "2024-03-02T00:00"),
        # across a year end
        ("2025-01-01", "2024-12-30T00:00", "2025-01-02T00:00"),
    ],
)
def test_report_window_past_key(key: str, expected_start: str, expected_end: str) -> None:
    window = PARTITIONS.time_window_for_partition_key(key)

    start, end = report_window(window, now=_at("2026-01-01T00:00"))

    assert start == _at(expected_start)
    assert end == _at(expected_end)


def test_report_window_today_ends_now() -> None:
    now = _at("2025-03-02T05:30")
    window = PARTITIONS.time_window_for_partition_key("2025-03-02")

    start, end = report_window(window, now=now)

    assert end == now
    assert start == _at("2025-02-27T05:30")


def test_report_window_key_range_is_one_window() -> None:
    first = PARTITIONS.time_window_for_partition_key("2025-02-01")
    last = PARTITIONS.time_window_for_partition_key("2025-02-28")
    window = dg.TimeWindow(first.start, last.end)

    start, end = report_window(window, now=_at("2026-01-01T00:00"))

    assert start == _at("2025-01-30T00:00")
    assert end == _at("2025-03-01T00:00")
    assert (end - start).days == 30


def test_partitions_include_today() -> None:
    with dg.partition_loading_context(effective_dt=_at("2025-03-02T05:30")):
        keys = PARTITIONS.get_partition_keys()

    assert keys[-1] == "2025-03-02"
    assert keys[-2] == "2025-03-01"


@pytest.mark.parametrize(
    ("scheduled_at", "expected_key"),
    [
        ("2025-03-01T00:30", "2025-02-28"),  # end of a 28-day month
        ("2024-03-01T00:30", "2024-02-29"),  # leap day
        ("2025-01-01T00:30", "2024-12-31"),  # year end
        ("2025-05-01T00:30", "2025-04-30"),  # end of a 30-day month
        ("2025-06-15T00:30", "2025-06-14"),  # mid-month
    ],
)
def test_daily_schedule_requests_yesterday(scheduled_at: str, expected_key: str) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=_at(scheduled_at))

    request = DAILY(context)

    assert request.partition_key == expected_key
    assert request.run_key == expected_key


@pytest.mark.parametrize(
    ("scheduled_at", "expected_key"),
    [
        ("2025-03-01T00:15", "2025-03-01"),  # first tick of a month
        ("2025-02-28T23:15", "2025-02-28"),  # last tick of a month
        ("2024-12-31T12:15", "2024-12-31"),
    ],
)
def test_hourly_schedule_requests_today(scheduled_at: str, expected_key: str) -> None:
    context = dg.build_schedule_context(scheduled_execution_time=_at(scheduled_at))

    request = HOURLY(context)

    assert request.partition_key == expected_key


def test_schedules_default_status() -> None:
    assert DAILY.default_status == dg.DefaultScheduleStatus.RUNNING
    assert HOURLY.default_status == dg.DefaultScheduleStatus.STOPPED
