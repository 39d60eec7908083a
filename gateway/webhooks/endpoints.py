"""The service behind /v1/webhook-endpoints: endpoints, their secrets, deliveries, retry, replay.

A URL must be https (unless `webhooks_allow_http`) and pass the outbound guard
(gateway/sync/outbound.py) like a CalDAV server's. The signing secret is returned once, when it
is made, and stored encrypted (gateway/secrets.py). Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import secrets
from gateway.config import Settings
from gateway.domain.pagination import Page, paginate
from gateway.domain.scoping import get_owned
from gateway.errors import NotFound, ValidationFailed
from gateway.store.models import Account
from gateway.store.types import utcnow
from gateway.store.webhook_models import (
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from gateway.sync import outbound
from gateway.webhooks import signing
from gateway.webhooks.events import DEFAULT_TYPES, EVENT_TYPES, delivery_row, due_now

# How long the old secret keeps signing after a rotation.
ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True)
class Issued:
    """An endpoint and its signing secret in the clear (shown once)."""

    endpoint: WebhookEndpoint
    secret: str


async def check_url(settings: Settings, url: str) -> str:
    """`url` if calgate may deliver there; a 422 naming `url` otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme != "https" and not (scheme == "http" and settings.webhooks_allow_http):
        raise ValidationFailed.one("url", "must be an https:// URL")
    return await outbound.check_url(settings, url, "url")


def check_types(event_types: list[str] | None) -> list[str]:
    """The event types asked for (default: all but the opt-in ones); a 422 for unknown ones."""
    if event_types is None:
        return list(DEFAULT_TYPES)
    if not event_types:
        raise ValidationFailed.one("event_types", "name at least one event type")
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise ValidationFailed.one(
            "event_types", f"unknown: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return sorted(set(event_types), key=EVENT_TYPES.index)


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    account: Account,
    url: str,
    event_types: list[str] | None,
    description: str,
    enabled: bool,
) -> Issued:
    """A new endpoint with a fresh secret."""
    endpoint = WebhookEndpoint(
        account_id=account.id,
        url=await check_url(settings, url),
        event_types=check_types(event_types),
        description=description,
        enabled=enabled,
    )
    secret = signing.new_secret()
    endpoint.secret = secrets.encrypt(settings, secret)
    session.add(endpoint)
    await session.flush()
    return Issued(endpoint, secret)


async def list_endpoints(session: AsyncSession, account: Account) -> list[WebhookEndpoint]:
    """The account's endpoints, oldest first."""
    query = select(WebhookEndpoint).where(WebhookEndpoint.account_id == account.id)
    return list(await session.scalars(query.order_by(WebhookEndpoint.id)))


async def get_endpoint(
    session: AsyncSession, account: Account, endpoint_id: str
) -> WebhookEndpoint:
    """One endpoint of the account (404 for another account's)."""
    return await get_owned(session, WebhookEndpoint, account, endpoint_id)


async def update_endpoint(
    session: AsyncSession,
    settings: Settings,
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> WebhookEndpoint:
    """Change the URL, types, description, or enable / disable. Enabling sends what waited."""
    now = utcnow()
    if url is not None:
        endpoint.url = await check_url(settings, url)
    if event_types is not None:
        endpoint.event_types = check_types(event_types)
    if description is not None:
        endpoint.description = description
    if enabled is not None and enabled != endpoint.enabled:
        endpoint.enabled = enabled
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        if enabled:
            # Deliveries left pending while it was disabled go now, in their order.
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING
                )
                .values(due_at=now)
            )
            due_now(session)
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """Delete the endpoint with its deliveries and their attempts (events stay for others)."""
    await session.delete(endpoint)
    await session.flush()


async def rotate_secret(
    session: AsyncSession, settings: Settings, endpoint: WebhookEndpoint
) -> str:
    """A new secret (returned once); the old one keeps signing too for ROTATION_OVERLAP."""
    secret = signing.new_secret()
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_until = now + ROTATION_OVERLAP
    endpoint.secret = secrets.encrypt(settings, secret)
    endpoint.updated_at = now
    await session.flush()
    return secret


async def list_deliveries(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[WebhookDelivery]:
    """The endpoint's deliveries, oldest first (optionally of one status)."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    keys = [WebhookDelivery.created_at, WebhookDelivery.id]
    return await paginate(session, query, keys, limit=limit, cursor=cursor)


async def events_of(session: AsyncSession, deliveries: list[WebhookDelivery]) -> dict[str, str]:
    """The event type of each delivery's event, by event id."""
    ids = list({d.event_id for d in deliveries})
    rows = await session.execute(
        select(WebhookEvent.id, WebhookEvent.type).where(WebhookEvent.id.in_(ids))
    )
    return {r.id: r.type for r in rows}


async def attempts_of(
    session: AsyncSession, deliveries: list[WebhookDelivery]
) -> dict[str, list[WebhookAttempt]]:
    """Every recorded attempt of each delivery, oldest first."""
    ids = [d.id for d in deliveries]
    found: dict[str, list[WebhookAttempt]] = {i: [] for i in ids}
    rows = await session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id.in_(ids))
        .order_by(WebhookAttempt.started_at, WebhookAttempt.id)
    )
    for row in rows:
        found[row.delivery_id].append(row)
    return found


async def retry_delivery(
    session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: str
) -> WebhookDelivery:
    """Send a delivery again now, whatever its status (it keeps its attempts and webhook-id)."""
    delivery = await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint.id
        )
    )
    if delivery is None:
        raise NotFound("no such delivery")
    now = utcnow()
    delivery.status = PENDING
    delivery.due_at = now
    delivery.retry_since = now
    delivery.updated_at = now
    await session.flush()
    due_now(session)
    return delivery


async def replay(session: AsyncSession, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Queue again every stored event since `since` that the endpoint wants (events live for
    `webhooks_retention_days`); returns how many. An event already waiting is not doubled."""
    now = utcnow()
    waiting = select(WebhookDelivery.event_id).where(
        WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == PENDING
    )
    rows = (
        await session.execute(
            select(WebhookEvent.id, WebhookEvent.type, WebhookEvent.order_key, WebhookEvent.seq)
            .where(
                WebhookEvent.account_id == endpoint.account_id,
                WebhookEvent.created_at >= since,
                WebhookEvent.type.in_(endpoint.event_types),
                WebhookEvent.id.not_in(waiting),
            )
            .order_by(WebhookEvent.created_at, WebhookEvent.id)
        )
    ).all()
    values = [
        delivery_row(endpoint.id, r.id, endpoint.account_id, r.order_key, r.seq, now) for r in rows
    ]
    if values:
        await session.execute(insert(WebhookDelivery), values)
        due_now(session)
    return len(values)
