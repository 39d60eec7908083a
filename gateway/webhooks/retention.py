"""Retention of webhook history: events, their deliveries and attempts.

An event goes `webhooks_retention_days` after it happened, with its deliveries and their
attempts (they name the receiver's answers), once none of its deliveries is pending: a delivery
still being retried, or waiting for a disabled endpoint to be enabled again, keeps its event.
Replay reaches back as far as events are kept. Called once per retention sweep from
`gateway.privacy.retention`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.store.webhook_models import PENDING, WebhookAttempt, WebhookDelivery, WebhookEvent


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete old events with their deliveries and attempts; return counts."""
    cutoff = now - timedelta(days=settings.webhooks_retention_days)
    waiting = exists().where(
        WebhookDelivery.event_id == WebhookEvent.id, WebhookDelivery.status == PENDING
    )
    old = select(WebhookEvent.id).where(WebhookEvent.created_at < cutoff, ~waiting)
    old_deliveries = select(WebhookDelivery.id).where(WebhookDelivery.event_id.in_(old))
    attempts = await session.execute(
        delete(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(old_deliveries))
        .execution_options(synchronize_session=False)
    )
    deliveries = await session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.event_id.in_(old))
        .execution_options(synchronize_session=False)
    )
    events = await session.execute(
        delete(WebhookEvent)
        .where(WebhookEvent.created_at < cutoff, ~waiting)
        .execution_options(synchronize_session=False)
    )
    return {
        "webhook_attempts": int(attempts.rowcount),  # type: ignore[attr-defined]
        "webhook_deliveries": int(deliveries.rowcount),  # type: ignore[attr-defined]
        "webhook_events": int(events.rowcount),  # type: ignore[attr-defined]
    }
