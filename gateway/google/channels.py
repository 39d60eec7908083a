"""Google push channels: start one per synced calendar, renew before expiry, verify webhooks.

A channel (``events.watch``) carries a random token that Google echoes in
``X-Goog-Channel-Token``; only its SHA-256 is stored. The webhook (`receive`) accepts a message
only for a known channel id with the right token (else 404 / 403, nothing marked), ignores the
initial ``sync`` message, and otherwise only marks the integration due for a pull (the sync
engine's dirty mark): the work happens in the sync tick, so the answer is immediate.

`tick` keeps channels current: a calendar that is synced (write or busy) and has no channel
with more than `google_channel_renew_hours` left gets a new one, and the old one is stopped
(Google does not renew channels). Channels of calendars no longer synced are stopped.
`stop_all` runs before a disconnect purges the integration (the rows go with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets as pysecrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import google
from connectors.base import Connector, ConnectorError, NotFound, WatchChannel
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.google_models import GoogleChannel
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.store.types import utcnow
from gateway.sync.run import ACTIVE, connector_for

log = logging.getLogger("calgate.google")

WEBHOOK_PATH = "/webhooks/google"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def receive(session: AsyncSession, headers: Mapping[str, str]) -> int:
    """Handle one push notification; returns the HTTP status to answer."""
    note = google.read_notification(headers)
    if note is None:
        return 400
    channel = await session.scalar(
        select(GoogleChannel).where(GoogleChannel.channel_id == note.channel_id)
    )
    if channel is None:
        # Google sends "sync" as soon as the channel exists, possibly before our row is
        # committed; it carries nothing to act on, so it is acknowledged whatever the channel.
        return 200 if not google.wants_pull(note) else 404
    if note.token is None or not hmac.compare_digest(_hash(note.token), channel.token_hash):
        log.warning("google webhook refused", extra={"reason": "bad channel token"})
        return 403
    if note.resource_id is not None and note.resource_id != channel.resource_id:
        return 403
    channel.last_message_at = utcnow()
    if google.wants_pull(note):
        # The engine's own due mark: dirty survives a sync running right now (it is read back
        # when the run ends, which then schedules the next run at once).
        await session.execute(
            update(Integration)
            .where(Integration.id == channel.integration_id, Integration.status == ACTIVE)
            .values(dirty=True, due_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return 200


async def _stop(connector: Connector, row: GoogleChannel) -> None:
    with contextlib.suppress(NotFound):  # already gone at Google
        await connector.watch_stop(WatchChannel(row.channel_id, row.resource_id, row.expires_at))


async def stop_all(session: AsyncSession, integration: Integration, connector: Connector) -> None:
    """Stop the integration's channels at Google (before a disconnect; failures don't block)."""
    rows = await session.scalars(
        select(GoogleChannel).where(GoogleChannel.integration_id == integration.id)
    )
    for row in rows:
        try:
            await _stop(connector, row)
        except ConnectorError as exc:
            log.warning("google channel not stopped", extra={"error": type(exc).__name__})
        await session.delete(row)
    await session.flush()


async def tick(store: Store, settings: Settings) -> int:
    """Start, renew and stop channels as needed; returns how many were started."""
    if not settings.google_watch:
        return 0
    margin = timedelta(hours=settings.google_channel_renew_hours)
    address = settings.public_url + WEBHOOK_PATH
    async with store.transaction() as session:
        integrations = list(
            await session.scalars(
                select(Integration).where(
                    Integration.provider == google.GoogleConnector.name,
                    Integration.status == ACTIVE,
                )
            )
        )
        work = []
        for integration in integrations:
            calendars = await session.scalars(
                select(SyncCalendar.remote_id).where(
                    SyncCalendar.integration_id == integration.id,
                    SyncCalendar.write | SyncCalendar.busy,
                )
            )
            channels = list(
                await session.scalars(
                    select(GoogleChannel).where(GoogleChannel.integration_id == integration.id)
                )
            )
            work.append((integration, set(calendars), channels))
    started = 0
    for integration, wanted, channels in work:
        try:
            connector = connector_for(settings, integration)
        except Exception as exc:  # unreadable secret: the sync reports it
            log.warning("google channels skipped", extra={"error": type(exc).__name__})
            continue
        try:
            started += await _refresh(
                store, integration, connector, wanted, channels, address, margin
            )
        except ConnectorError as exc:
            log.warning("google channel renewal failed", extra={"error": type(exc).__name__})
        finally:
            await connector.close()
    return started


async def _refresh(
    store: Store,
    integration: Integration,
    connector: Connector,
    wanted: set[str],
    channels: list[GoogleChannel],
    address: str,
    margin: timedelta,
) -> int:
    started = 0
    keep: dict[str, GoogleChannel] = {}
    for row in sorted(channels, key=lambda c: c.expires_at, reverse=True):
        if row.calendar_id in wanted and row.expires_at - margin > utcnow():
            keep.setdefault(row.calendar_id, row)
    for calendar_id in sorted(wanted - set(keep)):
        token = pysecrets.token_urlsafe(32)
        made = await connector.watch_start(calendar_id, address, token)
        async with store.transaction() as session:
            if await session.get(Integration, integration.id) is None:
                await connector.watch_stop(made)  # disconnected meanwhile
                continue
            session.add(
                GoogleChannel(
                    integration_id=integration.id,
                    calendar_id=calendar_id,
                    channel_id=made.id,
                    resource_id=made.resource_id,
                    token_hash=_hash(token),
                    expires_at=made.expires_at,
                )
            )
        started += 1
    # The replaced channels (once their successor runs), and those of calendars not synced.
    kept = {row.id for row in keep.values()}
    for row in channels:
        if row.id in kept:
            continue
        try:
            await _stop(connector, row)
        except ConnectorError as exc:
            if row.expires_at > utcnow():
                log.warning("google channel not stopped", extra={"error": type(exc).__name__})
                continue
        async with store.transaction() as session:
            stale = await session.get(GoogleChannel, row.id)
            if stale is not None:
                await session.delete(stale)
    return started


async def poll_minutes(
    session: AsyncSession, integration: Integration, settings: Settings
) -> float | None:
    """The longer backstop poll interval while every synced calendar has an unexpired channel,
    else None (the engine's own interval)."""
    if integration.provider != google.GoogleConnector.name or not settings.google_watch:
        return None
    wanted = set(
        await session.scalars(
            select(SyncCalendar.remote_id).where(
                SyncCalendar.integration_id == integration.id,
                SyncCalendar.write | SyncCalendar.busy,
            )
        )
    )
    now = utcnow()
    live = set(
        await session.scalars(
            select(GoogleChannel.calendar_id).where(
                GoogleChannel.integration_id == integration.id,
                GoogleChannel.expires_at > now,
            )
        )
    )
    if not wanted or not wanted <= live:
        return None
    return settings.google_push_poll_minutes


def install(scheduler: Any, store: Store, settings: Settings) -> None:
    """Add the channel tick to the daemon's scheduler (every 5 minutes; only with Google)."""
    if not settings.google_client_id or not settings.google_watch:
        return

    async def run() -> None:
        try:
            await tick(store, settings)
        except Exception as exc:  # a failed tick (database away) must not stop later ticks
            log.warning("google channel tick failed: %s", type(exc).__name__)

    scheduler.add_job(run, "interval", minutes=5, id="google-channels", next_run_time=utcnow())
