"""Recording attempts: the attempt row, the delivery's new state, the endpoint's health.

Outcomes are stored by group commit (every attempt that finished while the previous transaction
ran goes in the next, which waits up to 10 ms for a group of 16: a transaction per attempt cost
more than the posts themselves), naming our lease, so a delivery taken over by another process
after our lease ran out is not overwritten (its attempt is still recorded).

- delivered: the delivery is done; the endpoint is healthy again (`failing_since` cleared).
- retry: due again after `policy.next_wait`, unless that falls past `webhooks_retry_hours` from
  the delivery's creation (or a retry by hand): then failed, "gave up after N attempts".
- failed: a refusal retrying cannot change (a redirect, a 4xx other than 408 / 429 / 410).
- gone (410): the endpoint is disabled with the reason; the delivery stays pending, so enabling
  the endpoint again sends it.
An endpoint whose attempts have all failed for `webhooks_disable_after_days` is disabled too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.store.types import new_id, utcnow
from gateway.store.webhook_models import (
    DELIVERED,
    FAILED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from gateway.webhooks import policy
from gateway.webhooks.items import Item

log = logging.getLogger("calgate.webhooks")

_GROUP_WAIT = 0.01  # seconds at most a small group waits for company
_GROUP_SIZE = 16  # attempts that make a group worth writing at once

_DELIVERIES = cast(Table, WebhookDelivery.__table__)
_ATTEMPTS = cast(Table, WebhookAttempt.__table__)
# Core, not ORM: an executemany over the group (the ORM's bulk update takes no extra WHERE).
_DELIVERED = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("b_id"), _DELIVERIES.c.lease_owner == bindparam("owner"))
    .values(
        status=DELIVERED,
        attempts=bindparam("b_attempts"),
        last_status_code=bindparam("b_status"),
        last_error=None,
        delivered_at=bindparam("now"),
        updated_at=bindparam("now"),
        lease_owner=None,
        lease_expires_at=None,
    )
)


@dataclass(frozen=True)
class Attempt:
    """What one attempt at a delivery gave."""

    item: Item
    started_at: datetime
    duration_ms: float
    status: int | None
    error: str | None
    answer: str
    retry_after: str | None


@dataclass
class _Pending:
    attempt: Attempt
    done: asyncio.Future[None]


class Writer:
    """Stores attempts in groups through `write` (one transaction per group); `record` returns
    once its attempt is stored."""

    def __init__(self, write: Callable[[list[Attempt]], Awaitable[None]]) -> None:
        self._write = write
        self._queue: list[_Pending] = []
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()  # set when the queue holds a group's worth

    @property
    def busy(self) -> bool:
        """A group is waiting or being written (a transaction will follow shortly)."""
        return self._task is not None and not self._task.done()

    async def record(self, attempt: Attempt) -> None:
        """Queue `attempt` for the next group and wait until it is stored."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(attempt, done))
        if len(self._queue) >= _GROUP_SIZE:
            self._full.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await asyncio.shield(done)

    async def flush(self) -> None:
        """Wait for the groups being written."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            # Wait for company: until a group is worth a transaction or the wait is up.
            if len(self._queue) < _GROUP_SIZE:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), _GROUP_WAIT)
            group, self._queue = self._queue, []
            try:
                await self._write([p.attempt for p in group])
            except Exception as exc:
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(exc)
                continue
            for p in group:
                if not p.done.done():
                    p.done.set_result(None)


async def store_group(
    session: AsyncSession, settings: Settings, owner: str, group: list[Attempt]
) -> None:
    """Record each attempt of `group` and settle its delivery (see the module docstring)."""
    now = utcnow()
    keep = settings.webhooks_response_bytes
    await session.execute(
        insert(_ATTEMPTS),
        [
            {
                "id": new_id("wha"),
                "delivery_id": a.item.delivery_id,
                "attempt": a.item.attempt,
                "started_at": a.started_at,
                "duration_ms": round(a.duration_ms, 3),
                "status_code": a.status,
                "error": a.error if a.status is None else None,
                "response": a.answer[:keep] if keep else None,
            }
            for a in group
        ],
    )
    verdicts = [(a, policy.judge(a.status, a.error, a.retry_after)) for a in group]
    ok = [a for a, v in verdicts if v.outcome == policy.DELIVERED]
    if ok:
        await session.execute(
            _DELIVERED,
            [
                {
                    "b_id": a.item.delivery_id,
                    "b_attempts": a.item.attempt,
                    "b_status": a.status,
                    "owner": owner,
                    "now": now,
                }
                for a in ok
            ],
        )
        # Healthy again: only endpoints that were failing when the delivery was claimed (one
        # that started failing since is cleared by its next success).
        recovered = {a.item.endpoint_id for a in ok if a.item.endpoint_failing}
        if recovered:
            await session.execute(
                update(WebhookEndpoint)
                .where(
                    WebhookEndpoint.id.in_(recovered),
                    WebhookEndpoint.failing_since.is_not(None),
                )
                .values(failing_since=None)
            )
    bad = [(a, v) for a, v in verdicts if v.outcome != policy.DELIVERED]
    if bad:
        await _settle_failures(session, settings, owner, bad, now)
    log.debug("webhook attempts stored", extra={"count": len(group), "delivered": len(ok)})


async def _settle_failures(
    session: AsyncSession,
    settings: Settings,
    owner: str,
    bad: list[tuple[Attempt, policy.Verdict]],
    now: datetime,
) -> None:
    owned = {
        d.id: d
        for d in await session.scalars(
            select(WebhookDelivery).where(
                WebhookDelivery.id.in_([a.item.delivery_id for a, _ in bad]),
                WebhookDelivery.lease_owner == owner,
            )
        )
    }
    endpoints = {
        e.id: e
        for e in await session.scalars(
            select(WebhookEndpoint).where(
                WebhookEndpoint.id.in_({a.item.endpoint_id for a, _ in bad})
            )
        )
    }
    retry_for = timedelta(hours=settings.webhooks_retry_hours)
    for attempt, verdict in bad:
        endpoint = endpoints.get(attempt.item.endpoint_id)
        if endpoint is not None:
            _endpoint_failed(settings, endpoint, verdict, now)
        delivery = owned.get(attempt.item.delivery_id)
        if delivery is None:
            continue  # our lease ran out and another process owns it now
        delivery.attempts = attempt.item.attempt
        delivery.last_status_code = attempt.status
        delivery.last_error = verdict.error
        delivery.lease_owner = None
        delivery.lease_expires_at = None
        delivery.updated_at = now
        if verdict.outcome == policy.FAILED:
            delivery.status = FAILED
        elif verdict.outcome == policy.RETRY:
            wait = policy.next_wait(
                attempt.item.attempt, settings.webhooks_retry_base_seconds, verdict.retry_after
            )
            if now + wait > attempt.item.retry_from + retry_for:
                delivery.status = FAILED
                delivery.last_error = (
                    f"gave up after {attempt.item.attempt} attempts: {verdict.error}"
                )[:200]
            else:
                delivery.due_at = now + wait
        # GONE: stays pending and due; the endpoint is disabled, so nothing claims it.


INTERRUPTED = "interrupted: calgate stopped during the post (the receiver may have it)"


async def store_interrupted(
    session: AsyncSession,
    owner: str,
    item: Item,
    started_at: datetime,
    duration_ms: float,
) -> None:
    """Record a post cut off by a stop as an attempt with no answer, before the lease is given
    back: the receiver may have had it, and the next attempt sends the same `webhook-id`."""
    now = utcnow()
    await session.execute(
        insert(_ATTEMPTS),
        [
            {
                "id": new_id("wha"),
                "delivery_id": item.delivery_id,
                "attempt": item.attempt,
                "started_at": started_at,
                "duration_ms": round(duration_ms, 3),
                "status_code": None,
                "error": INTERRUPTED,
                "response": None,
            }
        ],
    )
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == item.delivery_id, WebhookDelivery.lease_owner == owner)
        .values(
            attempts=item.attempt, last_status_code=None, last_error=INTERRUPTED, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )


def _endpoint_failed(
    settings: Settings, endpoint: WebhookEndpoint, verdict: policy.Verdict, now: datetime
) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
    if not endpoint.enabled:
        return
    if verdict.outcome == policy.GONE:
        reason = "the endpoint answered 410 Gone: the receiver removed it"
    elif now - endpoint.failing_since >= timedelta(days=settings.webhooks_disable_after_days):
        days = settings.webhooks_disable_after_days
        reason = f"every delivery failed for {days:g} days (last: {verdict.error})"
    else:
        return
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    endpoint.updated_at = now
    log.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.id})
