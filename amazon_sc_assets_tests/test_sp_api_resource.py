"""SPAPIResource configuration, lifecycle and its use from a Dagster asset."""

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import httpx
import pydantic
import pytest

from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorHandle,
)
from amazon_sc_assets.report_types import ReportType
from amazon_sc_assets.sp_api import SPAPIConfigError, SPAPIResource, SPAPIServerError

SECRET = "resource-test-secret"
REFRESH = "Atzr|resource-test-refresh"


def base_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "lwa_client_id": "client-id",
        "lwa_client_secret": SECRET,
        "refresh_token": REFRESH,
        "region": "na",
        "marketplace_ids": ["ATVPDKIKX0DER"],
        # Never the real host in tests, even where no request is sent.
        "endpoint": "http://127.0.0.1:9",
        "lwa_token_url": "http://127.0.0.1:9/auth/o2/token",
        **overrides,
    }


def test_resource_rejects_marketplace_of_other_region() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        SPAPIResource(**base_fields(marketplace_ids=["A1PA6795UKMFR9"]))
    message = str(caught.value)
    assert "A1PA6795UKMFR9" in message
    assert "region eu" in message
    # The valid ids of the configured region are listed.
    assert "ATVPDKIKX0DER (US)" in message
    assert SECRET not in message
    assert REFRESH not in message


def test_resource_rejects_unknown_marketplace() -> None:
    with pytest.raises(pydantic.ValidationError, match="not a known Amazon marketplace id"):
        SPAPIResource(**base_fields(marketplace_ids=["NOPE"]))


def test_resource_rejects_unknown_region() -> None:
    with pytest.raises(pydantic.ValidationError, match="expected one of na, eu, fe"):
        SPAPIResource(**base_fields(region="us"))


def test_resource_empty_marketplaces_raise_at_setup() -> None:
    # Definitions load without SP_API_MARKETPLACE_IDS; a run without it fails at setup.
    resource = SPAPIResource(**base_fields(marketplace_ids=[""]))
    with pytest.raises(dg.DagsterResourceFunctionError) as caught:  # noqa: SIM117
        with dg.build_resources({"sp_api": resource}):
            pass
    cause = caught.value.__cause__
    assert isinstance(cause, SPAPIConfigError)
    assert "No marketplace ids configured for region na" in str(cause)


def test_resource_accepts_region_case_and_whitespace() -> None:
    resource = SPAPIResource(**base_fields(region=" EU ", marketplace_ids=["A1PA6795UKMFR9 "]))
    assert resource.region == "eu"
    assert resource.marketplace_ids == ["A1PA6795UKMFR9"]


def test_resource_endpoint_defaults_to_region_host() -> None:
    resource = SPAPIResource(
        **base_fields(endpoint=None, region="fe", marketplace_ids=["A1VC38T7YXB528"])
    )
    assert resource.resolved_endpoint() == "https://sellingpartnerapi-fe.amazon.com"


def test_resource_sandbox_endpoint() -> None:
    resource = SPAPIResource(**base_fields(endpoint=None, sandbox=True))
    assert resource.resolved_endpoint() == "https://sandbox.sellingpartnerapi-na.amazon.com"


