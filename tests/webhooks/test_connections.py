"""Connections to receivers: kept alive across posts and bursts, renewed when the receiver closes
them, and not left open once idle (gateway/webhooks/http.py `Pool` and `Lane`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.webhook_models import DELIVERED, WebhookAttempt, WebhookDelivery
from gateway.webhooks.dispatcher import Dispatcher
from tests.peers.webhook_receiver import Receiver
from tests.webhooks.seed import endpoint_for, queue_events

CONCURRENCY = 3


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_endpoint_concurrency": CONCURRENCY})


@pytest.fixture
def closing_receiver() -> Iterator[Receiver]:
    """A receiver that closes a connection idle for a second (uvicorn's keep-alive timeout)."""
    receiver = Receiver(keep_alive=1)
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()


@pytest.fixture
async def own_dispatcher(store: Store, settings: Settings) -> AsyncIterator[Dispatcher]:
    running = Dispatcher(store, settings)
    yield running
    await running.stop(1.0)


async def _delivered(store: Store) -> int:
    async with store.transaction() as session:
        query = select(func.count()).where(WebhookDelivery.status == DELIVERED)
        return int(await session.scalar(query) or 0)


async def _burst(store: Store, dispatcher: Dispatcher, seeded: object, count: int) -> None:
    expected = await _delivered(store) + count
    await queue_events(store, seeded, count, appointments=count)  # type: ignore[arg-type]
    deadline = time.monotonic() + 20
    while await _delivered(store) < expected:
        assert time.monotonic() < deadline, "the burst was not delivered"
        await dispatcher.drain()


async def test_connections_are_kept_across_bursts_and_renewed_when_the_receiver_closes_them(
    store: Store, settings: Settings, closing_receiver: Receiver, own_dispatcher: Dispatcher
):
    seeded = await endpoint_for(store, settings, closing_receiver.url)
    closing_receiver.app.secret = seeded.secret

    def ports() -> set[int]:
        return {r.client_port for r in closing_receiver.app.received}

    await _burst(store, own_dispatcher, seeded, 12)
    first = ports()
    assert 1 <= len(first) <= CONCURRENCY  # one connection per sender, never one per post
    await _burst(store, own_dispatcher, seeded, 12)
    assert ports() <= first or len(ports()) <= CONCURRENCY  # the next burst reuses them

    await asyncio.sleep(2.5)  # the receiver closes every idle connection meanwhile
    seen = ports()
    await _burst(store, own_dispatcher, seeded, 12)
    renewed = ports() - seen
    assert renewed and len(renewed) <= CONCURRENCY
    # No post went out on a closed connection: every delivery took exactly one attempt.
    async with store.transaction() as session:
        attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
        failed = await session.scalar(
            select(func.count()).where(WebhookAttempt.status_code.is_(None))
        )
    assert (attempts, failed) == (36, 0)
    assert len(closing_receiver.app.verified()) == 36


async def test_idle_connections_are_closed_by_the_tick_once_expired(
    store: Store, settings: Settings, closing_receiver: Receiver, own_dispatcher: Dispatcher
):
    seeded = await endpoint_for(store, settings, closing_receiver.url)
    closing_receiver.app.secret = seeded.secret
    await _burst(store, own_dispatcher, seeded, 6)
    assert own_dispatcher.http.kept() >= 1  # kept for the next sender
    await asyncio.sleep(2.5)  # closed by the receiver (and past nothing of ours yet)
    await own_dispatcher.on_tick()  # the scheduler's tick
    assert own_dispatcher.http.kept() == 0


async def test_an_ipv6_literal_endpoint_gets_a_bracketed_host_header(
    store: Store, settings: Settings
):
    """`Host: [::1]:port`, as RFC 9110 §7.2 writes an IPv6 literal (not `::1:port`)."""
    receiver = Receiver(host="::1")
    receiver.up()
    allowed = settings.model_copy(update={"outbound_allow": "127.0.0.1, ::1"})
    running = Dispatcher(store, allowed)
    try:
        seeded = await endpoint_for(store, allowed, receiver.url)
        receiver.app.secret = seeded.secret
        await _burst(store, running, seeded, 2)
        assert {r.headers["host"] for r in receiver.app.received} == {f"[::1]:{receiver.port}"}
        assert len(receiver.app.verified()) == 2
    finally:
        await running.stop(1.0)
        receiver.down()
