"""Each injectable fault of the emulator, observed over loopback HTTP."""

import gzip
import json
import zlib

import httpx
import pytest

from amazon_sc_assets.emulator import Fault

REPORTS_PATH = "/reports/2021-06-30/reports"
LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"


def list_reports(caller):
    return caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})


def test_throttle_fault_is_429(emulator, caller):
    emulator.inject(Fault("getReports", "throttle", times=2))

    responses = [list_reports(caller) for _ in range(3)]
    error = responses[0].json()["errors"][0]

    assert [r.status_code for r in responses] == [429, 429, 200]
    assert error["code"] == "QuotaExceeded"
    assert error["message"] == "You exceeded your quota for the requested resource."
    assert "x-amzn-RateLimit-Limit" not in responses[0].headers


@pytest.mark.parametrize(
    ("status", "code"),
    [
        # Default status of server_error.
        (None, "InternalFailure"),
        (500, "InternalFailure"),
        (503, "ServiceUnavailable"),
    ],
)
def test_server_error_fault(emulator, caller, status, code):
    report_id = caller.create_report().json()["reportId"]
    emulator.inject(Fault("getReport", "server_error", status=status))

    failed = caller.get_report(report_id)
    recovered = caller.get_report(report_id)

    assert failed.status_code == (status or 500)
    assert failed.json()["errors"][0]["code"] == code
    assert "x-amzn-RateLimit-Limit" not in failed.headers
    assert recovered.status_code == 200


def test_server_error_fault_on_token(emulator, caller):
    emulator.inject(Fault("token", "server_error", status=503))

    response = caller.request_token()

    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_slow_fault_delays_answer(emulator, caller):
    emulator.inject(Fault("getReports", "slow", delay_seconds=1.0))
    token = caller.access_token

    # The server sleeps 1 s, so a 0.2 s read timeout always expires first.
    with pytest.raises(httpx.ReadTimeout):
        caller.http.get(
            REPORTS_PATH,
            params={"reportTypes": LAST_UPDATE},
            headers={"x-amz-access-token": token},
            timeout=0.2,
        )
    answered = list_reports(caller)

    assert answered.status_code == 200


def test_not_found_fault(emulator, caller):
    report_id = caller.create_report().json()["reportId"]
    emulator.inject(Fault("getReport", "not_found", times=2))

    statuses = [caller.get_report(report_id).status_code for _ in range(3)]

    assert statuses == [404, 404, 200]


def test_stuck_in_queue_fault(emulator, caller):
    emulator.inject(Fault("createReport", "stuck_in_queue", times=3))
    report_id = caller.create_report().json()["reportId"]

    polls = [caller.get_report(report_id).json()["processingStatus"] for _ in range(3)]
    report = caller.wait_for_report(report_id)

    assert polls == ["IN_QUEUE", "IN_QUEUE", "IN_QUEUE"]
    assert report["processingStatus"] == "DONE"


def test_stuck_in_queue_fault_allows_cancel(emulator, caller):
    emulator.inject(Fault("createReport", "stuck_in_queue", times=5))
    report_id = caller.create_report().json()["reportId"]

    response = caller.call("DELETE", f"{REPORTS_PATH}/{report_id}")

    assert response.status_code == 200
    assert caller.get_report(report_id).json()["processingStatus"] == "CANCELLED"


def test_fatal_fault_error_document(emulator, caller):
    emulator.inject(Fault("createReport", "fatal", times=2, message="Report blew up."))

    first = caller.run_report()
    second = caller.run_report()
    third = caller.run_report()

    assert first["processingStatus"] == "FATAL"
    assert second["processingStatus"] == "FATAL"
    assert third["processingStatus"] == "DONE"
    assert json.loads(caller.download_text(first["reportDocumentId"])) == {
        "errorDetails": "Report blew up."
    }


def test_error_document_fault(emulator, caller):
    sentence = "Date range exceeded. Report can be requested only upto 30 days"
    emulator.inject(Fault("createReport", "error_document", message=sentence))

    report = caller.run_report()

    assert report["processingStatus"] == "DONE"
    assert caller.download_text(report["reportDocumentId"]) == sentence


def test_expired_url_fault(emulator, caller):
    report = caller.run_report()
    emulator.inject(Fault("getReportDocument", "expired_url"))

    expired = caller.download(report["reportDocumentId"])
    fresh = caller.download(report["reportDocumentId"])

    assert expired.status_code == 403
    assert "<Message>Request has expired</Message>" in expired.text
    assert fresh.status_code == 200


def test_drop_connection_fault(emulator, caller):
    report = caller.run_report()
    url = caller.get_report_document(report["reportDocumentId"]).json()["url"]
    emulator.inject(Fault("downloadDocument", "drop_connection"))

    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    retried = httpx.get(url)

    assert retried.status_code == 200
    assert gzip.decompress(retried.content).startswith(b"amazon-order-id\t")


def test_truncate_gzip_fault(emulator, caller):
    report = caller.run_report()
    url = caller.get_report_document(report["reportDocumentId"]).json()["url"]
    emulator.inject(Fault("downloadDocument", "truncate_gzip"))

    truncated = httpx.get(url)
    complete = httpx.get(url)

    assert truncated.status_code == 200
    assert int(truncated.headers["content-length"]) == len(truncated.content)
    assert len(truncated.content) < len(complete.content)
    with pytest.raises(EOFError):
        gzip.decompress(truncated.content)
    with pytest.raises(zlib.error):
        zlib.decompress(truncated.content, 15 + 32)


def test_faults_file_applied_at_start(emulator_factory, caller_factory, tmp_path):
    faults_file = tmp_path / "faults.json"
    faults_file.write_text(json.dumps([{"operation": "getReports", "kind": "throttle"}]))
    caller = caller_factory(emulator_factory(faults_file=faults_file))

    statuses = [list_reports(caller).status_code for _ in range(2)]

    assert statuses == [429, 200]


@pytest.mark.parametrize(
    "arguments",
    [
        # Unknown operation.
        {"operation": "getOrders", "kind": "throttle"},
        # Unknown kind.
        {"operation": "getReport", "kind": "explode"},
        # A download fault on an SP-API operation.
        {"operation": "getReport", "kind": "drop_connection"},
        # times below 1.
        {"operation": "getReport", "kind": "throttle", "times": 0},
        # server_error only sends 500 or 503.
        {"operation": "getReport", "kind": "server_error", "status": 502},
        # Negative delay.
        {"operation": "getReport", "kind": "slow", "delay_seconds": -1},
    ],
)
def test_fault_rejects_invalid_arguments(arguments):
    with pytest.raises(ValueError):
        Fault(**arguments)
