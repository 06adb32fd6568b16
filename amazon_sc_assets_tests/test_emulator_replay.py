"""The replay order source, which serves flat files downloaded from Seller Central."""

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from amazon_sc_assets.emulator.documents import write_flat_file
from amazon_sc_assets.emulator.replay import SAMPLES_DIR, ReplayOrderSource
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER, ReportType

FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)
HEADER = "amazon-order-id\tpurchase-date\tlast-updated-date\tsales-channel"


def rows_between(source, report_type, start, end, marketplace_ids=None, as_of=FAR_FUTURE):
    return list(
        source.iter_rows(
            report_type,
            datetime.fromisoformat(start),
            datetime.fromisoformat(end),
            marketplace_ids=marketplace_ids,
            as_of=as_of,
        )
    )


@pytest.mark.parametrize(
    "content",
    [
        # CRLF line endings with a final newline.
        HEADER + "\r\n1\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.com\r\n",
        # LF line endings.
        HEADER + "\n1\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.com\n",
        # No final newline.
        HEADER + "\n1\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.com",
    ],
)
def test_replay_line_endings(tmp_path, content):
    (tmp_path / "orders.tsv").write_bytes(content.encode("utf-8"))
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(source, ReportType.LAST_UPDATE, "2025-03-01T00:00Z", "2025-03-02T00:00Z")

    assert rows == [["1", "2025-03-01T10:00:00+00:00", "2025-03-01T10:00:00+00:00", "Amazon.com"]]


def test_replay_real_samples():
    source = ReplayOrderSource(SAMPLES_DIR)

    us_rows = rows_between(source, ReportType.LAST_UPDATE, "2020-02-01T00:00Z", "2020-02-29T00:00Z")
    it_rows = rows_between(source, ReportType.ORDER_DATE, "2017-06-17T00:00Z", "2017-06-18T00:00Z")

    assert source.header(ReportType.LAST_UPDATE) == list(ORDER_REPORT_HEADER)
    assert len(us_rows) == 13
    assert len(it_rows) == 1
    assert it_rows[0][ORDER_REPORT_HEADER.index("item-price")] == "89.95"
    assert it_rows[0][-1] == ""


def test_replay_marketplace_filter_uses_sales_channel(tmp_path):
    (tmp_path / "orders.tsv").write_text(
        HEADER + "\n"
        "1\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.com\n"
        "2\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.ca\n"
    )
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(
        source,
        ReportType.ORDER_DATE,
        "2025-03-01T00:00Z",
        "2025-03-02T00:00Z",
        marketplace_ids=["A2EUQ1WTGCTBG2"],
    )

    assert [row[0] for row in rows] == ["2"]


def test_replay_hides_rows_updated_after_as_of(tmp_path):
    (tmp_path / "orders.tsv").write_text(
        HEADER + "\n1\t2025-03-01T10:00:00+00:00\t2025-03-04T10:00:00+00:00\tAmazon.com\n"
    )
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(
        source,
        ReportType.ORDER_DATE,
        "2025-03-01T00:00Z",
        "2025-03-02T00:00Z",
        as_of=datetime(2025, 3, 3, tzinfo=UTC),
    )

    assert rows == []


def test_replay_union_header_across_files(tmp_path):
    (tmp_path / "a.tsv").write_text(
        "amazon-order-id\tpurchase-date\n1\t2025-03-01T10:00:00+00:00\n"
    )
    (tmp_path / "b.txt").write_text(
        "amazon-order-id\tamazon-programs\tpurchase-date\n2\tPrime\t2025-03-01T11:00:00+00:00\n"
    )
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(source, ReportType.ORDER_DATE, "2025-03-01T00:00Z", "2025-03-02T00:00Z")

    assert source.header(ReportType.ORDER_DATE) == [
        "amazon-order-id",
        "purchase-date",
        "amazon-programs",
    ]
    assert rows == [
        ["1", "2025-03-01T10:00:00+00:00", ""],
        ["2", "2025-03-01T11:00:00+00:00", "Prime"],
    ]


def test_replay_reads_cp1252_lines(tmp_path):
    content = "amazon-order-id\tpurchase-date\tproduct-name\n1\t2025-03-01T10:00:00+00:00\t€5\n"
    (tmp_path / "orders.tsv").write_bytes(content.encode("cp1252"))
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(source, ReportType.ORDER_DATE, "2025-03-01T00:00Z", "2025-03-02T00:00Z")

    assert rows[0][2] == "€5"


def test_replay_serves_malformed_lines_unchanged(tmp_path):
    # A short line and a long one reach the document as they are, so the client's parser
    # rejects them the way it would reject such a file from Amazon.
    (tmp_path / "orders.tsv").write_text(
        HEADER + "\n"
        "1\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\n"
        "2\t2025-03-01T10:00:00+00:00\t2025-03-01T10:00:00+00:00\tAmazon.com\tEXTRA\n"
    )
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(source, ReportType.LAST_UPDATE, "2025-03-01T00:00Z", "2025-03-02T00:00Z")

    assert rows[0] == ["1", "2025-03-01T10:00:00+00:00", "2025-03-01T10:00:00+00:00"]
    assert rows[1][-1] == "EXTRA"
    assert len(rows[1]) == 5


def test_replay_skips_unparseable_dates(tmp_path):
    (tmp_path / "orders.tsv").write_text(
        "amazon-order-id\tpurchase-date\n1\t14.03.2023 07:49:55 UTC\n2\t2025-03-01T10:00:00Z\n"
    )
    source = ReplayOrderSource(tmp_path)

    rows = rows_between(source, ReportType.ORDER_DATE, "2020-01-01T00:00Z", "2025-03-02T00:00Z")

    assert [row[0] for row in rows] == ["2"]


def test_replay_rejects_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="No flat files"):
        ReplayOrderSource(tmp_path)


def test_write_flat_file_streams_rows(tmp_path):
    path = tmp_path / "document.txt.gz"
    rows = (["order", str(index)] for index in range(50_000))

    count = write_flat_file(path, ["amazon-order-id", "quantity"], rows, "UTF-8")
    lines = gzip.decompress(Path(path).read_bytes()).decode("utf-8").split("\r\n")

    assert count == 50_000
    assert lines[0] == "amazon-order-id\tquantity"
    assert lines[50_000] == "order\t49999"
    assert lines[-1] == ""
