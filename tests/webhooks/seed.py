"""Seeding queued webhook events, for the crash test and bench/webhooks.py.

One account with one endpoint; events are written through `events.emit` (the outbox the hooks
use), as appointment.updated events spread over `appointments` appointments with increasing
versions, so their deliveries carry the same order keys real changes would.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.domain import accounts
from gateway.store.db import Store
from gateway.store.models import Account
from gateway.webhooks import endpoints, events


@dataclass(frozen=True)
class Seeded:
    """The account, its endpoint and the endpoint's secret."""

    account_id: str
    endpoint_id: str
    secret: str


async def endpoint_for(store: Store, settings: Settings, url: str, **over: object) -> Seeded:
    """A new account with one endpoint at `url`."""
    async with store.transaction() as session:
        account, _ = await accounts.create_account(
            session, "Webhook Clinic", timezone="Europe/London", country="GB"
        )
        issued = await endpoints.create_endpoint(
            session, settings, account, url, None, "seeded", True
        )
        return Seeded(account.id, issued.endpoint.id, issued.secret)


async def queue_events(
    store: Store, seeded: Seeded, count: int, *, appointments: int = 100, per_commit: int = 1000
) -> list[str]:
    """Emit `count` appointment.updated events (committed `per_commit` at a time); returns
    their ids in order."""
    ids: list[str] = []
    async with store.transaction() as session:
        account = await session.get(Account, seeded.account_id)
        assert account is not None
    for first in range(0, count, per_commit):
        async with store.transaction() as session:
            for n in range(first, min(count, first + per_commit)):
                apt, version = f"apt_seed{n % appointments:06d}", n // appointments + 1
                event_id = await events.emit(
                    session,
                    seeded.account_id,
                    events.APPOINTMENT_UPDATED,
                    {"id": apt, "version": version, "change": "edited", "source": "api"},
                    order_key=apt,
                    seq=version,
                )
                assert event_id is not None
                ids.append(event_id)
    return ids
