"""What an answer means, how long retries last, endpoints failing for days, and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from gateway.config import Settings
from gateway.privacy import retention
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.store.webhook_models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from gateway.webhooks import outcomes, policy
from gateway.webhooks.items import Item
from tests.webhooks.seed import endpoint_for, queue_events


@pytest.mark.parametrize(
    ("status", "error", "outcome"),
    [
        (200, None, policy.DELIVERED),
        (204, None, policy.DELIVERED),
        (None, "timeout", policy.RETRY),
        (None, "connection failed: refused", policy.RETRY),
        (408, None, policy.RETRY),
        (429, None, policy.RETRY),
        (500, None, policy.RETRY),
        (503, None, policy.RETRY),
        (410, None, policy.GONE),
        (301, None, policy.FAILED),
        (400, None, policy.FAILED),
        (401, None, policy.FAILED),
        (404, None, policy.FAILED),
    ],
)
def test_judge(status: int | None, error: str | None, outcome: str) -> None:
    assert policy.judge(status, error).outcome == outcome


def test_retry_after_is_honoured() -> None:
    verdict = policy.judge(429, None, "120")
    assert verdict.retry_after == 120.0
    assert policy.next_wait(1, 5.0, verdict.retry_after) >= timedelta(seconds=120)


def test_waits_grow_with_jitter_and_retries_span_about_three_days() -> None:
    waits = [policy.next_wait(n, 5.0) for n in range(1, 30)]
    assert timedelta(seconds=2.5) <= waits[0] <= timedelta(seconds=5)
    assert all(w <= policy.MAX_WAIT for w in waits)
    assert len({w for w in waits}) > 20  # jittered, not lock-step
    elapsed, attempts = timedelta(0), 1
    while elapsed + (wait := policy.next_wait(attempts, 5.0)) <= timedelta(hours=72):
        elapsed += wait
        attempts += 1
    assert 12 <= attempts <= 30 and elapsed > timedelta(hours=60)


async def _attempt(store: Store, settings: Settings, status: int | None) -> None:
    """Claim the one delivery as a dispatcher would and record an attempt with `status`."""
    owner = "test-owner"
    async with store.transaction() as session:
        delivery = await session.scalar(select(WebhookDelivery))
        assert delivery is not None
        delivery.lease_owner, delivery.lease_expires_at = owner, utcnow() + timedelta(minutes=1)
        item = Item(
            delivery.id,
            delivery.endpoint_id,
            delivery.event_id,
            delivery.attempts + 1,
            "https://example.com/hooks",
            [],
            b"{}",
            delivery.retry_since or delivery.created_at,
        )
    attempt = outcomes.Attempt(item, utcnow(), 5.0, status, None if status else "timeout", "", None)
    async with store.transaction() as session:
        await outcomes.store_group(session, settings, owner, [attempt])


async def test_gives_up_after_retry_hours_and_disables_after_days(
    store: Store, settings: Settings
) -> None:
    seeded = await endpoint_for(store, settings, "https://93.184.215.14/hooks")
    await queue_events(store, seeded, 1)
    week_ago = utcnow() - timedelta(days=7)
    async with store.transaction() as session:
        await session.execute(update(WebhookDelivery).values(created_at=week_ago))
    await _attempt(store, settings, 503)
    async with store.transaction() as session:
        delivery = await session.scalar(select(WebhookDelivery))
        endpoint = await session.get(WebhookEndpoint, seeded.endpoint_id)
        assert delivery is not None and endpoint is not None
        assert delivery.status == "failed"
        assert delivery.last_error == "gave up after 1 attempts: HTTP 503"
        assert endpoint.enabled and endpoint.failing_since is not None  # one failure: not yet
        endpoint.failing_since = week_ago
        delivery.status = "pending"
    await _attempt(store, settings, None)
    async with store.transaction() as session:
        endpoint = await session.get(WebhookEndpoint, seeded.endpoint_id)
        assert endpoint is not None and not endpoint.enabled
        assert endpoint.disabled_reason == "every delivery failed for 5 days (last: timeout)"


async def test_retention_keeps_pending_and_recent(store: Store, settings: Settings) -> None:
    seeded = await endpoint_for(store, settings, "https://93.184.215.14/hooks")
    ids = await queue_events(store, seeded, 3)
    old = utcnow() - timedelta(days=settings.webhooks_retention_days + 1)
    async with store.transaction() as session:
        await session.execute(
            update(WebhookEvent).where(WebhookEvent.id.in_(ids[:2])).values(created_at=old)
        )
        # The first old one was delivered (and attempted); the second still waits.
        await session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.event_id == ids[0])
            .values(status="delivered")
        )
        delivery_id = await session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.event_id == ids[0])
        )
        session.add(WebhookAttempt(delivery_id=delivery_id, attempt=1, status_code=200))
    async with store.transaction() as session:
        counts = await retention.sweep(session, settings, utcnow())
    assert (counts["webhook_events"], counts["webhook_deliveries"], counts["webhook_attempts"]) == (
        1,
        1,
        1,
    )
    async with store.transaction() as session:
        left = set((await session.scalars(select(WebhookEvent.id))).all())
        assert left == {ids[1], ids[2]}
        assert await session.scalar(select(func.count()).select_from(WebhookDelivery)) == 2
