"""Configuration of the emulator and the uvicorn server that runs it on a background thread."""

import contextlib
import logging
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from amazon_sc_assets.marketplaces import Region

from .app import AccessTokens, EmulatorState, create_app
from .documents import CHARSET_CODECS, UrlSigner
from .faults import Fault, FaultRegistry, load_faults
from .order_history import OrderHistory, OrderHistoryConfig
from .quotas import QuotaTable
from .replay import ReplayOrderSource
from .reports import OrderSource, ReportStore
from .request_log import RequestLog, RequestRecord

logger = logging.getLogger(__name__)

EMULATOR_CLIENT_ID = "amzn1.application-oa2-client.emulator"
EMULATOR_CLIENT_SECRET = "emulator-client-secret"
EMULATOR_REFRESH_TOKEN = "Atzr|emulator-refresh-token"

STARTUP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class EmulatorConfig:
    """Settings of one emulator instance.

    Attributes:
        host: interface to bind. Keep loopback unless you mean to expose the emulator.
        port: TCP port, or 0 to pick a free one.
        seed: seeds the generated order history and the report and document ids.
        time_scale: quota refill and report processing run this many times faster.
        charset: document charset in Amazon's spelling: UTF-8, Cp1252 or Windows-31J.
        replay_dir: serve the flat files in this folder instead of the generated history.
        region: the SP-API region whose marketplace ids the emulator accepts.
        history_days: the generated order history starts at 00:00 UTC this many days before
            today and ends now.
        orders_per_day: mean number of generated orders per day.
        include_cpf: add the Brazilian `cpf` column to generated documents.
        extra_column: add a column of this name to generated documents.
        token_lifetime_seconds: `expires_in` of the LWA access tokens (not scaled).
        document_url_lifetime_seconds: validity of document download URLs (not scaled).
        queue_seconds: time a report stays IN_QUEUE, before time_scale.
        processing_seconds: time a report stays IN_PROGRESS at least, before time_scale.
        client_id: LWA client id the token route accepts.
        client_secret: LWA client secret the token route accepts.
        refresh_token: LWA refresh token the token route accepts.
        faults_file: JSON list of Fault objects injected at start.
    """

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    time_scale: float = 1.0
    charset: str = "UTF-8"
    replay_dir: Path | None = None
    region: Region = Region.NA
    history_days: int = 60
    orders_per_day: float = 40.0
    include_cpf: bool = False
    extra_column: str | None = None
    token_lifetime_seconds: int = 3600
    document_url_lifetime_seconds: int = 300
    queue_seconds: float = 5.0
    processing_seconds: float = 30.0
    client_id: str = EMULATOR_CLIENT_ID
    client_secret: str = field(default=EMULATOR_CLIENT_SECRET, repr=False)
    refresh_token: str = field(default=EMULATOR_REFRESH_TOKEN, repr=False)
    faults_file: Path | None = None

    def __post_init__(self) -> None:
        if self.time_scale <= 0:
            raise ValueError(f"Invalid time_scale {self.time_scale}: expected a positive number.")
        if self.charset not in CHARSET_CODECS:
            raise ValueError(
                f"Unsupported charset {self.charset!r}: expected one of {sorted(CHARSET_CODECS)}."
            )
        if self.history_days < 1:
            raise ValueError(f"Invalid history_days {self.history_days}: expected 1 or more.")
        if self.orders_per_day < 0:
            raise ValueError(f"Invalid orders_per_day {self.orders_per_day}: expected 0 or more.")
        for name in ("token_lifetime_seconds", "document_url_lifetime_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"Invalid {name} {getattr(self, name)}: expected 1 or more.")
        for name in ("queue_seconds", "processing_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"Invalid {name} {getattr(self, name)}: expected 0 or more.")


class EmulatorHandle:
    """A running emulator: its URLs, configuration, faults and request log."""

    def __init__(self, config: EmulatorConfig, base_url: str, state: EmulatorState) -> None:
        self.config = config
        self.base_url = base_url
        self.token_url = base_url + "/auth/o2/token"
        self._state = state

    def inject(self, fault: Fault) -> None:
        """Activate a fault; see Fault for the kinds."""
        self._state.inject(fault)

    def clear_faults(self) -> None:
        self._state.faults.clear()

    def requests(self) -> list[RequestRecord]:
        """Return every recorded request, oldest first; admin routes are not recorded."""
        return self._state.requests.records()

    def count(self, operation: str, status: int | None = None) -> int:
        """Count recorded requests of an operation, optionally only those with `status`."""
        return self._state.requests.count(operation, status)

    def clear_requests(self) -> None:
        self._state.requests.clear()

    def wait_for_builds(self, timeout: float | None = None) -> None:
        """Block until every report document started so far has been built."""
        self._state.store.wait_for_builds(timeout)


def build_order_source(config: EmulatorConfig) -> OrderSource:
    """Return the replay source for `replay_dir`, else the generated order history."""
    if config.replay_dir is not None:
        return ReplayOrderSource(config.replay_dir)

    # Start at a midnight so that two emulators started minutes apart serve the same orders.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    history_config = OrderHistoryConfig(
        seed=config.seed,
        start=today - timedelta(days=config.history_days),
        end=None,
        orders_per_day=config.orders_per_day,
        region=config.region,
        charset=config.charset,
        include_cpf=config.include_cpf,
        extra_column=config.extra_column,
    )
    return OrderHistory(history_config)


def _bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def run_emulator(config: EmulatorConfig | None = None) -> Iterator[EmulatorHandle]:
    """Serve the emulator on a background thread for the duration of the `with` block.

    Args:
        config: settings. The defaults bind 127.0.0.1 on a free port.

    Yields:
        The handle with `base_url`, `token_url` and the fault and request-log controls.

    Raises:
        RuntimeError: when the server does not start within 10 seconds.
        OSError: when the host and port cannot be bound.
    """
    config = config or EmulatorConfig()
    source = build_order_source(config)
    with tempfile.TemporaryDirectory(prefix="sp-api-emulator-") as document_dir:
        store = ReportStore(
            source=source,
            document_dir=Path(document_dir),
            region=config.region,
            charset=config.charset,
            queue_delay=timedelta(seconds=config.queue_seconds / config.time_scale),
            processing_delay=timedelta(seconds=config.processing_seconds / config.time_scale),
            seed=config.seed,
        )
        state = EmulatorState(
            config=config,
            store=store,
            tokens=AccessTokens(config.token_lifetime_seconds),
            quotas=QuotaTable(config.time_scale),
            faults=FaultRegistry(),
            requests=RequestLog(),
            signer=UrlSigner(secrets.token_bytes(32)),
        )
        if config.faults_file is not None:
            for fault in load_faults(config.faults_file):
                state.inject(fault)

        sock = _bind_socket(config.host, config.port)
        host, port = sock.getsockname()[:2]
        url_host = f"[{host}]" if ":" in host else host
        base_url = f"http://{url_host}:{port}"
        server = uvicorn.Server(
            uvicorn.Config(create_app(state), log_level="warning", lifespan="off", access_log=False)
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sp-api-emulator", daemon=True
        )
        thread.start()
        try:
            _wait_until_started(server, thread)
            logger.info("SP-API emulator serving at %s", base_url)
            yield EmulatorHandle(config, base_url, state)
        finally:
            server.should_exit = True
            thread.join()
            sock.close()
            store.close()
            logger.info("SP-API emulator at %s stopped", base_url)


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("The emulator server thread exited before it started serving.")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"The emulator did not start serving within {STARTUP_TIMEOUT_SECONDS} seconds."
            )
        time.sleep(0.01)
