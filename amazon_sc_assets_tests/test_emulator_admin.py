"""The emulator's request log and its admin routes under /_emulator."""

from datetime import UTC, datetime

import httpx

from amazon_sc_assets.emulator import Fault

REPORTS_PATH = "/reports/2021-06-30/reports"
LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"


def test_request_log_records_each_request(emulator, caller):
    before = datetime.now(UTC)
    report_id = caller.create_report().json()["reportId"]
    caller.get_report(report_id)
    caller.get_report("123456789012")

    records = emulator.requests()

    assert [r.operation for r in records] == ["token", "createReport", "getReport", "getReport"]
    assert [r.status for r in records] == [200, 202, 200, 404]
    assert records[2].method == "GET"
    assert records[2].path == f"{REPORTS_PATH}/{report_id}"
    assert records[0].time >= before
    assert records[0].time.tzinfo is UTC
    assert len({r.request_id for r in records}) == 4


def test_request_log_request_id_matches_header(emulator, caller):
    response = caller.request_token()

    assert emulator.requests()[-1].request_id == response.headers["x-amzn-RequestId"]


def test_request_log_path_has_no_query(emulator, caller):
    report = caller.run_report()
    caller.download(report["reportDocumentId"])

    download = [r for r in emulator.requests() if r.operation == "downloadDocument"]

    assert len(download) == 1
    assert download[0].path.startswith("/report-documents/")
    assert "?" not in download[0].path
    assert "Signature" not in download[0].path


def test_request_log_count_by_status(emulator, caller):
    caller.get_report("123456789012")
    caller.get_report("123456789013")

    assert emulator.count("getReport") == 2
    assert emulator.count("getReport", 404) == 2
    assert emulator.count("getReport", 200) == 0


def test_request_log_unrouted_path(emulator):
    response = httpx.get(emulator.base_url + "/orders/v0/orders")

    assert response.status_code == 404
    assert emulator.requests()[-1].operation == "unknown"


def test_clear_requests(emulator, caller):
    caller.request_token()

    emulator.clear_requests()

    assert emulator.requests() == []


def test_admin_requests_route(emulator, caller):
    caller.get_report("123456789012")

    listed = caller.http.get("/_emulator/requests").json()["requests"]
    cleared = caller.http.delete("/_emulator/requests")

    assert [r["operation"] for r in listed] == ["token", "getReport"]
    assert listed[1]["status"] == 404
    assert datetime.fromisoformat(listed[1]["time"]).tzinfo is not None
    assert cleared.status_code == 204
    assert emulator.requests() == []


def test_admin_fault_route_injects(caller):
    added = caller.http.post(
        "/_emulator/faults", json={"operation": "getReports", "kind": "throttle"}
    )
    listed = caller.http.get("/_emulator/faults").json()["faults"]

    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})

    assert added.status_code == 201
    assert listed[0]["kind"] == "throttle"
    assert listed[0]["remaining"] == 1
    assert response.status_code == 429


def test_admin_fault_route_clears(caller):
    caller.http.post("/_emulator/faults", json={"operation": "getReports", "kind": "throttle"})

    cleared = caller.http.delete("/_emulator/faults")
    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})

    assert cleared.status_code == 204
    assert response.status_code == 200


def test_admin_fault_route_rejects_invalid(caller):
    response = caller.http.post(
        "/_emulator/faults", json={"operation": "getReports", "kind": "explode"}
    )

    assert response.status_code == 400
    assert "explode" in response.json()["errors"][0]["message"]


def test_clear_faults_in_process(emulator, caller):
    emulator.inject(Fault("getReports", "throttle", times=5))
    emulator.clear_faults()

    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})

    assert response.status_code == 200


def test_admin_routes_not_logged(emulator):
    httpx.get(emulator.base_url + "/_emulator/requests")

    assert emulator.requests() == []
