"""Report documents of the emulator: content, selection, charsets and download URLs."""

import gzip
import json
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from amazon_sc_assets.emulator.replay import SAMPLES_DIR
from amazon_sc_assets.report_types import ORDER_REPORT_HEADER

LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US = "ATVPDKIKX0DER"
CA = "A2EUQ1WTGCTBG2"
MX = "A1AM78C64UM0Y8"


def write_flat_file(path: Path, rows: list[dict[str, str]], newline: str = "\r\n") -> Path:
    """Write a flat file with the 32-column header; unset columns are empty."""
    lines = ["\t".join(ORDER_REPORT_HEADER)]
    lines += ["\t".join(row.get(column, "") for column in ORDER_REPORT_HEADER) for row in rows]
    path.write_bytes((newline.join(lines) + newline).encode("utf-8"))
    return path


def order_row(order_id: str, purchase: str, updated: str, channel: str = "Amazon.com", **extra):
    return {
        "amazon-order-id": order_id,
        "purchase-date": purchase,
        "last-updated-date": updated,
        "sales-channel": channel,
        **extra,
    }


def data_rows(text: str) -> list[list[str]]:
    """Split a decoded document into rows, without the header and the trailing empty line."""
    return [line.split("\t") for line in text.split("\r\n")[1:] if line]


def test_report_flow_end_to_end(emulator_factory):
    """Token, createReport, polling, getReportDocument, download, gunzip, decode."""
    emulator = emulator_factory(replay_dir=SAMPLES_DIR)
    with httpx.Client(base_url=emulator.base_url, timeout=10.0) as http:
        token = http.post(
            emulator.token_url,
            data={
                "grant_type": "refresh_token",
                "client_id": emulator.config.client_id,
                "client_secret": emulator.config.client_secret,
                "refresh_token": emulator.config.refresh_token,
            },
        ).json()["access_token"]
        headers = {"x-amz-access-token": token}
        created = http.post(
            "/reports/2021-06-30/reports",
            headers=headers,
            json={
                "reportType": LAST_UPDATE,
                "marketplaceIds": [US],
                "dataStartTime": "2020-02-18T00:00:00Z",
                "dataEndTime": "2020-02-19T23:59:59Z",
            },
        )
        report_id = created.json()["reportId"]
        statuses = []
        while not statuses or statuses[-1] not in ("DONE", "CANCELLED", "FATAL"):
            report = http.get(f"/reports/2021-06-30/reports/{report_id}", headers=headers).json()
            statuses.append(report["processingStatus"])
        document = http.get(
            f"/reports/2021-06-30/documents/{report['reportDocumentId']}", headers=headers
        ).json()
        download = httpx.get(document["url"], timeout=10.0)

    content_type = download.headers["content-type"]
    text = gzip.decompress(download.content).decode(content_type.split("charset=")[1])
    lines = text.split("\r\n")
    header = lines[0].split("\t")
    rows = [line.split("\t") for line in lines[1:] if line]
    by_order_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    assert created.status_code == 202
    assert statuses[-1] == "DONE"
    assert document["compressionAlgorithm"] == "GZIP"
    assert document["reportDocumentId"] == report["reportDocumentId"]
    assert download.status_code == 200
    assert content_type == "text/plain;charset=UTF-8"
    assert download.headers["content-encoding"] == "identity"
    assert len(header) == 32
    assert header == list(ORDER_REPORT_HEADER)
    assert len(rows) == 13
    assert by_order_id["112-2719583-2458591"]["item-price"] == "25.99"
    assert by_order_id["112-2719583-2458591"]["item-tax"] == "2.14"
    assert by_order_id["111-1419610-5614226"]["product-name"].startswith('Trendy Home 12" x 18"')
    assert by_order_id["111-1419610-5614226"]["ship-postal-code"] == "42098-4657"


def test_document_without_sp_api_headers(caller):
    report = caller.run_report()
    url = caller.get_report_document(report["reportDocumentId"]).json()["url"]

    response = httpx.get(url)

    assert response.status_code == 200
    assert response.headers["x-amzn-RequestId"]


def test_get_report_document_rate_header(caller):
    report = caller.run_report()

    response = caller.get_report_document(report["reportDocumentId"])

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "16.7"


