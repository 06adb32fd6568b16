"""SnowflakeUpsertIOManager on fakesnow: upper-case names, the Parquet PUT and COPY path, upsert
semantics, schema changes, rollback, stage clean-up and partitioned reads.

fakesnow runs Snowflake SQL on an in-process DuckDB, so these tests need no account and no
network. `fakesnow.patch()` replaces snowflake.connector.connect for the test's duration.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import fakesnow
import polars as pl
import pytest
from dagster_snowflake import SnowflakeResource

from amazon_sc_assets.io_managers import (
    SnowflakeUpsertIOManager,
    UnsafeTypeChangeError,
    upsert_plan,
)
from amazon_sc_assets.partitions import build_daily_partitions

ORDERS = dg.AssetKey(
    ["amazon_seller_central", "get_flat_file_all_orders_data_by_last_update_general"]
)
TABLE = "AMAZON_SELLER_CENTRAL.GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
METADATA = {
    "upsert_key": ["amazon_order_id"],
    "version_column": "last_updated_date",
    "window_column": "last_updated_date",
}


def at(hour: int, day: int = 1) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=UTC)


def lines(
    order_id: str, version: datetime | None, skus: list[str], **extra: list[Any]
) -> pl.DataFrame:
    """Build the item lines of one order, all carrying the same last_updated_date."""
    return pl.DataFrame(
        {
            "amazon_order_id": [order_id] * len(skus),
            "sku": skus,
            "last_updated_date": pl.Series([version] * len(skus), dtype=pl.Datetime("us", "UTC")),
            **extra,
        }
    )


@pytest.fixture
def snowflake() -> Iterator[SnowflakeResource]:
    with fakesnow.patch():
        yield SnowflakeResource(
            account="fakesnow", user="tester", password="unused", database="RAW", schema="PUBLIC"
        )


@pytest.fixture
def manager(snowflake: SnowflakeResource) -> SnowflakeUpsertIOManager:
    return SnowflakeUpsertIOManager(snowflake=snowflake)


def write(manager: SnowflakeUpsertIOManager, frame: object) -> dict:
    """Run handle_output with a fresh context and return the logged metadata as plain values."""
    context = dg.build_output_context(asset_key=ORDERS, definition_metadata=METADATA)
    manager.handle_output(context, frame)
    return {key: value.value for key, value in context.get_logged_metadata().items()}


def query(snowflake: SnowflakeResource, sql: str) -> list[tuple]:
    with snowflake.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def table_rows(snowflake: SnowflakeResource, columns: str = "AMAZON_ORDER_ID, SKU") -> list[tuple]:
    # Unquoted names: users query the table without quotes.
    return query(snowflake, f"SELECT {columns} FROM {TABLE} ORDER BY {columns}")


def table_columns(snowflake: SnowflakeResource) -> list[str]:
    rows = query(
        snowflake,
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "'AMAZON_SELLER_CENTRAL' AND table_name = "
        "'GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL' ORDER BY ordinal_position",
    )
    return [name for (name,) in rows]


def test_snowflake_upsert_creates_upper_case_table(manager, snowflake):
    metadata = write(manager, lines("A", at(1), ["S1"]))

    assert table_columns(snowflake) == ["AMAZON_ORDER_ID", "SKU", "LAST_UPDATED_DATE"]
    assert metadata["dagster/table_name"] == f"RAW.{TABLE}"


def test_snowflake_upsert_keeps_identical_item_lines(manager, snowflake):
    write(manager, lines("A", at(1), ["SKU-1", "SKU-1", "SKU-2"]))

    assert table_rows(snowflake) == [("A", "SKU-1"), ("A", "SKU-1"), ("A", "SKU-2")]


def test_snowflake_upsert_same_batch_twice_is_idempotent(manager, snowflake):
    batch = pl.concat([lines("A", at(1), ["SKU-1", "SKU-1", "SKU-2"]), lines("B", at(2), ["X"])])
    write(manager, batch)

    metadata = write(manager, batch)

    assert table_rows(snowflake) == [("A", "SKU-1"), ("A", "SKU-1"), ("A", "SKU-2"), ("B", "X")]
    assert metadata["rows_replaced"] == 4
    assert metadata["dagster/row_count"] == 4


def test_snowflake_upsert_newer_version_replaces_order_lines(manager, snowflake):
    write(manager, pl.concat([lines("A", at(1), ["S1", "S2", "S3"]), lines("B", at(1), ["X"])]))

    metadata = write(manager, lines("A", at(5), ["S1", "S4"]))

    assert table_rows(snowflake) == [("A", "S1"), ("A", "S4"), ("B", "X")]
    assert metadata["rows_replaced"] == 3
    assert metadata["rows_inserted"] == 2


def test_snowflake_upsert_older_backfill_changes_nothing(manager, snowflake):
    write(manager, lines("A", at(1), ["S1", "S2", "S3"]))
    write(manager, lines("A", at(5), ["S1", "S4"]))

    metadata = write(manager, lines("A", at(1), ["S1", "S2", "S3"]))

    assert table_rows(snowflake) == [("A", "S1"), ("A", "S4")]
    assert metadata["rows_skipped_stale"] == 3


def test_snowflake_upsert_keeps_newest_version_within_batch(manager, snowflake):
    batch = pl.concat([lines("A", at(1), ["OLD-1", "OLD-2"]), lines("A", at(3), ["NEW"])])

    metadata = write(manager, batch)

    assert table_rows(snowflake) == [("A", "NEW")]
    assert metadata["rows_superseded_in_batch"] == 2


def test_snowflake_upsert_treats_null_version_as_oldest(manager, snowflake):
    write(manager, lines("A", None, ["NULL-1"]))
    write(manager, lines("A", at(1), ["DATED"]))

    metadata = write(manager, lines("A", None, ["NULL-2"]))

    assert table_rows(snowflake) == [("A", "DATED")]
    assert metadata["rows_skipped_stale"] == 1


def test_snowflake_upsert_evolves_columns(manager, snowflake):
    write(manager, lines("A", at(1), ["S1"], ship_city=["Seattle"]))

    metadata = write(manager, lines("B", at(2), ["S2"], amazon_programs=["Prime"]))

    assert table_columns(snowflake)[-2:] == ["SHIP_CITY", "AMAZON_PROGRAMS"]
    assert table_rows(snowflake, "AMAZON_ORDER_ID, SHIP_CITY, AMAZON_PROGRAMS") == [
        ("A", "Seattle", None),
        ("B", None, "Prime"),
    ]
    assert metadata["columns_added"] == ["AMAZON_PROGRAMS"]


def test_snowflake_upsert_empty_batch_leaves_table_untouched(manager, snowflake):
    write(manager, lines("A", at(1), ["S1", "S2"]))

    metadata = write(manager, lines("A", at(9), []).lazy())

    assert table_rows(snowflake) == [("A", "S1"), ("A", "S2")]
    assert metadata["rows_in_batch"] == 0
    assert metadata["dagster/row_count"] == 2


def test_snowflake_upsert_failure_after_delete_rolls_back(manager, snowflake, monkeypatch):
    write(manager, lines("A", at(1), ["S1", "S2", "S3"]))
    # The DELETE has run when the IO manager builds the INSERT. Make the INSERT fail in SQL.
    monkeypatch.setattr(
        upsert_plan, "insert_sql", lambda *args, **kwargs: "SELECT CAST('injected' AS INTEGER)"
    )

    with pytest.raises(Exception, match="injected"):
        write(manager, lines("A", at(5), ["S9"]))

    assert table_rows(snowflake) == [("A", "S1"), ("A", "S2"), ("A", "S3")]


def test_snowflake_upsert_drops_stage_tables(manager, snowflake, monkeypatch):
    write(manager, lines("A", at(1), ["S1"]))
    monkeypatch.setattr(
        upsert_plan, "insert_sql", lambda *args, **kwargs: "SELECT CAST('injected' AS INTEGER)"
    )
    with pytest.raises(Exception, match="injected"):
        write(manager, lines("A", at(5), ["S9"]))

    tables = query(
        snowflake,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'AMAZON_SELLER_CENTRAL'",
    )

    assert tables == [("GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL",)]


def test_snowflake_upsert_stores_hostile_header_as_column(manager, snowflake):
    write(manager, lines("A", at(1), ["S1"], **{'x"; drop table y; --': ["kept"]}))

    assert 'X"; DROP TABLE Y; --' in table_columns(snowflake)
    assert query(snowflake, f'SELECT "X""; DROP TABLE Y; --" FROM {TABLE}') == [("kept",)]


def test_snowflake_upsert_rejects_lossy_type_change(manager, snowflake):
    write(manager, lines("A", at(1), ["S1"], quantity=[2]))

    with pytest.raises(UnsafeTypeChangeError, match="QUANTITY"):
        write(manager, lines("A", at(2), ["S2"], quantity=["two"]))

    assert table_rows(snowflake) == [("A", "S1")]


def test_snowflake_upsert_stores_decimal_and_boolean(manager, snowflake):
    prices = pl.Series(["12.99"], dtype=pl.String).cast(pl.Decimal(18, 2))
    write(manager, lines("A", at(1), ["S1"], item_price=prices, is_business_order=[True]))

    assert table_rows(snowflake, "CAST(ITEM_PRICE AS VARCHAR), IS_BUSINESS_ORDER") == [
        ("12.99", True)
    ]


def test_snowflake_load_input_partition_returns_window(manager):
    # Partition 2025-03-05 reads the 72-hour report window [03-03 00:00, 03-06 00:00).
    versions = [at(23, day=2), at(0, day=3), at(23, day=5), at(0, day=6)]
    write(manager, pl.concat([lines(f"O{i}", v, ["S"]) for i, v in enumerate(versions)]))
    context = dg.build_input_context(
        asset_key=ORDERS,
        partition_key="2025-03-05",
        asset_partitions_def=build_daily_partitions("2025-02-01"),
        upstream_output=dg.build_output_context(asset_key=ORDERS, definition_metadata=METADATA),
    )

    frame = manager.load_input(context)

    assert sorted(frame["amazon_order_id"]) == ["O1", "O2"]
    assert frame.columns == ["amazon_order_id", "sku", "last_updated_date"]


def test_snowflake_count_keys_with_mixed_versions(manager):
    write(manager, pl.concat([lines("A", at(1), ["S1"]), lines("B", at(1), ["S2"])]))

    mixed = manager.count_keys_with_mixed_versions(
        ORDERS, upsert_key=["amazon_order_id"], version_column="last_updated_date"
    )

    assert mixed == 0


def test_snowflake_io_manager_in_materialize_run(manager):
    partitions = build_daily_partitions("2025-03-01")

    @dg.asset(key=ORDERS, partitions_def=partitions, metadata=METADATA)
    def orders() -> pl.LazyFrame:
        versions = [at(23, day=2), at(12, day=5), at(0, day=6)]
        return pl.concat([lines(f"O{i}", v, ["S1", "S1"]) for i, v in enumerate(versions)]).lazy()

    @dg.asset(
        partitions_def=partitions,
        ins={"orders": dg.AssetIn(key=ORDERS)},
        io_manager_key="memory_io_manager",
    )
    def order_count(orders: pl.DataFrame) -> int:
        return orders.height

    resources = {"io_manager": manager, "memory_io_manager": dg.InMemoryIOManager()}

    result = dg.materialize([orders, order_count], partition_key="2025-03-05", resources=resources)

    materialization = result.asset_materializations_for_node(
        "amazon_seller_central__get_flat_file_all_orders_data_by_last_update_general"
    )[0]
    assert materialization.metadata["rows_inserted"].value == 6
    # The window of 2025-03-05 is [03-03, 03-06), which contains the two lines of order O1.
    assert result.output_for_node("order_count") == 2
