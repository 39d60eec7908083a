"""Retention: rows that are only kept for a while are deleted when their time is up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import key_activity
from gateway.feeds import access as feed_access
from gateway.notify import retention as notify_retention
from gateway.store.models import IdempotencyRecord, UsageRecord
from gateway.webhooks import retention as webhook_retention

log = logging.getLogger("calgate.retention")


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete usage records past retention and expired idempotency records; return counts."""
    usage_cutoff = now - timedelta(days=settings.usage_retention_days)
    usage = await session.execute(delete(UsageRecord).where(UsageRecord.created_at < usage_cutoff))
    idem = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    counts = {
        "usage_records": int(usage.rowcount),  # type: ignore[attr-defined]
        "idempotency_records": int(idem.rowcount),  # type: ignore[attr-defined]
    }
    counts.update(await feed_access.sweep(session, settings, now))
    counts.update(await key_activity.sweep(session, settings, now))
    counts.update(await notify_retention.sweep(session, settings, now))
    counts.update(await webhook_retention.sweep(session, settings, now))
    log.info("retention sweep", extra={"deleted": counts})
    return counts
