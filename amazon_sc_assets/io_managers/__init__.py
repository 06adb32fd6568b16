"""Upserting IO managers for DuckDB and Snowflake, built on one shared planner."""

from amazon_sc_assets.io_managers.duckdb_io_manager import (
    DuckDBLockTimeoutError,
    DuckDBPathError,
    DuckDBUpsertIOManager,
)
from amazon_sc_assets.io_managers.snowflake_io_manager import SnowflakeUpsertIOManager
from amazon_sc_assets.io_managers.upsert_plan import (
    UnsafeTypeChangeError,
    UpsertConfigError,
    UpsertSpec,
)

__all__ = [
    "DuckDBLockTimeoutError",
    "DuckDBPathError",
    "DuckDBUpsertIOManager",
    "SnowflakeUpsertIOManager",
    "UnsafeTypeChangeError",
    "UpsertConfigError",
    "UpsertSpec",
]
