"""Integrations: connect a calendar account, choose its calendars, read busy time, disconnect.

Services never commit (the API dependency does). Disconnecting purges everything that came from
or belongs to the integration and leaves only a receipt of counts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    AuthExpired,
    CalendarInfo,
    ConnectorError,
    RemoteChanged,
    RemoteNotFound,
)
from gateway import secrets
from gateway.config import Settings
from gateway.domain.scoping import get_owned, get_referenced
from gateway.errors import ExternalError, ValidationFailed, describe
from gateway.errors import NotFound as MissingRow
from gateway.store.db import Store, session_store
from gateway.store.models import Account, Appointment, User
from gateway.store.sync_models import (
    BusyBlock,
    Integration,
    PurgeReceipt,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)
from gateway.store.types import utcnow
from gateway.sync import consent, outbound, plan, providers, watch
from gateway.sync.record import integration_counts
from gateway.sync.run import (
    ACTIVE,
    PENDING,
    sync_window,
)
from gateway.webhooks import hooks as webhook_hooks

log = logging.getLogger("calgate.sync")


@dataclass(frozen=True)
class NewIntegration:
    """What a person gives to connect a calendar account."""

    user_id: str
    provider: str
    server_url: str | None
    username: str | None
    password: str
    write_calendar: str | None = None
    busy_calendars: tuple[str, ...] | None = None


async def create_integration(
    session: AsyncSession, settings: Settings, account: Account, new: NewIntegration
) -> Integration:
    """Check the URL, sign in, discover the calendars, store it (secret encrypted).

    A refused password still creates the integration, in status reconnect_needed, saying so.
    """
    user = await get_referenced(session, User, account, new.user_id, "user_id")
    capabilities = providers.usable(session_store(session), settings, new.provider).capabilities
    if not capabilities.oauth and not new.password:
        raise ValidationFailed.one("password", "is required for this provider")
    if capabilities.user_url:
        if not new.server_url:
            raise ValidationFailed.one("server_url", "is required for this provider")
        await outbound.check_url(settings, new.server_url)
    integration = Integration(
        account_id=account.id,
        user_id=user.id,
        provider=new.provider,
        server_url=new.server_url,
        username=new.username,
        secret=secrets.encrypt(settings, new.password),
        status=PENDING,
        due_at=utcnow(),
        counts={},
    )
    session.add(integration)
    await session.flush()
    if capabilities.oauth:
        return integration  # credentials come with the consent (see `consent_url`)
    found = await _discover_calendars(session, settings, integration)
    if found is None:
        return integration
    if new.write_calendar is not None or new.busy_calendars is not None:
        await choose_calendars(session, integration, new.write_calendar, new.busy_calendars)
    elif len(found) == 1:
        await choose_calendars(session, integration, found[0].id, None)
    integration.counts = await integration_counts(session, integration.id)
    return integration


async def consent_url(
    session: AsyncSession, settings: Settings, integration: Integration
) -> str | None:
    """A fresh consent link when the integration's provider connects by consent, else None."""
    if not consent.by_consent(session_store(session), settings, integration.provider):
        return None
    return await consent.begin(session, settings, integration)


def _match(calendars: list[SyncCalendar], wanted: str, field: str) -> SyncCalendar:
    for cal in calendars:
        if wanted in (cal.id, cal.remote_id, cal.name):
            return cal
    raise ValidationFailed.one(field, "no such calendar in this account")


async def calendars_of(session: AsyncSession, integration_id: str) -> list[SyncCalendar]:
    """The integration's calendars, in discovery order."""
    rows = await session.scalars(
        select(SyncCalendar)
        .where(SyncCalendar.integration_id == integration_id)
        .order_by(SyncCalendar.id)
    )
    return list(rows)


async def choose_calendars(
    session: AsyncSession,
    integration: Integration,
    write: str | None,
    busy: tuple[str, ...] | list[str] | None,
) -> Integration:
    """Pick the calendar appointments are written to and the ones counted as busy (by id, URL
    or name). The write calendar's other events always count as busy."""
    calendars = await calendars_of(session, integration.id)
    if write is not None:
        chosen = _match(calendars, write, "write_calendar")
        for cal in calendars:
            cal.write = cal is chosen
    if busy is not None:
        wanted = {_match(calendars, b, "busy_calendars").id for b in busy}
        for cal in calendars:
            cal.busy = cal.id in wanted
    if any(c.write for c in calendars) and integration.status == PENDING:
        integration.status = ACTIVE
        integration.due_at = utcnow()
    await session.flush()
    return integration


