"""Tests of the column vocabulary: snake_case names, header checks and type lookup."""

import pytest

from amazon_sc_assets.flat_file import ColumnType, HeaderError
from amazon_sc_assets.flat_file.columns import (
    column_type,
    normalize_header,
    parse_column_types,
    to_snake_case,
)
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER


@pytest.mark.parametrize(
    ("header_name", "expected"),
    [
        ("amazon-order-id", "amazon_order_id"),
        ("Amazon-Order-ID", "amazon_order_id"),
        ("amazon_programs", "amazon_programs"),
        ("verge-of-lateShipment", "verge_of_lateshipment"),
        ("ship postal code", "ship_postal_code"),
        (" sku ", "sku"),
        ("bestell-nr.", "bestell_nr_"),
    ],
)
def test_to_snake_case_name(header_name, expected):
    assert to_snake_case(header_name) == expected


def test_normalize_header_standard_columns():
    names = normalize_header(list(ORDER_REPORT_HEADER))

    assert names[0] == "amazon_order_id"
    assert names[-1] == "price_designation"
    assert len(names) == 32


def test_normalize_header_hyphen_underscore_collision():
    with pytest.raises(HeaderError, match="'ship-city' and 'ship_city' both become"):
        normalize_header(["amazon-order-id", "ship-city", "ship_city"])


def test_normalize_header_duplicate_name():
    with pytest.raises(HeaderError, match="'sku' and 'sku'"):
        normalize_header(["amazon-order-id", "sku", "sku"])


def test_normalize_header_empty_name():
    with pytest.raises(HeaderError, match=r"\[3\]"):
        normalize_header(["amazon-order-id", "sku", ""])


def test_normalize_header_lineage_name_collision():
    with pytest.raises(HeaderError, match="_report_id"):
        normalize_header(["amazon-order-id", "-report-id"])


def test_normalize_header_without_order_id():
    with pytest.raises(HeaderError, match="Language for feed processing report"):
        normalize_header(["注文番号", "購入日"])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("purchase_date", ColumnType.TIMESTAMP),
        ("quantity", ColumnType.INTEGER),
        ("gift_wrap_tax", ColumnType.DECIMAL),
        ("vat_exclusive_giftwrap_price", ColumnType.DECIMAL),
        ("vat_exclusive_other_price", ColumnType.DECIMAL),
        ("is_business_order", ColumnType.BOOLEAN),
        ("is_iba", ColumnType.BOOLEAN),
        ("is_prime", ColumnType.STRING),
        ("ship_postal_code", ColumnType.STRING),
        ("amazon_programs", ColumnType.STRING),
    ],
)
def test_column_type_lookup(name, expected):
    assert column_type(name, {}) is expected


def test_column_type_override_wins():
    assert column_type("quantity", {"quantity": ColumnType.STRING}) is ColumnType.STRING


def test_parse_column_types_rejects_unknown_type():
    with pytest.raises(ValueError, match="'money' for column 'item_price'"):
        parse_column_types({"item_price": "money"})


def test_parse_column_types_keeps_order_id_string():
    with pytest.raises(ValueError, match="'amazon_order_id' must stay a string"):
        parse_column_types({"amazon_order_id": "integer"})


def test_parse_column_types_rejects_lineage_column():
    with pytest.raises(ValueError, match="lineage column"):
        parse_column_types({"_loaded_at": "string"})
