"""P4 incremental cost: upsert a 10k-row batch into a table of about 10M rows.

The large table is built in SQL from the P1 table. Copy k of every row gets the order id prefix
900 + k, and copy 0 keeps the generated prefixes 111 to 114. So the copies are distinct orders
with the same column values. Each batch contains whole orders from copy 1 with a
last_updated_date one hour newer per repeat, so they replace existing rows. The same orders
under the prefix 890 + repeat are new, so the other half of the batch adds rows.
"""

import math
import statistics
import time
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import polars as pl
from load_report import REPORT_TYPE, UPSERT_METADATA

from amazon_sc_assets.assets import report_asset_key
from amazon_sc_assets.io_managers import DuckDBUpsertIOManager

SCHEMA = "amazon_seller_central"
TABLE = report_asset_key(REPORT_TYPE).path[-1]
QUALIFIED_TABLE = f"{SCHEMA}.{TABLE}"


def build_large_table(source_database: Path, database: Path, target_rows: int) -> int:
    """Copy the source table into `database` enough times to reach about `target_rows` rows."""
    database.unlink(missing_ok=True)
    con = duckdb.connect(str(database))
    try:
        con.execute("ATTACH ? AS source (READ_ONLY)", [str(source_database)])
        row = con.execute(f"SELECT count(*) FROM source.{QUALIFIED_TABLE}").fetchone()
        source_rows = row[0] if row else 0
        copies = max(1, math.ceil(target_rows / max(source_rows, 1)))
        con.execute(f"CREATE SCHEMA {SCHEMA}")
        con.execute(
            f"CREATE TABLE {QUALIFIED_TABLE} AS "
            "SELECT * EXCLUDE (copy) REPLACE (CASE WHEN copy = 0 THEN amazon_order_id "
            "ELSE printf('%03d', 900 + copy) || amazon_order_id[4:] END AS amazon_order_id) "
            f"FROM source.{QUALIFIED_TABLE}, range(?) AS copies(copy) "
            "LIMIT ?",
            [copies, target_rows],
        )
        con.execute("DETACH source")
        row = con.execute(f"SELECT count(*) FROM {QUALIFIED_TABLE}").fetchone()
    finally:
        con.close()
    return row[0] if row else 0


def write_batch(database: Path, parquet: Path, batch_rows: int, repeat: int) -> int:
    """Write a batch of whole orders, half existing and half new, to Parquet and count its rows."""
    half = batch_rows // 2
    con = duckdb.connect(str(database), read_only=True)
    try:
        con.execute(
            f"""
            COPY (
                WITH orders AS (
                    SELECT amazon_order_id, count(*) AS lines
                    FROM {QUALIFIED_TABLE}
                    WHERE amazon_order_id LIKE '901-%'
                    GROUP BY amazon_order_id
                    ORDER BY amazon_order_id
                    LIMIT {half}
                ),
                chosen AS (
                    SELECT amazon_order_id FROM (
                        SELECT amazon_order_id,
                            sum(lines) OVER (ORDER BY amazon_order_id) AS running
                        FROM orders
                    ) WHERE running <= {half}
                ),
                existing AS (
                    SELECT * FROM {QUALIFIED_TABLE} SEMI JOIN chosen USING (amazon_order_id)
                )
                SELECT * REPLACE (
                    last_updated_date + INTERVAL ({repeat}) HOUR AS last_updated_date,
                    'bench-p4-{repeat}' AS _report_id,
                    now() AS _loaded_at)
                FROM existing
                UNION ALL
                SELECT * REPLACE (
                    '{890 + repeat}-' || amazon_order_id[5:] AS amazon_order_id,
                    last_updated_date + INTERVAL ({repeat}) HOUR AS last_updated_date,
                    'bench-p4-{repeat}' AS _report_id,
                    now() AS _loaded_at)
                FROM existing
            ) TO '{parquet}' (FORMAT parquet)
            """
        )
    finally:
        con.close()
    return pl.scan_parquet(parquet).select(pl.len()).collect().item()


def measure_incremental(
    out_dir: Path, source_database: Path, *, table_rows: int, batch_rows: int, repeats: int
) -> dict[str, Any]:
    """Build the large table, then time `repeats` upserts of a `batch_rows` batch into it."""
    database = out_dir / "p4.duckdb"
    started = time.perf_counter()
    rows_in_table = build_large_table(source_database, database, table_rows)
    build_seconds = time.perf_counter() - started
    print(f"P4: built a {rows_in_table}-row table in {build_seconds:.1f} s")

    if repeats > 9:
        raise ValueError(f"Invalid repeats {repeats}: expected at most 9 (prefixes 891 to 899).")
    manager = DuckDBUpsertIOManager(database=str(database))
    timings = []
    batch_sizes = []
    replaced = []
    for repeat in range(1, repeats + 1):
        parquet = out_dir / f"p4-batch-{repeat}.parquet"
        batch_sizes.append(write_batch(database, parquet, batch_rows, repeat))
        context = dg.build_output_context(
            asset_key=report_asset_key(REPORT_TYPE), definition_metadata=UPSERT_METADATA
        )
        frame = pl.scan_parquet(parquet)
        started = time.perf_counter()
        manager.handle_output(context, frame)
        timings.append(time.perf_counter() - started)
        replaced.append(context.get_logged_metadata()["rows_replaced"].value)
        parquet.unlink()
    database.unlink(missing_ok=True)
    return {
        "table_rows": rows_in_table,
        "build_seconds": build_seconds,
        "batch_rows": batch_sizes,
        "upsert_seconds": timings,
        "table_rows_replaced": replaced,
        "median_seconds": statistics.median(timings),
    }
