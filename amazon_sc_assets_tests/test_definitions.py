"""The definitions load as `dagster dev` loads them, and follow the environment."""

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from amazon_sc_assets.definitions import (
    JOB_NAME,
    build_definitions,
    enabled_report_types,
    partition_start_date,
)
from amazon_sc_assets.report_types import ReportType

REPO_ROOT = Path(__file__).resolve().parents[1]

LAST_UPDATE_KEY = dg.AssetKey(
    ["amazon_seller_central", "get_flat_file_all_orders_data_by_last_update_general"]
)
ORDER_DATE_KEY = dg.AssetKey(
    ["amazon_seller_central", "get_flat_file_all_orders_data_by_order_date_general"]
)


def test_definitions_load_from_workspace_yaml(tmp_path: Path) -> None:
    # `dagster definitions validate -w workspace.yaml` loads the module the way `dagster dev`
    # does, in a fresh process with no SP-API or Snowflake variables set.
    dagster = Path(sys.executable).with_name("dagster")
    env = {"PATH": str(Path(sys.executable).parent), "DAGSTER_HOME": str(tmp_path)}

    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_definitions_default_to_duckdb_and_both_reports() -> None:
    defs = build_definitions({})

    asset_keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    io_manager = defs.resources["warehouse_io_manager"]

    assert asset_keys == {LAST_UPDATE_KEY, ORDER_DATE_KEY}
    assert type(io_manager).__name__ == "DuckDBUpsertIOManager"
    assert io_manager.database == "data/amazon_sc.duckdb"


def test_definitions_last_update_only() -> None:
    defs = build_definitions({"AMAZON_SC_REPORT_TYPES": "last_update"})

    asset_keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    job = defs.resolve_job_def(JOB_NAME)

    assert asset_keys == {LAST_UPDATE_KEY}
    assert job.asset_layer.selected_asset_keys == {LAST_UPDATE_KEY}


def test_definitions_snowflake_when_account_set() -> None:
    defs = build_definitions(
        {"SNOWFLAKE_ACCOUNT": "example-account", "SNOWFLAKE_PASSWORD": "example-password"}
    )

    io_manager = defs.resources["warehouse_io_manager"]

    assert type(io_manager).__name__ == "SnowflakeUpsertIOManager"


def test_definitions_asset_settings() -> None:
    defs = build_definitions({"AMAZON_SC_START_DATE": "2024-06-01"})
    asset = defs.resolve_assets_def(LAST_UPDATE_KEY)
    spec = next(iter(asset.specs))

    assert asset.partitions_def.start.date().isoformat() == "2024-06-01"
    assert asset.backfill_policy.max_partitions_per_run == 28
    assert asset.op.pool == "sp_api"
    assert spec.metadata["upsert_key"] == ["amazon_order_id"]
    assert spec.metadata["version_column"] == "last_updated_date"
    assert spec.group_name == "amazon_seller_central"


def test_schedules_present() -> None:
    defs = build_definitions({})

    daily = defs.resolve_schedule_def("amazon_seller_central_daily")
    hourly = defs.resolve_schedule_def("amazon_seller_central_hourly")

    assert daily.default_status == dg.DefaultScheduleStatus.RUNNING
    assert hourly.default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, [ReportType.LAST_UPDATE, ReportType.ORDER_DATE]),
        ("last_update", [ReportType.LAST_UPDATE]),
        (" ORDER_DATE , last_update ", [ReportType.ORDER_DATE, ReportType.LAST_UPDATE]),
        ("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL", [ReportType.LAST_UPDATE]),
    ],
)
def test_enabled_report_types_parse(value: str | None, expected: list[ReportType]) -> None:
    assert enabled_report_types(value) == expected


def test_enabled_report_types_unknown_named() -> None:
    with pytest.raises(ValueError, match="'last_updated'"):
        enabled_report_types("last_updated")


def test_example_instance_config_loads(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "deploy" / "dagster.yaml", tmp_path / "dagster.yaml")

    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        settings = instance.get_concurrency_config()
    finally:
        instance.dispose()

    assert settings.pool_config.default_pool_limit == 2
    assert settings.run_queue_config.max_concurrent_runs == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "2025-01-01"),  # unset: the default
        (" 2024-06-01 ", "2024-06-01"),
    ],
)
def test_partition_start_date_parse(value: str | None, expected: str) -> None:
    assert partition_start_date(value) == expected


def test_partition_start_date_invalid_named() -> None:
    with pytest.raises(ValueError, match="AMAZON_SC_START_DATE is '2025-13-01'"):
        partition_start_date("2025-13-01")


def test_definitions_sp_api_settings_applied() -> None:
    defs = build_definitions({}, sp_api_settings={"report_deadline_seconds": 7200.0})

    assert defs.resources["sp_api"].report_deadline_seconds == 7200.0
