"""Both report assets end to end: the emulator over loopback HTTP into a real DuckDB file."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey

from amazon_sc_assets.assets import build_report_asset
from amazon_sc_assets.checks import build_report_checks
from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorHandle,
    Fault,
)
from amazon_sc_assets.io_managers import DuckDBUpsertIOManager
from amazon_sc_assets.marketplaces import Region
from amazon_sc_assets.partitions import build_daily_partitions
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api import SPAPIResource

TODAY = datetime.now(UTC).date()
PARTITIONS = build_daily_partitions((TODAY - timedelta(days=400)).isoformat())
LAST_UPDATE = build_report_asset(ReportType.LAST_UPDATE, partitions_def=PARTITIONS)
ORDER_DATE = build_report_asset(ReportType.ORDER_DATE, partitions_def=PARTITIONS)
CHECKS = {asset.key: build_report_checks(asset) for asset in (LAST_UPDATE, ORDER_DATE)}

JAPAN = "A1VC38T7YXB528"
SCHEMA = "amazon_seller_central"
LAST_UPDATE_TABLE = f"{SCHEMA}.get_flat_file_all_orders_data_by_last_update_general"
ORDER_DATE_TABLE = f"{SCHEMA}.get_flat_file_all_orders_data_by_order_date_general"

# Lineage columns change on every load by design; the order data must not.
LINEAGE_COLUMNS = [
    "_report_id",
    "_data_start_time",
    "_data_end_time",
    "_loaded_at",
    "_file_line_number",
    "_order_line_number",
]


def _key(days_ago: int) -> str:
    return (TODAY - timedelta(days=days_ago)).isoformat()


def _resources(
    emulator: EmulatorHandle, database: Path, **sp_api_settings: object
) -> dict[str, object]:
    settings = {
        "region": "na",
        "marketplace_ids": ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A2Q3Y263D00KWC"],
        "poll_initial_seconds": 0.02,
        "poll_max_seconds": 0.1,
        # The first 429 of an operation comes before any rate header, so the client would wait
        # 1/0.0167 s. The emulator's quotas run 1000 times faster than Amazon's.
        "retry_max_seconds": 0.5,
        # Every run requests a new report, as a rerun an hour later would, unless a test sets
        # its own reuse window.
        "done_report_max_age_minutes": 0,
        **sp_api_settings,
    }
    sp_api = SPAPIResource(
        lwa_client_id=EMULATOR_CLIENT_ID,
        lwa_client_secret=EMULATOR_CLIENT_SECRET,
        refresh_token=EMULATOR_REFRESH_TOKEN,
        endpoint=emulator.base_url,
        lwa_token_url=emulator.token_url,
        **settings,
    )
    return {"sp_api": sp_api, "warehouse_io_manager": DuckDBUpsertIOManager(database=str(database))}


@pytest.fixture
def materialize(
    emulator: EmulatorHandle, tmp_path: Path
) -> Callable[..., dg.ExecuteInProcessResult]:
    """Materialize report assets for a key (or a key range via tags) into one DuckDB file."""
    instance = dg.DagsterInstance.ephemeral()
    resources = _resources(emulator, tmp_path / "warehouse.duckdb")

    def run(
        partition_key: str | None = None,
        assets: tuple[dg.AssetsDefinition, ...] = (LAST_UPDATE, ORDER_DATE),
        tags: dict[str, str] | None = None,
        raise_on_error: bool = True,
    ) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [*assets, *(check for asset in assets for check in CHECKS[asset.key])],
            partition_key=partition_key,
            resources=resources,
            instance=instance,
            tags=tags,
            raise_on_error=raise_on_error,
        )

    run.database = tmp_path / "warehouse.duckdb"
    run.instance = instance
    return run


def _table(database: Path, table: str, *, drop_lineage: bool = True) -> pl.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        frame = con.sql(f"SELECT * FROM {table}").pl()
    if drop_lineage:
        frame = frame.drop(LINEAGE_COLUMNS)
    return frame.sort(pl.all())


def _column_types(database: Path) -> dict[str, str]:
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [SCHEMA, LAST_UPDATE_TABLE.split(".")[1]],
        ).fetchall()
    return dict(rows)


def _materialization_metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition):
    events = result.asset_materializations_for_node(asset.node_def.name)
    return events[-1].metadata


def test_assets_several_partitions_both_reports(materialize) -> None:
    for key in (_key(3), _key(1), _key(0)):
        result = materialize(key)
        assert result.success

    last_update = _table(materialize.database, LAST_UPDATE_TABLE)
    order_date = _table(materialize.database, ORDER_DATE_TABLE)
    materialized = materialize.instance.get_materialized_partitions(LAST_UPDATE.key)

    assert last_update.height > 0
    assert order_date.height > 0
    assert materialized == {_key(3), _key(1), _key(0)}
    assert _column_types(materialize.database)["purchase_date"] == "TIMESTAMP WITH TIME ZONE"
    assert _column_types(materialize.database)["quantity"] == "BIGINT"
    assert _column_types(materialize.database)["item_price"] == "DECIMAL(18,2)"
    assert _column_types(materialize.database)["is_business_order"] == "BOOLEAN"


def test_assets_rerun_changes_nothing(materialize) -> None:
    materialize(_key(1))
    before = _table(materialize.database, LAST_UPDATE_TABLE)

    result = materialize(_key(1))
    after = _table(materialize.database, LAST_UPDATE_TABLE)
    metadata = _materialization_metadata(result, LAST_UPDATE)

    assert after.equals(before)
    assert metadata["rows_replaced"].value == before.height
    assert metadata["rows_skipped_stale"].value == 0


def test_assets_pending_order_updated_later(materialize) -> None:
    materialize(_key(5), assets=(LAST_UPDATE,))
    early = _table(materialize.database, LAST_UPDATE_TABLE)
    pending = early.filter(pl.col("order_status") == "Pending")["amazon_order_id"].unique()

    materialize(_key(0), assets=(LAST_UPDATE,))
    late = _table(materialize.database, LAST_UPDATE_TABLE)
    moved = late.filter(
        pl.col("amazon_order_id").is_in(pending.implode()) & (pl.col("order_status") != "Pending")
    )
    shipped = moved.filter(pl.col("order_status") == "Shipped")

    assert pending.len() > 0
    assert moved.height > 0
    # Pending lines have blank prices; once shipped, Amazon fills them in.
    assert early.filter(pl.col("order_status") == "Pending")["item_price"].null_count() > 0
    assert shipped["item_price"].null_count() == 0
    # Every line of a moved order carries the newer version, none the Pending one.
    stale = late.filter(
        pl.col("amazon_order_id").is_in(moved["amazon_order_id"].implode())
        & (pl.col("order_status") == "Pending")
    )
    assert stale.height == 0


def test_assets_older_partition_replayed_rolls_nothing_back(materialize) -> None:
    materialize(_key(5), assets=(LAST_UPDATE,))
    materialize(_key(0), assets=(LAST_UPDATE,))
    newest = _table(materialize.database, LAST_UPDATE_TABLE)

    result = materialize(_key(5), assets=(LAST_UPDATE,))
    after = _table(materialize.database, LAST_UPDATE_TABLE)
    metadata = _materialization_metadata(result, LAST_UPDATE)

    assert after.equals(newest)
    assert metadata["rows_skipped_stale"].value > 0


def test_assets_cancelled_window_succeeds_empty(materialize, emulator: EmulatorHandle) -> None:
    materialize(_key(1))
    before = _table(materialize.database, LAST_UPDATE_TABLE, drop_lineage=False)

    # The emulator's history starts 14 days ago, so a window 100 days back has no orders and
    # Amazon ends the report CANCELLED without a document.
    result = materialize(_key(100))
    after = _table(materialize.database, LAST_UPDATE_TABLE, drop_lineage=False)
    metadata = _materialization_metadata(result, LAST_UPDATE)

    assert result.success
    assert metadata["processing_statuses"].value == ["CANCELLED"]
    assert metadata["rows_in_documents"].value == 0
    assert metadata["rows_inserted"].value == 0
    assert after.equals(before)


def test_assets_metadata_and_checks(materialize) -> None:
    result = materialize(_key(1))
    metadata = _materialization_metadata(result, LAST_UPDATE)
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}

    assert metadata["dagster/table_name"].value == LAST_UPDATE_TABLE
    assert metadata["dagster/row_count"].value == metadata["rows_inserted"].value
    assert len(metadata["report_ids"].value) == 1
    assert metadata["processing_statuses"].value == ["DONE"]
    assert metadata["charset"].value == "utf-8"
    assert checks == {
        "rows_accounted_for": True,
        "order_lines_share_last_updated_date": True,
        "reports_not_repeatedly_cancelled": True,
    }


def test_assets_cancelled_streak_check_warns(materialize) -> None:
    for days_ago in (100, 101, 102):
        result = materialize(_key(days_ago), assets=(LAST_UPDATE,))

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    streak = evaluations["reports_not_repeatedly_cancelled"]

    assert streak.passed is False
    assert streak.severity == dg.AssetCheckSeverity.WARN


def test_assets_throttling_retried_within_run(materialize, emulator: EmulatorHandle) -> None:
    emulator.inject(Fault(operation="createReport", kind="throttle", times=2))

    result = materialize(_key(1), assets=(LAST_UPDATE,))

    assert result.success
    assert emulator.count("createReport", status=429) == 2
    assert emulator.count("createReport", status=202) == 1


def test_assets_fatal_report_fails_with_text(materialize, emulator: EmulatorHandle) -> None:
    emulator.inject(
        Fault(operation="createReport", kind="fatal", times=5, message="Report quota issue")
    )

    result = dg.materialize(
        [LAST_UPDATE],
        partition_key=_key(1),
        resources=_resources(emulator, materialize.database),
        run_config={
            "ops": {
                LAST_UPDATE.node_def.name: {
                    "config": {"fatal_retry_attempts": 0, "fatal_retry_wait_seconds": 0}
                }
            }
        },
        raise_on_error=False,
    )
    error = result.failure_data_for_node(LAST_UPDATE.node_def.name).error.to_string()

    assert not result.success
    assert "ended FATAL: Report quota issue" in error
    assert emulator.count("createReport", status=202) == 1


def test_assets_error_document_fails_partition(materialize, emulator: EmulatorHandle) -> None:
    materialize(_key(1), assets=(LAST_UPDATE,))
    before = _table(materialize.database, LAST_UPDATE_TABLE, drop_lineage=False)
    sentence = "Date range exceeded. Report can be requested only upto 30 days"
    emulator.inject(Fault(operation="createReport", kind="error_document", message=sentence))

    result = materialize(_key(1), assets=(LAST_UPDATE,), raise_on_error=False)
    error = result.failure_data_for_node(LAST_UPDATE.node_def.name).error.to_string()
    after = _table(materialize.database, LAST_UPDATE_TABLE, drop_lineage=False)

    assert not result.success
    assert sentence in error
    assert after.equals(before)


def test_assets_range_run_is_one_report(materialize, emulator: EmulatorHandle) -> None:
    tags = {
        "dagster/asset_partition_range_start": _key(10),
        "dagster/asset_partition_range_end": _key(1),
    }

    result = materialize(assets=(LAST_UPDATE,), tags=tags)
    metadata = _materialization_metadata(result, LAST_UPDATE)

    assert result.success
    assert emulator.count("createReport", status=202) == 1
    assert (
        metadata["data_start_time"].value
        == datetime.combine(TODAY - timedelta(days=12), datetime.min.time(), UTC).timestamp()
    )
    assert materialize.instance.get_materialized_partitions(LAST_UPDATE.key) == {
        _key(days_ago) for days_ago in range(1, 11)
    }


def test_assets_one_year_backfill_report_count(materialize, emulator: EmulatorHandle) -> None:
    keys = [_key(days_ago) for days_ago in range(365, 0, -1)]
    graph = AssetGraph.from_assets([LAST_UPDATE])
    with dg.partition_loading_context(dynamic_partitions_store=materialize.instance):
        run_requests = build_run_requests_with_backfill_policies(
            [AssetKeyPartitionKey(LAST_UPDATE.key, key) for key in keys],
            graph,
            materialize.instance,
        )

    for request in run_requests:
        result = materialize(assets=(LAST_UPDATE,), tags=dict(request.tags))
        assert result.success

    assert len(run_requests) == 14
    assert emulator.count("createReport", status=202) == 14
    assert emulator.count("createReport", status=429) == 0
    assert materialize.instance.get_materialized_partitions(LAST_UPDATE.key) >= set(keys)


def test_assets_logs_and_metadata_hold_no_secret(
    materialize, emulator: EmulatorHandle, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.inject(Fault(operation="getReport", kind="server_error", times=1))
    emulator.inject(Fault(operation="getReportDocument", kind="expired_url", times=1))
    caplog.set_level(logging.DEBUG)

    result = materialize(_key(1))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    events = "\n".join(str(event) for event in result.all_events)

    assert result.success
    for secret in (EMULATOR_CLIENT_SECRET, EMULATOR_REFRESH_TOKEN, "Atza|", "X-Amz-Signature"):
        assert secret not in logged
        assert secret not in events


def test_assets_request_new_report_after_bad_document(
    emulator: EmulatorHandle, tmp_path: Path
) -> None:
    # With the default reuse of a DONE report, a rerun would load the same bad document again.
    resources = _resources(
        emulator,
        tmp_path / "warehouse.duckdb",
        done_report_max_age_minutes=60.0,
        resume_lookback_hours=1.0,
    )
    emulator.inject(
        Fault(operation="createReport", kind="error_document", message="Try again later")
    )
    node = LAST_UPDATE.node_def.name

    def run(request_new_report: bool) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [LAST_UPDATE],
            partition_key=_key(1),
            resources=resources,
            run_config={"ops": {node: {"config": {"request_new_report": request_new_report}}}},
            raise_on_error=False,
        )

    first = run(request_new_report=False)
    rerun = run(request_new_report=False)
    fresh = run(request_new_report=True)

    assert not first.success
    assert not rerun.success
    assert "request_new_report: true" in rerun.failure_data_for_node(node).error.to_string()
    assert fresh.success
    assert emulator.count("createReport", status=202) == 2


def test_assets_charset_override_used(emulator_factory, tmp_path: Path) -> None:
    # The emulator writes Windows-31J (cp932) documents with Japanese product names.
    emulator = emulator_factory(charset="Windows-31J", region=Region.FE)
    resources = _resources(
        emulator, tmp_path / "warehouse.duckdb", region="fe", marketplace_ids=[JAPAN]
    )
    node = LAST_UPDATE.node_def.name

    def run(charset: str | None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [LAST_UPDATE],
            partition_key=_key(1),
            resources=resources,
            run_config={"ops": {node: {"config": {"charset": charset}}}},
            raise_on_error=False,
        )

    declared = run(None)
    overridden = run("utf-8")
    names = _table(tmp_path / "warehouse.duckdb", LAST_UPDATE_TABLE)["product_name"]

    assert declared.success
    assert names.str.contains("[\u3040-\u30ff]").any()
    assert not overridden.success
    assert "utf-8" in overridden.failure_data_for_node(node).error.to_string()


def test_assets_cancelled_range_run_counts_once(materialize) -> None:
    # One range run over five empty keys is one CANCELLED report, not a streak of five.
    tags = {
        "dagster/asset_partition_range_start": _key(104),
        "dagster/asset_partition_range_end": _key(100),
    }

    result = materialize(assets=(LAST_UPDATE,), tags=tags)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    streak = evaluations["reports_not_repeatedly_cancelled"]

    assert streak.passed is True
    assert streak.metadata["consecutive_cancelled_runs"].value == 1
