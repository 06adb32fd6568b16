"""The shared upsert planner: type mapping and widening, schema diffs, quoting, metadata specs."""

import dagster as dg
import duckdb
import polars as pl
import pytest

from amazon_sc_assets.io_managers.upsert_plan import (
    STRING,
    Dialect,
    SqlType,
    TypeKind,
    UnsafeTypeChangeError,
    UpsertConfigError,
    UpsertSpec,
    common_supertype,
    plan_schema,
    quote_identifier,
    sql_type_from_catalog,
    sql_type_from_polars,
)

BIGINT = SqlType(TypeKind.INTEGER, precision=19)
INT32 = SqlType(TypeKind.INTEGER, precision=10)
DECIMAL_18_2 = SqlType(TypeKind.DECIMAL, precision=18, scale=2)
DOUBLE = SqlType(TypeKind.FLOAT, precision=64)
TIMESTAMP_TZ = SqlType(TypeKind.TIMESTAMP_TZ)
TIMESTAMP = SqlType(TypeKind.TIMESTAMP)
ASSET = dg.AssetKey(["orders"])


@pytest.mark.parametrize(
    ("table_type", "batch_type", "expected"),
    [
        (BIGINT, BIGINT, BIGINT),  # same type
        (BIGINT, STRING, STRING),  # anything widens to string
        (TIMESTAMP_TZ, STRING, STRING),
        (STRING, DECIMAL_18_2, STRING),  # a string column absorbs any batch type
        (INT32, BIGINT, BIGINT),  # larger integer
        (BIGINT, DECIMAL_18_2, SqlType(TypeKind.DECIMAL, precision=21, scale=2)),  # 19 + 2 digits
        (
            DECIMAL_18_2,
            SqlType(TypeKind.DECIMAL, precision=10, scale=4),
            SqlType(TypeKind.DECIMAL, precision=20, scale=4),
        ),
        (DECIMAL_18_2, DOUBLE, None),  # floats do not hold decimals exactly
        (BIGINT, DOUBLE, None),  # nor every 64-bit integer
        (TIMESTAMP_TZ, TIMESTAMP, None),  # zoned and naive timestamps stay apart
        (SqlType(TypeKind.BOOLEAN), BIGINT, None),
        (SqlType(TypeKind.DECIMAL, precision=38, scale=0), SqlType(TypeKind.DECIMAL, 10, 5), None),
    ],
)
def test_common_supertype_table(table_type, batch_type, expected):
    assert common_supertype(table_type, batch_type) == expected


@pytest.mark.parametrize(
    ("dtype", "duckdb_spelling", "snowflake_spelling"),
    [
        (pl.String, "VARCHAR", "VARCHAR"),
        (pl.Int64, "BIGINT", "NUMBER(38,0)"),
        (pl.Decimal(18, 2), "DECIMAL(18,2)", "NUMBER(18,2)"),
        (pl.Datetime("us", "UTC"), "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_TZ"),
        (pl.Datetime("us"), "TIMESTAMP", "TIMESTAMP_NTZ"),
        (pl.Boolean, "BOOLEAN", "BOOLEAN"),
        (pl.Null, "VARCHAR", "VARCHAR"),  # an all-null column is stored as text
        (pl.Float64, "DOUBLE", "FLOAT"),
        (pl.Date, "DATE", "DATE"),
    ],
)
def test_sql_type_from_polars_spellings(dtype, duckdb_spelling, snowflake_spelling):
    sql_type = sql_type_from_polars("column", dtype)

    assert sql_type.render(Dialect.DUCKDB) == duckdb_spelling
    assert sql_type.render(Dialect.SNOWFLAKE) == snowflake_spelling


def test_sql_type_from_polars_rejects_nested_type():
    with pytest.raises(UnsafeTypeChangeError, match="'tags'"):
        sql_type_from_polars("tags", pl.List(pl.String))


