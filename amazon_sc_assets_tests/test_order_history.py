"""Tests of the emulator's generated order history and the report rows it yields."""

import hashlib
import os
import re
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from amazon_sc_assets.emulator.order_history import (
    MAX_ORDER_LIFETIME,
    OrderHistory,
    OrderHistoryConfig,
)
from amazon_sc_assets.marketplaces import Region
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER, ReportType

LAST_UPDATE = ReportType.LAST_UPDATE
ORDER_DATE = ReportType.ORDER_DATE

HISTORY_END = datetime(2026, 11, 30, tzinfo=UTC)
HISTORY_START = HISTORY_END - timedelta(days=20)
DAY = timedelta(days=1)
# A day well inside the history, so that every order of it has finished by HISTORY_END.
REPORT_DAY = datetime(2026, 11, 20, tzinfo=UTC)

CANADA = "A2EUQ1WTGCTBG2"
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+00:00$")
ORDER_ID_PATTERN = re.compile(r"^\d{3}-\d{7}-\d{7}$")
AMOUNT_COLUMNS = (
    "item-price",
    "item-tax",
    "shipping-price",
    "shipping-tax",
    "gift-wrap-price",
    "gift-wrap-tax",
    "item-promotion-discount",
    "ship-promotion-discount",
)


def make_history(**overrides: object) -> OrderHistory:
    settings: dict[str, object] = {
        "seed": 11,
        "start": HISTORY_START,
        "end": HISTORY_END,
        "orders_per_day": 300.0,
    }
    settings.update(overrides)
    return OrderHistory(OrderHistoryConfig(**settings))  # type: ignore[arg-type]


def report(
    history: OrderHistory,
    report_type: ReportType,
    start: datetime,
    end: datetime,
    *,
    as_of: datetime = HISTORY_END + 5 * DAY,
    marketplace_ids: list[str] | None = None,
) -> list[dict[str, str]]:
    """Return a report's rows as dicts keyed by the header's column names."""
    header = history.header(report_type)
    rows = history.iter_rows(report_type, start, end, marketplace_ids=marketplace_ids, as_of=as_of)
    return [dict(zip(header, row, strict=True)) for row in rows]


def rows_by_order(rows: list[dict[str, str]]) -> dict[str, list[dict[str, str]]]:
    orders: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        orders[row["amazon-order-id"]].append(row)
    return orders


def parse_date(text: str) -> datetime:
    return datetime.fromisoformat(text)


# Determinism


def test_order_history_same_rows_in_two_instances() -> None:
    first = make_history()
    second = make_history()

    for report_type in (LAST_UPDATE, ORDER_DATE):
        rows_first = report(first, report_type, REPORT_DAY, REPORT_DAY + 2 * DAY)
        rows_second = report(second, report_type, REPORT_DAY, REPORT_DAY + 2 * DAY)
        assert rows_first, f"{report_type.name} report is empty"
        assert rows_first == rows_second, f"{report_type.name} rows differ between instances"


def test_order_history_same_rows_in_another_process() -> None:
    script = """
import hashlib, sys
from datetime import UTC, datetime
from amazon_sc_assets.emulator.order_history import OrderHistory, OrderHistoryConfig
from amazon_sc_assets.report_types import ReportType

history = OrderHistory(OrderHistoryConfig(seed=5, orders_per_day=200.0))
rows = history.iter_rows(
    ReportType.LAST_UPDATE,
    datetime(2026, 11, 20, tzinfo=UTC),
    datetime(2026, 11, 22, tzinfo=UTC),
    marketplace_ids=None,
    as_of=datetime(2026, 11, 23, tzinfo=UTC),
)
digest = hashlib.sha256()
for row in rows:
    digest.update("\\t".join(row).encode() + b"\\n")
sys.stdout.write(digest.hexdigest())
"""
    history = OrderHistory(
        OrderHistoryConfig(seed=5, orders_per_day=200.0, start=datetime(2026, 10, 1, tzinfo=UTC))
    )
    digest = hashlib.sha256()
    for row in history.iter_rows(
        LAST_UPDATE,
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 22, tzinfo=UTC),
        marketplace_ids=None,
        as_of=datetime(2026, 11, 23, tzinfo=UTC),
    ):
        digest.update("\t".join(row).encode() + b"\n")

    # The child process uses a different hash seed, so any dependence on hash() shows up here.
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )

    assert completed.stdout == digest.hexdigest()


