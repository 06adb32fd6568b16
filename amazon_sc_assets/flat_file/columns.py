"""Column vocabulary of the order-tracking flat files: snake_case names and documented types.

Amazon adds columns per marketplace, account program and over time, so the parser maps columns
by header name. Columns listed here get a type; every other column loads as a string.
"""

import re
from collections.abc import Mapping
from enum import StrEnum

import polars as pl

from amazon_sc_assets.flat_file.errors import HeaderError


class ColumnType(StrEnum):
    """Type that a flat-file column is parsed as."""

    STRING = "string"
    # Optional sign and decimal digits, e.g. "4".
    INTEGER = "integer"
    # Optional sign, digits, and at most 2 decimals after a ".", e.g. "103.96", "1.2", "-5".
    DECIMAL = "decimal"
    # ISO 8601 with seconds and a numeric offset or "Z", e.g. "2020-02-18T05:05:21+00:00".
    TIMESTAMP = "timestamp"
    # "true" or "false", in any letter case.
    BOOLEAN = "boolean"


POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.INTEGER: pl.Int64(),
    ColumnType.DECIMAL: pl.Decimal(18, 2),
    ColumnType.TIMESTAMP: pl.Datetime("us", "UTC"),
    ColumnType.BOOLEAN: pl.Boolean(),
}

# Types of the columns that Amazon documents for the two order-tracking report types or that
# real files of them contain. Documented columns that are not listed here (order ids, SKU,
# status, address parts, promotion ids, ...) are strings.
DOCUMENTED_COLUMN_TYPES: dict[str, ColumnType] = {
    "purchase_date": ColumnType.TIMESTAMP,
    "last_updated_date": ColumnType.TIMESTAMP,
    # Units on the line. The Seller Central help page in some locales calls it quantity-purchased.
    "quantity": ColumnType.INTEGER,
    "quantity_purchased": ColumnType.INTEGER,
    # Money columns are line totals for the quantity in the row's currency, never unit prices.
    "item_price": ColumnType.DECIMAL,
    "item_tax": ColumnType.DECIMAL,
    "shipping_price": ColumnType.DECIMAL,
    "shipping_tax": ColumnType.DECIMAL,
    "gift_wrap_price": ColumnType.DECIMAL,
    "gift_wrap_tax": ColumnType.DECIMAL,
    "item_promotion_discount": ColumnType.DECIMAL,
    "ship_promotion_discount": ColumnType.DECIMAL,
    # Optional by-order-date columns in EU marketplaces (any other vat_exclusive_* column is
    # typed as decimal too, see column_type).
    "vat_exclusive_item_price": ColumnType.DECIMAL,
    "vat_exclusive_shipping_price": ColumnType.DECIMAL,
    "vat_exclusive_giftwrap_price": ColumnType.DECIMAL,
    # true/false flags. Only is_business_order is in every file, and the others are optional
    # by-order-date columns. An unknown is_* column stays a string.
    "is_business_order": ColumnType.BOOLEAN,
    "is_heavy_or_bulky": ColumnType.BOOLEAN,
    "is_replacement_order": ColumnType.BOOLEAN,
    "is_exchange_order": ColumnType.BOOLEAN,
    "is_amazon_invoiced": ColumnType.BOOLEAN,
    "is_iba": ColumnType.BOOLEAN,
    "is_buyer_requested_cancellation": ColumnType.BOOLEAN,
    "is_transparency": ColumnType.BOOLEAN,
}

# Appended after the report's own columns, in this order.
LINEAGE_COLUMN_TYPES: dict[str, pl.DataType] = {
    "_report_id": pl.String(),
    "_data_start_time": pl.Datetime("us", "UTC"),
    "_data_end_time": pl.Datetime("us", "UTC"),
    "_loaded_at": pl.Datetime("us", "UTC"),
    # Line of the row in the document; line 1 is the header, so the first data row is 2.
    "_file_line_number": pl.Int64(),
    # 1-based position of the row among the rows of its amazon_order_id, in file order.
    "_order_line_number": pl.Int64(),
}

