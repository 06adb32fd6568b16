"""An IO manager that upserts report frames into a DuckDB file in one transaction."""

import logging
import random
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pyarrow as pa
from pydantic import Field

from amazon_sc_assets.io_managers import upsert_plan
from amazon_sc_assets.io_managers.upsert_plan import Dialect, TableRef, UpsertCounts, UpsertSpec

logger = logging.getLogger(__name__)

# Names of the connection-local objects that store the batch and the per-key plan.
_SOURCE_VIEW = "__upsert_source"
_STAGE_TABLE = '"__upsert_stage"'
_KEY_PLAN_TABLE = '"__upsert_key_plan"'

# Backoff between attempts to open a DuckDB file that another process has open: the first wait
# and the cap of each doubled wait, in seconds.
_LOCK_FIRST_WAIT = 0.05
_LOCK_MAX_WAIT = 2.0


class DuckDBPathError(OSError):
    """The folder of the configured DuckDB file cannot be created."""


class DuckDBLockTimeoutError(TimeoutError):
    """Raised when another process keeps a DuckDB file locked for longer than the lock timeout."""


def connect_duckdb(
    database: str,
    *,
    lock_timeout_seconds: float,
    config: dict[str, str] | None = None,
    log: logging.Logger | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file, waiting with exponential backoff while another process has it open.

    DuckDB allows one process at a time to open a file, so a second process gets
    `IOException: Could not set lock on file`.

    Args:
        database: Path of the DuckDB file.
        lock_timeout_seconds: How long to keep retrying, in seconds.
        config: DuckDB configuration options, for example `{"memory_limit": "1GB"}`.
        log: Logger for the waits, such as a Dagster `context.log`; the module's by default.

    Raises:
        DuckDBLockTimeoutError: If the file is still locked after `lock_timeout_seconds`. The
            message includes DuckDB's own text, which names the holding process when known.
    """
    deadline = time.monotonic() + lock_timeout_seconds
    wait = _LOCK_FIRST_WAIT
    attempt = 0
    while True:
        attempt += 1
        try:
            return duckdb.connect(database, config=config or {})
        except duckdb.IOException as error:
            if "Could not set lock" not in str(error):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DuckDBLockTimeoutError(
                    f"Timed out after {lock_timeout_seconds:g} s and {attempt} attempts waiting "
                    f"for the lock on DuckDB file {database}. DuckDB reported: {error}. Close "
                    "the process that has the file open (a notebook, the DuckDB CLI or another "
                    "run), or raise lock_timeout_seconds."
                ) from error
            sleep_for = min(wait * random.uniform(0.5, 1.5), remaining)
            (log or logger).info(
                "DuckDB file %s is locked by another process (attempt %d), retrying in %.2f s",
                database,
                attempt,
                sleep_for,
            )
            time.sleep(sleep_for)
            wait = min(wait * 2, _LOCK_MAX_WAIT)


def _stage_source(frame: pl.DataFrame | pl.LazyFrame, stage_dir: Path) -> pa.Table | Path | None:
    """Return the batch as an Arrow table or a Parquet file for DuckDB, or None if it is empty.

    A LazyFrame is streamed to a Parquet file, so neither Polars nor DuckDB keeps the whole
    batch in memory. DuckDB reads the file where the upsert needs it.
    """
    if isinstance(frame, pl.DataFrame):
        return None if frame.is_empty() else frame.to_arrow()

    if not frame.collect_schema():
        return None
    # NOTE: the parser has already written these rows as Parquet, so this is a second write.
    # The 1M-row upsert takes 1.9x DuckDB's read_csv of the same file (docs/benchmarks.md).
    path = stage_dir / "batch.parquet"
    frame.sink_parquet(path)
    if pl.scan_parquet(path).select(pl.len()).collect().item() == 0:
        return None
    return path


class DuckDBUpsertIOManager(dg.ConfigurableIOManager):
    """Upsert Polars frames into a DuckDB table per asset and read them back.

    The asset declares the upsert in its definition metadata: `upsert_key` (list of column
    names), `version_column`, and optionally `window_column` for partitioned reads. For each key
    in a batch, the table's rows are replaced by the batch rows of the key's newest version if
    that version is newer than or equal to the table's. The stage load, schema changes, delete
    and insert run in one transaction, so a failure leaves the table as it was.

    Example:
        ```python
        defs = dg.Definitions(
            assets=[orders],
            resources={"io_manager": DuckDBUpsertIOManager(database="orders.duckdb")},
        )
        ```
    """

    database: str = Field(
        description="Path of the DuckDB file. Definitions pass the AMAZON_SC_DUCKDB_PATH value."
    )
    schema_name: str = Field(
        default="amazon_seller_central", description="Schema that contains one table per asset."
    )
    lock_timeout_seconds: float = Field(
        default=60.0,
        description=(
            "Seconds to keep retrying, with backoff, while another process has the DuckDB file "
            "open."
        ),
    )
    memory_limit: str | None = Field(
        default="512MB",
        description=(
            'DuckDB memory_limit while upserting, for example "2GB". Past it DuckDB spills to '
            "a .tmp folder beside the database file, so a 5M-row report stays near 1 GiB of "
            "process memory. Raise it for speed on a larger machine; unset means DuckDB's "
            "default of 80% of RAM. Reads through load_input use DuckDB's default."
        ),
    )

    def _connect(
        self, *, limit_memory: bool = False, log: logging.Logger | None = None
    ) -> duckdb.DuckDBPyConnection:
        config: dict[str, str] = {}
        if limit_memory:
            # Row order within the table carries no meaning (each row has its lineage columns),
            # and without it DuckDB inserts in parallel and buffers less.
            config["preserve_insertion_order"] = "false"
            if self.memory_limit:
                config["memory_limit"] = self.memory_limit
        return connect_duckdb(
            self.database, lock_timeout_seconds=self.lock_timeout_seconds, config=config, log=log
        )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Runs before any asset of the run, so a bad path fails before reports are requested.
        if self.database == ":memory:":
            return
        folder = Path(self.database).resolve().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DuckDBPathError(
                f"Cannot create the folder {folder} for the DuckDB file {self.database}: "
                f"{error.strerror}. Set AMAZON_SC_DUCKDB_PATH (or the IO manager's database) "
                "to a path in a writable folder."
            ) from error

    def _stage_parent(self) -> Path | None:
        # Stage files go beside the database, which has room for the table anyway; the system
        # temporary folder is sometimes a small tmpfs.
        if self.database == ":memory:":
            return None
        return Path(self.database).resolve().parent

    def _table(self, asset_key: dg.AssetKey) -> TableRef:
        return TableRef(schema=self.schema_name, name=asset_key.path[-1])

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        """Upsert `obj` into the asset's table. An empty frame leaves the table untouched."""
        frame = upsert_plan.require_frame(context.asset_key, obj)
        spec = UpsertSpec.from_metadata(context.asset_key, context.definition_metadata or {})
        table = self._table(context.asset_key)
        frame = upsert_plan.prepare_frame(frame)
        batch_types = upsert_plan.batch_column_types(frame)

        with tempfile.TemporaryDirectory(prefix="upsert-stage-", dir=self._stage_parent()) as tmp:
            source = _stage_source(frame, Path(tmp))
            con = self._connect(limit_memory=True, log=context.log)
            try:
                if source is None:
                    context.log.info(
                        f"Batch for {table.label} has no rows, so the table is left untouched."
                    )
                    counts, columns_added = UpsertCounts(), []
                else:
                    counts, columns_added = self._upsert(con, spec, table, batch_types, source)
                metadata = self._table_metadata(con, table, batch_types, counts, columns_added)
            finally:
                con.close()

        context.add_output_metadata(metadata)
        context.log.info(upsert_plan.describe_counts(table.label, counts, columns_added))

    def _upsert(
        self,
        con: duckdb.DuckDBPyConnection,
        spec: UpsertSpec,
        table: TableRef,
        batch_types: dict[str, upsert_plan.SqlType],
        source: pa.Table | Path,
    ) -> tuple[UpsertCounts, list[str]]:
        """Run the whole upsert in one transaction and return its counts and added columns."""
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"CREATE SCHEMA IF NOT EXISTS {upsert_plan.quote_identifier(self.schema_name)}"
            )
            schema_plan = upsert_plan.plan_schema(
                Dialect.DUCKDB, table.label, batch_types, self._table_columns(con, table)
            )

            # Stage the batch as a view over Arrow data or a Parquet file, so DuckDB scans it in
            # bulk without copying it into a table first.
            if isinstance(source, Path):
                parquet = str(source).replace("'", "''")
                stage_query = f"SELECT * FROM read_parquet('{parquet}')"
            else:
                con.register(_SOURCE_VIEW, source)
                stage_query = f"SELECT * FROM {upsert_plan.quote_identifier(_SOURCE_VIEW)}"
            con.execute(f"CREATE TEMP VIEW {_STAGE_TABLE} AS {stage_query}")
            self._reject_null_keys(con, schema_plan, spec, table.label)

            # DuckDB DDL is transactional, so a later failure also undoes these schema changes.
            if schema_plan.create_table:
                con.execute(
                    upsert_plan.create_table_sql(Dialect.DUCKDB, table.quoted, schema_plan.columns)
                )
            for name, _, new_type in schema_plan.columns_altered:
                con.execute(
                    upsert_plan.alter_column_type_sql(Dialect.DUCKDB, table.quoted, name, new_type)
                )
            for column in schema_plan.columns_added:
                con.execute(upsert_plan.add_column_sql(Dialect.DUCKDB, table.quoted, column))

            # Decide per key, then replace the applied keys' rows.
            plan_query = upsert_plan.plan_select_sql(
                Dialect.DUCKDB,
                schema_plan,
                spec,
                stage=_STAGE_TABLE,
                table=table.quoted,
                table_label=table.label,
            )
            con.execute(f"CREATE TEMP TABLE {_KEY_PLAN_TABLE} AS {plan_query}")
            con.execute(
                upsert_plan.delete_sql(
                    schema_plan,
                    spec,
                    key_plan=_KEY_PLAN_TABLE,
                    table=table.quoted,
                    table_label=table.label,
                )
            )
            con.execute(
                upsert_plan.insert_sql(
                    Dialect.DUCKDB,
                    schema_plan,
                    spec,
                    stage=_STAGE_TABLE,
                    key_plan=_KEY_PLAN_TABLE,
                    table=table.quoted,
                    table_label=table.label,
                )
            )
            row = con.execute(upsert_plan.counts_sql(_KEY_PLAN_TABLE)).fetchone()
            counts = UpsertCounts.from_row(row or ())

            con.execute(f"DROP TABLE {_KEY_PLAN_TABLE}")
            con.execute(f"DROP VIEW {_STAGE_TABLE}")
            con.execute("COMMIT")
        except BaseException:
            self._rollback(con, table.label)
            raise
        return counts, [column.name for column in schema_plan.columns_added]

    @staticmethod
    def _rollback(con: duckdb.DuckDBPyConnection, label: str) -> None:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error as error:
            # The connection is closed next, which discards the transaction anyway.
            logger.warning("ROLLBACK of the upsert into %s failed: %s", label, error)

    @staticmethod
    def _reject_null_keys(
        con: duckdb.DuckDBPyConnection,
        schema_plan: upsert_plan.SchemaPlan,
        spec: UpsertSpec,
        label: str,
    ) -> None:
        query = upsert_plan.null_key_count_sql(schema_plan, spec, _STAGE_TABLE, label)
        row = con.execute(query).fetchone()
        null_rows = row[0] if row else 0
        if null_rows:
            raise upsert_plan.UpsertConfigError(
                f"{null_rows} rows of the batch for {label} have a NULL in the upsert key "
                f"{list(spec.upsert_key)}. Rows without a key cannot be replaced later, so drop "
                "or fix them before returning the frame."
            )

    @staticmethod
    def _table_columns(
        con: duckdb.DuckDBPyConnection, table: TableRef
    ) -> dict[str, upsert_plan.SqlType] | None:
        """Return the table's column types in table order, or None if the table does not exist."""
        rows = con.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            [table.schema, table.name],
        ).fetchall()
        if not rows:
            return None
        return {
            name: upsert_plan.sql_type_from_catalog(Dialect.DUCKDB, data_type, precision, scale)
            for name, data_type, precision, scale in rows
        }

    def _table_metadata(
        self,
        con: duckdb.DuckDBPyConnection,
        table: TableRef,
        batch_types: dict[str, upsert_plan.SqlType],
        counts: UpsertCounts,
        columns_added: list[str],
    ) -> dict[str, object]:
        table_columns = self._table_columns(con, table)
        if table_columns is None:
            # Only an empty first batch gets here: describe the batch, since no table exists.
            row_count = 0
            column_types = batch_types
        else:
            row = con.execute(f"SELECT COUNT(*) FROM {table.quoted}").fetchone()
            row_count = row[0] if row else 0
            column_types = table_columns
        return upsert_plan.output_metadata(
            table_name=table.label,
            row_count=row_count,
            columns=[(name, t.render(Dialect.DUCKDB)) for name, t in column_types.items()],
            counts=counts,
            columns_added=columns_added,
        )

    def count_keys_with_mixed_versions(
        self, asset_key: dg.AssetKey, *, upsert_key: list[str], version_column: str
    ) -> int:
        """Count the upsert keys whose rows in the asset's table carry different versions.

        Returns 0 when the table does not exist yet.
        """
        table = self._table(asset_key)
        con = self._connect()
        try:
            if self._table_columns(con, table) is None:
                return 0
            query = upsert_plan.mixed_versions_count_sql(table.quoted, upsert_key, version_column)
            row = con.execute(query).fetchone()
        finally:
            con.close()
        return int(row[0]) if row else 0

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        """Read the asset's table, or only the rows of the input's partition window.

        For a partitioned input the window is `report_window` of the partition time window and
        the rows are those whose `window_column` lies in [start, end).
        """
        table = self._table(context.asset_key)
        window = upsert_plan.partition_filter(context)
        if window is None:
            query, params = upsert_plan.window_select_sql(table.quoted, None), None
        else:
            window_column, start, end = window
            query = upsert_plan.window_select_sql(table.quoted, window_column)
            params = [start, end]
            context.log.info(f"Reading {table.label} rows with {window_column} in [{start}, {end})")

        con = self._connect()
        try:
            frame = con.sql(query, params=params).pl()
        finally:
            con.close()
        return upsert_plan.normalize_utc(frame)
