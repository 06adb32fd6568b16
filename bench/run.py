"""Measure throughput, peak memory, SP-API calls and incremental upsert cost in one command.

Run from the repository root: `make bench` or `.venv/bin/python bench/run.py [--quick]`.

- P1: a LAST_UPDATE report built by the emulator (a separate process) is downloaded,
  gunzipped, parsed, typed and upserted into a DuckDB table that already contains an earlier,
  overlapping report. Each stage is timed, beside DuckDB's read_csv of the same document.
  The time the emulator spends building a report is not counted.
- P2: the peak RSS of the same path on a larger report, in a child process.
- P3: a one-year backfill of the LAST_UPDATE asset in runs of up to 28 keys: SP-API calls,
  429 responses, and an estimate of the wall time at Amazon's real rates.
- P4: a 10k-row upsert into a table of about 10M rows.

Generated files go to bench/out/; results.json there records every figure.
"""

import argparse
import json
import logging
import os
import platform
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
# BackfillPolicy is beta in Dagster 1.13, and definitions.py builds its assets on import.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

from api_calls import measure_api_calls  # noqa: E402
from incremental import measure_incremental  # noqa: E402
from throughput import measure_throughput_and_memory  # noqa: E402

MEASUREMENTS = ("p1", "p3", "p4")
FULL_SIZES = {
    "p1_rows": 1_000_000,
    "p2_rows": 5_000_000,
    "p3_keys": 365,
    "p4_table_rows": 10_000_000,
    "p4_batch_rows": 10_000,
}
QUICK_SIZES = {
    "p1_rows": 50_000,
    "p2_rows": 250_000,
    "p3_keys": 56,
    "p4_table_rows": 500_000,
    "p4_batch_rows": 10_000,
}
P4_REPEATS = 3
TARGET_RATIO = 2.0
TARGET_PEAK_RSS = 1024**3
TARGET_CREATE_REPORT_CALLS = 20
TARGET_INCREMENTAL_SECONDS = 1.0
# NOTE: Amazon documents no processing time for order reports. This is an assumption: a few
# minutes for a 30-day window of a large seller. Override it with --processing-seconds.
DEFAULT_PROCESSING_SECONDS = 600.0


def machine_description() -> dict[str, Any]:
    """Describe the machine and the library versions behind the figures."""
    cpu_model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as meminfo:
        memory_kib = int(meminfo.readline().split()[1])
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(memory_kib / 1024**2, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": pl.__version__,
        "dagster": dg.__version__,
        "load_average_at_start": os.getloadavg(),
    }