def test_order_history_order_date_independent_of_window() -> None:
    history = make_history()
    narrow = report(history, ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY)
    wide = report(history, ORDER_DATE, REPORT_DAY - 2 * DAY, REPORT_DAY + 3 * DAY)

    wide_in_narrow = [
        row for row in wide if REPORT_DAY <= parse_date(row["purchase-date"]) <= REPORT_DAY + DAY
    ]

    assert narrow
    assert narrow == wide_in_narrow


def test_order_history_last_update_independent_of_window() -> None:
    history = make_history()
    end = REPORT_DAY + 2 * DAY
    narrow = report(history, LAST_UPDATE, REPORT_DAY, end)
    wide = report(history, LAST_UPDATE, REPORT_DAY - 3 * DAY, end)

    wide_in_narrow = [row for row in wide if parse_date(row["last-updated-date"]) >= REPORT_DAY]

    assert narrow
    assert narrow == wide_in_narrow


def test_order_history_seeds_differ() -> None:
    rows_a = report(make_history(seed=1), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY)
    rows_b = report(make_history(seed=2), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY)

    assert rows_a != rows_b


# Header variants


@pytest.mark.parametrize("report_type", [LAST_UPDATE, ORDER_DATE])
def test_header_default_is_real_file_header(report_type: ReportType) -> None:
    assert make_history().header(report_type) == list(ORDER_REPORT_HEADER)


def test_header_cpf_after_promotion_ids_in_order_date() -> None:
    header = make_history(include_cpf=True).header(ORDER_DATE)

    assert len(header) == len(ORDER_REPORT_HEADER) + 1
    assert header[header.index("promotion-ids") + 1] == "cpf"
    assert [column for column in header if column != "cpf"] == list(ORDER_REPORT_HEADER)


def test_header_cpf_absent_from_last_update() -> None:
    header = make_history(include_cpf=True).header(LAST_UPDATE)

    assert header == list(ORDER_REPORT_HEADER)


@pytest.mark.parametrize("report_type", [LAST_UPDATE, ORDER_DATE])
def test_header_extra_column_before_is_business_order(report_type: ReportType) -> None:
    header = make_history(extra_column="amazon-programs").header(report_type)

    position = header.index("amazon-programs")
    assert header[position + 1] == "is-business-order"
    assert header[position - 1] == "promotion-ids"
    assert [column for column in header if column != "amazon-programs"] == list(ORDER_REPORT_HEADER)


def test_header_cpf_and_extra_column_order() -> None:
    header = make_history(include_cpf=True, extra_column="amazon-programs").header(ORDER_DATE)

    position = header.index("promotion-ids")
    assert header[position : position + 4] == [
        "promotion-ids",
        "cpf",
        "amazon-programs",
        "is-business-order",
    ]


@pytest.mark.parametrize(
    ("include_cpf", "extra_column"),
    [
        (False, None),  # the 32 columns of real files
        (True, None),  # Brazil sellers' ORDER_DATE files
        (False, "amazon-programs"),  # an undocumented column
        (True, "amazon-programs"),  # both
    ],
)
@pytest.mark.parametrize("report_type", [LAST_UPDATE, ORDER_DATE])
def test_rows_field_count_matches_header(
    report_type: ReportType, include_cpf: bool, extra_column: str | None
) -> None:
    history = make_history(include_cpf=include_cpf, extra_column=extra_column)
    header = history.header(report_type)
    rows = list(
        history.iter_rows(
            report_type,
            REPORT_DAY,
            REPORT_DAY + DAY,
            marketplace_ids=None,
            as_of=HISTORY_END,
        )
    )

    assert rows
    assert {len(row) for row in rows} == {len(header)}


def test_rows_cpf_only_on_brazil_rows() -> None:
    rows = report(make_history(include_cpf=True), ORDER_DATE, REPORT_DAY, REPORT_DAY + 2 * DAY)

    brazil = [row for row in rows if row["sales-channel"] == "Amazon.com.br"]
    others = [row for row in rows if row["sales-channel"] != "Amazon.com.br"]
    assert brazil
    assert all(re.fullmatch(r"\d{11}", row["cpf"]) for row in brazil)
    assert all(row["cpf"] == "" for row in others)


# Selection by report type


