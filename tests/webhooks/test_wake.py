"""A change committed in the process that runs the dispatcher goes out at once, not at the next
tick: the commit wakes the dispatcher (gateway/webhooks/events.py `due_now`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.config import Settings
from gateway.store.db import Store
from gateway.webhooks import dispatcher as module
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import make_settings
from tests.peers.webhook_receiver import Receiver
from tests.support import new_account
from tests.webhooks.conftest import WEBHOOK_SETTINGS, add_endpoint

TICK = 120.0  # far beyond the test: only a wake can deliver


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, **{**WEBHOOK_SETTINGS, "webhooks_tick_seconds": TICK})


@pytest.fixture
async def installed(store: Store, settings: Settings) -> AsyncIterator[Dispatcher]:
    """The dispatcher as the daemon installs it, its first tick done (the next is minutes off)."""
    scheduler = AsyncIOScheduler()
    dispatcher = module.install(scheduler, store, settings)
    assert dispatcher is not None
    scheduler.start()
    await asyncio.sleep(0.5)  # the first tick, at start
    yield dispatcher
    await dispatcher.stop(1.0)
    scheduler.shutdown(wait=False)


async def _arrived(receiver: Receiver, count: int, seconds: float) -> float:
    started = time.monotonic()
    while len(receiver.app.events()) < count:
        assert time.monotonic() - started < seconds, "not delivered without a tick"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def test_a_committed_change_is_delivered_without_waiting_for_a_tick(
    store: Store, client: httpx.AsyncClient, receiver: Receiver, installed: Dispatcher
) -> None:
    api = await new_account(store, client)
    await add_endpoint(api, receiver)
    user = await api.user()
    person = await api.client()
    apt = await api.appointment(
        user["id"], person["id"], start="2027-02-02T09:00:00Z", end="2027-02-02T10:00:00Z"
    )
    await _arrived(receiver, 1, 10.0)
    moved = await api.patch(f"/v1/appointments/{apt['id']}", {"title": "Moved"})
    assert moved.status_code == 200, moved.text
    await _arrived(receiver, 2, 10.0)
    assert [e["type"] for e in receiver.app.events()] == [
        "appointment.created",
        "appointment.updated",
    ]
