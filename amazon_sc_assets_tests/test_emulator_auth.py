"""LWA token exchange and access-token checks of the emulator, over loopback HTTP."""

import time

import pytest

from amazon_sc_assets.emulator import EMULATOR_REFRESH_TOKEN, Fault

REPORTS_PATH = "/reports/2021-06-30/reports"
LAST_UPDATE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"


def test_token_success_body(caller):
    response = caller.request_token()
    body = response.json()

    assert response.status_code == 200
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == EMULATOR_REFRESH_TOKEN
    assert response.headers["x-amzn-RequestId"]


def test_token_lifetime_follows_config(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(token_lifetime_seconds=120))

    assert caller.request_token().json()["expires_in"] == 120


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        # Wrong client secret: the client itself is not authenticated.
        ({"client_secret": "wrong"}, "invalid_client"),
        # Wrong client id.
        ({"client_id": "amzn1.application-oa2-client.other"}, "invalid_client"),
        # Unknown refresh token.
        ({"refresh_token": "Atzr|other"}, "invalid_grant"),
        # Grant type other than refresh_token.
        ({"grant_type": "authorization_code"}, "invalid_grant"),
    ],
)
def test_token_rejects_bad_credentials(caller, overrides, error):
    response = caller.request_token(**overrides)

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert response.json()["error_description"]


def test_sp_api_missing_token_is_403(caller):
    response = caller.http.get(REPORTS_PATH, params={"reportTypes": LAST_UPDATE})
    error = response.json()["errors"][0]

    assert response.status_code == 403
    assert error["code"] == "Unauthorized"
    assert error["message"] == "Access to requested resource is denied."
    assert "invalid" in error["details"]
    assert "x-amzn-RateLimit-Limit" not in response.headers
    assert response.headers["x-amzn-RequestId"]


def test_sp_api_unknown_token_is_403(caller):
    response = caller.http.get(
        REPORTS_PATH,
        params={"reportTypes": LAST_UPDATE},
        headers={"x-amz-access-token": "Atza|made-up"},
    )

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "Unauthorized"


def test_sp_api_expired_token_is_403(emulator_factory, caller_factory):
    caller = caller_factory(emulator_factory(token_lifetime_seconds=1))
    token = caller.access_token
    time.sleep(1.1)

    response = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})
    error = response.json()["errors"][0]

    assert token.startswith("Atza|")
    assert response.status_code == 403
    assert error["message"] == "Access to requested resource is denied."
    assert error["details"] == "The access token you provided has expired."


def test_expire_token_fault_expires_issued_tokens(emulator, caller):
    old_token = caller.access_token
    emulator.inject(Fault("token", "expire_token"))

    expired = caller.call("GET", REPORTS_PATH, params={"reportTypes": LAST_UPDATE})
    new_token = caller.request_token().json()["access_token"]
    renewed = caller.http.get(
        REPORTS_PATH,
        params={"reportTypes": LAST_UPDATE},
        headers={"x-amz-access-token": new_token},
    )

    assert old_token != new_token
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["details"] == "The access token you provided has expired."
    assert renewed.status_code == 200
