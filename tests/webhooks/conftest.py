"""Fixtures of the webhook tests: both stores, a receiver on 127.0.0.1, settings that allow it,
an account with an endpoint pointing at it, and a helper that runs the dispatcher until a
condition holds."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import ColumnElement, func, select

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.webhook_models import WebhookAttempt, WebhookDelivery
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import _sqlite_store, make_settings, postgres_schema_store
from tests.peers import webhook_receiver
from tests.peers.webhook_receiver import Receiver
from tests.support import Api, new_account

# Receivers run on 127.0.0.1 over plain http; retries come back within a fraction of a second.
WEBHOOK_SETTINGS: dict[str, Any] = {
    "outbound_allow": "127.0.0.1",
    "webhooks_allow_http": True,
    "webhooks_retry_base_seconds": 0.1,
    "webhooks_timeout_seconds": 2.0,
    "webhooks_lease_seconds": 10.0,
    "webhooks_tick_seconds": 0.05,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, **WEBHOOK_SETTINGS)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Store]:
    """Every webhook test on both stores: SQLite in the test's folder, PostgreSQL in a schema of
    its own (claims with SKIP LOCKED, no write turn; skipped, saying why, without a server)."""
    made = _sqlite_store(settings) if request.param == "sqlite" else postgres_schema_store(settings)
    async for s in made:
        yield s


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver.running() as running:
        yield running


@dataclass
class Hooked:
    """An account with one endpoint at the receiver."""

    api: Api
    store: Store
    settings: Settings
    receiver: Receiver
    endpoint: dict[str, Any]
    dispatcher: Dispatcher

    async def run_until(
        self, done: Callable[[], bool | Awaitable[bool]], seconds: float = 15.0
    ) -> None:
        """Tick the dispatcher until `done()` (a bool or an awaitable of one) holds."""
        deadline = time.monotonic() + seconds
        while not await _holds(done):
            assert time.monotonic() < deadline, "timed out waiting for deliveries"
            await self.dispatcher.drain()
            await asyncio.sleep(0.02)
        await self.dispatcher.drain()  # what arrived is recorded too

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        got = self.receiver.app.events()
        return [e for e in got if event_type is None or e["type"] == event_type]

    async def deliveries(self, **params: Any) -> list[dict[str, Any]]:
        answer = await self.api.get(
            f"/v1/webhook-endpoints/{self.endpoint['id']}/deliveries", params=params
        )
        assert answer.status_code == 200, answer.text
        data: list[dict[str, Any]] = answer.json()["data"]
        return data

    async def count(
        self, model: type[WebhookDelivery] | type[WebhookAttempt], *where: ColumnElement[bool]
    ) -> int:
        async with self.store.transaction() as session:
            query = select(func.count()).select_from(model).where(*where)
            return int(await session.scalar(query) or 0)


async def _holds(done: Callable[[], bool | Awaitable[bool]]) -> bool:
    value = done()
    return await value if inspect.isawaitable(value) else bool(value)


async def add_endpoint(api: Api, receiver: Receiver, **over: Any) -> dict[str, Any]:
    """Create an endpoint at the receiver and give the receiver its secret."""
    endpoint = await api.created("/v1/webhook-endpoints", {"url": receiver.url, **over})
    receiver.app.secret = endpoint["secret"]
    return endpoint


@pytest.fixture
async def dispatcher(store: Store, settings: Settings) -> AsyncIterator[Dispatcher]:
    """The daemon's webhook dispatcher on the test's store, driven by the test."""
    running = Dispatcher(store, settings)
    yield running
    await running.stop(1.0)


async def arrived(dispatcher: Dispatcher, receiver: Receiver, count: int) -> list[dict[str, Any]]:
    """Run the dispatcher until `count` distinct events reached the receiver; those events."""
    deadline = time.monotonic() + 15
    while len(receiver.app.events()) < count:
        assert time.monotonic() < deadline, f"only {len(receiver.app.events())} events arrived"
        await dispatcher.drain()
        await asyncio.sleep(0.02)
    await dispatcher.drain()  # what arrived is recorded too
    return receiver.app.events()


@pytest.fixture
async def hooked(
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> Hooked:
    api = await new_account(store, client)
    endpoint = await add_endpoint(api, receiver)
    return Hooked(api, store, settings, receiver, endpoint, dispatcher)