def test_selection_known_order_by_report_type() -> None:
    history = make_history()
    as_of = HISTORY_END
    purchased = report(history, ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY, as_of=as_of)
    # An order bought on REPORT_DAY whose final version is two or more days later.
    known = next(
        row
        for row in purchased
        if parse_date(row["last-updated-date"]) >= REPORT_DAY + 2 * DAY
        and parse_date(row["purchase-date"]) < REPORT_DAY + DAY
    )
    order_id = known["amazon-order-id"]
    final_update = parse_date(known["last-updated-date"])
    update_day = final_update.replace(hour=0, minute=0, second=0)

    updated_that_day = report(history, LAST_UPDATE, update_day, update_day + DAY, as_of=as_of)
    purchased_that_day = report(history, ORDER_DATE, update_day, update_day + DAY, as_of=as_of)
    updated_on_purchase_day = report(
        history, LAST_UPDATE, REPORT_DAY, REPORT_DAY + DAY, as_of=as_of
    )

    updated_ids = {row["amazon-order-id"]: row for row in updated_that_day}
    assert order_id in updated_ids
    assert updated_ids[order_id]["last-updated-date"] == known["last-updated-date"]
    assert order_id not in {row["amazon-order-id"] for row in purchased_that_day}
    # On the purchase day the order was seen in an earlier version.
    earlier = [row for row in updated_on_purchase_day if row["amazon-order-id"] == order_id]
    assert earlier
    assert all(parse_date(row["last-updated-date"]) < final_update for row in earlier)


def test_selection_order_date_purchase_dates_in_window() -> None:
    start = REPORT_DAY + timedelta(hours=5)
    end = REPORT_DAY + timedelta(hours=17, minutes=30)
    rows = report(make_history(), ORDER_DATE, start, end)

    assert rows
    assert all(start <= parse_date(row["purchase-date"]) <= end for row in rows)


def test_selection_last_update_dates_in_window() -> None:
    start = REPORT_DAY + timedelta(hours=5)
    end = REPORT_DAY + timedelta(hours=17, minutes=30)
    rows = report(make_history(), LAST_UPDATE, start, end)

    assert rows
    assert all(start <= parse_date(row["last-updated-date"]) <= end for row in rows)


def test_selection_last_update_includes_orders_bought_before_start() -> None:
    rows = report(make_history(), LAST_UPDATE, REPORT_DAY, REPORT_DAY + DAY)

    assert any(parse_date(row["purchase-date"]) < REPORT_DAY for row in rows)


def test_selection_last_update_stops_at_as_of() -> None:
    as_of = REPORT_DAY + timedelta(hours=12)
    rows = report(make_history(), LAST_UPDATE, REPORT_DAY, REPORT_DAY + DAY, as_of=as_of)

    assert rows
    assert max(parse_date(row["last-updated-date"]) for row in rows) <= as_of


def test_selection_order_date_shows_version_as_of() -> None:
    as_of = REPORT_DAY + timedelta(hours=12)
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY, as_of=as_of)

    assert rows
    assert max(parse_date(row["purchase-date"]) for row in rows) <= as_of
    assert max(parse_date(row["last-updated-date"]) for row in rows) <= as_of


def test_selection_respects_history_bounds() -> None:
    history = make_history()
    before = report(history, ORDER_DATE, HISTORY_START - 3 * DAY, HISTORY_START - DAY)
    after = report(history, ORDER_DATE, HISTORY_END + DAY, HISTORY_END + 3 * DAY)
    edges = report(history, ORDER_DATE, HISTORY_START - DAY, HISTORY_START + DAY)

    assert before == []
    assert after == []
    assert min(parse_date(row["purchase-date"]) for row in edges) >= HISTORY_START


def test_selection_empty_before_first_version() -> None:
    # An order's first version follows its purchase by up to 30 minutes.
    rows = report(
        make_history(),
        ORDER_DATE,
        HISTORY_START,
        HISTORY_START + DAY,
        as_of=HISTORY_START,
    )

    assert rows == []


def test_pending_order_later_shipped_with_price() -> None:
    history = make_history()
    early_as_of = REPORT_DAY + timedelta(hours=12)
    early = report(history, LAST_UPDATE, REPORT_DAY, early_as_of, as_of=early_as_of)
    later = rows_by_order(report(history, LAST_UPDATE, REPORT_DAY, REPORT_DAY + 5 * DAY))

    pending = [row for row in early if row["order-status"] == "Pending"]
    shipped_later = [
        row for row in pending if later[row["amazon-order-id"]][0]["order-status"] == "Shipped"
    ]
    assert shipped_later, "no order went from Pending to Shipped"
    first_seen = shipped_later[0]
    final = later[first_seen["amazon-order-id"]][0]
    assert first_seen["item-price"] == ""
    assert first_seen["item-tax"] == ""
    assert final["item-price"] != ""
    assert parse_date(final["last-updated-date"]) > parse_date(first_seen["last-updated-date"])


