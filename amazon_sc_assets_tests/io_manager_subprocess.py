"""Child process for the DuckDB IO manager tests that need a second process.

Usage: `python io_manager_subprocess.py MODE DATABASE [ORDER_ID]`, where MODE is

- `write`: print `ready` once the imports are done, upsert two lines of ORDER_ID (version
  2025-03-01 12:00 UTC) and exit 0;
- `kill-after-delete`: start the same upsert and end the process with `os._exit(9)` right after
  the DELETE, before the INSERT and the COMMIT;
- `hold-lock`: open the file, print `locked`, and keep it open until stdin closes.

Dagster and Polars are imported only where needed, because importing them takes seconds on a
busy 2-core machine and the lock holder must start fast.
"""

import os
import sys
from datetime import UTC, datetime

import duckdb

METADATA = {"upsert_key": ["amazon_order_id"], "version_column": "last_updated_date"}


def write(database: str, order_id: str) -> None:
    import dagster as dg
    import polars as pl

    from amazon_sc_assets.io_managers import DuckDBUpsertIOManager

    frame = pl.DataFrame(
        {
            "amazon_order_id": [order_id, order_id],
            "sku": ["SKU-CHILD-1", "SKU-CHILD-2"],
            "last_updated_date": [datetime(2025, 3, 1, 12, tzinfo=UTC)] * 2,
        }
    )
    manager = DuckDBUpsertIOManager(database=database, lock_timeout_seconds=60.0)
    context = dg.build_output_context(
        asset_key=dg.AssetKey(["amazon_seller_central", "orders"]), definition_metadata=METADATA
    )
    print("ready", flush=True)
    manager.handle_output(context, frame)


def exit_instead_of_insert(*args: object, **kwargs: object) -> str:
    """Stand in for upsert_plan.insert_sql, which the IO manager calls right after the DELETE."""
    sys.stdout.flush()
    os._exit(9)


def main() -> None:
    mode, database = sys.argv[1], sys.argv[2]
    order_id = sys.argv[3] if len(sys.argv) > 3 else "111-0000000-0000001"
    if mode == "write":
        write(database, order_id)
    elif mode == "kill-after-delete":
        from amazon_sc_assets.io_managers import upsert_plan

        upsert_plan.insert_sql = exit_instead_of_insert
        write(database, order_id)
        raise SystemExit("the upsert finished, but the process should have ended at the INSERT")
    elif mode == "hold-lock":
        con = duckdb.connect(database)
        print("locked", flush=True)
        sys.stdin.read()
        con.close()
    else:
        raise SystemExit(f"Unknown mode {mode!r}, expected write, kill-after-delete or hold-lock")


if __name__ == "__main__":
    main()
