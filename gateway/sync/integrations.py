"""Integrations: connect a calendar account, choose its calendars, new credentials, resume.

Services never commit (the API dependency does). Busy time is read in gateway/sync/busy.py;
disconnecting is a durable purge job in gateway/privacy/purge.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import (
    AuthExpired,
    CalendarInfo,
)
from gateway import secrets
from gateway.config import Settings
from gateway.domain.scoping import get_owned, get_referenced
from gateway.errors import Conflict, ValidationFailed, describe
from gateway.store.db import session_store
from gateway.store.models import Account, User
from gateway.store.sync_models import Integration, SyncCalendar, SyncLogEntry
from gateway.store.types import utcnow
from gateway.sync import consent, outbound, providers, topics, watch
from gateway.sync.record import integration_counts
from gateway.sync.run import (
    ACTIVE,
    PENDING,
    PURGING,
)

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
        await choose_calendars(
            session, settings, integration, new.write_calendar, new.busy_calendars
        )
    elif len(found) == 1:
        await choose_calendars(session, settings, integration, found[0].id, None)
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
    settings: Settings,
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
        await topics.status_set(session, integration)
    await session.flush()
    await watch.start_soon(session, settings, integration)
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
        await topics.status_set(session, integration)
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
    await topics.status_set(session, integration)
    await watch.start_soon(session, settings, integration)
    return integration


async def resume(
    session: AsyncSession, settings: Settings, integration: Integration
) -> Integration:
    """Run again after a guard paused it (the person checked the calendar), or right now."""
    if integration.status in (ACTIVE, "paused"):
        integration.status = ACTIVE
        integration.due_at = utcnow()
        integration.dirty = True
        await topics.status_set(session, integration)
        await watch.start_soon(session, settings, integration)
    return integration


async def get_integration(
    session: AsyncSession, account: Account, integration_id: str
) -> Integration:
    """One integration of the account (404 for others')."""
    return await get_owned(session, Integration, account, integration_id)


def check_not_purging(integration: Integration) -> None:
    """Refuse changes to an integration whose disconnect was accepted (409)."""
    if integration.status == PURGING:
        raise Conflict("the integration is being disconnected")


async def list_integrations(
    session: AsyncSession, account: Account, user_id: str | None
) -> list[Integration]:
    """The account's integrations, optionally one practitioner's."""
    query = select(Integration).where(Integration.account_id == account.id)
    if user_id:
        query = query.where(Integration.user_id == user_id)
    return list(await session.scalars(query.order_by(Integration.id)))


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
