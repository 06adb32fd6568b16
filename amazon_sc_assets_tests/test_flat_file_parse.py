"""Tests of parse_report_document on real report rows and on inputs that broke other parsers."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from amazon_sc_assets.flat_file import (
    FieldCountError,
    HeaderError,
    InvalidValueError,
    Lineage,
    ParsedDocument,
    ReportDocumentError,
    parse_report_document,
)
from amazon_sc_assets.flat_file import decode as decode_module
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER

FIXTURES = Path(__file__).parent / "fixtures"

LINEAGE = Lineage(
    report_id="50038018563",
    data_start_time=datetime(2020, 2, 17, tzinfo=UTC),
    data_end_time=datetime(2020, 2, 20, tzinfo=UTC),
    loaded_at=datetime(2026, 1, 5, 6, 30, tzinfo=UTC),
)


def parse_file(path: Path, tmp_path: Path, charset: str | None = None, **kwargs) -> ParsedDocument:
    return parse_report_document(
        path, charset, lineage=LINEAGE, work_dir=tmp_path / "work", **kwargs
    )


def parse_fixture(name: str, tmp_path: Path, charset: str | None = None, **kwargs):
    parsed = parse_file(FIXTURES / name, tmp_path, charset, **kwargs)
    return parsed, parsed.frame.collect()


def write_document(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "document.tsv"
    path.write_bytes(text.encode(encoding))
    return path


def standard_row(**values: str) -> str:
    """Return a data line of the 32-column header with the given fields set."""
    fields = dict.fromkeys(ORDER_REPORT_HEADER, "")
    fields.update(
        {
            "amazon-order-id": "028-1234567-1234567",
            "purchase-date": "2024-03-30T10:00:00+00:00",
            "last-updated-date": "2024-03-30T12:00:00+00:00",
            "quantity": "1",
            "item-price": "12.99",
        }
    )
    fields.update({name.replace("_", "-"): value for name, value in values.items()})
    return "\t".join(fields[name] for name in ORDER_REPORT_HEADER)


HEADER_LINE = "\t".join(ORDER_REPORT_HEADER)


@pytest.fixture
def small_read_blocks(monkeypatch):
    """Read 64 bytes at a time, so that a small document spans several batches.

    A batch ends at a read-block boundary, so with the default 4 MiB blocks every fixture
    would be a single batch whatever batch_rows is.
    """
    monkeypatch.setattr(decode_module, "READ_BLOCK_BYTES", 64)


def parquet_part_count(tmp_path: Path) -> int:
    return len(list((tmp_path / "work").glob("*/part-*.parquet")))


# Real US rows from 2020: CRLF line endings, literal quotes, blank amounts, "1.2" for 1.20.


def test_parse_us_2020_fixture_matches_expected_values(tmp_path):
    parsed, frame = parse_fixture("real-us-2020-lastupdate.tsv", tmp_path)
    expected = json.loads((FIXTURES / "real-us-2020-lastupdate.expected.json").read_text())

    assert parsed.row_count == len(expected)
    for row, expected_row in zip(frame.iter_rows(named=True), expected, strict=True):
        for column, expected_value in expected_row.items():
            value = row[column]
            if column in ("item_price", "item_tax") and expected_value is not None:
                expected_value = Decimal(expected_value)
            if column in ("purchase_date", "last_updated_date"):
                expected_value = datetime.fromisoformat(expected_value)
            assert value == expected_value, (row["amazon_order_id"], column)


def test_parse_us_2020_fixture_types_columns(tmp_path):
    _, frame = parse_fixture("real-us-2020-lastupdate.tsv", tmp_path)

    assert frame.schema["purchase_date"] == pl.Datetime("us", "UTC")
    assert frame.schema["last_updated_date"] == pl.Datetime("us", "UTC")
    assert frame.schema["quantity"] == pl.Int64
    assert frame.schema["item_price"] == pl.Decimal(18, 2)
    assert frame.schema["ship_promotion_discount"] == pl.Decimal(18, 2)
    assert frame.schema["is_business_order"] == pl.Boolean
    assert frame.schema["ship_postal_code"] == pl.String


def test_parse_us_2020_fixture_strips_carriage_returns(tmp_path):
    _, frame = parse_fixture("real-us-2020-lastupdate.tsv", tmp_path)

    # price_designation is the last column, so it would carry the CR of each CRLF line.
    assert frame["price_designation"].null_count() == frame.height


def test_parse_us_2020_fixture_keeps_one_decimal_amount(tmp_path):
    _, frame = parse_fixture("real-us-2020-lastupdate.tsv", tmp_path)

    row = frame.filter(pl.col("amazon_order_id") == "113-1728977-8707870")
    assert row["item_tax"].item() == Decimal("1.20")


def test_parse_it_2017_fixture_without_final_newline(tmp_path):
    parsed, frame = parse_fixture("real-it-2017-no-final-newline.tsv", tmp_path)

    assert parsed.row_count == 1
    row = frame.row(0, named=True)
    assert row["item_status"] == "Cancelled"
    assert row["item_price"] == Decimal("89.95")
    assert row["currency"] == "EUR"
    assert row["is_business_order"] is False
    assert row["price_designation"] is None
    assert row["purchase_date"] == datetime(2017, 6, 17, 8, 4, 21, tzinfo=UTC)


# Quoting is off: tab and newline are the only separators.


def test_parse_quotes_stay_literal(tmp_path):
    parsed, frame = parse_fixture("quotes-in-product-name.tsv", tmp_path)

    assert parsed.row_count == 3
    assert frame["product_name"].to_list() == [
        '"Best" Widget 10',
        '"Open quote never closed',
        '12" ruler',
    ]


def test_parse_unbalanced_quote_does_not_swallow_lines(tmp_path):
    _, frame = parse_fixture("quotes-in-product-name.tsv", tmp_path)

    assert frame["amazon_order_id"].to_list() == [
        "028-0000001-0000001",
        "028-0000002-0000002",
        "028-0000003-0000003",
    ]


def test_parse_keeps_trailing_empty_fields_as_null(tmp_path):
    path = write_document(tmp_path, f"{HEADER_LINE}\n{standard_row(price_designation='')}\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame.height == 1
    assert frame["purchase_order_number"].item() is None
    assert frame["price_designation"].item() is None


def test_parse_blank_string_and_amount_become_null(tmp_path):
    path = write_document(tmp_path, f"{HEADER_LINE}\n{standard_row(item_tax='', sku='')}\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame["item_tax"].item() is None
    assert frame["sku"].item() is None


def test_parse_header_only_document_has_no_rows(tmp_path):
    path = write_document(tmp_path, f"{HEADER_LINE}\n")

    parsed = parse_file(path, tmp_path)
    frame = parsed.frame.collect()

    assert parsed.row_count == 0
    assert frame.height == 0
    assert frame.schema["item_price"] == pl.Decimal(18, 2)
    assert frame.columns == parsed.columns


def test_parse_field_count_error_lists_lines(tmp_path):
    with pytest.raises(FieldCountError) as raised:
        parse_fixture("field-count-mismatch.tsv", tmp_path)

    assert raised.value.line_numbers == [3, 4, 6]
    assert raised.value.line_count == 3
    assert raised.value.expected_fields == 32
    assert "line 3 has 31" in str(raised.value)
    assert "line 4 has 1" in str(raised.value)
    assert "line 6 has 33" in str(raised.value)


def test_parse_field_count_error_counts_all_batches(tmp_path, small_read_blocks):
    short_row = standard_row()[: standard_row().rfind("\t")]
    lines = [standard_row()] * 10 + [short_row] * 8 + [standard_row()] * 10
    path = write_document(tmp_path, "\n".join([HEADER_LINE, *lines]) + "\n")

    with pytest.raises(FieldCountError) as raised:
        parse_file(path, tmp_path, batch_rows=3)

    assert raised.value.line_count == 8
    assert raised.value.line_numbers == [12, 13, 14, 15, 16]


def test_parse_failure_leaves_no_output(tmp_path):
    with pytest.raises(FieldCountError):
        parse_fixture("field-count-mismatch.tsv", tmp_path)

    assert list((tmp_path / "work").iterdir()) == []


# Error documents: Amazon completes the report but the document is a message.


def test_parse_date_range_error_document(tmp_path):
    with pytest.raises(ReportDocumentError) as raised:
        parse_fixture("error-date-range-exceeded.txt", tmp_path)

    expected_text = "Date range exceeded. Report can be requested only upto 30 days"
    assert raised.value.document_text.strip() == expected_text
    assert expected_text in str(raised.value)


def test_parse_json_error_document(tmp_path):
    with pytest.raises(ReportDocumentError) as raised:
        parse_fixture("error-fatal.json", tmp_path)

    assert "The report could not be generated" in raised.value.document_text


def test_parse_empty_document(tmp_path):
    path = write_document(tmp_path, "")

    with pytest.raises(ReportDocumentError, match="empty"):
        parse_file(path, tmp_path)


# Columns are mapped by header name, never position.


def test_parse_extra_column_mapped_by_name(tmp_path):
    parsed, frame = parse_fixture("extra-and-missing-columns.tsv", tmp_path)

    assert frame["amazon_programs"].item() == "Prime"
    assert frame["order_channel"].item() is None
    assert frame["sales_channel"].item() == "Amazon.de"
    assert frame["product_name"].item() == "Kissen"
    assert frame.schema["amazon_programs"] == pl.String
    assert "url" not in parsed.columns


def test_parse_columns_keep_file_order_then_lineage(tmp_path):
    parsed, frame = parse_fixture("extra-and-missing-columns.tsv", tmp_path)

    assert parsed.columns[5:9] == [
        "fulfillment_channel",
        "sales_channel",
        "amazon_programs",
        "order_channel",
    ]
    assert parsed.columns[-6:] == [
        "_report_id",
        "_data_start_time",
        "_data_end_time",
        "_loaded_at",
        "_file_line_number",
        "_order_line_number",
    ]
    assert frame.columns == parsed.columns


def test_parse_colliding_column_names(tmp_path):
    with pytest.raises(HeaderError) as raised:
        parse_fixture("colliding-column-names.tsv", tmp_path)

    assert "'ship-city' and 'ship_city'" in str(raised.value)


def test_parse_localized_german_header(tmp_path):
    with pytest.raises(HeaderError) as raised:
        parse_fixture("localized-header-german.tsv", tmp_path)

    assert "no 'amazon-order-id' column" in str(raised.value)
    assert "'bestell-nr.'" in str(raised.value)


def test_parse_localized_japanese_header(tmp_path):
    with pytest.raises(HeaderError) as raised:
        parse_fixture("localized-header-japanese.tsv", tmp_path, charset="cp932")

    assert "'注文番号'" in str(raised.value)


# Types: only unambiguous formats; a bad value fails with column, line and value.


def test_parse_decimal_comma_rejected(tmp_path):
    with pytest.raises(InvalidValueError) as raised:
        parse_fixture("locale-decimal-comma.tsv", tmp_path)

    (column,) = raised.value.columns
    assert column.column == "item_price"
    assert column.examples == ((3, "12,99"),)
    assert column.value_count == 1
    assert "line 3 '12,99'" in str(raised.value)
    assert "column_types={'item_price': 'string'}" in str(raised.value)


def test_parse_dst_offset_converted_to_utc(tmp_path):
    _, frame = parse_fixture("locale-dst-offset.tsv", tmp_path)

    assert frame["purchase_date"].item() == datetime(2024, 3, 31, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("fixture", "value"),
    [
        # A zone abbreviation is ambiguous and not ISO 8601.
        ("locale-pdt-abbreviation.tsv", "2022-07-11 01:34:18 PDT"),
        # The German settlement-report layout.
        ("locale-german-timestamp.tsv", "14.03.2023 07:49:55 UTC"),
    ],
)
def test_parse_locale_timestamp_rejected(tmp_path, fixture, value):
    with pytest.raises(InvalidValueError) as raised:
        parse_fixture(fixture, tmp_path)

    (column,) = raised.value.columns
    assert column.column == "purchase_date"
    assert column.column_type == "timestamp"
    assert column.examples == ((2, value),)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("item_price", "103.96", Decimal("103.96")),
        ("item_price", "1.2", Decimal("1.20")),
        ("item_price", "-5", Decimal("-5.00")),
        ("item_promotion_discount", "-0.50", Decimal("-0.50")),
        ("quantity", "4", 4),
        ("is_business_order", "true", True),
        ("is_business_order", "FALSE", False),
        ("purchase_date", "2020-02-18T05:05:21Z", datetime(2020, 2, 18, 5, 5, 21, tzinfo=UTC)),
        (
            "purchase_date",
            "2020-02-18T05:05:21-08:00",
            datetime(2020, 2, 18, 13, 5, 21, tzinfo=UTC),
        ),
    ],
)
def test_parse_typed_value(tmp_path, column, value, expected):
    path = write_document(tmp_path, f"{HEADER_LINE}\n{standard_row(**{column: value})}\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame[column].item() == expected


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("item_price", "12,99"),  # decimal comma would load as 1299 elsewhere
        ("item_price", "1,141.18"),  # thousands separator
        ("item_price", "1.999"),  # Decimal(18, 2) would round it
        ("item_price", "1e3"),  # exponent
        ("item_price", " 7.49"),  # padding
        ("quantity", "1.0"),
        ("quantity", "99999999999999999999"),  # beyond Int64
        ("is_business_order", "yes"),
        ("purchase_date", "2024-02-30T10:00:00+00:00"),  # no such day
        ("purchase_date", "2024-03-30T10:00:00"),  # no offset
        ("purchase_date", "2024-03-30"),
    ],
)
def test_parse_invalid_value_rejected(tmp_path, column, value):
    path = write_document(tmp_path, f"{HEADER_LINE}\n{standard_row(**{column: value})}\n")

    with pytest.raises(InvalidValueError) as raised:
        parse_file(path, tmp_path)

    (invalid,) = raised.value.columns
    assert invalid.column == column
    assert invalid.examples == ((2, value),)


def test_parse_invalid_values_reported_per_column(tmp_path, small_read_blocks):
    lines = [
        standard_row(item_price="12,99"),
        standard_row(quantity="x"),
        standard_row(item_price="1,00"),
    ]
    path = write_document(tmp_path, "\n".join([HEADER_LINE, *lines]) + "\n")

    with pytest.raises(InvalidValueError) as raised:
        parse_file(path, tmp_path, batch_rows=1)

    by_column = {column.column: column for column in raised.value.columns}
    assert by_column["item_price"].examples == ((2, "12,99"), (4, "1,00"))
    assert by_column["item_price"].value_count == 2
    assert by_column["quantity"].examples == ((3, "x"),)


def test_parse_column_type_override_keeps_text(tmp_path):
    _, frame = parse_fixture(
        "locale-decimal-comma.tsv", tmp_path, column_types={"item_price": "string"}
    )

    assert frame["item_price"].to_list() == ["12.99", "12,99"]


def test_parse_column_type_override_types_new_column(tmp_path):
    header = HEADER_LINE + "\tnumber-of-items"
    path = write_document(tmp_path, f"{header}\n{standard_row()}\t3\n")

    frame = parse_file(path, tmp_path, column_types={"number_of_items": "integer"}).frame.collect()

    assert frame["number_of_items"].item() == 3


def test_parse_undocumented_is_column_stays_string(tmp_path):
    header = HEADER_LINE + "\tis-prime"
    path = write_document(tmp_path, f"{header}\n{standard_row()}\ttrue\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame["is_prime"].item() == "true"


def test_parse_vat_exclusive_column_is_decimal(tmp_path):
    header = HEADER_LINE + "\tvat-exclusive-item-price\tvat-exclusive-new-fee"
    path = write_document(tmp_path, f"{header}\n{standard_row()}\t10.92\t0.5\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame["vat_exclusive_item_price"].item() == Decimal("10.92")
    assert frame["vat_exclusive_new_fee"].item() == Decimal("0.50")


def test_parse_invalid_column_type_override(tmp_path):
    with pytest.raises(ValueError, match="'float'"):
        parse_fixture("locale-dst-offset.tsv", tmp_path, column_types={"item_price": "float"})


# Lineage columns.


def test_parse_lineage_columns(tmp_path):
    _, frame = parse_fixture("quotes-in-product-name.tsv", tmp_path)

    row = frame.row(0, named=True)
    assert row["_report_id"] == "50038018563"
    assert row["_data_start_time"] == datetime(2020, 2, 17, tzinfo=UTC)
    assert row["_data_end_time"] == datetime(2020, 2, 20, tzinfo=UTC)
    assert row["_loaded_at"] == datetime(2026, 1, 5, 6, 30, tzinfo=UTC)
    assert frame["_file_line_number"].to_list() == [2, 3, 4]
    assert frame.schema["_loaded_at"] == pl.Datetime("us", "UTC")
    assert frame.schema["_file_line_number"] == pl.Int64


def test_parse_naive_lineage_time_rejected(tmp_path):
    naive = Lineage("R", datetime(2020, 2, 17), LINEAGE.data_end_time, LINEAGE.loaded_at)

    with pytest.raises(ValueError, match="data_start_time"):
        parse_report_document(
            FIXTURES / "locale-dst-offset.tsv", None, lineage=naive, work_dir=tmp_path
        )


@pytest.mark.parametrize(("batch_rows", "parts"), [(1, 4), (2, 2), (250_000, 1)])
def test_parse_order_line_numbers_across_batches(tmp_path, small_read_blocks, batch_rows, parts):
    # Two byte-identical rows and one other SKU of one order, around another order's row.
    _, frame = parse_fixture("multi-item-order.tsv", tmp_path, batch_rows=batch_rows)

    assert parquet_part_count(tmp_path) == parts

    assert frame["amazon_order_id"].to_list() == [
        "028-0000001-0000001",
        "028-0000002-0000002",
        "028-0000001-0000001",
        "028-0000001-0000001",
    ]
    assert frame["_order_line_number"].to_list() == [1, 1, 2, 3]
    assert frame["_file_line_number"].to_list() == [2, 3, 4, 5]


@pytest.mark.parametrize("order_id", ["scrubbed", "S01-1234567-1234567", ""])
def test_parse_order_line_numbers_for_other_order_ids(tmp_path, small_read_blocks, order_id):
    # Ids outside Amazon's 3-7-7 digit format, including a blank one, are counted as text.
    lines = [
        standard_row(amazon_order_id=order_id),
        standard_row(amazon_order_id="028-0000002-0000002"),
        standard_row(amazon_order_id=order_id),
    ]
    path = write_document(tmp_path, "\n".join([HEADER_LINE, *lines]) + "\n")

    frame = parse_file(path, tmp_path, batch_rows=1).frame.collect()

    assert parquet_part_count(tmp_path) == 3
    assert frame["_order_line_number"].to_list() == [1, 1, 2]


def test_parse_batches_keep_file_order(tmp_path, small_read_blocks):
    lines = [standard_row(amazon_order_id=f"028-{index:07d}-0000001") for index in range(50)]
    path = write_document(tmp_path, "\n".join([HEADER_LINE, *lines]))

    parsed = parse_file(path, tmp_path, batch_rows=7)
    frame = parsed.frame.collect()

    assert parquet_part_count(tmp_path) == 8
    assert parsed.row_count == 50
    assert frame["_file_line_number"].to_list() == list(range(2, 52))
    assert frame["amazon_order_id"].to_list() == [f"028-{i:07d}-0000001" for i in range(50)]


def test_parse_single_column_header(tmp_path):
    path = write_document(tmp_path, "amazon-order-id\n028-1234567-1234567\n")
    frame = parse_file(path, tmp_path).frame.collect()

    assert frame["amazon_order_id"].to_list() == ["028-1234567-1234567"]


def test_parse_keeps_carriage_return_inside_line(tmp_path):
    # Only the CR of a CRLF line ending is removed. A CR elsewhere is data.
    line = standard_row(sku="sku-1\r", product_name="Kissen\rblau")
    path = write_document(tmp_path, f"{HEADER_LINE}\r\n{line}\r\n")

    frame = parse_file(path, tmp_path).frame.collect()

    assert frame["sku"].item() == "sku-1\r"
    assert frame["product_name"].item() == "Kissen\rblau"
    assert frame["price_designation"].item() is None