async def _discover_calendars(
    session: AsyncSession, settings: Settings, integration: Integration
) -> list[CalendarInfo] | None:
    """List the integration's calendars with its credentials and record the new ones; None
    (and the integration marked for reconnection) when the credentials are refused."""
    connector = providers.connector_for(session_store(session), settings, integration)
    try:
        found = await connector.list_calendars()
    except AuthExpired as exc:
        trouble = describe(exc)
        integration.status, integration.last_error = trouble.status, trouble.words
        await webhook_hooks.integration_status_changed(session, integration)
        return None
    finally:
        await connector.close()
    known = {c.remote_id for c in await calendars_of(session, integration.id)}
    for info in found:
        if info.id not in known:
            session.add(
                SyncCalendar(integration_id=integration.id, remote_id=info.id, name=info.name)
            )
    await session.flush()
    return found


async def update_password(
    session: AsyncSession, settings: Settings, integration: Integration, password: str
) -> Integration:
    """New credentials: try them, and resume the integration when they work."""
    integration.secret = secrets.encrypt(settings, password)
    if await _discover_calendars(session, settings, integration) is None:
        return integration
    calendars = await calendars_of(session, integration.id)
    integration.status = ACTIVE if any(c.write for c in calendars) else PENDING
    integration.last_error = None
    integration.failures = 0
    integration.due_at = utcnow()
    await webhook_hooks.integration_status_changed(session, integration)
    return integration


async def resume(session: AsyncSession, integration: Integration) -> Integration:
    """Run again after a guard paused it (the person checked the calendar), or right now."""
    if integration.status in (ACTIVE, "paused"):
        integration.status = ACTIVE
        integration.due_at = utcnow()
        integration.dirty = True
    return integration


async def get_integration(
    session: AsyncSession, account: Account, integration_id: str
) -> Integration:
    """One integration of the account (404 for others')."""
    return await get_owned(session, Integration, account, integration_id)


async def list_integrations(
    session: AsyncSession, account: Account, user_id: str | None
) -> list[Integration]:
    """The account's integrations, optionally one practitioner's."""
    query = select(Integration).where(Integration.account_id == account.id)
    if user_id:
        query = query.where(Integration.user_id == user_id)
    return list(await session.scalars(query.order_by(Integration.id)))


# --- disconnect and purge -----------------------------------------------------------------


async def disconnect(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    integration_id: str,
    *,
    remove_events: bool = True,
) -> PurgeReceipt:
    """Delete every trace of the integration; with `remove_events`, also our events there.

    Remote deletions that fail (server away, password refused) are counted in the receipt; the
    local purge happens regardless, because the person asked to be disconnected.
    """
    integration = await get_integration(session, account, integration_id)
    mappings = list(
        await session.scalars(
            select(SyncMapping).where(SyncMapping.integration_id == integration.id)
        )
    )
    calendars = await calendars_of(session, integration.id)
    write = next((c for c in calendars if c.write), None)
    counts: dict[str, int] = {"remote_events_deleted": 0, "remote_events_not_deleted": 0}
    store = session_store(session)
    try:
        connector = providers.connector_for(store, settings, integration)
    except ExternalError:
        connector = None
    if connector is not None:
        try:
            if providers.registry(store, settings).get(integration.provider).capabilities.watch:
                await watch.stop_all(session, integration, connector)
            if remove_events and write is not None:
                for mapping in mappings:
                    deleted = await _delete_remote(connector, write.remote_id, mapping, settings)
                    counts["remote_events_deleted" if deleted else "remote_events_not_deleted"] += 1
            try:
                await connector.revoke()
            except ConnectorError:
                counts["revoke_failed"] = 1
        finally:
            await connector.close()
    elif remove_events:
        counts["remote_events_not_deleted"] = len(mappings)
    for name, model in (
        ("busy_blocks", BusyBlock),
        ("mappings", SyncMapping),
        ("log_entries", SyncLogEntry),
        ("calendars", SyncCalendar),
    ):
        result = await session.execute(delete(model).where(model.integration_id == integration.id))
        counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
    counts["cursors"] = sum(1 for c in calendars if c.cursor)
    counts["credentials"] = 1
    receipt = PurgeReceipt(
        integration_id=integration.id,
        account_id=account.id,
        user_id=integration.user_id,
        provider=integration.provider,
        counts=counts,
        remote_removed=remove_events,
        purged_at=utcnow(),
    )
    await session.delete(integration)
    session.add(receipt)
    await session.flush()
    await webhook_hooks.integration_purged(session, receipt)
    log.info("integration purged", extra={"integration_id": integration_id, "counts": counts})
    return receipt


async def purge_user(
    session: AsyncSession, settings: Settings, account: Account, user_id: str
) -> list[PurgeReceipt]:
    """Before a practitioner is deleted: disconnect and purge each of their integrations exactly
    as `DELETE /v1/integrations/{id}` does (our events removed from the calendars, channels
    stopped, grants revoked, local rows purged, a receipt kept under each integration's id).

    Remote steps that fail are recorded in the receipts (see `remote_left`); the local purge
    happens regardless, so the deletion of the person never waits on a calendar server.
    """
    ids = list(
        await session.scalars(
            select(Integration.id)
            .where(Integration.account_id == account.id, Integration.user_id == user_id)
            .order_by(Integration.id)
        )
    )
    return [await disconnect(session, settings, account, i) for i in ids]