@pytest.mark.parametrize(
    ("dialect", "data_type", "precision", "scale", "expected"),
    [
        (Dialect.DUCKDB, "BIGINT", 64, 0, BIGINT),
        (Dialect.DUCKDB, "DECIMAL(18,2)", 18, 2, DECIMAL_18_2),
        (Dialect.DUCKDB, "TIMESTAMP WITH TIME ZONE", None, None, TIMESTAMP_TZ),
        (Dialect.SNOWFLAKE, "NUMBER", 38, 0, SqlType(TypeKind.INTEGER, precision=38)),
        (Dialect.SNOWFLAKE, "NUMBER", 18, 2, DECIMAL_18_2),
        (Dialect.SNOWFLAKE, "TEXT", None, None, STRING),
        (Dialect.DUCKDB, "INTEGER[]", None, None, SqlType(TypeKind.OTHER, raw="INTEGER[]")),
    ],
)
def test_sql_type_from_catalog_parses(dialect, data_type, precision, scale, expected):
    assert sql_type_from_catalog(dialect, data_type, precision, scale) == expected


def test_plan_schema_adds_keeps_and_widens_columns():
    table = {"amazon_order_id": STRING, "quantity": BIGINT, "ship_city": STRING}
    batch = {"QUANTITY": DECIMAL_18_2, "amazon_order_id": STRING, "amazon_programs": STRING}

    plan = plan_schema(Dialect.DUCKDB, "orders", batch, table)

    assert [c.name for c in plan.columns] == [
        "amazon_order_id",
        "quantity",
        "ship_city",
        "amazon_programs",
    ]
    assert plan.column("QUANTITY").name == "quantity"  # matched case-insensitively
    assert plan.columns[2].batch_name is None  # kept, NULL for new rows
    assert [c.name for c in plan.columns_added] == ["amazon_programs"]
    assert plan.columns_altered == (
        ("quantity", BIGINT, SqlType(TypeKind.DECIMAL, precision=21, scale=2)),
    )


def test_plan_schema_snowflake_rejects_in_place_string_widening():
    with pytest.raises(UnsafeTypeChangeError, match="cannot change the column's type"):
        plan_schema(Dialect.SNOWFLAKE, "ORDERS", {"QUANTITY": STRING}, {"QUANTITY": BIGINT})


def test_plan_schema_error_names_column_and_types():
    with pytest.raises(UnsafeTypeChangeError) as raised:
        plan_schema(
            Dialect.DUCKDB, "s.orders", {"item_price": DOUBLE}, {"item_price": DECIMAL_18_2}
        )

    message = str(raised.value)
    assert "'item_price'" in message
    assert "DECIMAL(18,2)" in message
    assert "DOUBLE" in message
    assert "Cast the column" in message


def test_plan_schema_rejects_case_collision():
    with pytest.raises(UpsertConfigError, match="letter case"):
        plan_schema(Dialect.DUCKDB, "orders", {"sku": STRING, "SKU": STRING}, None)


def test_quote_identifier_doubles_quotes():
    assert quote_identifier('x"; drop table y; --') == '"x""; drop table y; --"'


def test_quote_identifier_round_trips_through_duckdb():
    hostile = 'x"; drop table y; --'
    con = duckdb.connect()
    try:
        con.execute(f"CREATE TABLE t ({quote_identifier(hostile)} VARCHAR)")
        columns = [row[0] for row in con.execute("DESCRIBE t").fetchall()]
    finally:
        con.close()

    assert columns == [hostile]


def test_upsert_spec_reads_metadata():
    spec = UpsertSpec.from_metadata(
        ASSET,
        {
            "upsert_key": ["amazon_order_id"],
            "version_column": "last_updated_date",
            "window_column": "purchase_date",
        },
    )

    assert spec == UpsertSpec(("amazon_order_id",), "last_updated_date", "purchase_date")


@pytest.mark.parametrize(
    ("metadata", "named_field"),
    [
        ({"version_column": "v"}, "upsert_key"),  # missing key
        ({"upsert_key": "amazon_order_id", "version_column": "v"}, "upsert_key"),  # not a list
        ({"upsert_key": ["amazon_order_id"]}, "version_column"),  # missing version
    ],
)
def test_upsert_spec_rejects_bad_metadata(metadata, named_field):
    with pytest.raises(UpsertConfigError, match=named_field):
        UpsertSpec.from_metadata(ASSET, metadata)
