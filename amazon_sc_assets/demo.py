"""Run the main job end to end on this machine: the local SP-API emulator into a DuckDB file.

`python -m amazon_sc_assets.demo` (or `make demo`) starts the emulator on a free loopback port,
materializes yesterday's and today's keys of both report assets into `data/amazon_sc.duckdb`,
then replays the real Seller Central rows shipped with the emulator into
`data/real_samples.duckdb`, and prints what landed in each table.
"""

import argparse
import os
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from amazon_sc_assets.definitions import JOB_NAME, build_definitions
from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorConfig,
    run_emulator,
)

SAMPLES_DIR = Path(__file__).parent / "emulator" / "samples"

SAMPLE_QUERY = """\
SELECT sales_channel, currency, order_status, count(DISTINCT amazon_order_id) AS orders,
       count(*) AS order_lines, sum(quantity) AS units, sum(item_price) AS item_price
FROM amazon_seller_central.get_flat_file_all_orders_data_by_last_update_general
GROUP BY ALL
ORDER BY sales_channel, currency, order_status"""


def _point_environment_at(emulator, database: Path, start_date: str) -> None:
    os.environ.update(
        {
            "SP_API_ENDPOINT": emulator.base_url,
            "SP_API_LWA_TOKEN_URL": emulator.token_url,
            "SP_API_LWA_CLIENT_ID": EMULATOR_CLIENT_ID,
            "SP_API_LWA_CLIENT_SECRET": EMULATOR_CLIENT_SECRET,
            "SP_API_REFRESH_TOKEN": EMULATOR_REFRESH_TOKEN,
            "SP_API_REGION": "na",
            "SP_API_MARKETPLACE_IDS": "ATVPDKIKX0DER,A2EUQ1WTGCTBG2,A1AM78C64UM0Y8",
            "AMAZON_SC_DUCKDB_PATH": str(database),
            "AMAZON_SC_START_DATE": start_date,
        }
    )
    os.environ.pop("SNOWFLAKE_ACCOUNT", None)


def _run_job(partition_keys: list[str], instance: dg.DagsterInstance) -> None:
    job = build_definitions().resolve_job_def(JOB_NAME)
    for key in partition_keys:
        result = job.execute_in_process(
            partition_key=key,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
        )
        if not result.success:
            raise SystemExit(f"The run for partition {key} failed; see the log above.")


def _print_tables(database: Path) -> None:
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.sql(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'amazon_seller_central' ORDER BY table_name"
        ).fetchall()
        print(f"\n{database}:")
        for (table,) in tables:
            rows, orders = con.execute(
                f"SELECT count(*), count(DISTINCT amazon_order_id) "
                f'FROM amazon_seller_central."{table}"'
            ).fetchone()
            print(f"  amazon_seller_central.{table}: {rows} order lines, {orders} orders")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="folder for the DuckDB files"
    )
    args = parser.parse_args()
    # BackfillPolicy is beta in Dagster 1.13. A demo user cannot act on that warning.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    instance = dg.DagsterInstance.ephemeral()

    # Emulated order history: yesterday's and today's keys of both report assets
    database = args.data_dir / "amazon_sc.duckdb"
    today = datetime.now(UTC).date()
    keys = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    config = EmulatorConfig(seed=42, time_scale=600.0, history_days=30, orders_per_day=120.0)
    with run_emulator(config) as emulator:
        print(f"SP-API emulator at {emulator.base_url}; materializing keys {', '.join(keys)}")
        _point_environment_at(emulator, database, (today - timedelta(days=30)).isoformat())
        _run_job(keys, instance)

    # Real rows from Seller Central files, replayed by the emulator
    samples_database = args.data_dir / "real_samples.duckdb"
    with run_emulator(EmulatorConfig(replay_dir=SAMPLES_DIR, time_scale=600.0)) as emulator:
        print(f"\nReplaying the real report rows in {SAMPLES_DIR}")
        _point_environment_at(emulator, samples_database, "2017-06-01")
        _run_job(["2017-06-18", "2020-02-19"], instance)

    _print_tables(database)
    _print_tables(samples_database)
    print(f"\nSample query on {database}:\n{SAMPLE_QUERY}\n")
    with duckdb.connect(str(database), read_only=True) as con:
        con.sql(SAMPLE_QUERY).show()
    print(
        'Explore further with: .venv/bin/python -c "import duckdb; '
        f"duckdb.connect('{database}', read_only=True).sql('SHOW ALL TABLES').show()\""
    )


if __name__ == "__main__":
    main()
