"""Delivery: claim due deliveries with leases, sign and post them, record every attempt.

Per endpoint with due work, a claim takes up to a few rounds of `webhooks_endpoint_concurrency`
deliveries (`senders.Senders.rounds`: 4 for an endpoint this process has not timed yet, up to 16 for
a fast one, fewer for a slow one), minus those leased by any process and still in flight, and only
the first pending delivery of each appointment (lowest version), so an appointment's events arrive
in order. At most `webhooks_endpoint_concurrency` requests per endpoint are on the wire at once in a
process (at most that many senders per endpoint, `senders.py`), so one slow receiver cannot hold up
the others: its claims wait for its own senders while the other endpoints' go out. Across processes
the cap is not shared: since every claim counts the leases of all processes, at most 16 rounds of
one endpoint are in flight at once, so P processes have at most min(P, 16) x the cap in flight to
it. Sends run outside any transaction and do not wait for each other. Outcomes are stored by group
commit, naming our lease, and the same transaction claims the next deliveries when an endpoint has
room for a round (a claim of its own follows within REFILL_GAP only when no group is being written).
The scheduler calls `claim_due`, which never waits for sends; a commit in this process that makes
deliveries due (a new event, a retry, a replay, an endpoint enabled again) wakes the dispatcher to
claim within REFILL_GAP instead (`events.due_now`), so the tick only matters for work committed by
other processes; `tick` (tests, benchmarks) is the pipelined `leases.ClaimLoop` tick. A delivery
that waited for a sender until its lease was nearly out is handed back unsent.

At least once: a crash between the receiver's answer and our record leaves the delivery leased;
when the lease expires it is sent again, with the same `webhook-id`. A stop whose grace runs out
abandons the posts in flight, records each as an interrupted attempt and hands its delivery back
at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gateway.config import Settings
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.store.webhook_models import PENDING, WebhookDelivery, WebhookEndpoint
from gateway.webhooks import events, http, items, outcomes, senders
from gateway.webhooks.items import Item
from gateway.webhooks.outcomes import Attempt

log = logging.getLogger("calgate.webhooks")

# Least time between two refill claims caused by finished sends (the scheduler's tick and a
# tick in progress claim regardless).
REFILL_GAP = 0.01

_EARLIER = aliased(WebhookDelivery)
# No pending delivery of the same appointment to the same endpoint comes before this one.
_FIRST_IN_LINE = ~exists().where(
    _EARLIER.endpoint_id == WebhookDelivery.endpoint_id,
    _EARLIER.order_key == WebhookDelivery.order_key,
    _EARLIER.status == PENDING,
    or_(
        _EARLIER.seq < WebhookDelivery.seq,
        and_(_EARLIER.seq == WebhookDelivery.seq, _EARLIER.id < WebhookDelivery.id),
    ),
)


class Dispatcher(leases.ClaimLoop[Item]):
    """Sends due webhook deliveries; one per process, ticked by the scheduler."""

    model = WebhookDelivery

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__(store, timedelta(seconds=settings.webhooks_lease_seconds), ":webhooks")
        self.settings = settings
        self.http = http.client(settings)
        self._items = items.Loader(settings)
        # SQLite has one writer: our claims and outcome writes take turns here instead of
        # meeting in SQLite's busy handler, which sleeps whole milliseconds between tries.
        self._write_turn = asyncio.Lock() if store.dialect == "sqlite" else None
        self._writer = outcomes.Writer(self._store_group)
        self.claim_batch = settings.webhooks_claim_batch  # pipelined ticks (leases.ClaimLoop)
        self._senders = senders.Senders(
            self.http, settings.webhooks_endpoint_concurrency, settings.webhooks_response_bytes
        )
        self._held: Counter[str] = Counter()  # endpoint -> deliveries we hold (queued or sent)
        # endpoint -> attempts answered but not yet stored: still leased, no longer in flight
        self._unrecorded: Counter[str] = Counter()
        self._refills: set[asyncio.Task[None]] = set()
        self._want_refill = False  # an endpoint has room for a round: the next group claims
        self._timer: asyncio.TimerHandle | None = None  # a claim of its own if no group comes
        self._last_claim = 0.0  # loop time the last claim started

    # -- the loop --------------------------------------------------------------------------

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._write_turn if self._write_turn is not None else contextlib.nullcontext()

    async def start_batch(self) -> list[asyncio.Task[None]]:
        """The base class's claim, noting when it started (refills keep their distance)."""
        self._last_claim = asyncio.get_running_loop().time()
        return await super().start_batch()

    async def claim_due(self) -> int:
        """Claim and start what is due now without waiting for the sends: the scheduler's tick
        (a slow endpoint must not keep other endpoints' new events waiting for it). Batches
        follow while they come back full and at most one batch runs beyond the claimed one,
        as in the pipelined `tick`; finished sends claim again. Returns how many started."""
        started = 0
        batch = self.settings.webhooks_claim_batch
        while True:
            tasks = await self.start_batch()
            started += len(tasks)
            if len(tasks) < batch or len(self._running) > batch:
                return started

    async def on_tick(self) -> int:
        """The scheduler's tick: close kept connections that expired (not on every refill
        claim: it polls each one), then `claim_due`."""
        await self.http.close_expired()
        return await self.claim_due()

    async def drain(self) -> int:
        """The pipelined tick (leases.ClaimLoop), then wait until no claim a finished send
        caused is running or due; returns how many deliveries started. For tests and
        benchmarks."""
        started = await self.tick()
        while self._running or self._refills or self._timer or self._writer.busy:
            if self._running or self._refills:
                await asyncio.gather(*self._running, *self._refills, return_exceptions=True)
            else:
                await asyncio.sleep(REFILL_GAP)  # a group or a refill claim is about to end
        return started

    async def stop(self, grace: float) -> None:
        """Stop claiming, let sends in flight finish within `grace`, then close the client."""
        self._stopping = True
        # Posts still in flight when the grace is out are abandoned before their deliveries'
        # tasks hand the leases back: released first, another process could send the same
        # delivery while our post of it is still on the wire.
        await leases.wind_down(self._claiming, self._running, grace, self._senders.cancel)
        await self._senders.cancel()  # none left after the grace; for safety
        await self._writer.flush()
        await self.http.aclose()

    async def _start(self, items: list[Item]) -> list[asyncio.Task[None]]:
        for item in items:
            self._held[item.endpoint_id] += 1
        return await super()._start(items)

    def _finished(self, endpoint_id: str) -> None:
        """A delivery of `endpoint_id` no longer waits for a sender (sent, or handed back)."""
        self._held[endpoint_id] -= 1
        cap = self.settings.webhooks_endpoint_concurrency
        if self._stopping or self._held[endpoint_id] > cap * (self._rounds(endpoint_id) - 1):
            return
        # The claim rides in the transaction that records the next group of attempts (whose
        # leases it frees first); a claim of its own follows only when no group is coming.
        # A claim per finished send cost more transactions than the sends themselves.
        self._claim_soon()

    def wake(self) -> None:
        """Deliveries were committed due now in this process: claim within REFILL_GAP (commits
        close together share one claim) instead of at the next tick."""
        if not self._stopping:
            self._claim_soon()

    def _claim_soon(self) -> None:
        self._want_refill = True
        if self._timer is None:
            loop = asyncio.get_running_loop()
            wait = max(REFILL_GAP, self._last_claim + REFILL_GAP - loop.time())
            self._timer = loop.call_later(wait, self._refill)

    def _rounds(self, endpoint_id: str) -> int:
        return self._senders.rounds(endpoint_id, self.lease.total_seconds())

    def _refill(self) -> None:
        self._timer = None
        if self._stopping or not self._want_refill:
            return
        if self._writer.busy:  # its transaction will claim
            self._timer = asyncio.get_running_loop().call_later(REFILL_GAP, self._refill)
            return
        self._want_refill = False
        task = asyncio.create_task(self._claim_quietly())
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _claim_quietly(self) -> None:
        try:
            await self.claim_due()
        except Exception as exc:  # the scheduler's next tick tries again
            log.warning("webhook claim failed: %s", type(exc).__name__)

    # -- claiming --------------------------------------------------------------------------

    async def _claim(self, session: AsyncSession, stored: Counter[str] | None = None) -> list[Item]:
        """Claim for each endpoint with room (`stored`: attempts this transaction has stored,
        whose leases it freed)."""
        # Leases of ours whose attempt was answered and waits to be stored are not in flight:
        # they take no room (the cap bounds requests on the wire, not the writer's queue).
        idle = self._unrecorded - (stored or Counter())
        now = utcnow()
        cap = self.settings.webhooks_endpoint_concurrency
        # Index seeks per enabled endpoint, not a scan of the queue (which may be long).
        held = (
            select(func.count())
            .where(
                WebhookDelivery.endpoint_id == WebhookEndpoint.id,
                WebhookDelivery.lease_expires_at > now,
            )
            .correlate(WebhookEndpoint)
            .scalar_subquery()
        )
        has_due = exists().where(
            WebhookDelivery.endpoint_id == WebhookEndpoint.id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.due_at <= now,
        )
        candidates = (
            await session.execute(
                select(WebhookEndpoint, held).where(WebhookEndpoint.enabled, has_due)
            )
        ).all()
        endpoints = {endpoint.id: endpoint for endpoint, _ in candidates}
        budget = self.settings.webhooks_claim_batch
        rows: list[Any] = []
        for endpoint, leased in candidates:
            endpoint_id = endpoint.id
            room = cap * self._rounds(endpoint_id) - max(0, int(leased) - idle[endpoint_id])
            if room < cap and leased:
                continue  # a round's worth at a time: fewer, larger claims
            free = min(room, budget - len(rows))
            if free <= 0:
                continue
            rows += await leases.claim(
                session,
                WebhookDelivery,
                owner=self.owner,
                limit=free,
                lease=self.lease,
                now=now,
                where=[
                    WebhookDelivery.endpoint_id == endpoint_id,
                    WebhookDelivery.status == PENDING,
                    _FIRST_IN_LINE,
                ],
                columns=items.CLAIMED,
            )
            if len(rows) >= budget:
                break
        if not rows:
            return []
        # A fifth of the lease kept as margin for clock skew between processes.
        lease_until = time.monotonic() + self.lease.total_seconds() * 0.8
        return await self._items.load(session, rows, endpoints, lease_until)

    def _item_id(self, item: Item) -> str:
        return item.delivery_id

    # -- sending ---------------------------------------------------------------------------

    async def _store_group(self, group: list[Attempt]) -> None:
        """One transaction records `group` and, when an endpoint has room, claims the next
        deliveries (after the group's leases are freed, so the claim counts that room). The
        claimed deliveries start before the group's senders hear their attempts are stored."""
        claim = self._want_refill and not self._stopping and not self._claiming.locked()
        async with self._claiming if claim else contextlib.nullcontext():
            if claim:
                self._want_refill = False
                self._last_claim = asyncio.get_running_loop().time()
            async with self._turn(), self.store.transaction() as session:
                await outcomes.store_group(session, self.settings, self.owner, group)
                stored = Counter(a.item.endpoint_id for a in group)
                items = await self._claim(session, stored) if claim else []
            await self._start(items)

    async def _run(self, item: Item) -> None:
        sent = False
        endpoint_id = item.endpoint_id
        try:
            attempt = await self._senders.submit(item)
            if attempt is None:
                # Waited so long for a sender that another process may own it now: give it
                # back rather than risk sending it twice at once.
                async with self._turn(), self.store.transaction() as session:
                    ids = [item.delivery_id]
                    await leases.release(session, WebhookDelivery, ids, owner=self.owner)
                return
            sent = True
            self._finished(endpoint_id)  # its room counts for the group's claim
            self._unrecorded[endpoint_id] += 1
            try:
                await self._writer.record(attempt)
            finally:
                self._unrecorded[endpoint_id] -= 1
        except asyncio.CancelledError:
            # Shutdown ran out of grace: hand the delivery back at once for the next process,
            # recording the post it cut off, if any (the receiver may have had it).
            cut = self._senders.posting.pop(item.delivery_id, None)
            async with self._turn(), self.store.transaction() as session:
                if cut is not None:
                    started_at, clock = cut
                    duration_ms = (time.perf_counter() - clock) * 1000.0
                    await outcomes.store_interrupted(
                        session, self.owner, item, started_at, duration_ms
                    )
                await leases.release(session, WebhookDelivery, [item.delivery_id], owner=self.owner)
            raise
        except Exception:  # a bug or a database outage must not lose it: the lease expires
            log.exception("webhook delivery not recorded", extra={"delivery_id": item.delivery_id})
        finally:
            if not sent:
                self._finished(endpoint_id)


def install(scheduler: Any, store: Store, settings: Settings) -> Dispatcher | None:
    """Add the webhook tick to `scheduler` (an APScheduler); None when webhooks are off."""
    if not settings.webhooks_enabled:
        return None
    dispatcher = Dispatcher(store, settings)
    events.on_due(store, dispatcher.wake)

    async def _tick() -> None:
        try:
            await dispatcher.on_tick()
        except Exception as exc:  # a failed round (database away) must not stop later ones
            log.warning("webhook tick failed: %s", type(exc).__name__)

    scheduler.add_job(
        _tick,
        "interval",
        seconds=settings.webhooks_tick_seconds,
        id="webhooks",
        next_run_time=utcnow(),
    )
    return dispatcher
