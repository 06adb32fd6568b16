"""Download, parse and upsert one DONE report in a child process, and time each stage.

`bench/run.py` starts this script once per measured load, so that the process's peak RSS
(VmHWM) belongs to this one load and nothing else. The report must already be DONE:
the time Amazon (here the emulator) spends building it is not part of the measurement. The
script prints one JSON object on its last stdout line.
"""

import argparse
import json
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from amazon_sc_assets.assets import UPSERT_KEY, VERSION_COLUMN, report_asset_key
from amazon_sc_assets.flat_file import Lineage, parse_report_document
from amazon_sc_assets.io_managers import DuckDBUpsertIOManager
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api import SPAPIResource

REPORT_TYPE = ReportType.LAST_UPDATE
UPSERT_METADATA = {
    "upsert_key": UPSERT_KEY,
    "version_column": VERSION_COLUMN,
    "window_column": REPORT_TYPE.date_column.replace("-", "_"),
}


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size since exec, from VmHWM in /proc/self/status.

    `ru_maxrss` is not used because Linux carries it across execve, so a child spawned by a
    large parent starts with the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/self/status has no VmHWM line; this benchmark needs Linux.")


def load_report(arguments: argparse.Namespace) -> dict[str, object]:
    """Run the three stages on one report and return their wall times and peak RSS values."""
    settings = json.loads(arguments.resource_settings)
    sp_api = SPAPIResource(**settings)
    sp_api.setup_for_execution(dg.build_init_resource_context())
    work_dir = Path(arguments.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {"peak_rss_at_start": peak_rss_bytes()}
    try:
        # Stage 1: getReportDocument, the presigned download and the streamed gunzip to disk
        started = time.perf_counter()
        document = sp_api.client.download_report_document(
            arguments.document_id, work_dir, name=f"report-{arguments.report_id}"
        )
        result["download_seconds"] = time.perf_counter() - started
        result["peak_rss_after_download"] = peak_rss_bytes()
        result["document_path"] = str(document.path)
        result["compressed_bytes"] = document.compressed_bytes
        result["decompressed_bytes"] = document.decompressed_bytes

        # Stage 2: decode, validate and type into Parquet batches
        started = time.perf_counter()
        parsed = parse_report_document(
            document.path,
            document.charset,
            lineage=Lineage(
                report_id=arguments.report_id,
                data_start_time=datetime.fromisoformat(arguments.start),
                data_end_time=datetime.fromisoformat(arguments.end),
                loaded_at=datetime.now(UTC),
            ),
            work_dir=work_dir / "parsed",
        )
        result["parse_seconds"] = time.perf_counter() - started
        result["peak_rss_after_parse"] = peak_rss_bytes()
        result["rows"] = parsed.row_count

        # Stage 3: the upserting IO manager, exactly as a Dagster run calls it
        limit = {}
        if arguments.memory_limit:
            limit["memory_limit"] = (
                None if arguments.memory_limit == "none" else arguments.memory_limit
            )
        manager = DuckDBUpsertIOManager(database=arguments.database, **limit)
        context = dg.build_output_context(
            asset_key=report_asset_key(REPORT_TYPE), definition_metadata=UPSERT_METADATA
        )
        started = time.perf_counter()
        manager.handle_output(context, parsed.frame)
        result["upsert_seconds"] = time.perf_counter() - started
        result["peak_rss_after_upsert"] = peak_rss_bytes()
        result["upsert_metadata"] = {
            key: getattr(value, "value", value)
            for key, value in context.get_logged_metadata().items()
            if key.startswith("rows_") or key in {"row_count", "dagster/row_count"}
        }
    finally:
        sp_api.teardown_after_execution(dg.build_init_resource_context())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resource-settings", required=True, help="SPAPIResource fields as JSON")
    parser.add_argument("--report-id", required=True, help="reportId of a DONE report")
    parser.add_argument("--document-id", required=True, help="its reportDocumentId")
    parser.add_argument("--start", required=True, help="dataStartTime, ISO 8601 with offset")
    parser.add_argument("--end", required=True, help="dataEndTime, ISO 8601 with offset")
    parser.add_argument("--database", required=True, help="DuckDB file to upsert into")
    parser.add_argument("--work-dir", required=True, help="folder for the document and Parquet")
    parser.add_argument(
        "--memory-limit",
        help='DuckDBUpsertIOManager.memory_limit, e.g. "2GB", or "none" for DuckDB\'s default '
        "(default: the IO manager's default, as definitions.py uses)",
    )
    arguments = parser.parse_args()
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    result = load_report(arguments)
    print(json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    sys.exit(main())
