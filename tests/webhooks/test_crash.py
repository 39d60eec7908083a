"""Crash test: SIGKILL `calgate serve` while it delivers, with the receiver going down; restart.

Every event must reach the receiver (at least once: duplicates share a webhook-id and are
skipped by the receiver), in order per appointment, and every delivery must end delivered.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.webhook_models import WebhookDelivery
from tests.conftest import make_settings
from tests.notify.test_crash import _serve
from tests.peers.smtp import free_port
from tests.peers.webhook_receiver import Receiver
from tests.webhooks.conftest import WEBHOOK_SETTINGS
from tests.webhooks.seed import endpoint_for, queue_events

N = 400


async def _wait(predicate: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.timeout(300)  # two daemon start-ups: ~20 s each on a loaded machine
async def test_sigkill_with_the_receiver_down_loses_no_event(tmp_path: Path) -> None:
    receiver = Receiver()
    receiver.app.delay = 0.005  # a real receiver takes a moment: the kill lands mid-send
    url = f"sqlite+aiosqlite:///{tmp_path}/var/calgate.db"
    settings = make_settings(tmp_path, database_url=url, **WEBHOOK_SETTINGS)
    store = Store.from_url(url, settings=settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await migrate.upgrade(store)
        seeded = await endpoint_for(store, settings, receiver.url)
        receiver.app.secret = seeded.secret
        ids = await queue_events(store, seeded, N, appointments=40, per_commit=100)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        env = {
            **clean,
            "CALGATE_DATABASE_URL": url,
            "CALGATE_DATA_DIR": str(tmp_path),
            "CALGATE_SERVER_PORT": str(free_port()),
            "CALGATE_OUTBOUND_ALLOW": "127.0.0.1",
            "CALGATE_WEBHOOKS_ALLOW_HTTP": "true",
            "CALGATE_WEBHOOKS_RETRY_BASE_SECONDS": "0.05",
            "CALGATE_WEBHOOKS_TIMEOUT_SECONDS": "1",
            "CALGATE_WEBHOOKS_LEASE_SECONDS": "3",
            "CALGATE_WEBHOOKS_TICK_SECONDS": "0.05",
            "CALGATE_NOTIFY_ENABLED": "false",
            "CALGATE_LOG_LEVEL": "WARNING",
        }
        receiver.up()
        procs.append(_serve(env, tmp_path))
        await _wait(lambda: len(receiver.app.verified()) >= N // 4, 60)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        receiver.down()
        at_kill = len(receiver.app.events())
        assert at_kill < N, "the kill came too late to test anything"
        procs.append(_serve(env, tmp_path))
        await asyncio.sleep(1.0)  # the restarted daemon meets a receiver that is down
        receiver.up()
        await _wait(lambda: len(receiver.app.events()) >= N, 90)
        got = Counter(r.webhook_id for r in receiver.app.verified())
        print(
            f"\nwebhook crash test: {N} events, {at_kill} received before SIGKILL, "
            f"{sum(got.values()) - len(got)} duplicates (same webhook-id) after restart"
        )
        assert set(got) == set(ids)
        versions: dict[str, list[int]] = defaultdict(list)
        for event in receiver.app.events():
            versions[event["data"]["id"]].append(event["data"]["version"])
        assert all(v == sorted(v) for v in versions.values())
        # The daemon records "delivered" just after the receiver has the event: allow it that.
        statuses: Counter[str] = Counter()
        for _ in range(300):
            async with store.transaction() as session:
                statuses = Counter((await session.scalars(select(WebhookDelivery.status))).all())
            if statuses == {"delivered": N}:
                break
            await asyncio.sleep(0.1)
        assert statuses == {"delivered": N}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        receiver.down()
        await store.close()
