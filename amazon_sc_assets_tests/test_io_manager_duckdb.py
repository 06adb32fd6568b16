"""DuckDBUpsertIOManager on real DuckDB files: upsert semantics, schema changes, atomicity,
cross-process locking, hostile column names and partitioned reads."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
import pytest

from amazon_sc_assets.io_managers import (
    DuckDBLockTimeoutError,
    DuckDBPathError,
    DuckDBUpsertIOManager,
    UnsafeTypeChangeError,
    UpsertConfigError,
    upsert_plan,
)
from amazon_sc_assets.partitions import build_daily_partitions

ORDERS = dg.AssetKey(["amazon_seller_central", "orders"])
TABLE = '"amazon_seller_central"."orders"'
METADATA = {
    "upsert_key": ["amazon_order_id"],
    "version_column": "last_updated_date",
    "window_column": "last_updated_date",
}
CHILD_SCRIPT = Path(__file__).parent / "io_manager_subprocess.py"
REPOSITORY_ROOT = Path(__file__).parent.parent


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
def database(tmp_path: Path) -> str:
    return str(tmp_path / "warehouse.duckdb")


@pytest.fixture
def manager(database: str) -> DuckDBUpsertIOManager:
    return DuckDBUpsertIOManager(database=database, lock_timeout_seconds=5.0)


def write(manager: DuckDBUpsertIOManager, frame: object, metadata: dict | None = None) -> dict:
    """Run handle_output with a fresh context and return the logged metadata as plain values."""
    context = dg.build_output_context(
        asset_key=ORDERS, definition_metadata=METADATA if metadata is None else metadata
    )
    manager.handle_output(context, frame)
    return {key: value.value for key, value in context.get_logged_metadata().items()}


def query(database: str, sql: str) -> list[tuple]:
    con = duckdb.connect(database)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def table_rows(database: str, columns: str = "amazon_order_id, sku") -> list[tuple]:
    return query(database, f"SELECT {columns} FROM {TABLE} ORDER BY ALL")


def table_columns(database: str) -> list[str]:
    rows = query(
        database,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' "
        "ORDER BY ordinal_position",
    )
    return [name for (name,) in rows]


def test_duckdb_upsert_keeps_identical_item_lines(manager, database):
    write(manager, lines("A", at(1), ["SKU-1", "SKU-1", "SKU-2"]))

    assert table_rows(database) == [("A", "SKU-1"), ("A", "SKU-1"), ("A", "SKU-2")]


def test_duckdb_upsert_same_batch_twice_is_idempotent(manager, database):
    batch = pl.concat([lines("A", at(1), ["SKU-1", "SKU-1", "SKU-2"]), lines("B", at(2), ["X"])])
    write(manager, batch)
    first = query(database, f"SELECT * FROM {TABLE} ORDER BY ALL")

    metadata = write(manager, batch)

    assert query(database, f"SELECT * FROM {TABLE} ORDER BY ALL") == first
    assert metadata["rows_replaced"] == 4
    assert metadata["rows_inserted"] == 4
    assert metadata["dagster/row_count"] == 4


def test_duckdb_upsert_newer_version_replaces_order_lines(manager, database):
    write(manager, pl.concat([lines("A", at(1), ["S1", "S2", "S3"]), lines("B", at(1), ["X"])]))

    metadata = write(manager, lines("A", at(5), ["S1", "S4"]))

    assert table_rows(database) == [("A", "S1"), ("A", "S4"), ("B", "X")]
    assert metadata["rows_replaced"] == 3
    assert metadata["rows_inserted"] == 2


def test_duckdb_upsert_older_backfill_changes_nothing(manager, database):
    write(manager, lines("A", at(1), ["S1", "S2", "S3"]))
    write(manager, lines("A", at(5), ["S1", "S4"]))
    before = query(database, f"SELECT * FROM {TABLE} ORDER BY ALL")

    metadata = write(manager, lines("A", at(1), ["S1", "S2", "S3"]))

    assert query(database, f"SELECT * FROM {TABLE} ORDER BY ALL") == before
    assert metadata["rows_skipped_stale"] == 3
    assert metadata["rows_inserted"] == 0
    assert metadata["rows_replaced"] == 0


def test_duckdb_upsert_keeps_newest_version_within_batch(manager, database):
    batch = pl.concat([lines("A", at(1), ["OLD-1", "OLD-2"]), lines("A", at(3), ["NEW"])])

    metadata = write(manager, batch)

    assert table_rows(database) == [("A", "NEW")]
    assert metadata["rows_superseded_in_batch"] == 2
    assert metadata["rows_in_batch"] == 3


def test_duckdb_upsert_treats_null_version_as_oldest(manager, database):
    write(manager, lines("A", None, ["NULL-1"]))
    write(manager, lines("A", None, ["NULL-2"]))  # NULL replaces NULL
    write(manager, lines("A", at(1), ["DATED"]))

    metadata = write(manager, lines("A", None, ["NULL-3"]))

    assert table_rows(database) == [("A", "DATED")]
    assert metadata["rows_skipped_stale"] == 1


def test_duckdb_upsert_adds_new_column_mid_history(manager, database):
    write(manager, lines("A", at(1), ["S1"]))

    metadata = write(manager, lines("B", at(2), ["S2"], amazon_programs=["Prime"]))

    assert table_columns(database)[-1] == "amazon_programs"
    assert table_rows(database, "amazon_order_id, amazon_programs") == [("A", None), ("B", "Prime")]
    assert metadata["columns_added"] == ["amazon_programs"]


def test_duckdb_upsert_keeps_column_missing_from_batch(manager, database):
    write(manager, lines("A", at(1), ["S1"], ship_city=["Seattle"]))

    write(manager, lines("B", at(2), ["S2"]))

    assert "ship_city" in table_columns(database)
    assert table_rows(database, "amazon_order_id, ship_city") == [("A", "Seattle"), ("B", None)]


def test_duckdb_upsert_maps_reordered_columns_by_name(manager, database):
    write(manager, lines("A", at(1), ["S1"], currency=["USD"]))

    reordered = lines("B", at(2), ["S2"], currency=["EUR"]).select(
        "currency", "sku", "last_updated_date", "amazon_order_id"
    )
    write(manager, reordered)

    assert table_rows(database, "amazon_order_id, sku, currency") == [
        ("A", "S1", "USD"),
        ("B", "S2", "EUR"),
    ]


def test_duckdb_upsert_empty_batch_leaves_table_untouched(manager, database):
    write(manager, lines("A", at(1), ["S1", "S2"]))
    before = query(database, f"SELECT * FROM {TABLE} ORDER BY ALL")

    metadata = write(manager, lines("A", at(9), []))

    assert query(database, f"SELECT * FROM {TABLE} ORDER BY ALL") == before
    assert metadata["rows_in_batch"] == 0
    assert metadata["dagster/row_count"] == 2


def test_duckdb_upsert_empty_first_batch_creates_no_table(manager, database):
    metadata = write(manager, lines("A", at(1), []).lazy())

    assert query(database, "SELECT COUNT(*) FROM information_schema.tables") == [(0,)]
    assert metadata["dagster/row_count"] == 0


def test_duckdb_upsert_failure_after_delete_rolls_back(manager, database, monkeypatch):
    write(manager, lines("A", at(1), ["S1", "S2", "S3"]))
    before = query(database, f"SELECT * FROM {TABLE} ORDER BY ALL")
    # The DELETE has run when the IO manager builds the INSERT. Make the INSERT fail in DuckDB.
    monkeypatch.setattr(
        upsert_plan, "insert_sql", lambda *args, **kwargs: "SELECT CAST('injected' AS INTEGER)"
    )

    with pytest.raises(duckdb.ConversionException):
        write(manager, lines("A", at(5), ["S9"], amazon_programs=["Prime"]))

    assert query(database, f"SELECT * FROM {TABLE} ORDER BY ALL") == before
    assert "amazon_programs" not in table_columns(database)


def test_duckdb_upsert_killed_process_leaves_table_unchanged(manager, database):
    write(manager, lines("111-0000000-0000001", at(1), ["S1", "S2", "S3"]))
    before = query(database, f"SELECT * FROM {TABLE} ORDER BY ALL")

    child = subprocess.run(
        [sys.executable, str(CHILD_SCRIPT), "kill-after-delete", database],
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert child.returncode == 9, child.stderr
    assert query(database, f"SELECT * FROM {TABLE} ORDER BY ALL") == before


def start_lock_holder(database: str) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, str(CHILD_SCRIPT), "hold-lock", database],
        cwd=REPOSITORY_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release_lock_holder(holder: subprocess.Popen) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    holder.wait(timeout=30)


def test_duckdb_upsert_two_processes_both_succeed(database):
    # A third process keeps the file locked until both writers are ready, so both must wait for the
    # lock and then for each other.
    holder = start_lock_holder(database)
    writers = [
        subprocess.Popen(
            [sys.executable, str(CHILD_SCRIPT), "write", database, order_id],
            cwd=REPOSITORY_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for order_id in ("111-0000000-0000001", "111-0000000-0000002")
    ]
    try:
        ready = [writer.stdout.readline().strip() for writer in writers]
        release_lock_holder(holder)
        results = [(writer.wait(timeout=60), writer.stderr.read()) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()

    assert ready == ["ready", "ready"]
    assert results[0][0] == 0, results[0][1]
    assert results[1][0] == 0, results[1][1]
    lines_per_order = query(
        database, f"SELECT amazon_order_id, COUNT(*) FROM {TABLE} GROUP BY ALL ORDER BY ALL"
    )
    assert lines_per_order == [
        ("111-0000000-0000001", 2),
        ("111-0000000-0000002", 2),
    ]


def test_duckdb_upsert_lock_timeout_names_file(database):
    manager = DuckDBUpsertIOManager(database=database, lock_timeout_seconds=0.3)
    holder = start_lock_holder(database)
    try:
        with pytest.raises(DuckDBLockTimeoutError) as raised:
            write(manager, lines("A", at(1), ["S1"]))
    finally:
        release_lock_holder(holder)

    assert database in str(raised.value)
    assert "lock_timeout_seconds" in str(raised.value)


def test_duckdb_upsert_stores_hostile_header_as_column(manager, database):
    hostile = 'x"; drop table y; --'

    write(manager, lines("A", at(1), ["S1"], **{hostile: ["kept"]}))

    assert hostile in table_columns(database)
    assert query(database, f'SELECT "x""; drop table y; --" FROM {TABLE}') == [("kept",)]


def test_duckdb_upsert_widens_integer_to_decimal(manager, database):
    write(manager, lines("A", at(1), ["S1"], quantity=[2]))

    decimal_quantity = pl.Series([1.5], dtype=pl.Decimal(18, 2))
    write(manager, lines("B", at(2), ["S2"], quantity=decimal_quantity))

    column_type = query(
        database, "SELECT data_type FROM information_schema.columns WHERE column_name = 'quantity'"
    )
    assert column_type == [("DECIMAL(21,2)",)]
    assert [str(q) for (q,) in table_rows(database, "quantity")] == ["1.50", "2.00"]


def test_duckdb_upsert_widens_any_type_to_string(manager, database):
    write(manager, lines("A", at(1), ["S1"], quantity=[2]))

    write(manager, lines("B", at(2), ["S2"], quantity=["two"]))

    assert table_rows(database, "amazon_order_id, quantity") == [("A", "2"), ("B", "two")]


def test_duckdb_upsert_rejects_lossy_type_change(manager, database):
    write(manager, lines("A", at(1), ["S1"], item_price=pl.Series([1], dtype=pl.Decimal(18, 2))))

    with pytest.raises(UnsafeTypeChangeError, match="item_price") as raised:
        write(manager, lines("A", at(2), ["S2"], item_price=[0.1]))

    assert "DECIMAL(18,2)" in str(raised.value)
    assert "DOUBLE" in str(raised.value)
    assert table_rows(database) == [("A", "S1")]


def test_duckdb_upsert_stores_null_column_as_string(manager, database):
    write(manager, lines("A", at(1), ["S1"], promotion_ids=[None]))

    write(manager, lines("B", at(2), ["S2"], promotion_ids=["PROMO"]))

    column_type = query(
        database,
        "SELECT data_type FROM information_schema.columns WHERE column_name = 'promotion_ids'",
    )
    assert column_type == [("VARCHAR",)]


def test_duckdb_upsert_streams_lazy_frame_from_parquet(manager, database, tmp_path):
    path = tmp_path / "batch.parquet"
    pl.concat([lines(f"O{i}", at(1), ["S1", "S2"]) for i in range(50)]).write_parquet(path)

    metadata = write(manager, pl.scan_parquet(path))

    assert metadata["rows_inserted"] == 100
    assert query(database, f"SELECT COUNT(*) FROM {TABLE}") == [(100,)]


def test_duckdb_upsert_rejects_none(manager):
    with pytest.raises(TypeError, match="NoneType"):
        write(manager, None)


def test_duckdb_upsert_rejects_null_key(manager, database):
    batch = pl.DataFrame(
        {"amazon_order_id": ["A", None], "sku": ["S1", "S2"], "last_updated_date": [at(1)] * 2}
    )

    with pytest.raises(UpsertConfigError, match="1 rows"):
        write(manager, batch)

    assert query(database, "SELECT COUNT(*) FROM information_schema.tables") == [(0,)]


def test_duckdb_upsert_requires_upsert_metadata(manager):
    with pytest.raises(UpsertConfigError, match="upsert_key"):
        write(manager, lines("A", at(1), ["S1"]), metadata={"version_column": "x"})


def test_duckdb_upsert_reports_standard_metadata(manager):
    metadata = write(manager, lines("A", at(1), ["S1", "S2"]))

    assert metadata["dagster/table_name"] == "amazon_seller_central.orders"
    assert metadata["dagster/row_count"] == 2
    assert [c.name for c in metadata["dagster/column_schema"].columns] == [
        "amazon_order_id",
        "sku",
        "last_updated_date",
    ]
    assert metadata["columns_added"] == []


def test_duckdb_load_input_partition_returns_window(manager):
    # Partition 2025-03-05 reads the 72-hour report window [03-03 00:00, 03-06 00:00).
    versions = [at(23, day=2), at(0, day=3), at(23, day=5), at(0, day=6)]
    write(
        manager,
        pl.concat([lines(f"O{i}", v, ["S"]) for i, v in enumerate(versions)]),
    )
    context = dg.build_input_context(
        asset_key=ORDERS,
        partition_key="2025-03-05",
        asset_partitions_def=build_daily_partitions("2025-02-01"),
        upstream_output=dg.build_output_context(asset_key=ORDERS, definition_metadata=METADATA),
    )

    frame = manager.load_input(context)

    assert sorted(frame["amazon_order_id"]) == ["O1", "O2"]


def test_duckdb_load_input_reads_whole_table(manager):
    write(manager, pl.concat([lines("A", at(1), ["S1", "S1"]), lines("B", at(2), ["S2"])]))

    frame = manager.load_input(dg.build_input_context(asset_key=ORDERS))

    assert frame.height == 3
    assert frame.schema["last_updated_date"] == pl.Datetime("us", "UTC")


def test_duckdb_count_keys_with_mixed_versions(manager, database):
    write(manager, pl.concat([lines("A", at(1), ["S1"]), lines("B", at(1), ["S2"])]))
    arguments = {"upsert_key": ["amazon_order_id"], "version_column": "last_updated_date"}
    after_upsert = manager.count_keys_with_mixed_versions(ORDERS, **arguments)

    # A write that bypasses the IO manager gives order A lines of two versions.
    query(database, f"INSERT INTO {TABLE} VALUES ('A', 'S9', TIMESTAMPTZ '2025-03-01 05:00Z')")
    after_outside_write = manager.count_keys_with_mixed_versions(ORDERS, **arguments)

    assert after_upsert == 0
    assert after_outside_write == 1


def test_duckdb_io_manager_in_materialize_run(database):
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

    resources = {
        "io_manager": DuckDBUpsertIOManager(database=database),
        "memory_io_manager": dg.InMemoryIOManager(),
    }

    result = dg.materialize([orders, order_count], partition_key="2025-03-05", resources=resources)

    materialization = result.asset_materializations_for_node("amazon_seller_central__orders")[0]
    assert materialization.metadata["rows_inserted"].value == 6
    # The window of 2025-03-05 is [03-03, 03-06), which contains the two lines of order O1.
    assert result.output_for_node("order_count") == 2


def test_duckdb_setup_creates_missing_folder(tmp_path: Path) -> None:
    database = tmp_path / "new" / "nested" / "warehouse.duckdb"
    manager = DuckDBUpsertIOManager(database=str(database))

    manager.setup_for_execution(dg.build_init_resource_context())

    assert database.parent.is_dir()


def test_duckdb_setup_unusable_folder_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    manager = DuckDBUpsertIOManager(database=str(blocker / "warehouse.duckdb"))

    with pytest.raises(DuckDBPathError) as caught:
        manager.setup_for_execution(dg.build_init_resource_context())

    message = str(caught.value)
    assert "AMAZON_SC_DUCKDB_PATH" in message
    assert str(blocker) in message
