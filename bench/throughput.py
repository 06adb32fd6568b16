"""P1 throughput and P2 peak memory of download, parse and upsert, each load in a child process.

Both measurements use one emulator process whose generated history has `orders_per_day` sized
so that a 72-hour LAST_UPDATE report contains about `p2_rows` order lines. P1 requests shorter
windows that contain about `p1_rows` lines each.
"""

import json
import logging
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
from emulator_process import EmulatorProcess, run_emulator_process

from amazon_sc_assets.emulator.order_history import OrderHistory, OrderHistoryConfig
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api import ReportsClient, SPAPIResource

logger = logging.getLogger(__name__)

LOAD_SCRIPT = Path(__file__).with_name("load_report.py")
# LAST_UPDATE lines per hour of window for each generated order per day, measured with
# OrderHistory (seed 1): 123,864 lines in a 72-hour window at 20,000 orders a day. P2's order
# rate is sized from it, so its report lands near, not on, `p2_rows`.
LINES_PER_HOUR_PER_DAILY_ORDER = 123_864 / 72 / 20_000
P2_WINDOW = timedelta(hours=72)
HISTORY_DAYS = 10
EMULATOR_TIME_SCALE = 1000.0
EMULATOR_SEED = 1
# The first P2 load uses DuckDBUpsertIOManager's default memory_limit (512MB), as definitions.py
# does. The second one lifts it to DuckDB's own default of 80 % of the machine's memory, to show
# what the limit costs in time and saves in memory.
P2_MEMORY_LIMIT = "none"
# The window search counts lines of a history with 1/20 of the orders, 10 times.
CALIBRATION_SCALE = 20
CALIBRATION_STEPS = 10


@dataclass(frozen=True)
class DoneReport:
    """A DONE report, ready for the measured download."""

    report_id: str
    document_id: str
    start: datetime
    end: datetime
    build_seconds: float


def orders_per_day_for(rows: int, window: timedelta) -> float:
    """Return the generated orders per day that put about `rows` lines in a 72-hour window."""
    hours = window.total_seconds() / 3600
    return math.ceil(rows / hours / LINES_PER_HOUR_PER_DAILY_ORDER)


def window_for_rows(rows: int, orders_per_day: float, end: datetime) -> timedelta:
    """Find the LAST_UPDATE window ending at `end` that contains about `rows` lines.

    Lines per hour are higher in short windows, because an order whose later versions fall
    after the window still appears with its version inside it. So the length is found by
    bisection on a history with 1/CALIBRATION_SCALE of the orders, whose line count scales
    with the order rate.
    """
    history = OrderHistory(
        OrderHistoryConfig(
            seed=EMULATOR_SEED,
            start=end - timedelta(days=HISTORY_DAYS),
            end=None,
            orders_per_day=orders_per_day / CALIBRATION_SCALE,
        )
    )
    low, high = 0.1, P2_WINDOW.total_seconds() / 3600
    for _ in range(CALIBRATION_STEPS):
        hours = (low + high) / 2
        lines = sum(
            1
            for _ in history.iter_rows(
                ReportType.LAST_UPDATE,
                end - timedelta(hours=hours),
                end,
                marketplace_ids=None,
                as_of=end,
            )
        )
        if lines * CALIBRATION_SCALE < rows:
            low = hours
        else:
            high = hours
    return timedelta(hours=(low + high) / 2)


def request_done_report(client: ReportsClient, start: datetime, end: datetime) -> DoneReport:
    """Create a LAST_UPDATE report and poll it to DONE, which is the build time left out."""
    started = time.perf_counter()
    report_id = client.create_report(ReportType.LAST_UPDATE, start, end)
    report = client.wait_for_report(report_id)
    if report.processing_status != "DONE" or not report.report_document_id:
        raise RuntimeError(
            f"Report {report_id} for {start.isoformat()} to {end.isoformat()} ended "
            f"{report.processing_status} without a document; the benchmark needs rows in "
            "that window. Check the emulator log in bench/out/."
        )
    return DoneReport(
        report_id, report.report_document_id, start, end, time.perf_counter() - started
    )


