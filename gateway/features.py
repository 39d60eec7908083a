"""The features' reactions to domain changes, registered on a Store when the app is built.

gateway/domain publishes appointment and person changes (gateway/store/listeners.py) and imports
no feature; sync (gateway/sync/topics.py) and notify (gateway/notify/topics.py) publish theirs
the same way, so neither knows the webhooks. This is the one place that says who listens, in
which order. `create_app`, the CLI
and the tests' stores call `install`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain.appointments import APPOINTMENT_CHANGED
from gateway.domain.people import PERSON_CHANGED, PersonChange
from gateway.feeds import access as feed_access
from gateway.feeds import invalidate as feeds
from gateway.notify import planner
from gateway.notify import retention as notify_retention
from gateway.notify import topics as notify_topics
from gateway.privacy.retention import RETENTION_SWEEP, Sweep
from gateway.store.db import Store
from gateway.store.listeners import Listener, Listeners
from gateway.sync import hooks as sync_hooks
from gateway.sync import topics as sync_topics
from gateway.web import short_links
from gateway.webhooks import hooks as webhook_hooks
from gateway.webhooks import retention as webhook_retention

Sweeper = Callable[[AsyncSession, Settings, datetime], Awaitable[dict[str, Any]]]


async def _feeds_on_person(session: AsyncSession, change: PersonChange) -> None:
    await feeds.on_person_change(session, change.account_id)


def _sweeping(sweeper: Sweeper) -> Listener:
    """A feature's retention sweep as a listener of the daily sweep (adds its counts)."""

    async def listener(session: AsyncSession, run: Sweep) -> None:
        run.counts.update(await sweeper(session, run.settings, run.now))

    return listener


def listeners() -> Listeners:
    """Every feature's listeners: notifications are planned, feeds bumped, syncs marked due,
    webhook events written (for appointments, integrations, notification outcomes and SMS
    opt-outs), each feature's old rows swept."""
    registry = Listeners()
    registry.add(APPOINTMENT_CHANGED, planner.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, feeds.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, sync_hooks.on_appointment_change)
    registry.add(APPOINTMENT_CHANGED, webhook_hooks.on_appointment_change)
    registry.add(PERSON_CHANGED, _feeds_on_person)
    registry.add(sync_topics.INTEGRATION_STATUS, webhook_hooks.integration_status_changed)
    registry.add(sync_topics.INTEGRATION_PURGED, webhook_hooks.integration_purged)
    registry.add(notify_topics.NOTIFICATION_OUTCOMES, webhook_hooks.notification_outcomes)
    registry.add(notify_topics.SMS_OPT_CHANGED, webhook_hooks.sms_opt_changed)
    sweepers = (
        feed_access.sweep,
        notify_retention.sweep,
        webhook_retention.sweep,
        short_links.sweep,
    )
    for sweeper in sweepers:
        registry.add(RETENTION_SWEEP, _sweeping(sweeper))
    return registry


def install(store: Store) -> Store:
    """Give `store` the features' listeners (replacing any it had); returns it."""
    store.listeners = listeners()
    return store