def test_resource_from_env_reads_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SP_API_REGION", "eu")
    monkeypatch.setenv("SP_API_MARKETPLACE_IDS", "A1PA6795UKMFR9,A13V1IB3VIYZZH")
    monkeypatch.setenv("SP_API_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.delenv("SP_API_LWA_TOKEN_URL", raising=False)
    resource = SPAPIResource.from_env()
    assert resource.marketplace_ids == ["A1PA6795UKMFR9", "A13V1IB3VIYZZH"]
    assert resource.endpoint == "http://127.0.0.1:9"
    assert isinstance(resource.lwa_client_secret, dg.EnvVar)


def test_resource_repr_hides_secrets() -> None:
    text = repr(SPAPIResource(**base_fields()))
    assert SECRET not in text
    assert REFRESH not in text
    assert "client-id" in text


def test_resource_work_dir_before_setup_raises() -> None:
    resource = SPAPIResource(**base_fields())
    with pytest.raises(RuntimeError, match="not set up"):
        _ = resource.work_dir


def test_resource_empty_secret_raises_at_setup() -> None:
    resource = SPAPIResource(**base_fields(lwa_client_secret=""))
    with pytest.raises(dg.DagsterResourceFunctionError) as caught:  # noqa: SIM117
        with dg.build_resources({"sp_api": resource}):
            pass
    cause = caught.value.__cause__
    assert isinstance(cause, SPAPIConfigError)
    assert "lwa_client_secret is empty" in str(cause)


class MockTransportResource(SPAPIResource):
    """A resource whose httpx client gets its responses from an in-memory handler."""

    def _transport(self) -> httpx.BaseTransport | None:
        return httpx.MockTransport(answer)


def answer(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/auth/o2/token":
        return httpx.Response(200, json={"access_token": "Atza|mock", "expires_in": 3600})
    if path == "/reports/2021-06-30/reports" and request.method == "POST":
        return httpx.Response(202, json={"reportId": "55"})
    if path == "/reports/2021-06-30/reports":
        return httpx.Response(200, json={"reports": []})
    if path == "/reports/2021-06-30/reports/55":
        body = {
            "reportId": "55",
            "reportType": ReportType.LAST_UPDATE.value,
            "processingStatus": "DONE",
            "reportDocumentId": "d-55",
        }
        return httpx.Response(200, json=body)
    if path == "/reports/2021-06-30/documents/d-55":
        body = {
            "reportDocumentId": "d-55",
            "url": "http://127.0.0.1:9/d-55?sig=1",
            "compressionAlgorithm": "GZIP",
        }
        return httpx.Response(200, json=body)
    return httpx.Response(
        200,
        headers={"Content-Type": "text/plain;charset=UTF-8"},
        stream=httpx.ByteStream(gzip.compress(b"amazon-order-id\n1\n")),
    )


def test_resource_transport_hook_used_by_asset() -> None:
    @dg.asset
    def orders(sp_api: SPAPIResource) -> dg.MaterializeResult:
        end = datetime.now(UTC) - timedelta(minutes=1)
        result = sp_api.fetch_report(
            ReportType.LAST_UPDATE, end - timedelta(days=3), end, work_dir=sp_api.work_dir
        )
        text = result.reports[0].document.path.read_text(result.reports[0].document.charset)
        return dg.MaterializeResult(metadata={"rows": len(text.splitlines()) - 1})

    resource = MockTransportResource(**base_fields(poll_initial_seconds=0.0))
    outcome = dg.materialize([orders], resources={"sp_api": resource})
    materialization = outcome.asset_materializations_for_node("orders")[0]
    assert outcome.success
    assert materialization.metadata["rows"].value == 1


def test_resource_env_var_secrets_in_materialize(
    emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SP_API_LWA_CLIENT_ID", EMULATOR_CLIENT_ID)
    monkeypatch.setenv("SP_API_LWA_CLIENT_SECRET", EMULATOR_CLIENT_SECRET)
    monkeypatch.setenv("SP_API_REFRESH_TOKEN", EMULATOR_REFRESH_TOKEN)

    @dg.asset
    def orders(context: dg.AssetExecutionContext, sp_api: SPAPIResource) -> dg.MaterializeResult:
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        result = sp_api.fetch_report(
            ReportType.LAST_UPDATE,
            end - timedelta(days=3),
            end,
            work_dir=sp_api.work_dir,
            log=context.log,
        )
        return dg.MaterializeResult(metadata={"status": result.reports[0].processing_status})

    resource = SPAPIResource(
        lwa_client_id=dg.EnvVar("SP_API_LWA_CLIENT_ID"),
        lwa_client_secret=dg.EnvVar("SP_API_LWA_CLIENT_SECRET"),
        refresh_token=dg.EnvVar("SP_API_REFRESH_TOKEN"),
        marketplace_ids=["ATVPDKIKX0DER"],
        endpoint=emulator.base_url,
        lwa_token_url=emulator.token_url,
        poll_initial_seconds=0.01,
        poll_max_seconds=0.05,
    )
    outcome = dg.materialize([orders], resources={"sp_api": resource})
    materialization = outcome.asset_materializations_for_node("orders")[0]
    assert materialization.metadata["status"].value == "DONE"
    assert emulator.count("createReport", status=202) == 1


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"lwa_token_url": None}, "only SP_API_ENDPOINT is set"),
        ({"endpoint": None}, "only SP_API_LWA_TOKEN_URL is set"),
    ],
)
def test_resource_endpoint_overrides_come_in_pairs(overrides: dict, named: str) -> None:
    resource = SPAPIResource(**base_fields(**overrides))

    with pytest.raises(dg.DagsterResourceFunctionError) as caught:  # noqa: SIM117
        with dg.build_resources({"sp_api": resource}):
            pass

    assert isinstance(caught.value.__cause__, SPAPIConfigError)
    assert named in str(caught.value.__cause__)


def test_resource_unreachable_token_url_named(emulator: EmulatorHandle, tmp_path) -> None:
    # Nothing listens on port 9 of the loopback interface, so only the token exchange fails.
    unreachable = "http://127.0.0.1:9/auth/o2/token"
    resource = SPAPIResource(
        **base_fields(
            lwa_client_id=EMULATOR_CLIENT_ID,
            lwa_client_secret=EMULATOR_CLIENT_SECRET,
            refresh_token=EMULATOR_REFRESH_TOKEN,
            endpoint=emulator.base_url,
            lwa_token_url=unreachable,
            max_retries=1,
            retry_initial_seconds=0.01,
            retry_max_seconds=0.01,
            resume_lookback_hours=0,
        )
    )
    now = datetime.now(UTC).replace(microsecond=0)

    with (
        dg.build_resources({"sp_api": resource}) as resources,
        pytest.raises(SPAPIServerError) as caught,
    ):
        resources.sp_api.fetch_report(
            ReportType.LAST_UPDATE, now - timedelta(days=3), now, work_dir=tmp_path
        )

    assert unreachable in str(caught.value)
    assert "SP_API_LWA_TOKEN_URL" in str(caught.value)
    assert emulator.count("createReport") == 0
