"""One of the processes of tests/google/test_shared_budget.py: a separate OS process that reads
its settings from the environment (as `calgate serve` does), opens the store named there and
sends Google API requests for one grant through connectors built the way the engine builds them
(gateway/sync/providers.py).

Usage: ``python -m tests.google.budget_process REFRESH_TOKEN CALENDAR REQUESTS CONNECTORS``.
It prints ``ready`` once its connectors are built, waits for a line on standard input (so both
processes start sending together, whatever their start-up time), sends REQUESTS requests spread
over CONNECTORS concurrent connectors, prints ``sent N`` and exits.
"""

from __future__ import annotations

import asyncio
import sys

from connectors.base import Credentials
from gateway.config import load_settings
from gateway.store.db import Store
from gateway.sync import providers


async def main(refresh: str, calendar: str, requests: int, connectors: int) -> int:
    settings = load_settings()
    store = Store.from_url(settings.database_url, settings=settings)
    try:
        shared = providers.shared_state(store, settings, "google")
        registry = providers.registry(store, settings)
        built = [
            registry.build("google", Credentials(None, calendar, refresh), shared)
            for _ in range(connectors)
        ]
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def send(connector_index: int) -> int:
            share = requests // connectors + (connector_index < requests % connectors)
            for _ in range(share):
                await built[connector_index].list_calendars()
            return share

        try:
            sent = sum(await asyncio.gather(*(send(i) for i in range(connectors))))
        finally:
            for connector in built:
                await connector.close()
        print(f"sent {sent}", flush=True)
        return 0
    finally:
        await store.close()


if __name__ == "__main__":
    refresh, calendar, requests, connectors = sys.argv[1:5]
    sys.exit(asyncio.run(main(refresh, calendar, int(requests), int(connectors))))
