"""``gateway agency run CODE``: the example adapter; prints each message its queue receives."""

from __future__ import annotations

import asyncio
import contextlib
import signal

from gateway.agency.consumer import consume, print_delivery
from gateway.app.serve import topology_of
from gateway.config.load import GatewayConfig
from gateway.errors import ConfigError


async def run_agency(config: GatewayConfig, code: str) -> int:
    if code not in config.agency_codes:
        raise ConfigError(f"unknown agency {code!r} (known: {', '.join(config.agency_codes)})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await consume(config.amqp_url, topology_of(config), code, print_delivery, stop)
    return 0