def test_order_lines_share_one_version() -> None:
    for report_type in (LAST_UPDATE, ORDER_DATE):
        orders = rows_by_order(report(make_history(), report_type, REPORT_DAY, REPORT_DAY + DAY))
        for order_id, lines in orders.items():
            versions = {(line["last-updated-date"], line["order-status"]) for line in lines}
            assert len(versions) == 1, f"{report_type.name} {order_id}: {versions}"


# Marketplaces


def test_last_update_ignores_marketplace_ids() -> None:
    history = make_history()
    everything = report(history, LAST_UPDATE, REPORT_DAY, REPORT_DAY + DAY)
    for_canada = report(
        history, LAST_UPDATE, REPORT_DAY, REPORT_DAY + DAY, marketplace_ids=[CANADA]
    )

    assert len({row["sales-channel"] for row in for_canada}) > 1
    assert for_canada == everything


def test_order_date_keeps_requested_marketplaces() -> None:
    rows = report(
        make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY, marketplace_ids=[CANADA]
    )

    assert rows
    assert {row["sales-channel"] for row in rows} == {"Amazon.ca"}
    assert {row["currency"] for row in rows} == {"CAD"}


def test_order_date_unknown_marketplace_raises() -> None:
    history = make_history()
    # Amazon.de belongs to the EU region, not to this NA history.
    with pytest.raises(ValueError, match="A1PA6795UKMFR9.*ATVPDKIKX0DER"):
        report(
            history, ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY, marketplace_ids=["A1PA6795UKMFR9"]
        )


@pytest.mark.parametrize(
    ("region", "sales_channels"),
    [
        (Region.NA, {"Amazon.com", "Amazon.ca", "Amazon.com.mx"}),
        (Region.EU, {"Amazon.co.uk", "Amazon.de", "Amazon.fr"}),
        (Region.FE, {"Amazon.co.jp", "Amazon.com.au"}),
    ],
)
def test_rows_sales_channels_of_region(region: Region, sales_channels: set[str]) -> None:
    rows = report(make_history(region=region), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY)

    assert sales_channels <= {row["sales-channel"] for row in rows}


# Realism of the rows


def test_rows_have_identical_item_lines() -> None:
    orders = rows_by_order(report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + 3 * DAY))

    duplicated = [
        order_id
        for order_id, lines in orders.items()
        if len({tuple(line.values()) for line in lines}) < len(lines)
    ]
    assert duplicated


def test_rows_have_multi_item_orders_with_distinct_skus() -> None:
    orders = rows_by_order(report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY))

    assert any(len({line["sku"] for line in lines}) > 1 for lines in orders.values())


def test_rows_formats_match_real_files() -> None:
    rows = report(make_history(), LAST_UPDATE, REPORT_DAY, REPORT_DAY + 2 * DAY)

    assert all(ORDER_ID_PATTERN.match(row["amazon-order-id"]) for row in rows)
    assert all(DATE_PATTERN.match(row["purchase-date"]) for row in rows)
    assert all(DATE_PATTERN.match(row["last-updated-date"]) for row in rows)
    assert {row["fulfillment-channel"] for row in rows} == {"Amazon", "Merchant"}
    assert {row["is-business-order"] for row in rows} == {"true", "false"}
    assert all(row["quantity"].isdigit() for row in rows)
    assert all(row["order-channel"] == "" and row["url"] == "" for row in rows)
    assert {row["order-status"] for row in rows} <= {
        "Pending",
        "Unshipped",
        "Shipping",
        "Shipped",
        "Cancelled",
    }


def test_rows_amounts_blank_for_zero() -> None:
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + 2 * DAY)

    amounts = [row[column] for row in rows for column in AMOUNT_COLUMNS if row[column]]
    assert amounts
    assert all(Decimal(amount) != 0 for amount in amounts)


def test_rows_item_price_is_line_total() -> None:
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + 3 * DAY)

    # The unit price of a SKU in one marketplace is the same whatever the quantity.
    unit_prices: dict[tuple[str, str], set[Decimal]] = defaultdict(set)
    for row in rows:
        if row["item-price"]:
            unit = Decimal(row["item-price"]) / int(row["quantity"])
            unit_prices[(row["sales-channel"], row["sku"])].add(unit)
    assert any(int(row["quantity"]) > 1 and row["item-price"] for row in rows)
    assert all(len(units) == 1 for units in unit_prices.values())