def test_get_report_document_unknown_id_is_404(caller):
    response = caller.get_report_document("amzn1.spdoc.1.4.na.unknown")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"


def test_content_encoding_gzip_on_request(caller):
    report = caller.run_report()
    document = caller.get_report_document(
        report["reportDocumentId"], enableContentEncodingUrlHeader="true"
    ).json()

    response = httpx.get(document["url"])

    assert response.headers["content-encoding"] == "gzip"
    # httpx has already undone the gzip encoding, so the body is the plain document.
    assert response.content.startswith(b"amazon-order-id\t")


def test_generated_document_has_32_columns(caller):
    report = caller.run_report()

    text = caller.download_text(report["reportDocumentId"])
    rows = data_rows(text)

    assert text.split("\r\n")[0].split("\t") == list(ORDER_REPORT_HEADER)
    assert rows
    assert all(len(row) == 32 for row in rows)


def test_last_update_returns_whole_region(emulator_factory, caller_factory, tmp_path):
    write_flat_file(
        tmp_path / "orders.tsv",
        [
            order_row(
                "111-0000001-0000001", "2025-03-01T10:00:00+00:00", "2025-03-02T10:00:00+00:00"
            ),
            order_row(
                "701-0000002-0000002",
                "2025-03-01T11:00:00+00:00",
                "2025-03-02T11:00:00+00:00",
                channel="Amazon.ca",
            ),
        ],
    )
    caller = caller_factory(emulator_factory(replay_dir=tmp_path))

    report = caller.run_report(
        report_type=LAST_UPDATE,
        marketplace_ids=[CA],
        start="2025-03-01T00:00:00Z",
        end="2025-03-03T00:00:00Z",
    )
    rows = data_rows(caller.download_text(report["reportDocumentId"]))

    assert {row[0] for row in rows} == {"111-0000001-0000001", "701-0000002-0000002"}


def test_order_date_returns_requested_marketplaces(emulator_factory, caller_factory, tmp_path):
    write_flat_file(
        tmp_path / "orders.tsv",
        [
            order_row(
                "111-0000001-0000001", "2025-03-01T10:00:00+00:00", "2025-03-02T10:00:00+00:00"
            ),
            order_row(
                "701-0000002-0000002",
                "2025-03-01T11:00:00+00:00",
                "2025-03-02T11:00:00+00:00",
                channel="Amazon.ca",
            ),
        ],
    )
    caller = caller_factory(emulator_factory(replay_dir=tmp_path))

    report = caller.run_report(
        report_type=ORDER_DATE,
        marketplace_ids=[CA],
        start="2025-03-01T00:00:00Z",
        end="2025-03-03T00:00:00Z",
    )
    rows = data_rows(caller.download_text(report["reportDocumentId"]))

    assert [row[0] for row in rows] == ["701-0000002-0000002"]


def test_generated_last_update_ignores_marketplace_ids(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(orders_per_day=200.0))

    last_update = caller.run_report(report_type=LAST_UPDATE, marketplace_ids=[MX])
    order_date = caller.run_report(report_type=ORDER_DATE, marketplace_ids=[MX])
    channel = ORDER_REPORT_HEADER.index("sales-channel")
    last_update_channels = {
        row[channel] for row in data_rows(caller.download_text(last_update["reportDocumentId"]))
    }
    order_date_channels = {
        row[channel] for row in data_rows(caller.download_text(order_date["reportDocumentId"]))
    }

    assert "Amazon.com" in last_update_channels
    assert order_date_channels == {"Amazon.com.mx"}