def run_load_child(
    emulator: EmulatorProcess,
    report: DoneReport,
    database: Path,
    work_dir: Path,
    memory_limit: str | None = None,
) -> dict[str, Any]:
    """Run bench/load_report.py on one report and return its JSON and wall time."""
    command = [
        sys.executable,
        str(LOAD_SCRIPT),
        "--resource-settings",
        json.dumps(emulator.resource_settings() | {"poll_max_seconds": 1.0}),
        "--report-id",
        report.report_id,
        "--document-id",
        report.document_id,
        "--start",
        report.start.isoformat(),
        "--end",
        report.end.isoformat(),
        "--database",
        str(database),
        "--work-dir",
        str(work_dir),
    ]
    if memory_limit is not None:
        command += ["--memory-limit", memory_limit]
    started = time.perf_counter()
    child = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    wall_seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(
            f"bench/load_report.py failed with exit code {child.returncode} on report "
            f"{report.report_id}; its traceback is above."
        )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    result["child_wall_seconds"] = wall_seconds
    result["report_build_seconds"] = report.build_seconds
    return result


def read_csv_floor(document: Path, database: Path) -> tuple[float, int]:
    """Time DuckDB's read_csv of the decompressed document into a new table in a new file.

    The flat file has no quoting, so quote and escape are off. DuckDB sniffs the column types.
    """
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
    try:
        started = time.perf_counter()
        con.execute(
            "CREATE TABLE read_csv_floor AS SELECT * FROM read_csv(?, delim = '\t', "
            "header = true, quote = '', escape = '')",
            [str(document)],
        )
        seconds = time.perf_counter() - started
        row = con.execute("SELECT count(*) FROM read_csv_floor").fetchone()
    finally:
        con.close()
    database.unlink(missing_ok=True)
    return seconds, row[0] if row else 0


def measure_throughput_and_memory(out_dir: Path, *, p1_rows: int, p2_rows: int) -> dict[str, Any]:
    """Run P1 (two overlapping loads, then the read_csv floor) and P2 (one large load)."""
    orders_per_day = orders_per_day_for(p2_rows, P2_WINDOW)
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    p1_window = window_for_rows(p1_rows, orders_per_day, now)
    results: dict[str, Any] = {
        "orders_per_day": orders_per_day,
        "p1_window_hours": p1_window.total_seconds() / 3600,
    }
    with run_emulator_process(
        log_path=out_dir / "emulator-throughput.log",
        time_scale=EMULATOR_TIME_SCALE,
        history_days=HISTORY_DAYS,
        orders_per_day=orders_per_day,
        seed=EMULATOR_SEED,
    ) as emulator:
        sp_api = SPAPIResource(**emulator.resource_settings(), poll_max_seconds=1.0)
        sp_api.setup_for_execution(dg.build_init_resource_context())
        try:
            client = sp_api.client

            # P1: the earlier window fills the table, and the later one overlaps its second half
            p1_database = out_dir / "p1.duckdb"
            p1_database.unlink(missing_ok=True)
            earlier = request_done_report(client, now - p1_window * 1.5, now - p1_window * 0.5)
            print(f"P1: loading the earlier window ({earlier.report_id}) into a new table")
            results["p1_initial"] = run_load_child(
                emulator, earlier, p1_database, out_dir / "work-p1-initial"
            )
            later = request_done_report(client, now - p1_window, now)
            print(f"P1: upserting the later, overlapping window ({later.report_id})")
            results["p1"] = run_load_child(emulator, later, p1_database, out_dir / "work-p1")
            document = Path(results["p1"]["document_path"])
            floor_seconds, floor_rows = read_csv_floor(document, out_dir / "read_csv.duckdb")
            results["p1_floor_seconds"] = floor_seconds
            results["p1_floor_rows"] = floor_rows

            # P2: the same path on a larger report, upserted into a copy of the P1 table
            p2_database = out_dir / "p2.duckdb"
            shutil.copyfile(p1_database, p2_database)
            large = request_done_report(client, now - P2_WINDOW, now)
            print(f"P2: upserting a 72-hour window ({large.report_id}) in a child process")
            results["p2"] = run_load_child(emulator, large, p2_database, out_dir / "work-p2")

            # P2 again without the IO manager's memory_limit, from a fresh copy of the P1 table
            shutil.copyfile(p1_database, p2_database)
            print(f"P2: the same upsert with memory_limit={P2_MEMORY_LIMIT}")
            results["p2_memory_limit"] = run_load_child(
                emulator, large, p2_database, out_dir / "work-p2", memory_limit=P2_MEMORY_LIMIT
            )
            results["p2_memory_limit"]["memory_limit"] = P2_MEMORY_LIMIT
        finally:
            sp_api.teardown_after_execution(dg.build_init_resource_context())
    for name in ("work-p1-initial", "work-p1", "work-p2"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    (out_dir / "p2.duckdb").unlink(missing_ok=True)
    return results