def test_rows_business_orders_and_promotions() -> None:
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + 3 * DAY)

    business = [row for row in rows if row["is-business-order"] == "true"]
    promoted = [row for row in rows if row["promotion-ids"]]
    assert business
    assert any(row["purchase-order-number"] for row in business)
    assert promoted
    assert all(row["item-promotion-discount"].startswith("-") for row in promoted)


def test_rows_product_names_with_literal_quotes() -> None:
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + DAY)

    names = {row["product-name"] for row in rows}
    assert any(name.startswith('"') for name in names)
    assert any('" ' in name and not name.startswith('"') for name in names)
    assert not any("\t" in name or "\n" in name for name in names)


def test_rows_order_ids_unique_per_order() -> None:
    history = make_history(orders_per_day=2000.0)
    orders = rows_by_order(report(history, ORDER_DATE, REPORT_DAY, REPORT_DAY + 2 * DAY))

    purchase_dates = {lines[0]["purchase-date"] for lines in orders.values()}
    assert len(orders) > 3000
    # Distinct orders that shared an id would show as one order with two purchase dates.
    assert all(len({line["purchase-date"] for line in lines}) == 1 for lines in orders.values())
    assert len(purchase_dates) > 1


# Charsets


def report_text(history: OrderHistory) -> str:
    rows = history.iter_rows(
        ORDER_DATE, REPORT_DAY, REPORT_DAY + 3 * DAY, marketplace_ids=None, as_of=HISTORY_END
    )
    return "\n".join("\t".join(row) for row in rows)


@pytest.mark.parametrize("region", [Region.NA, Region.EU, Region.FE])
def test_charset_cp1252_encodes_cleanly(region: Region) -> None:
    text = report_text(make_history(charset="Cp1252", region=region))

    text.encode("cp1252")  # raises UnicodeEncodeError on any character cp1252 lacks
    assert not text.isascii()


def test_charset_cp1252_keeps_euro_and_curly_quotes() -> None:
    text = report_text(make_history(charset="Cp1252", region=Region.EU))

    assert "€" in text
    assert "“" in text
    assert "ß" in text


@pytest.mark.parametrize("region", [Region.NA, Region.EU, Region.FE])
def test_charset_windows_31j_encodes_cleanly(region: Region) -> None:
    text = report_text(make_history(charset="Windows-31J", region=region))

    text.encode("cp932")  # raises UnicodeEncodeError on any character cp932 lacks
    assert "水筒" in text


def test_charset_utf8_has_japanese_and_polish() -> None:
    text = report_text(make_history(charset="UTF-8", region=Region.EU))

    assert "水筒" in text
    assert "Ł" in text


def test_config_invalid_charset_raises() -> None:
    with pytest.raises(ValueError, match="ISO-8859-1"):
        OrderHistoryConfig(charset="ISO-8859-1")


def test_config_existing_extra_column_raises() -> None:
    with pytest.raises(ValueError, match="sku"):
        OrderHistoryConfig(extra_column="sku")


def test_iter_rows_raises_at_call_time() -> None:
    history = make_history()
    # The server validates a request before it starts streaming the document.
    with pytest.raises(ValueError, match="after end"):
        history.iter_rows(
            ORDER_DATE, REPORT_DAY + DAY, REPORT_DAY, marketplace_ids=None, as_of=HISTORY_END
        )


def test_history_default_follows_wall_clock() -> None:
    history = OrderHistory(OrderHistoryConfig(seed=4, orders_per_day=500.0))
    now = datetime.now(UTC)
    rows = report(history, LAST_UPDATE, now - 2 * DAY, now, as_of=now)

    assert rows
    assert max(parse_date(row["last-updated-date"]) for row in rows) <= now


def test_iter_rows_reversed_window_raises() -> None:
    history = make_history()
    with pytest.raises(ValueError, match="after end"):
        report(history, ORDER_DATE, REPORT_DAY + DAY, REPORT_DAY)


def test_max_order_lifetime_bounds_updates() -> None:
    rows = report(make_history(), ORDER_DATE, REPORT_DAY, REPORT_DAY + 3 * DAY)

    lifetimes = [
        parse_date(row["last-updated-date"]) - parse_date(row["purchase-date"]) for row in rows
    ]
    assert max(lifetimes) <= MAX_ORDER_LIFETIME
    assert min(lifetimes) >= timedelta(0)
