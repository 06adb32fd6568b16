"""Daily partitions whose keys stand for trailing 72-hour report windows.

Dagster's cron-based time partitions cannot express a fixed 72-hour cadence (a `*/3` day-of-month
cron resets on the 1st, so windows of 24 to 72 hours appear). Each daily key D therefore stands
for the 72 hours that end at D+1 00:00 UTC; today's key exists (end_offset=1) and covers the
72 hours that end now. Neighbouring keys overlap by 48 hours, which the upserting IO manager
makes harmless and which re-reads Amazon's late updates on every daily run.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

REPORT_LOOKBACK = timedelta(hours=72)
PARTITION_LENGTH = timedelta(days=1)

DEFAULT_START_DATE = "2025-01-01"


def build_daily_partitions(start_date: str = DEFAULT_START_DATE) -> dg.DailyPartitionsDefinition:
    """Build the daily UTC partitions; end_offset=1 exposes today's still-filling key."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone="UTC", end_offset=1)


def report_window(
    time_window: dg.TimeWindow, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """Widen a partition time window to at least 72 hours, ending at min(window end, now).

    Key D gives [D - 48 h, D + 24 h) and today's key gives [now - 72 h, now). A range run over
    keys D1..Dn gives [D1 - 48 h, Dn + 24 h), so consecutive keys make one report request.
    """
    now = now or datetime.now(UTC)
    end = min(time_window.end, now)
    start = min(time_window.start - (REPORT_LOOKBACK - PARTITION_LENGTH), end - REPORT_LOOKBACK)
    return start.astimezone(UTC), end.astimezone(UTC)