# Column that every order report has. A header without it is localized or not a report.
ORDER_ID_COLUMN = "amazon_order_id"

_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]")


def to_snake_case(header_name: str) -> str:
    """Return the snake_case column name for a header name, e.g. `amazon_order_id`.

    The name is stripped of surrounding whitespace and lower-cased, and each character outside
    a-z and 0-9 becomes "_".
    """
    return _NON_ALPHANUMERIC.sub("_", header_name.strip().lower())


def normalize_header(header_names: list[str]) -> list[str]:
    """Convert header names to snake_case column names and check that they are usable.

    Args:
        header_names: The header row's fields, in file order.

    Returns:
        The snake_case names, in the same order.

    Raises:
        HeaderError: A name is empty, two names normalize to the same column name, a name
            collides with a lineage column, or the header has no amazon-order-id column.
    """
    names = [to_snake_case(name) for name in header_names]

    empty_positions = [position for position, name in enumerate(names, start=1) if not name]
    if empty_positions:
        raise HeaderError(
            f"Header fields {empty_positions} (1-based) are empty. Every column of an order "
            "report needs a name; check that the header row has no stray or trailing tab."
        )

    first_header_of: dict[str, str] = {}
    for header_name, name in zip(header_names, names, strict=True):
        if name in LINEAGE_COLUMN_TYPES:
            raise HeaderError(
                f"Header name {header_name!r} becomes {name!r}, which is the name of a lineage "
                "column that the parser adds. Rename the column in the document."
            )
        if name in first_header_of:
            raise HeaderError(
                f"Header names {first_header_of[name]!r} and {header_name!r} both become "
                f"column {name!r}. Column names must stay distinct after conversion to "
                "snake_case; rename one of them in the document."
            )
        first_header_of[name] = header_name

    if ORDER_ID_COLUMN not in first_header_of:
        first_names = ", ".join(repr(name) for name in header_names[:5])
        raise HeaderError(
            f"The header row has no 'amazon-order-id' column. It starts with {first_names}. "
            "A header in another language means Seller Central wrote localized column names: "
            "set the account's 'Language for feed processing report' to English and request "
            "the report again."
        )
    return names


def column_type(name: str, overrides: Mapping[str, ColumnType]) -> ColumnType:
    """Return the type to parse a snake_case column as.

    An override wins, then the documented type, then the vat_exclusive_* rule. Any other
    column is a string.
    """
    if name in overrides:
        return overrides[name]
    if name in DOCUMENTED_COLUMN_TYPES:
        return DOCUMENTED_COLUMN_TYPES[name]
    if name.startswith("vat_exclusive_"):
        return ColumnType.DECIMAL
    return ColumnType.STRING


def parse_column_types(column_types: Mapping[str, str] | None) -> dict[str, ColumnType]:
    """Validate caller-supplied type overrides and convert them to ColumnType.

    Raises:
        ValueError: A type is not one of the ColumnType values, a name is a lineage column,
            or amazon_order_id is given a type other than "string".
    """
    overrides: dict[str, ColumnType] = {}
    for name, type_name in (column_types or {}).items():
        if name in LINEAGE_COLUMN_TYPES:
            raise ValueError(f"Column {name!r} is a lineage column, so its type is fixed.")
        if name == ORDER_ID_COLUMN and type_name != ColumnType.STRING:
            raise ValueError(
                f"Column {name!r} must stay a string, because order line numbers and upserts "
                f"group rows by it; remove it from column_types (got {type_name!r})."
            )
        try:
            overrides[name] = ColumnType(type_name)
        except ValueError:
            valid = ", ".join(repr(member.value) for member in ColumnType)
            raise ValueError(
                f"Invalid type {type_name!r} for column {name!r}; expected one of {valid}."
            ) from None
    return overrides