def remote_left(counts: dict[str, int]) -> str | None:
    """In words, what a purge could not undo at the provider (None when everything was done)."""
    parts = []
    if n := counts.get("remote_events_not_deleted", 0):
        parts.append(
            f"{n} event{'s' if n != 1 else ''} added by calgate could not be removed from the "
            "calendar (the server could not be reached or refused): delete them there by hand"
        )
    if counts.get("revoke_failed"):
        parts.append(
            "the access grant could not be revoked at the provider: "
            "remove calgate's access in the calendar account's security settings"
        )
    return "; ".join(parts) + "." if parts else None


async def _delete_remote(
    connector: Any, calendar_id: str, mapping: SyncMapping, settings: Settings
) -> bool:
    try:
        await connector.delete(calendar_id, mapping.href, mapping.etag)
        return True
    except RemoteNotFound:
        return True  # already gone
    except RemoteChanged:
        # Edited in the calendar since our last sync: ours all the same, delete what is there.
        try:
            item = await connector.get(calendar_id, mapping.href, sync_window(settings, utcnow()))
            await connector.delete(calendar_id, mapping.href, item.etag)
            return True
        except RemoteNotFound:
            return True
        except ConnectorError:
            return False
    except ConnectorError:
        return False


async def sync_log(
    session: AsyncSession, account: Account, integration_id: str, limit: int = 50
) -> list[SyncLogEntry]:
    """The integration's latest log entries (conflicts, guards, errors), newest first."""
    await get_integration(session, account, integration_id)
    rows = await session.scalars(
        select(SyncLogEntry)
        .where(SyncLogEntry.integration_id == integration_id)
        .order_by(SyncLogEntry.id.desc())
        .limit(limit)
    )
    return list(rows)


async def purge_receipt(
    session: AsyncSession, account: Account, integration_id: str
) -> PurgeReceipt:
    """The receipt of a disconnected integration (404 while it is connected or for others)."""
    receipt = await session.scalar(
        select(PurgeReceipt).where(
            PurgeReceipt.integration_id == integration_id, PurgeReceipt.account_id == account.id
        )
    )
    if receipt is None:
        raise MissingRow("no purge receipt for this integration")
    return receipt


async def checkpoint(store: Store) -> None:
    """Fold the SQLite write-ahead log into the database file and empty it, so deleted bytes
    (already overwritten there by secure_delete) do not linger in the WAL file."""
    if store.dialect != "sqlite":
        return
    try:
        async with store.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            # On the driver's connection: the pool's "begin" would open a transaction, inside
            # which SQLite refuses to checkpoint.
            driver: Any = raw.driver_connection
            await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # best effort: the next automatic checkpoint folds it anyway
        log.warning("checkpoint failed: %s", type(exc).__name__)


# --- busy time ----------------------------------------------------------------------------


async def busy_time(
    session: AsyncSession, account: Account, user_id: str, start: datetime, end: datetime
) -> list[plan.Interval]:
    """The user's busy time in [start, end): confirmed appointments and busy blocks of all
    their integrations, merged into sorted, non-overlapping intervals."""
    await get_owned(session, User, account, user_id)
    if end <= start:
        raise ValidationFailed.one("to", "must be after from")
    appointments = await session.execute(
        select(Appointment.start_at, Appointment.end_at).where(
            Appointment.account_id == account.id,
            Appointment.user_id == user_id,
            Appointment.status != "cancelled",
            Appointment.end_at > start,
            Appointment.start_at < end,
        )
    )
    blocks = await session.execute(
        select(BusyBlock.start_at, BusyBlock.end_at)
        .join(Integration, Integration.id == BusyBlock.integration_id)
        .where(
            Integration.account_id == account.id,
            BusyBlock.user_id == user_id,
            BusyBlock.end_at > start,
            BusyBlock.start_at < end,
        )
    )
    intervals = [
        plan.Interval(max(s, start), min(e, end)) for s, e in [*appointments.all(), *blocks.all()]
    ]
    return plan.merge(i for i in intervals if i.end > i.start)


async def count_rows(session: AsyncSession, integration_id: str) -> dict[str, int]:
    """Rows still held for an integration id (the purge tests expect zeros)."""
    counts = {
        "integrations": int(
            await session.scalar(
                select(func.count())
                .select_from(Integration)
                .where(Integration.id == integration_id)
            )
            or 0
        )
    }
    models: tuple[tuple[str, type[SyncCalendar | SyncMapping | BusyBlock | SyncLogEntry]], ...]
    models = (
        ("calendars", SyncCalendar),
        ("mappings", SyncMapping),
        ("busy_blocks", BusyBlock),
        ("log_entries", SyncLogEntry),
    )
    for name, model in models:
        column = model.integration_id
        counts[name] = int(
            await session.scalar(
                select(func.count()).select_from(model).where(column == integration_id)
            )
            or 0
        )
    return counts
