"""A local SP-API emulator: LWA tokens, the Reports API 2021-06-30 and document downloads.

Run it with `python -m amazon_sc_assets.emulator`, or in-process:

    with run_emulator(EmulatorConfig(time_scale=1000)) as emulator:
        emulator.base_url   # the SP-API endpoint
        emulator.token_url  # the LWA token endpoint
"""

from .faults import Fault
from .request_log import RequestRecord
from .server import (
    EMULATOR_CLIENT_ID,
    EMULATOR_CLIENT_SECRET,
    EMULATOR_REFRESH_TOKEN,
    EmulatorConfig,
    EmulatorHandle,
    run_emulator,
)

__all__ = [
    "EMULATOR_CLIENT_ID",
    "EMULATOR_CLIENT_SECRET",
    "EMULATOR_REFRESH_TOKEN",
    "EmulatorConfig",
    "EmulatorHandle",
    "Fault",
    "RequestRecord",
    "run_emulator",
]
