"""P3 API calls: a one-year backfill of the LAST_UPDATE asset in runs of up to 28 keys.

Dagster splits a backfill of a multi_run(28) asset into runs of up to 28 consecutive keys,
starting at the first selected key, and gives each run the range tags
`dagster/asset_partition_range_start` and `dagster/asset_partition_range_end`. This module
launches those runs one after another with `execute_in_process`, as a pool limit of 1 would,
against an emulator process with time-scaled quotas. It then counts the SP-API calls in the
emulator's request log and replays them through token buckets at Amazon's real rates.
"""

import os
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from emulator_process import run_emulator_process

from amazon_sc_assets.assets import MAX_PARTITIONS_PER_RUN
from amazon_sc_assets.definitions import JOB_NAME, build_definitions
from amazon_sc_assets.sp_api.rate_limits import DEFAULT_RATE_LIMITS

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
EMULATOR_TIME_SCALE = 1000.0
ORDERS_PER_DAY = 20.0
# The first run's report window starts 48 hours before its first key.
HISTORY_MARGIN_DAYS = 5


@dataclass(frozen=True)
class RunRecord:
    """One backfill run: its key range, outcome and wall-clock span."""

    first_key: str
    last_key: str
    success: bool
    failure: str | None
    started: datetime
    ended: datetime


class SimulatedBucket:
    """A token bucket on a simulated clock: `rate` tokens per second up to `burst`, full at 0."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = 0.0

    def acquire(self, at: float) -> float:
        """Take one token at simulated time `at` and return the seconds the caller waits."""
        self.tokens = min(self.burst, self.tokens + (at - self.updated) * self.rate)
        self.updated = at
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        wait = (1 - self.tokens) / self.rate
        self.tokens = 0.0
        self.updated = at + wait
        return wait


def backfill_chunks(keys: list[str], max_keys: int) -> list[tuple[str, str]]:
    """Split keys into consecutive (first, last) ranges of at most `max_keys` keys."""
    return [
        (keys[index], keys[min(index + max_keys, len(keys)) - 1])
        for index in range(0, len(keys), max_keys)
    ]


def _failure_of(result: dg.ExecuteInProcessResult) -> str | None:
    if result.success:
        return None
    errors = [
        event.step_failure_data.error
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    if not errors:
        return "run failed without a step failure"
    return f"{errors[0].cls_name}: {errors[0].message.strip()[:200]}"


def run_backfill(out_dir: Path, key_count: int) -> tuple[list[RunRecord], list[dict[str, Any]]]:
    """Materialize `key_count` daily keys ending at today's key, and return runs and log."""
    today = datetime.now(UTC).date()
    first_day = today - timedelta(days=key_count - 1)
    keys = [(first_day + timedelta(days=offset)).isoformat() for offset in range(key_count)]
    database = out_dir / "p3.duckdb"
    database.unlink(missing_ok=True)

    runs: list[RunRecord] = []
    with run_emulator_process(
        log_path=out_dir / "emulator-api-calls.log",
        time_scale=EMULATOR_TIME_SCALE,
        history_days=key_count + HISTORY_MARGIN_DAYS,
        orders_per_day=ORDERS_PER_DAY,
    ) as emulator:
        environment = emulator.environment() | {
            "AMAZON_SC_DUCKDB_PATH": str(database),
            "AMAZON_SC_START_DATE": first_day.isoformat(),
            "AMAZON_SC_REPORT_TYPES": "last_update",
        }
        saved = {name: os.environ.get(name) for name in [*environment, "SNOWFLAKE_ACCOUNT"]}
        os.environ.update(environment)
        os.environ.pop("SNOWFLAKE_ACCOUNT", None)
        try:
            job = build_definitions().resolve_job_def(JOB_NAME)
            instance = dg.DagsterInstance.ephemeral()
            for first_key, last_key in backfill_chunks(keys, MAX_PARTITIONS_PER_RUN):
                started = datetime.now(UTC)
                result = job.execute_in_process(
                    instance=instance,
                    tags={RANGE_START_TAG: first_key, RANGE_END_TAG: last_key},
                    raise_on_error=False,
                    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                )
                runs.append(
                    RunRecord(
                        first_key,
                        last_key,
                        result.success,
                        _failure_of(result),
                        started,
                        datetime.now(UTC),
                    )
                )
                print(f"P3: run {first_key}..{last_key}: {'ok' if result.success else 'FAILED'}")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        requests = emulator.request_log()
    database.unlink(missing_ok=True)
    return runs, requests


def replay_at_amazon_rates(
    runs: list[RunRecord], requests: list[dict[str, Any]], processing_seconds: float
) -> dict[str, float]:
    """Estimate the backfill's wall time at Amazon's default rates and bursts.

    Runs are replayed one after another. In each run, the recorded calls go through simulated
    token buckets in their recorded order, and a 429 is not replayed because Amazon's bucket
    takes no token for it. The measured time between a run's createReport and its
    getReportDocument (the emulator's scaled processing plus the client's poll sleeps) is
    replaced by `processing_seconds`. The rest of the run's measured time (Dagster, parsing,
    upsert) is added as it was.
    """
    buckets = {
        operation: SimulatedBucket(limit.rate, limit.burst)
        for operation, limit in DEFAULT_RATE_LIMITS.items()
    }
    clock = 0.0
    quota_wait = 0.0
    local_seconds = 0.0
    for run in runs:
        calls = [
            record
            for record in requests
            if run.started <= datetime.fromisoformat(record["time"]) <= run.ended
        ]
        created = next((c for c in calls if c["operation"] == "createReport"), None)
        fetched = next((c for c in calls if c["operation"] == "getReportDocument"), None)
        waited = 0.0
        if created is not None and fetched is not None:
            waited = (
                datetime.fromisoformat(fetched["time"]) - datetime.fromisoformat(created["time"])
            ).total_seconds()
        run_local = (run.ended - run.started).total_seconds() - waited
        local_seconds += run_local

        at = clock
        created_at: float | None = None
        for call in calls:
            bucket = buckets.get(call["operation"])
            if bucket is None or call["status"] == 429:
                continue
            if call["operation"] == "getReportDocument" and created_at is not None:
                at = max(at, created_at + processing_seconds)
            wait = bucket.acquire(at)
            at += wait
            quota_wait += wait
            if call["operation"] == "createReport":
                created_at = at
        clock = at + run_local
    return {
        "estimated_seconds": clock,
        "quota_wait_seconds": quota_wait,
        "local_seconds": local_seconds,
        "processing_seconds_per_report": processing_seconds,
    }


def measure_api_calls(out_dir: Path, *, key_count: int, processing_seconds: float) -> dict:
    """Run the backfill, count calls by operation and status, and estimate real wall time."""
    started = time.perf_counter()
    runs, requests = run_backfill(out_dir, key_count)
    wall_seconds = time.perf_counter() - started
    calls = Counter(record["operation"] for record in requests)
    throttled = Counter(record["operation"] for record in requests if record["status"] == 429)
    return {
        "keys": key_count,
        "runs": len(runs),
        "failed_runs": [
            {"keys": f"{run.first_key}..{run.last_key}", "failure": run.failure}
            for run in runs
            if not run.success
        ],
        "calls": dict(calls),
        "throttled": dict(throttled),
        "emulated_wall_seconds": wall_seconds,
        "first_key": runs[0].first_key if runs else None,
        "last_key": runs[-1].last_key if runs else None,
        "replay": replay_at_amazon_rates(runs, requests, processing_seconds),
    }
