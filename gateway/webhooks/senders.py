"""Posting claimed deliveries: at most `webhooks_endpoint_concurrency` senders per endpoint, each
posting one waiting delivery after another, and each endpoint's pace.

A sender goes straight from one post to the next on a connection of its own (`http.Lane`,
handed back to `http.Pool` when the sender runs out of work): a task per delivery waiting on a
semaphore cost a hand-over between tasks per post, and a shared pool checks every idle
connection on each request. Each endpoint's running mean duration decides how many rounds of
the cap the dispatcher keeps claimed for it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict, deque
from datetime import datetime

from gateway.store.types import utcnow
from gateway.webhooks import http
from gateway.webhooks.items import Item
from gateway.webhooks.outcomes import Attempt

# Rounds of the cap kept claimed per endpoint: up to PREFETCH for a fast receiver, so its
# senders never wait for a claim (claims ride on the outcome transactions, which take tens of
# milliseconds on a busy machine); fewer for a slow one, so a claimed delivery does not wait for
# a sender until its lease is nearly out.
PREFETCH = 16
PREFETCH_UNKNOWN = 4  # rounds for an endpoint not yet timed by this process
_PACE_WEIGHT = 0.1  # weight of each new attempt in an endpoint's running mean duration

_Waiting = tuple["Item", "asyncio.Future[Attempt | None]"]  # None: not sent, lease nearly out


class Senders:
    """The per-endpoint senders of one dispatcher."""

    def __init__(self, client: http.Pool, cap: int, answer_bytes: int) -> None:
        self.client = client
        self.cap = cap
        self.answer_bytes = answer_bytes
        self._queues: dict[str, deque[_Waiting]] = defaultdict(deque)
        self._count: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()
        self._pace: dict[str, float] = {}  # endpoint -> running mean seconds per attempt
        # delivery -> when its post started (UTC, perf_counter), while on the wire; left here
        # when the post is cut off by a cancel, for the delivery's task to record it.
        self.posting: dict[str, tuple[datetime, float]] = {}

    def submit(self, item: Item) -> asyncio.Future[Attempt | None]:
        """Queue `item` for its endpoint; the future gives its attempt, or None when it waited
        until its lease was nearly out (not sent). Cancelling the future withdraws it."""
        waiting: _Waiting = (item, asyncio.get_running_loop().create_future())
        self._queues[item.endpoint_id].append(waiting)
        if self._count[item.endpoint_id] < self.cap:
            self._count[item.endpoint_id] += 1
            task = asyncio.create_task(self._sender(item.endpoint_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return waiting[1]

    def rounds(self, endpoint_id: str, lease_seconds: float) -> int:
        """Rounds of the cap to keep claimed for `endpoint_id`: the last of them waits about
        rounds x its mean duration for a sender, kept under 40% of the lease."""
        pace = self._pace.get(endpoint_id)
        if pace is None:
            return PREFETCH_UNKNOWN
        fits = int(lease_seconds * 0.4 / max(pace, 1e-3))
        return max(1, min(PREFETCH, fits))

    async def cancel(self) -> None:
        """Stop every sender (a post under way is abandoned; its delivery's task hands it back)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _sender(self, endpoint_id: str) -> None:
        queue = self._queues[endpoint_id]
        waiter: asyncio.Future[Attempt | None] | None = None
        lane = http.Lane(self.client)
        try:
            while queue:
                item, waiter = queue.popleft()
                if waiter.done():
                    continue  # withdrawn: its task was cancelled and handed it back
                if time.monotonic() > item.lease_until:
                    waiter.set_result(None)
                    continue
                self.posting[item.delivery_id] = (utcnow(), time.perf_counter())
                try:
                    attempt = await http.attempt(lane, item, self.answer_bytes)
                except Exception as exc:  # a bug: its task logs it, the lease expires
                    self.posting.pop(item.delivery_id, None)
                    if not waiter.done():
                        waiter.set_exception(exc)
                    continue
                # (gone already if the delivery's task was cancelled meanwhile and recorded
                # the post as interrupted)
                self.posting.pop(item.delivery_id, None)
                pace = self._pace.get(endpoint_id, attempt.duration_ms / 1000.0)
                self._pace[endpoint_id] = pace + _PACE_WEIGHT * (attempt.duration_ms / 1000 - pace)
                if not waiter.done():
                    waiter.set_result(attempt)
        finally:
            self._count[endpoint_id] -= 1
            if waiter is not None and not waiter.done():
                waiter.cancel()  # cancelled mid-post: its task hands the delivery back
            await lane.close()
