"""An IO manager that upserts report frames into Snowflake through a Parquet bulk load."""

import logging
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
from dagster_snowflake import SnowflakeResource
from pydantic import Field

from amazon_sc_assets.io_managers import upsert_plan
from amazon_sc_assets.io_managers.upsert_plan import Dialect, TableRef, UpsertCounts, UpsertSpec

logger = logging.getLogger(__name__)

# The Snowflake connector's default paramstyle is pyformat.
_PLACEHOLDER = "%s"


class SnowflakeUpsertIOManager(dg.ConfigurableIOManager):
    """Upsert Polars frames into a Snowflake table per asset and read them back.

    Schema, table and column names are upper case, so users query them without quotes. The asset
    declares the upsert in its definition metadata: `upsert_key` (list of column names),
    `version_column`, and optionally `window_column` for partitioned reads.

    Each write sinks the batch to Parquet, PUTs it into the table stage of a TRANSIENT stage
    table unique to the write, and COPYs it in. Snowflake commits DDL at once, so CREATE TABLE
    and ADD COLUMN run before the transaction, and a failed write can leave added (empty)
    columns behind. The per-key plan, DELETE and INSERT run in one transaction, and a `finally`
    block drops the stage tables.

    Example:
        ```python
        io_manager = SnowflakeUpsertIOManager(
            snowflake=SnowflakeResource(account=..., user=..., password=dg.EnvVar(...),
                                        database="RAW", warehouse="LOADING"),
        )
        ```
    """

    snowflake: dg.ResourceDependency[SnowflakeResource]
    schema_name: str = Field(
        default="AMAZON_SELLER_CENTRAL",
        description="Schema that contains one table per asset. Upper case so it needs no quotes.",
    )

    def _table(self, asset_key: dg.AssetKey) -> TableRef:
        return TableRef(schema=self.schema_name.upper(), name=asset_key.path[-1].upper())

    def _table_label(self, table: TableRef) -> str:
        database = self.snowflake.database
        return f"{database}.{table.label}" if database else table.label

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """Yield a cursor of a connection that is closed on every path."""
        if self.snowflake.connector not in (None, "", "snowflake"):
            raise upsert_plan.UpsertConfigError(
                f"SnowflakeResource has connector={self.snowflake.connector!r}, but "
                "SnowflakeUpsertIOManager needs the default snowflake-connector-python "
                "connection. Remove the connector setting from the resource."
            )
        with self.snowflake.get_connection() as conn:
            try:
                with conn.cursor() as cursor:
                    yield cursor
            except BaseException:
                # SnowflakeResource.get_connection does not close the connection on an error.
                conn.close()
                raise

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | pl.LazyFrame) -> None:
        """Upsert `obj` into the asset's table. An empty frame leaves the table untouched."""
        frame = upsert_plan.require_frame(context.asset_key, obj)
        spec = UpsertSpec.from_metadata(context.asset_key, context.definition_metadata or {})
        table = self._table(context.asset_key)
        label = self._table_label(table)
        frame = upsert_plan.prepare_frame(frame)
        frame = frame.rename({name: name.upper() for name in upsert_plan.frame_schema(frame)})
        batch_types = upsert_plan.batch_column_types(frame)

        with tempfile.TemporaryDirectory(prefix="snowflake_upsert_") as directory:
            parquet_path = Path(directory) / "batch.parquet"
            _write_parquet(frame, parquet_path)
            batch_rows = pq.read_metadata(parquet_path).num_rows

            with self._cursor() as cursor:
                if batch_rows == 0:
                    context.log.info(
                        f"Batch for {label} has no rows, so the table is left untouched."
                    )
                    counts, columns_added = UpsertCounts(), []
                else:
                    counts, columns_added = self._upsert(
                        cursor, spec, table, batch_types, parquet_path, batch_rows, context.run_id
                    )
                metadata = self._table_metadata(
                    cursor, table, label, batch_types, counts, columns_added
                )

        context.add_output_metadata(metadata)
        context.log.info(upsert_plan.describe_counts(label, counts, columns_added))

    def _upsert(
        self,
        cursor: Any,
        spec: UpsertSpec,
        table: TableRef,
        batch_types: dict[str, upsert_plan.SqlType],
        parquet_path: Path,
        batch_rows: int,
        run_id: str,
    ) -> tuple[UpsertCounts, list[str]]:
        """Load the batch into a stage table and replace the applied keys in one transaction."""
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {upsert_plan.quote_identifier(table.schema)}")
        schema_plan = upsert_plan.plan_schema(
            Dialect.SNOWFLAKE, table.label, batch_types, self._table_columns(cursor, table)
        )

        # Schema changes commit at once in Snowflake, so they run before BEGIN.
        if schema_plan.create_table:
            cursor.execute(
                upsert_plan.create_table_sql(Dialect.SNOWFLAKE, table.quoted, schema_plan.columns)
            )
        for name, _, new_type in schema_plan.columns_altered:
            cursor.execute(
                upsert_plan.alter_column_type_sql(Dialect.SNOWFLAKE, table.quoted, name, new_type)
            )
        for column in schema_plan.columns_added:
            cursor.execute(upsert_plan.add_column_sql(Dialect.SNOWFLAKE, table.quoted, column))

        # TRANSIENT, not TEMPORARY: TEMPORARY tables have no usable table stage in fakesnow, the
        # Snowflake emulator the tests run on. A name per write keeps concurrent runs apart.
        suffix = f"{run_id.replace('-', '')[:8]}_{uuid.uuid4().hex[:8]}".upper()
        stage = TableRef(table.schema, f"{table.name}__STAGE_{suffix}")
        key_plan = TableRef(table.schema, f"{table.name}__PLAN_{suffix}")
        try:
            self._load_stage(cursor, stage, batch_types, parquet_path, batch_rows)
            self._reject_null_keys(cursor, schema_plan, spec, stage, table)
            plan_query = upsert_plan.plan_select_sql(
                Dialect.SNOWFLAKE,
                schema_plan,
                spec,
                stage=stage.quoted,
                table=table.quoted,
                table_label=table.label,
            )
            cursor.execute(
                f"CREATE TRANSIENT TABLE {key_plan.quoted} AS "
                f"SELECT * FROM ({plan_query}) WHERE 1 = 0"
            )
            counts = self._replace_keys(cursor, schema_plan, spec, stage, key_plan, table)
        finally:
            for scratch in (stage, key_plan):
                cursor.execute(f"DROP TABLE IF EXISTS {scratch.quoted}")
        return counts, [column.name for column in schema_plan.columns_added]

    @staticmethod
    def _load_stage(
        cursor: Any,
        stage: TableRef,
        batch_types: dict[str, upsert_plan.SqlType],
        parquet_path: Path,
        batch_rows: int,
    ) -> None:
        columns = ", ".join(
            f"{upsert_plan.quote_identifier(name)} {sql_type.render(Dialect.SNOWFLAKE)}"
            for name, sql_type in batch_types.items()
        )
        cursor.execute(f"CREATE TRANSIENT TABLE {stage.quoted} ({columns})")

        # fakesnow 0.12.1 gzips a Parquet file unless AUTO_COMPRESS=FALSE, and COPY then fails.
        table_stage = f"@{upsert_plan.quote_identifier(stage.schema)}." + (
            upsert_plan.quote_identifier(f"%{stage.name}")
        )
        cursor.execute(f"PUT 'file://{parquet_path}' {table_stage} AUTO_COMPRESS=FALSE")
        cursor.execute(
            f"COPY INTO {stage.quoted} FROM {table_stage} FILE_FORMAT=(TYPE=PARQUET) "
            "MATCH_BY_COLUMN_NAME=CASE_INSENSITIVE PURGE=TRUE"
        )
        # Each result row describes one file: (file, status, rows_parsed, rows_loaded, ...).
        rows_loaded = sum(int(row[3] or 0) for row in cursor.fetchall())
        if rows_loaded != batch_rows:
            raise RuntimeError(
                f"COPY INTO {stage.label} loaded {rows_loaded} rows, expected {batch_rows} from "
                f"the batch's Parquet file. The target table was not changed. Rerun the step."
            )

    @staticmethod
    def _replace_keys(
        cursor: Any,
        schema_plan: upsert_plan.SchemaPlan,
        spec: UpsertSpec,
        stage: TableRef,
        key_plan: TableRef,
        table: TableRef,
    ) -> UpsertCounts:
        """Fill the plan table, DELETE and INSERT in one transaction and return the counts."""
        plan_query = upsert_plan.plan_select_sql(
            Dialect.SNOWFLAKE,
            schema_plan,
            spec,
            stage=stage.quoted,
            table=table.quoted,
            table_label=table.label,
        )
        # NOTE: Snowflake runs each statement at READ COMMITTED. If two runs write the same order
        # at the same time, both plans can apply it, and the later commit wins even when its
        # version is older. Runs of one asset must therefore not overlap.
        cursor.execute("BEGIN")
        try:
            cursor.execute(f"INSERT INTO {key_plan.quoted} {plan_query}")
            cursor.execute(
                upsert_plan.delete_sql(
                    schema_plan,
                    spec,
                    key_plan=key_plan.quoted,
                    table=table.quoted,
                    table_label=table.label,
                )
            )
            cursor.execute(
                upsert_plan.insert_sql(
                    Dialect.SNOWFLAKE,
                    schema_plan,
                    spec,
                    stage=stage.quoted,
                    key_plan=key_plan.quoted,
                    table=table.quoted,
                    table_label=table.label,
                )
            )
            cursor.execute(upsert_plan.counts_sql(key_plan.quoted))
            counts = UpsertCounts.from_row(cursor.fetchone() or ())
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        return counts

    @staticmethod
    def _reject_null_keys(
        cursor: Any,
        schema_plan: upsert_plan.SchemaPlan,
        spec: UpsertSpec,
        stage: TableRef,
        table: TableRef,
    ) -> None:
        cursor.execute(upsert_plan.null_key_count_sql(schema_plan, spec, stage.quoted, table.label))
        row = cursor.fetchone()
        null_rows = int(row[0]) if row else 0
        if null_rows:
            raise upsert_plan.UpsertConfigError(
                f"{null_rows} rows of the batch for {table.label} have a NULL in the upsert key "
                f"{list(spec.upsert_key)}. Rows without a key cannot be replaced later, so drop "
                "or fix them before returning the frame."
            )

    @staticmethod
    def _table_columns(cursor: Any, table: TableRef) -> dict[str, upsert_plan.SqlType] | None:
        """Return the table's column types in table order, or None if the table does not exist."""
        cursor.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale "
            "FROM information_schema.columns "
            f"WHERE table_schema = {_PLACEHOLDER} AND table_name = {_PLACEHOLDER} "
            "ORDER BY ordinal_position",
            (table.schema, table.name),
        )
        rows = cursor.fetchall()
        if not rows:
            return None
        return {
            name: upsert_plan.sql_type_from_catalog(
                Dialect.SNOWFLAKE,
                data_type,
                None if precision is None else int(precision),
                None if scale is None else int(scale),
            )
            for name, data_type, precision, scale in rows
        }

    def _table_metadata(
        self,
        cursor: Any,
        table: TableRef,
        label: str,
        batch_types: dict[str, upsert_plan.SqlType],
        counts: UpsertCounts,
        columns_added: list[str],
    ) -> dict[str, object]:
        table_columns = self._table_columns(cursor, table)
        if table_columns is None:
            # Only an empty first batch gets here: describe the batch, since no table exists.
            row_count = 0
            column_types = batch_types
        else:
            cursor.execute(f"SELECT COUNT(*) FROM {table.quoted}")
            row = cursor.fetchone()
            row_count = int(row[0]) if row else 0
            column_types = table_columns
        return upsert_plan.output_metadata(
            table_name=label,
            row_count=row_count,
            columns=[(name, t.render(Dialect.SNOWFLAKE)) for name, t in column_types.items()],
            counts=counts,
            columns_added=columns_added,
        )

    def count_keys_with_mixed_versions(
        self, asset_key: dg.AssetKey, *, upsert_key: list[str], version_column: str
    ) -> int:
        """Count the upsert keys whose rows in the asset's table carry different versions.

        Column names are matched in upper case, as this IO manager creates them. Returns 0 when
        the table does not exist yet.
        """
        table = self._table(asset_key)
        query = upsert_plan.mixed_versions_count_sql(
            table.quoted, [name.upper() for name in upsert_key], version_column.upper()
        )
        with self._cursor() as cursor:
            if self._table_columns(cursor, table) is None:
                return 0
            cursor.execute(query)
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        """Read the asset's table, or only the rows of the input's partition window.

        Column names come back in lower case, as the report parser names them, so downstream
        assets see the same names on DuckDB and Snowflake.
        """
        table = self._table(context.asset_key)
        window = upsert_plan.partition_filter(context)
        if window is None:
            query = upsert_plan.window_select_sql(table.quoted, None)
            params: tuple[object, ...] | None = None
        else:
            window_column, start, end = window
            query = upsert_plan.window_select_sql(
                table.quoted, window_column.upper(), placeholder=_PLACEHOLDER
            )
            params = (start, end)
            context.log.info(f"Reading {table.label} rows with {window_column} in [{start}, {end})")

        with self._cursor() as cursor:
            cursor.execute(query, params)
            frame = _fetch_polars(cursor)
        return frame.rename({name: name.lower() for name in frame.columns})


def _write_parquet(frame: pl.DataFrame | pl.LazyFrame, path: Path) -> None:
    """Write the batch to one Parquet file. A LazyFrame streams without being collected."""
    if isinstance(frame, pl.LazyFrame):
        frame.sink_parquet(path)
    else:
        frame.write_parquet(path)


def _fetch_polars(cursor: Any) -> pl.DataFrame:
    """Fetch a query result as a Polars DataFrame through Arrow."""
    try:
        fetch_arrow_all = cursor.fetch_arrow_all
    except AttributeError:
        # NOTE: fakesnow 0.12.1 cursors have no fetch_arrow_all, so only that path needs pandas.
        return pl.from_pandas(cursor.fetch_pandas_all())
    table = fetch_arrow_all(force_return_table=True)
    return pl.from_arrow(table)  # type: ignore[return-value]
