"""Slow receivers against real peers: a receiver that takes most of a second per answer, shared by
two dispatcher processes, and a post cut off by shutdown.

1. Adaptive prefetch (`senders.Senders.rounds`): with a short lease, a fixed prefetch of many
   rounds would leave claimed deliveries waiting for a sender until their lease is nearly out
   (handed back unsent, claimed again) or past it (sent twice). Two dispatchers on one database,
   as two daemon processes, must send every event once, record one attempt per delivery, claim
   each delivery once, and keep a fast endpoint's queue moving meanwhile.
2. Shutdown mid-post (`Dispatcher.stop`): the abandoned delivery is handed back at once, and a
   restarted process sends it again with the same `webhook-id` (at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway import features
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.store.webhook_models import PENDING, WebhookAttempt, WebhookDelivery
from gateway.webhooks import dispatcher as module
from gateway.webhooks.dispatcher import Dispatcher
from gateway.webhooks.outcomes import INTERRUPTED
from tests.conftest import POSTGRES_URL, make_settings
from tests.peers import webhook_receiver
from tests.peers.webhook_receiver import Receiver
from tests.webhooks.conftest import WEBHOOK_SETTINGS, Hooked
from tests.webhooks.seed import endpoint_for, queue_events

LEASE = 5.0  # seconds: short, so a prefetch sized for a fast receiver outlives it
TIMEOUT = 4.5  # must stay under the lease; longer than the held post of the shutdown test
CAP = 2  # webhooks_endpoint_concurrency
SLOW_ANSWER = 0.4  # seconds the slow receiver takes per answer
SLOW_EVENTS = 40  # 16 rounds of 2 at 0.4 s: the last would wait 6 s, past the lease
FAST_EVENTS = 40
HOLD = 4.0  # seconds the receiver holds the post that shutdown cuts off
GRACE = 0.5  # shutdown grace, well under HOLD


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        **{
            **WEBHOOK_SETTINGS,
            "webhooks_lease_seconds": LEASE,
            "webhooks_timeout_seconds": TIMEOUT,
            "webhooks_endpoint_concurrency": CAP,
        },
    )


@contextlib.asynccontextmanager
async def another_process(store: Store, settings: Settings) -> AsyncIterator[Store]:
    """A second Store on the same database (the SQLite file, or the PostgreSQL schema of
    `store`), with its own connections, as another daemon process would open it."""
    if store.dialect == "sqlite":
        other = Store.from_url(settings.database_url, settings=settings)
    else:
        async with store.engine.connect() as conn:
            schema = await conn.scalar(text("SELECT current_schema()"))
        engine = create_async_engine(
            POSTGRES_URL, connect_args={"server_settings": {"search_path": str(schema)}}
        )
        other = Store(engine, settings)
    features.install(other)
    try:
        yield other
    finally:
        await other.close()


@contextlib.asynccontextmanager
async def daemon(store: Store, settings: Settings) -> AsyncIterator[Dispatcher]:
    """The dispatcher as `calgate serve` installs it on `store`: ticked by a scheduler every
    `webhooks_tick_seconds`, woken by commits on `store`."""
    scheduler = AsyncIOScheduler()
    dispatcher = module.install(scheduler, store, settings)
    assert dispatcher is not None
    scheduler.start()
    try:
        yield dispatcher
    finally:
        scheduler.shutdown(wait=False)
        await dispatcher.stop(1.0)


async def _wait(done: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.05)


def _claims() -> float:
    """Deliveries claimed so far by this test process (every dispatcher in it)."""
    labels = {"table": WebhookDelivery.__tablename__, "event": "claimed"}
    return REGISTRY.get_sample_value("calgate_leases_total", labels) or 0.0


async def _settled(store: Store, endpoint_id: str, count: int) -> list[Any]:
    """Each delivery of the endpoint with its number of attempt rows, once `count` of them
    are delivered (the record follows the receiver's answer by a transaction)."""
    attempts = (
        select(func.count())
        .where(WebhookAttempt.delivery_id == WebhookDelivery.id)
        .correlate(WebhookDelivery)
        .scalar_subquery()
    )
    query = select(WebhookDelivery.status, WebhookDelivery.attempts, attempts.label("rows")).where(
        WebhookDelivery.endpoint_id == endpoint_id
    )
    rows: list[Any] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        async with store.transaction() as session:
            rows = list((await session.execute(query)).all())
        if sum(r.status == "delivered" for r in rows) >= count:
            break
        await asyncio.sleep(0.1)
    return rows


def _arrivals(receiver: Receiver) -> list[float]:
    return sorted(r.arrived for r in receiver.app.verified())


async def test_two_processes_send_a_slow_receivers_queue_once_without_holding_up_a_fast_one(
    store: Store, settings: Settings, receiver: Receiver
) -> None:
    slow_receiver = receiver
    slow_receiver.app.delay = SLOW_ANSWER
    with webhook_receiver.running() as fast_receiver:
        slow = await endpoint_for(store, settings, slow_receiver.url)
        fast = await endpoint_for(store, settings, fast_receiver.url)
        slow_receiver.app.secret, fast_receiver.app.secret = slow.secret, fast.secret
        # Every event to its own appointment: the whole queue may be claimed at once.
        slow_ids = await queue_events(store, slow, SLOW_EVENTS, appointments=SLOW_EVENTS)
        fast_ids = await queue_events(store, fast, FAST_EVENTS, appointments=FAST_EVENTS)
        claims_before = _claims()
        async with (
            another_process(store, settings) as second_store,
            daemon(store, settings),
            daemon(second_store, settings),
        ):
            # 40 answers of 0.4 s, 2 on the wire per process: 4-8 s (the second process takes
            # part only when the claims, which count both processes' leases, leave it room).
            await _wait(
                lambda: len(slow_receiver.app.events()) == SLOW_EVENTS,
                60,
                "every event reached the slow receiver",
            )
            slow_rows = await _settled(store, slow.endpoint_id, SLOW_EVENTS)
            fast_rows = await _settled(store, fast.endpoint_id, FAST_EVENTS)

    for got, ids in ((slow_receiver, slow_ids), (fast_receiver, fast_ids)):
        # Every request signed and verified by the library, and each webhook-id exactly once:
        # no delivery was sent again after its lease ran out.
        assert all(r.error is None and r.status == 200 for r in got.app.received)
        sent = Counter(r.webhook_id for r in got.app.received)
        assert set(sent) == set(ids)
        assert [i for i, n in sent.items() if n > 1] == [], "events received twice"
    for rows, count in ((slow_rows, SLOW_EVENTS), (fast_rows, FAST_EVENTS)):
        assert len(rows) == count
        assert Counter((r.status, r.attempts, r.rows) for r in rows) == {("delivered", 1, 1): count}
    # Each delivery claimed once: none waited for a sender until its lease was nearly out and
    # was handed back unsent. A prefetch longer than the lease allows shows here only: the
    # hand-back keeps it from sending twice, at the cost of seconds of delay per delivery.
    assert _claims() - claims_before == SLOW_EVENTS + FAST_EVENTS
    # The fast endpoint's queue went out while the slow one was still on its first half.
    fast_done = _arrivals(fast_receiver)[-1]
    slow_half = _arrivals(slow_receiver)[SLOW_EVENTS // 2 - 1]
    assert fast_done < slow_half, f"fast done {fast_done - slow_half:+.2f} s after slow half"


async def _one_delivery(store: Store) -> WebhookDelivery:
    async with store.transaction() as session:
        [delivery] = (await session.scalars(select(WebhookDelivery))).all()
        return delivery


async def test_a_post_cut_off_by_shutdown_is_handed_back_and_sent_again_with_its_id(
    hooked: Hooked, settings: Settings
) -> None:
    app = hooked.receiver.app
    app.delay = HOLD  # holds the first post past the shutdown grace
    user = await hooked.api.user()
    person = await hooked.api.client()
    start, end = "2027-02-02T09:00:00Z", "2027-02-02T10:00:00Z"
    await hooked.api.appointment(user["id"], person["id"], start=start, end=end)
    assert await hooked.dispatcher.claim_due() == 1
    await _wait(lambda: app.in_flight == 1, 10, "the receiver holds the post")

    began = time.monotonic()
    await hooked.dispatcher.stop(GRACE)
    assert time.monotonic() - began < GRACE + 2.5, "stop waited for the post"
    stopped_at = utcnow()
    app.delay = 0.0

    # Handed back, not left leased: pending and due now, the cut-off post counted as an
    # attempt without an answer (the receiver may have it).
    delivery = await _one_delivery(hooked.store)
    assert (delivery.status, delivery.lease_owner, delivery.lease_expires_at) == (
        PENDING,
        None,
        None,
    )
    assert delivery.due_at <= utcnow() and delivery.attempts == 1
    assert delivery.last_error == INTERRUPTED
    assert await hooked.count(WebhookAttempt) == 1

    # A restarted process sends it at once (its first tick claims it: no lease to wait out).
    async with another_process(hooked.store, settings) as restarted_store:
        restarted = Dispatcher(restarted_store, settings)
        try:
            assert await restarted.drain() == 1
        finally:
            await restarted.stop(1.0)
    # The receiver finishes holding the cut-off post (its answer goes nowhere) and counts it.
    await _wait(lambda: len(app.received) == 2, HOLD + 10, "the held post was counted")
    assert [r.webhook_id for r in app.received] == [delivery.event_id] * 2
    assert len(app.events()) == 1  # the receiver de-duplicates by webhook-id

    # What the deliveries API shows: the cut-off post as attempt 1 with no answer and why,
    # then the restarted process's post delivering it.
    [shown] = await hooked.deliveries()
    assert (shown["status"], shown["attempts"], shown["event_id"]) == (
        "delivered",
        2,
        delivery.event_id,
    )
    cut, sent = sorted(shown["attempt_log"], key=lambda a: a["attempt"])
    assert (cut["attempt"], cut["status_code"], cut["error"]) == (1, None, INTERRUPTED)
    assert datetime.fromisoformat(cut["started_at"].replace("Z", "+00:00")) < stopped_at
    assert (sent["attempt"], sent["status_code"], sent["error"]) == (2, 200, None)
    assert datetime.fromisoformat(sent["started_at"].replace("Z", "+00:00")) >= stopped_at
