"""Retention: rows that are only kept for a while are deleted when their time is up.

The sweep deletes the store's own kept-for-a-while rows, then publishes `RETENTION_SWEEP`
(gateway/store/listeners.py): each feature's listener (registered in gateway/features.py)
deletes its own and adds its counts, so privacy imports no feature.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import key_activity
from gateway.store.listeners import publish
from gateway.store.models import IdempotencyRecord, UsageRecord

log = logging.getLogger("calgate.retention")

RETENTION_SWEEP = "retention.sweep"  # event: a Sweep


@dataclass
class Sweep:
    """One retention sweep, as its listeners see it: they add their deleted counts by table."""

    settings: Settings
    now: datetime
    counts: dict[str, int] = field(default_factory=dict)


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
    counts.update(await key_activity.sweep(session, settings, now))
    run = Sweep(settings, now, counts)
    await publish(session, RETENTION_SWEEP, run)  # the features' own rows
    log.info("retention sweep", extra={"deleted": counts})
    return counts
