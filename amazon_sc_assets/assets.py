"""One software-defined asset per order-tracking report type, built by one factory."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from pydantic import Field

from amazon_sc_assets.flat_file import FlatFileError, Lineage, parse_report_document
from amazon_sc_assets.partitions import report_window
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api import ReportFatalError, SPAPIResource, SPAPIRetryableError

ASSET_GROUP = "amazon_seller_central"
ASSET_KEY_PREFIX = "amazon_seller_central"
SP_API_POOL = "sp_api"

# A range run over keys D1..Dn requests [D1 - 48 h, Dn + 24 h): 28 keys make 30 days, the
# longest window Amazon accepts, so a one-year backfill takes 14 report requests per type.
MAX_PARTITIONS_PER_RUN = 28

UPSERT_KEY = ["amazon_order_id"]
VERSION_COLUMN = "last_updated_date"

_DESCRIPTIONS = {
    ReportType.LAST_UPDATE: (
        "Order items from Amazon's Flat File Orders By Last Update report "
        "(GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL): every order line whose order "
        "changed in the window, for all marketplaces of the seller's region. Prefer this one: "
        "it catches status changes (Pending to Shipped or Cancelled, prices filled in) long "
        "after the purchase."
    ),
    ReportType.ORDER_DATE: (
        "Order items from Amazon's Flat File Orders By Order Date report "
        "(GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL): order lines whose purchase date "
        "falls in the window, for the configured marketplaces. It misses changes made after "
        "its window has been loaded, so pair it with the last-update asset or re-run old keys."
    ),
}

_PARTITION_NOTE = (
    "\n\nPartitions: daily UTC keys. Key D stands for the 72 hours that end at D+1 00:00 UTC "
    "(today's key: the 72 hours that end now); a backfill run over consecutive keys makes one "
    "report request of up to 30 days. Rows are upserted by amazon_order_id: an order's lines "
    "are replaced when a report carries a newer or equal last_updated_date, never by an older "
    "one."
)


class ReportAssetConfig(dg.Config):
    """Run configuration of a report asset."""

    retry_attempts: int = Field(
        default=3,
        ge=0,
        description=(
            "How many times a run retries the step after a retryable SP-API failure: throttling "
            "or server errors past the client's own retries, a report still processing at the "
            "deadline (the retry resumes that report), or a truncated download."
        ),
    )
    fatal_retry_attempts: int = Field(
        default=1,
        ge=0,
        description=(
            "How many times a run requests a new report after Amazon ended one FATAL. Amazon "
            "gives no reason for most FATAL reports; requesting again at once tends to fail "
            "the same way, so each retry waits fatal_retry_wait_seconds."
        ),
    )
    fatal_retry_wait_seconds: float = Field(
        default=1800.0,
        ge=0,
        description="Seconds to wait before requesting a new report after a FATAL one.",
    )

    request_new_report: bool = Field(
        default=False,
        description=(
            "Request a new report even if a DONE report of the same window was created in the "
            "last hour (which a retry normally reuses). Set it when that report's document was "
            "bad and you want Amazon to build it again."
        ),
    )
    charset: str | None = Field(
        default=None,
        description=(
            "Python codec to decode the documents with, such as cp932, in place of the charset "
            "in the download's Content-Type. Set it only when Amazon declares a wrong charset "
            "or none and the document is neither UTF-8 nor cp1252."
        ),
    )
    column_types: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Type overrides by snake_case column name, e.g. {'quantity': 'string'} to keep a "
            "column as text. Types: string, integer, decimal, timestamp, boolean."
        ),
    )


def report_asset_key(report_type: ReportType) -> dg.AssetKey:
    """Return the asset key of a report type: amazon_seller_central/<report type in lower case>."""
    return dg.AssetKey([ASSET_KEY_PREFIX, report_type.value.lower()])


def build_report_asset(
    report_type: ReportType,
    *,
    partitions_def: dg.DailyPartitionsDefinition,
    warehouse_kind: str = "duckdb",
) -> dg.AssetsDefinition:
    """Build the partitioned asset that fetches, parses and upserts one report type."""
    window_column = report_type.date_column.replace("-", "_")

    @dg.asset(
        key=report_asset_key(report_type),
        group_name=ASSET_GROUP,
        description=_DESCRIPTIONS[report_type] + _PARTITION_NOTE,
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        pool=SP_API_POOL,
        io_manager_key="warehouse_io_manager",
        kinds={"amazon", "polars", warehouse_kind},
        metadata={
            "upsert_key": UPSERT_KEY,
            "version_column": VERSION_COLUMN,
            "window_column": window_column,
            "report_type": report_type.value,
        },
    )
    def report_asset(
        context: dg.AssetExecutionContext, config: ReportAssetConfig, sp_api: SPAPIResource
    ) -> dg.Output[pl.LazyFrame]:
        # Compute the report window of the key or key range
        start, end = report_window(context.partition_time_window)
        key_range = context.partition_key_range
        context.log.info(
            f"Requesting {report_type.value} for {start.isoformat()} .. {end.isoformat()} "
            f"(partition keys {key_range.start}..{key_range.end})"
        )

        # Fetch the report documents
        attempt = context.retry_number + 1
        try:
            result = sp_api.fetch_report(
                report_type,
                start,
                end,
                work_dir=sp_api.work_dir,
                log=context.log,
                reuse_done_reports=not config.request_new_report,
            )
        except SPAPIRetryableError as err:
            if context.retry_number >= config.retry_attempts:
                context.log.error(f"Attempt {attempt} failed; no retries left: {err}")
                raise
            context.log.warning(
                f"Attempt {attempt} of {config.retry_attempts + 1} failed, retrying in "
                f"{err.retry_after_seconds:.0f} s: {err}"
            )
            raise dg.RetryRequested(
                max_retries=config.retry_attempts, seconds_to_wait=err.retry_after_seconds
            ) from err
        except ReportFatalError as err:
            if context.retry_number >= config.fatal_retry_attempts:
                context.log.error(f"Report {err.report_id} ended FATAL; no retries left: {err}")
                raise
            context.log.error(
                f"Report {err.report_id} ended FATAL (attempt {attempt} of "
                f"{config.fatal_retry_attempts + 1}); a new report is requested in "
                f"{config.fatal_retry_wait_seconds:.0f} s: {err}"
            )
            raise dg.RetryRequested(
                max_retries=config.fatal_retry_attempts,
                seconds_to_wait=config.fatal_retry_wait_seconds,
            ) from err

        # Parse each document into typed rows
        loaded_at = datetime.now(UTC)
        frames = []
        charsets = []
        rows_in_documents = 0
        replacement_characters = 0
        for report in result.reports:
            if report.document is None:
                context.log.warning(
                    f"Report {report.report_id} ended {report.processing_status}: "
                    "no rows for this window"
                )
                continue
            try:
                parsed = parse_report_document(
                    report.document.path,
                    config.charset or report.document.charset,
                    lineage=Lineage(
                        report_id=report.report_id,
                        data_start_time=report.data_start_time,
                        data_end_time=report.data_end_time,
                        loaded_at=loaded_at,
                    ),
                    work_dir=sp_api.work_dir / f"parsed-{report.report_id}",
                    column_types=config.column_types,
                )
            except FlatFileError as err:
                err.add_note(
                    f"Report {report.report_id}: a run within the next hour reuses this "
                    "report; set request_new_report: true in the asset's run config to have "
                    "Amazon build a new one."
                )
                raise
            context.log.info(
                f"Parsed report {report.report_id}: {parsed.row_count} rows, "
                f"{len(parsed.columns)} columns, charset {parsed.charset}"
            )
            frames.append(parsed.frame)
            charsets.append(parsed.charset)
            rows_in_documents += parsed.row_count
            replacement_characters += parsed.replacement_characters

        frame = pl.concat(frames, how="diagonal_relaxed") if frames else pl.LazyFrame()
        return dg.Output(
            frame,
            metadata={
                "report_ids": [r.report_id for r in result.reports],
                "processing_statuses": [r.processing_status for r in result.reports],
                "data_start_time": dg.MetadataValue.timestamp(start),
                "data_end_time": dg.MetadataValue.timestamp(end),
                "charset": ", ".join(sorted(set(charsets))) or "none",
                "rows_in_documents": rows_in_documents,
                "replacement_characters": replacement_characters,
            },
        )

    return report_asset
