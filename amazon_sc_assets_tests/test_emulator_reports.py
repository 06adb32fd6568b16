"""createReport, getReport, cancelReport and getReports of the emulator, over loopback HTTP."""

import re
from datetime import UTC, datetime, timedelta

import pytest

REPORTS_PATH = "/reports/2021-06-30/reports"
LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
ORDER_DATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
US = "ATVPDKIKX0DER"
CA = "A2EUQ1WTGCTBG2"
DE = "A1PA6795UKMFR9"

# Second precision with a +00:00 offset, as in Amazon's Report JSON.
AMAZON_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def test_create_report_returns_numeric_id(caller):
    response = caller.create_report()

    assert response.status_code == 202
    assert response.json()["reportId"].isdigit()
    assert response.headers["x-amzn-RateLimit-Limit"] == "16.7"


def test_create_report_records_report_type(emulator, caller):
    caller.create_report(report_type=ORDER_DATE)

    records = [r for r in emulator.requests() if r.operation == "createReport"]

    assert len(records) == 1
    assert records[0].report_type == ORDER_DATE


def test_create_report_unknown_type_message(caller):
    response = caller.create_report(report_type="GET_SOMETHING_ELSE")
    error = response.json()["errors"][0]

    assert response.status_code == 400
    assert error["code"] == "InvalidInput"
    assert error["message"] == "Invalid Report Type GET_SOMETHING_ELSE"
    assert response.headers["x-amzn-RateLimit-Limit"] == "16.7"


NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.parametrize(
    ("body_changes", "message_part"),
    [
        # No marketplace id at all.
        ({"marketplaceIds": []}, "between 1 and 25"),
        # 26 marketplace ids, one more than the model allows.
        ({"marketplaceIds": [US] * 26}, "between 1 and 25"),
        # An id that is no Amazon marketplace.
        ({"marketplaceIds": ["NOTAMARKETPLACE"]}, "unknown"),
        # A real id of another region than the emulated NA.
        ({"marketplaceIds": [DE]}, "not in region NA"),
        # Not ISO 8601.
        ({"dataStartTime": "yesterday"}, "ISO 8601"),
        # dataEndTime in the future.
        ({"dataEndTime": (NOW + timedelta(days=1)).isoformat()}, "in the future"),
        # dataStartTime after dataEndTime.
        (
            {
                "dataStartTime": (NOW - timedelta(days=1)).isoformat(),
                "dataEndTime": (NOW - timedelta(days=2)).isoformat(),
            },
            "after dataEndTime",
        ),
    ],
)
def test_create_report_rejects_invalid_input(caller, body_changes, message_part):
    body = {
        "reportType": LAST_UPDATE,
        "marketplaceIds": [US],
        "dataStartTime": (NOW - timedelta(days=3)).isoformat(),
        "dataEndTime": (NOW - timedelta(days=2)).isoformat(),
        **body_changes,
    }
    response = caller.call("POST", REPORTS_PATH, json=body)
    error = response.json()["errors"][0]

    assert response.status_code == 400
    assert error["code"] == "InvalidInput"
    assert message_part in error["message"]


def test_create_report_rejects_non_json_body(caller):
    response = caller.call("POST", REPORTS_PATH, content=b"reportType=x")

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_get_report_in_queue_fields(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(time_scale=1.0, queue_seconds=3600))
    report_id = caller.create_report(marketplace_ids=[US, CA]).json()["reportId"]

    response = caller.get_report(report_id)
    report = response.json()

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "2"
    assert report["processingStatus"] == "IN_QUEUE"
    assert report["reportId"] == report_id
    assert report["reportType"] == LAST_UPDATE
    assert report["marketplaceIds"] == [US, CA]
    assert AMAZON_TIME.match(report["createdTime"])
    assert AMAZON_TIME.match(report["dataStartTime"])
    assert AMAZON_TIME.match(report["dataEndTime"])
    assert "processingStartTime" not in report
    assert "reportDocumentId" not in report


def test_get_report_in_progress_fields(emulator_factory, caller_factory):
    caller = caller_factory(
        emulator_factory(time_scale=1.0, queue_seconds=0, processing_seconds=3600)
    )
    report_id = caller.create_report().json()["reportId"]

    report = caller.get_report(report_id).json()

    assert report["processingStatus"] == "IN_PROGRESS"
    assert AMAZON_TIME.match(report["processingStartTime"])
    assert "processingEndTime" not in report
    assert "reportDocumentId" not in report


def test_get_report_done_fields(caller):
    report = caller.run_report()

    assert report["processingStatus"] == "DONE"
    assert AMAZON_TIME.match(report["processingStartTime"])
    assert AMAZON_TIME.match(report["processingEndTime"])
    assert report["reportDocumentId"].startswith("amzn1.spdoc.")


def test_get_report_echoes_data_times(caller):
    report = caller.run_report(start="2026-01-01T00:00:00Z", end="2026-01-02T12:30:00.123Z")

    assert report["dataStartTime"] == "2026-01-01T00:00:00+00:00"
    assert report["dataEndTime"] == "2026-01-02T12:30:00+00:00"


