"""`python -m amazon_sc_assets.emulator`, run as a subprocess on a free loopback port."""

import re
import subprocess
import sys

import httpx
import pytest

from amazon_sc_assets.emulator import EMULATOR_CLIENT_ID, EMULATOR_REFRESH_TOKEN


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "amazon_sc_assets.emulator", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_help_explains_flags():
    result = run_cli("--help")

    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--seed",
        "--time-scale",
        "--replay",
        "--charset",
        "--orders-per-day",
        "--history-days",
        "--token-lifetime",
        "--faults",
    ):
        assert flag in result.stdout
    assert "N times faster" in result.stdout
    assert "seconds" in result.stdout


def test_cli_rejects_unknown_charset():
    result = run_cli("--charset", "latin-1")

    assert result.returncode == 2
    assert "latin-1" in result.stderr


@pytest.fixture
def cli_process():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "amazon_sc_assets.emulator",
            "--port",
            "0",
            "--time-scale",
            "1000",
            "--history-days",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield process
    process.terminate()
    process.wait(timeout=30)


def test_cli_prints_urls_and_serves(cli_process):
    printed = [cli_process.stdout.readline() for _ in range(5)]
    base_url = re.search(r"http://127\.0\.0\.1:\d+", printed[0]).group(0)

    response = httpx.post(
        base_url + "/auth/o2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": EMULATOR_CLIENT_ID,
            "client_secret": "emulator-client-secret",
            "refresh_token": EMULATOR_REFRESH_TOKEN,
        },
    )

    assert printed[1].strip().endswith(base_url + "/auth/o2/token")
    assert EMULATOR_CLIENT_ID in printed[2]
    assert EMULATOR_REFRESH_TOKEN in printed[4]
    assert response.status_code == 200


def test_cli_stops_on_sigterm(cli_process):
    cli_process.stdout.readline()

    cli_process.terminate()

    assert cli_process.wait(timeout=30) == 0