@pytest.mark.parametrize(
    ("report_type", "expected_ids"),
    [
        # Selects on last-updated-date: both ends of the range are included.
        (LAST_UPDATE, ["111-0000001-0000001", "111-0000002-0000002"]),
        # Selects on purchase-date: only the order purchased at the range end is inside.
        (ORDER_DATE, ["111-0000002-0000002", "111-0000003-0000003"]),
    ],
)
def test_selection_by_date_column_inclusive(
    emulator_factory, caller_factory, tmp_path, report_type, expected_ids
):
    write_flat_file(
        tmp_path / "orders.tsv",
        [
            # Purchased before the range, updated exactly at its start.
            order_row(
                "111-0000001-0000001", "2025-02-27T00:00:00+00:00", "2025-03-01T00:00:00+00:00"
            ),
            # Purchased exactly at the range end, updated at the same second.
            order_row(
                "111-0000002-0000002", "2025-03-02T00:00:00+00:00", "2025-03-02T00:00:00+00:00"
            ),
            # Purchased at the range start, updated after the range.
            order_row(
                "111-0000003-0000003", "2025-03-01T00:00:00+00:00", "2025-03-05T00:00:00+00:00"
            ),
        ],
    )
    caller = caller_factory(emulator_factory(replay_dir=tmp_path))

    report = caller.run_report(
        report_type=report_type, start="2025-03-01T00:00:00Z", end="2025-03-02T00:00:00Z"
    )
    rows = data_rows(caller.download_text(report["reportDocumentId"]))

    assert sorted(row[0] for row in rows) == expected_ids


def test_no_rows_is_cancelled_without_document(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(replay_dir=SAMPLES_DIR))

    report = caller.run_report(start="2024-01-01T00:00:00Z", end="2024-01-02T00:00:00Z")

    assert report["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in report


def test_range_over_30_days_is_fatal(caller):
    report = caller.run_report(start="2026-01-01T00:00:00Z", end="2026-02-15T00:00:00Z")

    text = caller.download_text(report["reportDocumentId"])

    assert report["processingStatus"] == "FATAL"
    assert json.loads(text) == {
        "errorDetails": "Date range exceeded. Report can be requested only upto 30 days"
    }


def test_range_of_exactly_30_days_is_done(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(replay_dir=SAMPLES_DIR))

    report = caller.run_report(start="2020-02-01T00:00:00Z", end="2020-03-02T00:00:00Z")

    assert report["processingStatus"] == "DONE"


@pytest.mark.parametrize(
    ("charset", "codec", "expected_name"),
    [
        # Every character fits in UTF-8.
        ("UTF-8", "utf-8", "Größe €5 “deluxe” Łódź 東京"),
        # cp1252 has €, curly quotes and ó, but not Ł or the kanji: those become ?.
        ("Cp1252", "cp1252", "Größe €5 “deluxe” ?ód? ??"),
        # Windows-31J (cp932) has the kanji but not ö, ß, €, curly quotes or Ł.
        ("Windows-31J", "cp932", "Gr??e ?5 “deluxe” ??d? 東京"),
    ],
)
def test_document_charset(
    emulator_factory, caller_factory, tmp_path, charset, codec, expected_name
):
    name = "Größe €5 “deluxe” Łódź 東京"
    write_flat_file(
        tmp_path / "orders.tsv",
        [
            order_row(
                "111-0000001-0000001",
                "2025-03-01T10:00:00+00:00",
                "2025-03-01T10:00:00+00:00",
                **{"product-name": name},
            )
        ],
    )
    caller = caller_factory(emulator_factory(replay_dir=tmp_path, charset=charset))
    report = caller.run_report(start="2025-03-01T00:00:00Z", end="2025-03-02T00:00:00Z")

    response = caller.download(report["reportDocumentId"])
    text = gzip.decompress(response.content).decode(codec)
    product_name = data_rows(text)[0][ORDER_REPORT_HEADER.index("product-name")]

    assert response.headers["content-type"] == f"text/plain;charset={charset}"
    assert product_name == expected_name


def _tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(changes)
    return parts._replace(query=urlencode(params)).geturl()


def test_download_bad_signature_is_403(caller):
    report = caller.run_report()
    url = caller.get_report_document(report["reportDocumentId"]).json()["url"]

    response = httpx.get(_tamper(url, **{"X-Amz-Expires": "999999"}))

    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_download_after_url_lifetime_is_403(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(document_url_lifetime_seconds=1))
    report = caller.run_report()
    url = caller.get_report_document(report["reportDocumentId"]).json()["url"]
    query = dict(parse_qsl(urlsplit(url).query))
    issued = query["X-Amz-Date"]

    # X-Amz-Date has second precision, so the URL expires 1 to 2 seconds after it was issued.
    for _ in range(100):
        response = httpx.get(url)
        if response.status_code != 200:
            break
        time.sleep(0.05)

    assert query["X-Amz-Expires"] == "1"
    assert issued.endswith("Z")
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in response.text
    assert "<Message>Request has expired</Message>" in response.text
