"""Time a 1M-row upsert into a 1M-row DuckDB table against DuckDB's read_csv of the same rows.

Run from the repository root: `.venv/bin/python bench/upsert_duckdb.py [ROWS]`. The script
writes its files to a temporary directory and prints one line per measurement. Half of the
batch's orders already exist in the table with an older version; the other half are new.
"""

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from amazon_sc_assets.io_managers import DuckDBUpsertIOManager

ASSET_KEY = dg.AssetKey(["get_flat_file_all_orders_data_by_last_update_general"])
METADATA = {
    "upsert_key": ["amazon_order_id"],
    "version_column": "last_updated_date",
    "window_column": "last_updated_date",
}


def report_rows(rows: int, first_order: int, updated: datetime) -> pl.DataFrame:
    """Build report-shaped rows: two item lines per order, typed as the parser types them."""
    index = pl.col("index")
    order = (index // 2 + first_order).cast(pl.String)
    return pl.DataFrame({"index": pl.int_range(0, rows, eager=True)}).select(
        amazon_order_id=pl.format("111-{}-0000000", order.str.zfill(7)),
        merchant_order_id=pl.format("M{}", order),
        purchase_date=pl.lit(updated - timedelta(days=1), dtype=pl.Datetime("us", "UTC")),
        last_updated_date=pl.lit(updated, dtype=pl.Datetime("us", "UTC")),
        order_status=pl.lit("Shipped"),
        sales_channel=pl.lit("Amazon.com"),
        product_name=pl.format("Widget {}", index % 997),
        sku=pl.format("SKU-{}", index % 5000),
        asin=pl.format("B0{}", (index % 90000).cast(pl.String).str.zfill(8)),
        quantity=(index % 3 + 1).cast(pl.Int64),
        currency=pl.lit("USD"),
        item_price=((index % 10000).cast(pl.Decimal(18, 2)) / 100).cast(pl.Decimal(18, 2)),
        ship_country=pl.lit("US"),
        is_business_order=index % 7 == 0,
        _report_id=pl.lit("50001018000"),
        _file_line_number=(index + 2).cast(pl.Int64),
        _order_line_number=(index % 2 + 1).cast(pl.Int64),
    )


def upsert(manager: DuckDBUpsertIOManager, batch: pl.DataFrame | pl.LazyFrame) -> float:
    context = dg.build_output_context(asset_key=ASSET_KEY, definition_metadata=METADATA)
    started = time.perf_counter()
    manager.handle_output(context, batch)
    return time.perf_counter() - started


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    base = datetime(2025, 3, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        initial = report_rows(rows, first_order=0, updated=base)
        # Orders rows/4 .. 3*rows/4: the first half exists in the table, the second half is new.
        batch = report_rows(rows, first_order=rows // 4, updated=base + timedelta(hours=5))
        csv_path = root / "batch.csv"
        batch.write_csv(csv_path)
        parquet_path = root / "batch.parquet"
        batch.write_parquet(parquet_path)

        con = duckdb.connect(str(root / "read_csv.duckdb"))
        started = time.perf_counter()
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv_path}')")
        read_csv_seconds = time.perf_counter() - started
        con.close()
        print(f"read_csv into a new table:            {read_csv_seconds:6.2f} s")

        for label, source in (("DataFrame", batch), ("LazyFrame over Parquet", None)):
            manager = DuckDBUpsertIOManager(database=str(root / f"{label[:4]}.duckdb"))
            create_seconds = upsert(manager, initial)
            frame = source if source is not None else pl.scan_parquet(parquet_path)
            upsert_seconds = upsert(manager, frame)
            ratio = upsert_seconds / read_csv_seconds
            print(f"first write of {rows} rows ({label}):  {create_seconds:6.2f} s")
            print(
                f"upsert {rows} into {rows} ({label}):   {upsert_seconds:6.2f} s  "
                f"= {ratio:.2f} x read_csv"
            )


if __name__ == "__main__":
    main()
