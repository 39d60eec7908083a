"""Claimed deliveries made ready to send: the columns a claim returns, and each row turned into
an `Item` with its event's signed body and its endpoint's URL and secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway import secrets
from gateway.config import Settings
from gateway.store.types import utcnow
from gateway.store.webhook_models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from gateway.webhooks.events import body_of

# The delivery columns a claim returns (plain rows: no ORM objects per delivery).
CLAIMED = (
    WebhookDelivery.id,
    WebhookDelivery.endpoint_id,
    WebhookDelivery.event_id,
    WebhookDelivery.attempts,
    WebhookDelivery.created_at,
    WebhookDelivery.retry_since,
)


@dataclass(frozen=True)
class Item:
    """One claimed delivery with everything needed to send it."""

    delivery_id: str
    endpoint_id: str
    event_id: str
    attempt: int
    url: str
    signing_secrets: list[str]
    body: bytes
    retry_from: datetime
    lease_until: float = 0.0  # time.monotonic() after which another process may own it
    endpoint_failing: bool = False  # the endpoint had failing attempts when this was claimed


class Loader:
    """Turns claimed rows into items, decrypting each endpoint secret once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._plain: dict[str, str] = {}  # encrypted secret -> secret

    async def load(
        self,
        session: AsyncSession,
        rows: list[Any],
        endpoints: dict[str, WebhookEndpoint],
        lease_until: float,
    ) -> list[Item]:
        """The items of `rows` (claimed with `CLAIMED`) for `endpoints`, each to be sent before
        `lease_until` (time.monotonic())."""
        events = {
            e.id: e
            for e in await session.execute(
                select(
                    WebhookEvent.id, WebhookEvent.type, WebhookEvent.created_at, WebhookEvent.data
                ).where(WebhookEvent.id.in_({r.event_id for r in rows}))
            )
        }
        now = utcnow()
        items = []
        for r in rows:
            event, endpoint = events[r.event_id], endpoints[r.endpoint_id]
            keys = [endpoint.secret]
            if (
                endpoint.previous_secret
                and endpoint.previous_until
                and endpoint.previous_until > now
            ):
                keys.append(endpoint.previous_secret)
            items.append(
                Item(
                    r.id,
                    r.endpoint_id,
                    r.event_id,
                    r.attempts + 1,
                    endpoint.url,
                    [self._decrypt(k) for k in keys],
                    body_of(event.type, event.created_at, event.data),
                    r.retry_since or r.created_at,
                    lease_until,
                    endpoint.failing_since is not None,
                )
            )
        return items

    def _decrypt(self, token: str) -> str:
        if token not in self._plain:
            self._plain[token] = secrets.decrypt(self.settings, token)
        return self._plain[token]