def format_bytes(count: float) -> str:
    return f"{count / 1024**2:,.0f} MiB"


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Build (measurement, figure, target, verdict) rows from the results."""
    rows: list[tuple[str, str, str, str]] = []
    if "p1" in results:
        p1 = results["p1"]
        load = p1["p1"]
        total = load["download_seconds"] + load["parse_seconds"] + load["upsert_seconds"]
        ratio = total / p1["p1_floor_seconds"]
        rows += [
            ("P1 rows in report", f"{load['rows']:,}", "", ""),
            ("P1 download + gunzip", f"{load['download_seconds']:.2f} s", "", ""),
            ("P1 parse + type", f"{load['parse_seconds']:.2f} s", "", ""),
            ("P1 upsert", f"{load['upsert_seconds']:.2f} s", "", ""),
            ("P1 whole path", f"{total:.2f} s ({load['rows'] / total:,.0f} rows/s)", "", ""),
            ("P1 read_csv floor", f"{p1['p1_floor_seconds']:.2f} s", "", ""),
            (
                "P1 ratio to floor",
                f"{ratio:.2f}x",
                f"<= {TARGET_RATIO:.1f}x",
                "met" if ratio <= TARGET_RATIO else f"missed by {ratio / TARGET_RATIO:.2f}x",
            ),
        ]
        p2 = p1["p2"]
        peak = p2["peak_rss_after_upsert"]
        rows += [
            ("P2 rows in report", f"{p2['rows']:,}", "", ""),
            (
                "P2 peak RSS",
                format_bytes(peak),
                "<= 1,024 MiB",
                "met" if peak <= TARGET_PEAK_RSS else f"missed by {format_bytes(peak - 1024**3)}",
            ),
            ("P2 peak RSS after download", format_bytes(p2["peak_rss_after_download"]), "", ""),
            ("P2 peak RSS after parse", format_bytes(p2["peak_rss_after_parse"]), "", ""),
        ]
        limited = p1["p2_memory_limit"]
        peak = limited["peak_rss_after_upsert"]
        rows.append(
            (
                f"P2 peak RSS, memory_limit={limited['memory_limit']} (DuckDB default)",
                f"{format_bytes(peak)} (upsert {limited['upsert_seconds']:.1f} s "
                f"vs {p2['upsert_seconds']:.1f} s)",
                "<= 1,024 MiB",
                "met" if peak <= TARGET_PEAK_RSS else f"missed by {format_bytes(peak - 1024**3)}",
            )
        )
    if "p3" in results:
        p3 = results["p3"]
        creates = p3["calls"].get("createReport", 0)
        throttled_failures = [
            run for run in p3["failed_runs"] if "Throttl" in (run["failure"] or "")
        ]
        rows += [
            ("P3 keys / runs", f"{p3['keys']} / {p3['runs']}", "", ""),
            (
                "P3 createReport calls",
                str(creates),
                f"<= {TARGET_CREATE_REPORT_CALLS}",
                "met" if creates <= TARGET_CREATE_REPORT_CALLS else "missed",
            ),
            ("P3 getReport calls", str(p3["calls"].get("getReport", 0)), "", ""),
            ("P3 getReportDocument calls", str(p3["calls"].get("getReportDocument", 0)), "", ""),
            ("P3 getReports calls", str(p3["calls"].get("getReports", 0)), "", ""),
            ("P3 429 responses", str(sum(p3["throttled"].values())), "", ""),
            (
                "P3 failed runs",
                f"{len(p3['failed_runs'])} ({len(throttled_failures)} by throttling)",
                "0 by throttling",
                "met" if not throttled_failures else "missed",
            ),
            (
                "P3 est. wall time at Amazon rates",
                f"{p3['replay']['estimated_seconds'] / 3600:.2f} h "
                f"(quota waits {p3['replay']['quota_wait_seconds']:.0f} s)",
                "",
                "",
            ),
        ]
    if "p4" in results:
        p4 = results["p4"]
        median = p4["median_seconds"]
        rows += [
            ("P4 table rows", f"{p4['table_rows']:,}", "", ""),
            (
                f"P4 {p4['batch_rows'][0]:,}-row upsert (median of {len(p4['upsert_seconds'])})",
                f"{median:.2f} s",
                f"<= {TARGET_INCREMENTAL_SECONDS:.0f} s",
                "met" if median <= TARGET_INCREMENTAL_SECONDS else f"missed by {median - 1:.2f} s",
            ),
        ]
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    headers = ("measurement", "figure", "target", "verdict")
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(4)]
    for row in [headers, tuple("-" * width for width in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            "smoke run with small sizes: 50k/250k-row reports, 56 keys, a 500k-row table; "
            "about 1 minute"
        ),
    )
    parser.add_argument(
        "--only",
        choices=MEASUREMENTS,
        action="append",
        help="run only this measurement (repeatable); p1 also runs P2, and p4 needs p1's table",
    )
    parser.add_argument(
        "--processing-seconds",
        type=float,
        default=DEFAULT_PROCESSING_SECONDS,
        help="assumed seconds Amazon takes to build one report, for the P3 estimate "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=BENCH_DIR / "out",
        help="folder for generated files and results.json (default bench/out)",
    )
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    out_dir = arguments.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = QUICK_SIZES if arguments.quick else FULL_SIZES
    selected = arguments.only or list(MEASUREMENTS)

    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine_description(),
        "sizes": sizes,
        "command": " ".join(sys.argv),
    }
    if "p1" in selected:
        results["p1"] = measure_throughput_and_memory(
            out_dir, p1_rows=sizes["p1_rows"], p2_rows=sizes["p2_rows"]
        )
    if "p4" in selected:
        source = out_dir / "p1.duckdb"
        if not source.exists():
            parser.error(f"P4 needs {source} from a P1 run; run with --only p1 first.")
        results["p4"] = measure_incremental(
            out_dir,
            source,
            table_rows=sizes["p4_table_rows"],
            batch_rows=sizes["p4_batch_rows"],
            repeats=P4_REPEATS,
        )
    if "p3" in selected:
        results["p3"] = measure_api_calls(
            out_dir, key_count=sizes["p3_keys"], processing_seconds=arguments.processing_seconds
        )
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["total_seconds"] = time.perf_counter() - started

    name = "results-quick" if arguments.quick else "results"
    if arguments.only:
        name += "-" + "-".join(selected)
    results_path = out_dir / f"{name}.json"
    results_path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    machine = results["machine"]
    print(
        f"\n{machine['date']}  {machine['nproc']} x {machine['cpu_model']}, "
        f"{machine['memory_gib']} GiB, Python {machine['python']}, duckdb {machine['duckdb']}, "
        f"polars {machine['polars']}; load average {machine['load_average_at_start'][0]:.2f} "
        f"at start, {machine['load_average_at_end'][0]:.2f} at end"
    )
    print_table(summary_rows(results))
    if arguments.quick:
        print("--quick uses small sizes, so its verdicts do not show whether the targets are met.")
    print(f"\nTotal {results['total_seconds']:.0f} s. Every figure is in {results_path}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
