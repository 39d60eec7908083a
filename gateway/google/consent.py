"""Connecting a Google account: the consent link and its callback (OAuth 2.0 web server flow).

`POST /v1/integrations {provider: "google"}` creates the integration (status pending) and asks
`begin` for the consent link. Its `state` is random, stored only as a SHA-256 hash, bound to the
account, the practitioner and that integration, usable once and only for
`google_consent_minutes` (CSRF: a forged, replayed or stale state connects nothing).
`finish` runs at `GET /oauth/google/callback`: it spends the state, exchanges the code, stores the
refresh token encrypted, discovers the calendars and starts the sync. A reconnect (after Google
refused the grant) goes through the same two steps for the existing integration, which keeps
its calendars and mappings, so nothing planned is lost.
"""

from __future__ import annotations

import hashlib
import logging
import secrets as pysecrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors import google
from connectors.base import CalendarInfo, ConnectorError, Credentials
from gateway import secrets
from gateway.config import Settings
from gateway.errors import ValidationFailed
from gateway.store.db import Store
from gateway.store.google_models import GoogleConsent
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.store.types import utcnow
from gateway.sync.run import ACTIVE

log = logging.getLogger("calgate.google")

CALLBACK_PATH = "/oauth/google/callback"


def app_from_settings(settings: Settings) -> google.GoogleApp:
    """The connector's view of the [google] settings."""
    return google.GoogleApp(
        client_id=settings.google_client_id,
        client_secret=settings.google_client_secret.get_secret_value(),
        redirect_url=settings.google_redirect_url or settings.public_url + CALLBACK_PATH,
        auth_uri=settings.google_auth_uri,
        token_uri=settings.google_token_uri,
        revoke_uri=settings.google_revoke_uri,
        api_base=settings.google_api_base,
        requests_per_minute=settings.google_requests_per_minute,
        quota_pause_seconds=settings.google_quota_pause_minutes * 60,
        channel_ttl_seconds=int(settings.google_channel_hours * 3600),
        timeout_seconds=settings.google_timeout_seconds,
    )


def configure(settings: Settings) -> None:
    """Point every Google connector of this process at the configured client and endpoints."""
    google.configure(app_from_settings(settings) if settings.google_client_id else None)


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def begin(session: AsyncSession, settings: Settings, integration: Integration) -> str:
    """A fresh single-use consent link for `integration` (new, or needing a reconnect)."""
    if not settings.google_client_id:
        raise ValidationFailed.one(
            "provider", "Google Calendar is not configured on this server (google.client_id)"
        )
    app = google.configured()
    # Links of this integration already used or expired are of no further use.
    await session.execute(
        delete(GoogleConsent).where(
            GoogleConsent.integration_id == integration.id,
            (GoogleConsent.expires_at <= utcnow()) | GoogleConsent.used_at.is_not(None),
        )
    )
    state = pysecrets.token_urlsafe(32)
    session.add(
        GoogleConsent(
            state_hash=_hash(state),
            account_id=integration.account_id,
            user_id=integration.user_id,
            integration_id=integration.id,
            expires_at=utcnow() + timedelta(minutes=settings.google_consent_minutes),
        )
    )
    await session.flush()
    return google.consent_url(app, state)


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


_BAD_LINK = Result(
    False,
    "This link cannot be used",
    "This connection link is invalid, expired or already used. Ask for a new one.",
    outcome="expired",
)


async def finish(
    store: Store, settings: Settings, state: str | None, code: str | None, error: str | None
) -> Result:
    """Spend the state, exchange the code, store the grant, discover calendars, start syncing."""
    if not state:
        return _BAD_LINK
    now = utcnow()
    async with store.transaction() as session:
        consent = await session.scalar(
            select(GoogleConsent).where(GoogleConsent.state_hash == _hash(state))
        )
        if consent is not None and consent.used_at is not None:
            # A reload of the landing page: say so when that connection is live.
            used = await session.get(Integration, consent.integration_id)
            if used is not None and used.status == ACTIVE:
                return Result(
                    True,
                    "Google Calendar is already connected",
                    "",
                    outcome="already_connected",
                    account_id=consent.account_id,
                )
        if consent is None or consent.used_at is not None or consent.expires_at <= now:
            log.warning("google consent refused", extra={"reason": "bad state"})
            return _BAD_LINK
        consent.used_at = now  # single use, whatever happens next
        integration_id, account_id = consent.integration_id, consent.account_id
    if error or not code:
        return Result(
            False,
            "Google Calendar was not connected",
            "Access was not granted, so nothing was connected. You can try again.",
            outcome="declined",
            account_id=account_id,
        )
    app = google.configured()
    try:
        grant = await google.exchange_code(app, code)
        connector = google.GoogleConnector(Credentials(None, None, grant.refresh_token), app)
        try:
            found = await connector.list_calendars()
        finally:
            await connector.close()
    except ConnectorError as exc:
        log.warning("google consent failed", extra={"error": type(exc).__name__})
        return Result(
            False, "Google Calendar was not connected", exc.message, account_id=account_id
        )
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        if integration is None:
            return Result(
                False,
                "Google Calendar was not connected",
                "This connection was removed meanwhile.",
                account_id=account_id,
            )
        chosen = await _store_grant(session, settings, integration, grant.refresh_token, found)
    log.info("google connected", extra={"integration_id": integration_id})
    return Result(
        True,
        "Google Calendar is connected",
        "Appointments will appear in your calendar, and your other events will count as busy "
        "time. You can close this window.",
        chosen,
        outcome="connected",
        account_id=account_id,
    )


async def _store_grant(
    session: AsyncSession,
    settings: Settings,
    integration: Integration,
    refresh_token: str,
    found: list[CalendarInfo],
) -> str | None:
    primary = next((c for c in found if c.writable), None)
    integration.secret = secrets.encrypt(settings, refresh_token)
    integration.username = primary.id if primary else integration.username
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
    if write is None and primary is not None:
        # The account's own (first writable, i.e. primary) calendar until the person chooses.
        write = next(r for r in rows if r.remote_id == primary.id)
        write.write = write.busy = True
    integration.status = ACTIVE if write is not None else "pending"
    integration.last_error = None
    integration.failures = 0
    integration.dirty = True
    integration.due_at = utcnow()
    await session.flush()
    return write.name if write is not None else None
