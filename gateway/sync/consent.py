"""Connecting by consent (OAuth 2.0 web server flow), for every provider that declares it.

`POST /v1/integrations {provider}` for such a provider creates the integration (status
pending) and asks `begin` for the consent link; a reconnect (the provider refused the grant)
asks again for the existing integration, which keeps its calendars and mappings. The link's
`state` is random, stored only as a SHA-256 hash, bound to the account, the practitioner and
that integration, usable once and only for the provider's consent minutes (CSRF: a forged,
replayed or stale state connects nothing). `finish` runs at ``GET /oauth/{provider}/callback``:
it spends the state, exchanges the code, stores the grant encrypted, discovers the calendars
and starts the sync. The connector supplies the provider's part (`connectors.registry.OAuth`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets as pysecrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import CalendarInfo, ConnectorError, Credentials
from connectors.registry import OAuth, Provider
from gateway import secrets
from gateway.config import Settings
from gateway.errors import describe
from gateway.store.db import Store, session_store
from gateway.store.lifecycle_models import OAuthConsent
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.store.types import utcnow
from gateway.sync import providers, topics, watch
from gateway.sync.run import ACTIVE, PENDING, PURGING

log = logging.getLogger("calgate.sync")


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def by_consent(store: Store, settings: Settings, provider: str) -> bool:
    """True when `provider` connects by consent rather than with a password."""
    return providers.registry(store, settings).get(provider).capabilities.oauth


async def begin(session: AsyncSession, settings: Settings, integration: Integration) -> str:
    """A fresh single-use consent link for `integration` (new, or needing a reconnect)."""
    store = session_store(session)
    provider = providers.usable(store, settings, integration.provider)
    oauth = _oauth(store, settings, provider)
    # Links of this integration already used or expired are of no further use.
    await session.execute(
        delete(OAuthConsent).where(
            OAuthConsent.integration_id == integration.id,
            (OAuthConsent.expires_at <= utcnow()) | OAuthConsent.used_at.is_not(None),
        )
    )
    state = pysecrets.token_urlsafe(32)
    session.add(
        OAuthConsent(
            provider=provider.name,
            state_hash=_hash(state),
            account_id=integration.account_id,
            user_id=integration.user_id,
            integration_id=integration.id,
            expires_at=utcnow() + timedelta(minutes=oauth.consent_minutes),
        )
    )
    await session.flush()
    return oauth.consent_url(state)


def _oauth(store: Store, settings: Settings, provider: Provider) -> OAuth:
    assert provider.oauth is not None, f"{provider.name} does not connect by consent"
    return provider.oauth(providers.shared_state(store, settings, provider.name))


@dataclass(frozen=True)
class Result:
    """What the landing page says. `ok` False pages answer 400."""

    ok: bool
    title: str
    message: str
    calendar: str | None = None
    # For the landing page (gateway/web/connection_pages.py): one of its outcomes, and whose
    # return URL leads back.
    outcome: str = "error"
    account_id: str | None = None


def _bad_link() -> Result:
    return Result(
        False,
        "This link cannot be used",
        "This connection link is invalid, expired or already used. Ask for a new one.",
        outcome="expired",
    )


async def finish(
    store: Store,
    settings: Settings,
    provider_name: str,
    state: str | None,
    code: str | None,
    error: str | None,
) -> Result:
    """Spend the state, exchange the code, store the grant, discover calendars, start syncing."""
    if not state:
        return _bad_link()
    now = utcnow()
    async with store.transaction() as session:
        consent = await session.scalar(
            select(OAuthConsent).where(OAuthConsent.state_hash == _hash(state))
        )
        if consent is not None and consent.used_at is not None:
            # A reload of the landing page: say so when that connection is live.
            used = await session.get(Integration, consent.integration_id)
            if used is not None and used.status == ACTIVE and consent.provider == provider_name:
                return Result(
                    True,
                    "Already connected",
                    "",
                    outcome="already_connected",
                    account_id=consent.account_id,
                )
        if (
            consent is None
            or consent.used_at is not None
            or consent.expires_at <= now
            or consent.provider != provider_name
        ):
            log.warning("consent refused", extra={"reason": "bad state"})
            return _bad_link()
        consent.used_at = now  # single use, whatever happens next
        integration_id, account_id = consent.integration_id, consent.account_id
    provider = providers.registry(store, settings).get(provider_name)
    failed = f"{provider.label} was not connected"
    if provider.unavailable:
        return Result(False, failed, provider.unavailable, account_id=account_id)
    if error or not code:
        return Result(
            False,
            failed,
            "Access was not granted, so nothing was connected. You can try again.",
            outcome="declined",
            account_id=account_id,
        )
    try:
        grant = await _oauth(store, settings, provider).exchange_code(code, state)
        shared = providers.shared_state(store, settings, provider.name)
        connector = provider.build(Credentials(None, grant.username, grant.secret), shared)
        try:
            found = await connector.list_calendars()
        finally:
            await connector.close()
    except ConnectorError as exc:
        log.warning("consent failed", extra={"error": type(exc).__name__})
        return Result(False, failed, describe(exc).words, account_id=account_id)
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None or integration.status == PURGING:  # disconnected meanwhile
            return Result(
                False, failed, "This connection was removed meanwhile.", account_id=account_id
            )
        chosen = await _store_grant(session, settings, integration, grant.secret, found)
        if grant.username:
            integration.username = grant.username
        await watch.start_soon(session, settings, integration)
    log.info("connected by consent", extra={"integration_id": integration_id})
    return Result(
        True,
        f"{provider.label} is connected",
        "Appointments will appear in your calendar, and your other events will count as busy "
        "time. You can close this window.",
        chosen,
        outcome="connected",
        account_id=account_id,
    )


def own_calendar(found: list[CalendarInfo]) -> CalendarInfo | None:
    """The account's own calendar: the writable one the provider marks primary, whatever the
    order it lists them in; else the first writable one."""
    writable = [c for c in found if c.writable]
    return next((c for c in writable if c.primary), writable[0] if writable else None)


async def _store_grant(
    session: AsyncSession,
    settings: Settings,
    integration: Integration,
    grant: str,
    found: list[CalendarInfo],
) -> str | None:
    own = own_calendar(found)
    integration.secret = secrets.encrypt(settings, grant)
    integration.username = own.id if own else integration.username
    rows = list(
        await session.scalars(
            select(SyncCalendar).where(SyncCalendar.integration_id == integration.id)
        )
    )
    known = {r.remote_id for r in rows}
    for info in found:
        if info.id not in known:
            row = SyncCalendar(integration_id=integration.id, remote_id=info.id, name=info.name)
            session.add(row)
            rows.append(row)
    write = next((r for r in rows if r.write), None)
    if write is None and own is not None:
        # The account's own calendar until the person chooses another.
        write = next(r for r in rows if r.remote_id == own.id)
        write.write = write.busy = True
    integration.status = ACTIVE if write is not None else PENDING
    integration.last_error = None
    integration.failures = 0
    integration.dirty = True
    integration.due_at = utcnow()
    await topics.status_set(session, integration)
    await session.flush()
    return write.name if write is not None else None
