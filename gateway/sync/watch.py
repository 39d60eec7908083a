"""Push channels, for every provider that declares them: one per synced calendar, renewed before
expiry, verified on arrival, stopped on disconnect.

A channel (`Connector.watch_start`) carries a random token the provider echoes with each
notification; only its SHA-256 is stored. The provider turns its request into notifications
(`Watch.read_notification`): one, a batch of several, or a `Reply` to send as it is (a
subscription handshake). `receive` accepts notifications only for known channel ids of that
provider with the right token (else 404 / 403: one forged item refuses the whole request and
nothing is marked), acknowledges the ones that say nothing changed, and otherwise only marks: the
integration due for a pull (the sync engine's dirty mark), a channel due for renewal or gone, a
calendar's cursor dropped for a full listing (lifecycle words). The work happens in the ticks,
so the answer is immediate.

`tick` keeps channels current: a calendar that is synced (write or busy) and has no channel with
more than the provider's renew margin left has its channel renewed where the provider can
(`Connector.watch_renew`), else gets a new one and the old one is stopped. Channels of
calendars no longer synced are stopped. A provider that only calls https addresses gets no
channels while public_url is http (one warning when the daemon starts; the integration is
polled). `stop_all` runs before a disconnect purges the integration (the rows go with it).
The tick runs every 5 minutes; so that push starts within seconds of connecting, choosing
calendars, new credentials and resuming add a job (`start_soon`) that does the tick's work for
that one integration at once, in whichever process runs jobs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import secrets as pysecrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import base
from connectors.base import Connector, ConnectorError, RemoteNotFound
from connectors.registry import Batch, Incoming, Notification, Provider, Reply
from gateway.config import Settings
from gateway.errors import ExternalError
from gateway.store.db import Store, session_store
from gateway.store.lifecycle_models import WatchChannel
from gateway.store.models import Job
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.store.types import utcnow
from gateway.sync import providers
from gateway.sync.run import ACTIVE

log = logging.getLogger("calgate.sync")

# The job that starts an integration's channels as soon as its calendars are chosen (the channel
# tick, every 5 minutes, is the backstop that renews and retries).
JOB_KIND = "sync.watch"


def webhook_path(provider: str) -> str:
    """Where provider `provider` posts its notifications (relative to public_url)."""
    return f"/webhooks/{provider}"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _watching(store: Store, settings: Settings) -> list[Provider]:
    return [
        p
        for p in providers.registry(store, settings)
        if p.capabilities.watch and p.watch is not None and not p.unavailable
    ]


def _reachable(provider: Provider, settings: Settings) -> bool:
    """Whether the provider can call our webhook at public_url (some only call https)."""
    assert provider.watch is not None
    return not provider.watch.needs_https or settings.public_url.startswith("https://")


async def receive(
    session: AsyncSession, settings: Settings, provider_name: str, request: Incoming
) -> Reply:
    """Handle one webhook request for `provider_name`; returns the answer to send."""
    store = session_store(session)
    found = [p for p in _watching(store, settings) if p.name == provider_name]
    if not found or found[0].watch is None:
        return Reply(404)
    read = found[0].watch.read_notification(request)
    if read is None:
        return Reply(400)
    if isinstance(read, Reply):  # a handshake: the provider checks we answer it as asked
        return read
    batch = read if isinstance(read, Batch) else Batch((read,))
    if not batch.notes:
        return Reply(400)
    known: list[tuple[Notification, WatchChannel]] = []
    for note in batch.notes:
        channel = await session.scalar(
            select(WatchChannel).where(
                WatchChannel.channel_id == note.channel_id, WatchChannel.provider == provider_name
            )
        )
        if channel is None:
            continue  # a channel we stopped, or announced before our row was committed
        if note.token is None or not hmac.compare_digest(_hash(note.token), channel.token_hash):
            # One forged item refuses the whole request: nothing in it is acted on.
            log.warning("webhook refused", extra={"reason": "bad channel token"})
            return Reply(403)
        # Where both name what was watched (a channel stored without one has nothing to check),
        # they agree.
        named = note.resource_id
        if named is not None and channel.resource_id and named != channel.resource_id:
            log.warning("webhook refused", extra={"reason": "other resource"})
            return Reply(403)
        known.append((note, channel))
    if not known:
        # A provider may announce a channel before our row is committed; such a first message
        # says nothing changed, so it is acknowledged whatever the channel.
        quiet = all(not n.changed and n.lifecycle is None for n in batch.notes)
        return Reply(batch.accepted if quiet else 404)
    for note, channel in known:
        await _apply(session, note, channel)
    return Reply(batch.accepted)


async def _apply(session: AsyncSession, note: Notification, channel: WatchChannel) -> None:
    """Act on one verified notification: only marks, the work happens in the ticks."""
    channel.last_message_at = utcnow()
    if note.lifecycle == "renew":
        channel.expires_at = utcnow()  # the channel tick replaces it; polling covers meanwhile
    elif note.lifecycle == "recreate":
        await session.delete(channel)  # gone at the provider: the channel tick starts a new one
    elif note.lifecycle == "resync":
        # Notifications were lost: the next sync lists this calendar in full.
        await session.execute(
            update(SyncCalendar)
            .where(
                SyncCalendar.integration_id == channel.integration_id,
                SyncCalendar.remote_id == channel.calendar_id,
            )
            .values(cursor=None)
            .execution_options(synchronize_session=False)
        )
    if note.changed or note.lifecycle in ("recreate", "resync"):
        # The engine's own due mark: dirty survives a sync running right now (it is read back
        # when the run ends, which then schedules the next run at once).
        await session.execute(
            update(Integration)
            .where(Integration.id == channel.integration_id, Integration.status == ACTIVE)
            .values(dirty=True, due_at=utcnow())
            .execution_options(synchronize_session=False)
        )


async def _stop(connector: Connector, row: WatchChannel) -> None:
    with contextlib.suppress(RemoteNotFound):  # already gone at the provider
        await connector.watch_stop(
            base.WatchChannel(row.channel_id, row.resource_id, row.expires_at)
        )


async def stop_all(session: AsyncSession, integration: Integration, connector: Connector) -> None:
    """Stop the integration's channels at the provider (before a disconnect; failures do not
    block it)."""
    rows = await session.scalars(
        select(WatchChannel).where(WatchChannel.integration_id == integration.id)
    )
    for row in rows:
        try:
            await _stop(connector, row)
        except ConnectorError as exc:
            log.warning("channel not stopped", extra={"error": type(exc).__name__})
        await session.delete(row)
    await session.flush()


async def tick(store: Store, settings: Settings) -> int:
    """Start, renew and stop channels as needed; returns how many were started."""
    started = 0
    for provider in _watching(store, settings):
        if _reachable(provider, settings):  # else polled (install() said so once)
            started += await _tick_provider(store, settings, provider)
    return started


async def start_soon(session: AsyncSession, settings: Settings, integration: Integration) -> None:
    """Have the integration's channels started (or moved to newly chosen calendars) within
    seconds rather than at the next channel tick: a job due now, added in the caller's
    transaction, so it exists exactly when the calendars chosen or the integration resumed do.
    Nothing for a provider without channels or an integration not active."""
    store = session_store(session)
    found = [p for p in _watching(store, settings) if p.name == integration.provider]
    if integration.status != ACTIVE or not found or not _reachable(found[0], settings):
        return
    await session.flush()  # a new integration gets its id
    key, payload = f"{JOB_KIND}:{integration.id}", {"integration_id": integration.id}
    # A job still waiting for the same integration will see this change too.
    job = Job.insert(store.dialect, JOB_KIND, key, utcnow(), payload)
    await session.execute(job.on_conflict_do_nothing(index_elements=["key"]))


async def run_job(store: Store, settings: Settings, payload: dict[str, Any]) -> None:
    """The job of `start_soon`: the channel tick's work for one integration (a failure is
    logged and left to the channel tick, as in the tick)."""
    for provider in _watching(store, settings):
        if _reachable(provider, settings):
            await _tick_provider(store, settings, provider, str(payload["integration_id"]))


async def _tick_provider(
    store: Store, settings: Settings, provider: Provider, only: str | None = None
) -> int:
    assert provider.watch is not None
    margin = timedelta(hours=provider.watch.renew_hours)
    address = settings.public_url + webhook_path(provider.name)
    query = select(Integration).where(
        Integration.provider == provider.name, Integration.status == ACTIVE
    )
    if only is not None:
        query = query.where(Integration.id == only)
    async with store.transaction() as session:
        integrations = list(await session.scalars(query))
        work = []
        for integration in integrations:
            channels = list(
                await session.scalars(
                    select(WatchChannel).where(WatchChannel.integration_id == integration.id)
                )
            )
            work.append((integration, await _synced(session, integration), channels))
    started = 0
    for integration, wanted, channels in work:
        try:
            connector = providers.connector_for(store, settings, integration)
        except ExternalError as exc:  # an unreadable secret: the sync reports it
            log.warning("channels skipped", extra={"error": type(exc).__name__})
            continue
        try:
            started += await _refresh(
                store, integration, connector, wanted, channels, address, margin
            )
        except ConnectorError as exc:
            log.warning("channel renewal failed", extra={"error": type(exc).__name__})
        finally:
            await connector.close()
    return started


async def _synced(session: AsyncSession, integration: Integration) -> set[str]:
    rows = await session.scalars(
        select(SyncCalendar.remote_id).where(
            SyncCalendar.integration_id == integration.id,
            SyncCalendar.write | SyncCalendar.busy,
        )
    )
    return set(rows)


async def _refresh(
    store: Store,
    integration: Integration,
    connector: Connector,
    wanted: set[str],
    channels: list[WatchChannel],
    address: str,
    margin: timedelta,
) -> int:
    started = 0
    keep: dict[str, WatchChannel] = {}
    for row in sorted(channels, key=lambda c: c.expires_at, reverse=True):
        if row.calendar_id in wanted and row.expires_at - margin > utcnow():
            keep.setdefault(row.calendar_id, row)
    for calendar_id in sorted(wanted - set(keep)):
        renewed = await _renew(store, connector, channels, calendar_id)
        if renewed is not None:
            keep[calendar_id] = renewed
            continue
        token = pysecrets.token_urlsafe(32)
        made = await connector.watch_start(calendar_id, address, token)
        async with store.transaction() as session:
            if await session.get(Integration, integration.id) is None:
                await connector.watch_stop(made)  # disconnected meanwhile
                continue
            session.add(
                WatchChannel(
                    provider=integration.provider,
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
                log.warning("channel not stopped", extra={"error": type(exc).__name__})
                continue
        async with store.transaction() as session:
            stale = await session.get(WatchChannel, row.id)
            if stale is not None:
                await session.delete(stale)
    return started


async def _renew(
    store: Store, connector: Connector, channels: list[WatchChannel], calendar_id: str
) -> WatchChannel | None:
    """The calendar's latest channel extended at the provider (same id and token), or None
    where channels cannot be renewed or it is gone there (a new one is started instead)."""
    rows = [c for c in channels if c.calendar_id == calendar_id]
    if not rows:
        return None
    row = max(rows, key=lambda c: c.expires_at)
    current = base.WatchChannel(row.channel_id, row.resource_id, row.expires_at)
    try:
        renewed = await connector.watch_renew(current)
    except (NotImplementedError, RemoteNotFound):
        return None
    async with store.transaction() as session:
        stored = await session.get(WatchChannel, row.id)
        if stored is None:  # disconnected meanwhile: the purge stops what is left
            return None
        stored.expires_at = renewed.expires_at
    row.expires_at = renewed.expires_at
    return row


async def poll_minutes(
    session: AsyncSession, store: Store, settings: Settings, integration: Integration
) -> float | None:
    """The provider's longer backstop poll interval while every synced calendar has an
    unexpired channel, else None (the engine's own interval)."""
    found = [p for p in _watching(store, settings) if p.name == integration.provider]
    if not found or found[0].watch is None:
        return None
    wanted = await _synced(session, integration)
    live = set(
        await session.scalars(
            select(WatchChannel.calendar_id).where(
                WatchChannel.integration_id == integration.id,
                WatchChannel.expires_at > utcnow(),
            )
        )
    )
    if not wanted or not wanted <= live:
        return None
    return found[0].watch.poll_minutes


def install(scheduler: Any, store: Store, settings: Settings) -> None:
    """Add the channel tick to the daemon's scheduler (every 5 minutes; only when a provider
    offers push channels)."""
    watching = _watching(store, settings)
    for provider in watching:
        if not _reachable(provider, settings):
            log.warning(
                "push notifications off for %s: it only calls https addresses and public_url "
                "is http; polled instead",
                provider.label,
            )
    if not any(_reachable(p, settings) for p in watching):
        return

    async def run() -> None:
        try:
            await tick(store, settings)
        except Exception as exc:  # a failed tick (database away) must not stop later ticks
            log.warning("channel tick failed: %s", type(exc).__name__)

    scheduler.add_job(run, "interval", minutes=5, id="watch-channels", next_run_time=utcnow())
