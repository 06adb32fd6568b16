"""Run the SP-API emulator as a separate process, so its memory is not counted in a measurement.

The emulator builds report documents on its own threads. On a 2-core machine a build would
compete for CPU with a measured stage, so the benchmark starts each clock only after the report
is DONE.
"""

import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from amazon_sc_assets.emulator import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
)

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
ENDPOINT_PREFIX = "SP-API endpoint: "
# Every marketplace of the NA region. LAST_UPDATE reports ignore this filter.
MARKETPLACE_IDS = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8"]


@dataclass(frozen=True)
class EmulatorProcess:
    """A running emulator process and the URLs it serves on 127.0.0.1."""

    pid: int
    base_url: str
    token_url: str

    def request_log(self) -> list[dict[str, Any]]:
        """Fetch the emulator's request log, oldest first, from `GET /_emulator/requests`."""
        response = httpx.get(self.base_url + "/_emulator/requests", timeout=60.0)
        response.raise_for_status()
        return response.json()["requests"]

    def resource_settings(self) -> dict[str, Any]:
        """Return the `SPAPIResource` fields that point the project at this emulator."""
        return {
            "lwa_client_id": EMULATOR_CLIENT_ID,
            "lwa_client_secret": EMULATOR_CLIENT_SECRET,
            "refresh_token": EMULATOR_REFRESH_TOKEN,
            "region": "na",
            "marketplace_ids": MARKETPLACE_IDS,
            "endpoint": self.base_url,
            "lwa_token_url": self.token_url,
        }

    def environment(self) -> dict[str, str]:
        """Return the environment variables that `build_definitions` reads for this emulator."""
        return {
            "SP_API_ENDPOINT": self.base_url,
            "SP_API_LWA_TOKEN_URL": self.token_url,
            "SP_API_LWA_CLIENT_ID": EMULATOR_CLIENT_ID,
            "SP_API_LWA_CLIENT_SECRET": EMULATOR_CLIENT_SECRET,
            "SP_API_REFRESH_TOKEN": EMULATOR_REFRESH_TOKEN,
            "SP_API_REGION": "na",
            "SP_API_MARKETPLACE_IDS": ",".join(MARKETPLACE_IDS),
        }


@contextlib.contextmanager
def run_emulator_process(
    *,
    log_path: Path,
    time_scale: float,
    history_days: int,
    orders_per_day: float,
    seed: int = 1,
) -> Iterator[EmulatorProcess]:
    """Run `python -m amazon_sc_assets.emulator` on a free loopback port for a `with` block.

    Args:
        log_path: File that receives the emulator's stderr log.
        time_scale: Factor by which quota refill and report processing run faster.
        history_days: Days of generated order history before now.
        orders_per_day: Mean number of generated orders per day.
        seed: Seed of the order history and of report ids.

    Raises:
        RuntimeError: When the emulator exits or prints no endpoint within 60 seconds.
    """
    command = [
        sys.executable,
        "-m",
        "amazon_sc_assets.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--seed",
        str(seed),
        "--time-scale",
        str(time_scale),
        "--history-days",
        str(history_days),
        "--orders-per-day",
        str(orders_per_day),
    ]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        base_url = _read_endpoint(process, log_path)
        logger.info("Emulator process %d serving at %s", process.pid, base_url)
        yield EmulatorProcess(process.pid, base_url, base_url + "/auth/o2/token")
    finally:
        # SIGTERM makes the emulator's CLI shut uvicorn down and delete its documents.
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            logger.warning("Emulator process %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        if process.stdout is not None:
            process.stdout.close()


def _read_endpoint(process: subprocess.Popen[str], log_path: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    assert process.stdout is not None
    # The CLI prints the endpoint line first, right after the server has started.
    # NOTE: readline blocks, so the deadline is checked only between lines. An emulator that
    # hangs before printing anything hangs the benchmark too.
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(ENDPOINT_PREFIX):
            return line.removeprefix(ENDPOINT_PREFIX).strip()
    raise RuntimeError(
        f"The emulator process {process.pid} printed no '{ENDPOINT_PREFIX}' line within "
        f"{STARTUP_TIMEOUT_SECONDS:.0f} s (exit code {process.poll()}). See {log_path}."
    )