def test_get_report_unknown_id_is_404(caller):
    response = caller.get_report("123456789012")
    error = response.json()["errors"][0]

    assert response.status_code == 404
    assert error["code"] == "NotFound"
    assert error["message"] == "One or more of the provided ReportRequestIds could not be found."
    assert response.headers["x-amzn-RateLimit-Limit"] == "2000"


def test_cancel_report_in_queue(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(time_scale=1.0, queue_seconds=3600))
    report_id = caller.create_report().json()["reportId"]

    response = caller.call("DELETE", f"{REPORTS_PATH}/{report_id}")
    report = caller.get_report(report_id).json()

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0222"
    assert report["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in report


def test_cancel_report_in_progress_is_400(emulator_factory, caller_factory):
    caller = caller_factory(
        emulator_factory(time_scale=1.0, queue_seconds=0, processing_seconds=3600)
    )
    report_id = caller.create_report().json()["reportId"]

    response = caller.call("DELETE", f"{REPORTS_PATH}/{report_id}")
    report = caller.get_report(report_id).json()

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"
    assert "IN_PROGRESS" in response.json()["errors"][0]["message"]
    assert report["processingStatus"] == "IN_PROGRESS"


def test_cancel_report_done_is_400(caller):
    report = caller.run_report()

    response = caller.call("DELETE", f"{REPORTS_PATH}/{report['reportId']}")

    assert response.status_code == 400


def test_cancel_report_unknown_id_is_404(caller):
    response = caller.call("DELETE", f"{REPORTS_PATH}/123456789012")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "NotFound"


def _create_reports(caller, count, **arguments):
    return [caller.create_report(**arguments).json()["reportId"] for _ in range(count)]


def test_get_reports_filters_by_type(caller):
    last_update_ids = _create_reports(caller, 2)
    order_date_ids = _create_reports(caller, 1, report_type=ORDER_DATE)

    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": ORDER_DATE})
    listed = [report["reportId"] for report in response.json()["reports"]]

    assert response.status_code == 200
    assert response.headers["x-amzn-RateLimit-Limit"] == "22.2"
    assert listed == order_date_ids
    assert not set(listed) & set(last_update_ids)
    assert "nextToken" not in response.json()


def test_get_reports_filters_by_status(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(time_scale=1.0, queue_seconds=3600))
    queued, cancelled = _create_reports(caller, 2)
    caller.call("DELETE", f"{REPORTS_PATH}/{cancelled}")

    response = caller.call(
        "GET",
        REPORTS_PATH,
        params={"reportTypes": LAST_UPDATE, "processingStatuses": "CANCELLED,DONE"},
    )

    assert [report["reportId"] for report in response.json()["reports"]] == [cancelled]
    assert queued != cancelled


def test_get_reports_filters_by_marketplace(caller):
    (us_report,) = _create_reports(caller, 1, marketplace_ids=[US])
    (ca_report,) = _create_reports(caller, 1, marketplace_ids=[CA, US])
    _create_reports(caller, 1, marketplace_ids=["A1AM78C64UM0Y8"])

    response = caller.call(
        "GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE, "marketplaceIds": US}
    )

    assert [report["reportId"] for report in response.json()["reports"]] == [ca_report, us_report]


def test_get_reports_created_until_excludes_newer(caller):
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    _create_reports(caller, 2)

    response = caller.call(
        "GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE, "createdUntil": earlier}
    )

    assert response.status_code == 200
    assert response.json()["reports"] == []


def test_get_reports_pages_with_next_token(caller):
    created = _create_reports(caller, 12)

    first = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE}).json()
    second = caller.call("GET", REPORTS_PATH, params={"nextToken": first["nextToken"]}).json()
    listed = [report["reportId"] for report in first["reports"] + second["reports"]]

    assert len(first["reports"]) == 10
    assert len(second["reports"]) == 2
    assert "nextToken" not in second
    assert listed == list(reversed(created))


def test_get_reports_page_size(caller):
    _create_reports(caller, 3)

    page = caller.call(
        "GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE, "pageSize": "2"}
    ).json()

    assert len(page["reports"]) == 2
    assert "nextToken" in page


@pytest.mark.parametrize(
    "params",
    [
        # nextToken must come alone.
        {"nextToken": "e30=", "reportTypes": LAST_UPDATE},
        # Neither reportTypes nor nextToken.
        {"processingStatuses": "DONE"},
        # pageSize below 1 and above 100.
        {"reportTypes": LAST_UPDATE, "pageSize": "0"},
        {"reportTypes": LAST_UPDATE, "pageSize": "101"},
        # An unknown processing status.
        {"reportTypes": LAST_UPDATE, "processingStatuses": "BAD_VALUE"},
        # A nextToken that this emulator never issued.
        {"nextToken": "not-a-token"},
        # createdSince after createdUntil.
        {
            "reportTypes": LAST_UPDATE,
            "createdSince": "2026-01-02T00:00:00Z",
            "createdUntil": "2026-01-01T00:00:00Z",
        },
        # 11 report types, one more than the model allows.
        {"reportTypes": ",".join([LAST_UPDATE] * 11)},
    ],
)
def test_get_reports_rejects_invalid_query(caller, params):
    response = caller.call("GET", REPORTS_PATH, params=params)

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"
    assert response.headers["x-amzn-RateLimit-Limit"] == "22.2"
