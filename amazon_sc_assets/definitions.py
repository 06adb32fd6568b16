"""The Definitions that `dagster dev` loads, chosen by environment variables.

Warehouse: a DuckDB file by default (`AMAZON_SC_DUCKDB_PATH`), Snowflake when `SNOWFLAKE_ACCOUNT`
is set. SP-API: Amazon's regional host by default, the local emulator when `SP_API_ENDPOINT` and
`SP_API_LWA_TOKEN_URL` point at it. Secrets are passed as `dg.EnvVar`, so they are read at run
launch and never stored in the definitions.
"""

import os
from collections.abc import Mapping
from datetime import date
from typing import Any

import dagster as dg

from amazon_sc_assets.assets import ASSET_GROUP, build_report_asset
from amazon_sc_assets.checks import build_report_checks
from amazon_sc_assets.partitions import DEFAULT_START_DATE, build_daily_partitions
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.schedules import build_schedules

DEFAULT_DUCKDB_PATH = "data/amazon_sc.duckdb"
JOB_NAME = "amazon_seller_central_reports"

_REPORT_TYPE_ALIASES = {
    "last_update": ReportType.LAST_UPDATE,
    "order_date": ReportType.ORDER_DATE,
    **{report_type.value.lower(): report_type for report_type in ReportType},
}


def enabled_report_types(value: str | None) -> list[ReportType]:
    """Parse `AMAZON_SC_REPORT_TYPES`: comma-separated report types; unset means both."""
    if not value or not value.strip():
        return list(ReportType)

    enabled: list[ReportType] = []
    for name in (part.strip() for part in value.split(",")):
        if not name:
            continue
        report_type = _REPORT_TYPE_ALIASES.get(name.lower())
        if report_type is None:
            valid = ", ".join(["last_update", "order_date", *(t.value for t in ReportType)])
            raise ValueError(
                f"AMAZON_SC_REPORT_TYPES contains an unknown report type {name!r}. "
                f"Use a comma-separated list of: {valid}."
            )
        if report_type not in enabled:
            enabled.append(report_type)
    return enabled


def partition_start_date(value: str | None) -> str:
    """Parse `AMAZON_SC_START_DATE`, the first partition key (YYYY-MM-DD, default 2025-01-01)."""
    if not value or not value.strip():
        return DEFAULT_START_DATE
    try:
        return date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(
            f"AMAZON_SC_START_DATE is {value!r}, which is not a date. Use the first partition "
            "key as YYYY-MM-DD, for example 2025-01-01."
        ) from None


def _marketplace_ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def build_sp_api_resource(environ: Mapping[str, str], settings: Mapping[str, Any] | None = None):
    """Build the SP-API resource; secrets stay `dg.EnvVar`s until a run starts.

    `settings` sets further SPAPIResource fields, such as `{"poll_max_seconds": 120}`.
    """
    from amazon_sc_assets.sp_api import SPAPIResource

    return SPAPIResource(
        lwa_client_id=dg.EnvVar("SP_API_LWA_CLIENT_ID"),
        lwa_client_secret=dg.EnvVar("SP_API_LWA_CLIENT_SECRET"),
        refresh_token=dg.EnvVar("SP_API_REFRESH_TOKEN"),
        region=environ.get("SP_API_REGION", "na"),
        marketplace_ids=_marketplace_ids(environ.get("SP_API_MARKETPLACE_IDS")),
        endpoint=environ.get("SP_API_ENDPOINT") or None,
        lwa_token_url=environ.get("SP_API_LWA_TOKEN_URL") or None,
        **(settings or {}),
    )


def build_warehouse_io_manager(environ: Mapping[str, str]) -> tuple[object, str]:
    """Build the upserting IO manager: Snowflake when SNOWFLAKE_ACCOUNT is set, else DuckDB."""
    if environ.get("SNOWFLAKE_ACCOUNT"):
        from dagster_snowflake import SnowflakeResource

        from amazon_sc_assets.io_managers import SnowflakeUpsertIOManager

        optional = {
            field: dg.EnvVar(variable)
            for field, variable in (
                ("password", "SNOWFLAKE_PASSWORD"),
                ("private_key_path", "SNOWFLAKE_PRIVATE_KEY_PATH"),
                ("private_key_password", "SNOWFLAKE_PRIVATE_KEY_PASSWORD"),
                ("role", "SNOWFLAKE_ROLE"),
            )
            if environ.get(variable)
        }
        snowflake = SnowflakeResource(
            account=dg.EnvVar("SNOWFLAKE_ACCOUNT"),
            user=dg.EnvVar("SNOWFLAKE_USER"),
            database=dg.EnvVar("SNOWFLAKE_DATABASE"),
            warehouse=dg.EnvVar("SNOWFLAKE_WAREHOUSE"),
            **optional,
        )
        return SnowflakeUpsertIOManager(snowflake=snowflake), "snowflake"

    from amazon_sc_assets.io_managers import DuckDBUpsertIOManager

    database = environ.get("AMAZON_SC_DUCKDB_PATH") or DEFAULT_DUCKDB_PATH
    return DuckDBUpsertIOManager(database=database), "duckdb"


def build_definitions(
    environ: Mapping[str, str] | None = None,
    *,
    sp_api_settings: Mapping[str, Any] | None = None,
) -> dg.Definitions:
    """Build assets, checks, the job, schedules and resources from environment variables.

    Args:
        environ: The variables to read; `os.environ` when None.
        sp_api_settings: Further SPAPIResource fields, such as `{"report_deadline_seconds":
            7200}`, for a definitions module of your own.
    """
    environ = os.environ if environ is None else environ

    partitions_def = build_daily_partitions(
        partition_start_date(environ.get("AMAZON_SC_START_DATE"))
    )
    io_manager, warehouse_kind = build_warehouse_io_manager(environ)
    report_types = enabled_report_types(environ.get("AMAZON_SC_REPORT_TYPES"))

    assets = [
        build_report_asset(t, partitions_def=partitions_def, warehouse_kind=warehouse_kind)
        for t in report_types
    ]
    checks = [check for asset in assets for check in build_report_checks(asset)]
    job = dg.define_asset_job(
        JOB_NAME,
        selection=dg.AssetSelection.groups(ASSET_GROUP),
        description="Fetches the enabled order-tracking reports and upserts them.",
    )

    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[job],
        schedules=build_schedules(JOB_NAME, partitions_def),
        resources={
            "sp_api": build_sp_api_resource(environ, sp_api_settings),
            "warehouse_io_manager": io_manager,
        },
    )


defs = build_definitions()
