"""Provider state shared by every process on one PostgreSQL (connectors.base.SharedState):
values with an expiry (write pauses, access tokens, encrypted at rest) and request budgets.

A budget is a sliding window of booked call times (`ProviderCall`). Booking takes the row lock
of the budget's lock row first, so processes book one at a time, reads the latest `limit`
bookings and books the new call at the earliest time that keeps at most `limit` calls in any
window: now, or the limit-th latest booking plus the window. Times come from the database's
clock, so processes on several hosts agree. Each operation is its own short transaction.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from gateway import secrets
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.lifecycle_models import ProviderCall, ProviderState
from gateway.store.types import utcnow

_CLOCK_MS = func.floor(func.extract("epoch", func.clock_timestamp()) * 1000)


class StoreState:
    """The shared state of provider `provider`, in `store` (PostgreSQL)."""

    def __init__(self, store: Store, settings: Settings, provider: str) -> None:
        self.store = store
        self.settings = settings
        self.provider = provider

    async def read(self, key: str) -> str | None:
        """The value under `key`, or None when there is none or it expired."""
        async with self.store.transaction() as session:
            row = await session.get(ProviderState, (self.provider, key))
            if row is None or row.expires_at <= utcnow():
                return None
            value = row.value
        try:
            return secrets.decrypt(self.settings, value)
        except secrets.SecretUnreadable:
            return None  # written under another key: as good as absent

    async def write(self, key: str, value: str, until: datetime) -> None:
        """Store `value` (encrypted) under `key` until `until`."""
        sealed = secrets.encrypt(self.settings, value)
        statement = insert(ProviderState).values(
            provider=self.provider, key=key, value=sealed, expires_at=until
        )
        statement = statement.on_conflict_do_update(
            index_elements=["provider", "key"], set_={"value": sealed, "expires_at": until}
        )
        async with self.store.transaction() as session:
            await session.execute(statement)
            # Expired values of this provider go as new ones come.
            await session.execute(
                delete(ProviderState).where(
                    ProviderState.provider == self.provider, ProviderState.expires_at <= utcnow()
                )
            )

    async def forget(self, key: str) -> None:
        """Remove `key`."""
        async with self.store.transaction() as session:
            await session.execute(
                delete(ProviderState).where(
                    ProviderState.provider == self.provider, ProviderState.key == key
                )
            )

    async def book(self, key: str, limit: int, window_seconds: float) -> float:
        """Book one call in budget `key`: the seconds to wait before making it."""
        window_ms = int(window_seconds * 1000)
        lock = insert(ProviderState).values(
            provider=self.provider, key=f"lock:{key}", value="", expires_at=utcnow()
        )
        lock = lock.on_conflict_do_update(index_elements=["provider", "key"], set_={"value": ""})
        async with self.store.transaction() as session:
            await session.execute(lock)  # holds the lock row until this transaction ends
            now_ms = int(await session.scalar(select(_CLOCK_MS)) or 0)
            mine = (ProviderCall.provider == self.provider) & (ProviderCall.budget == key)
            await session.execute(
                delete(ProviderCall).where(mine, ProviderCall.at_ms <= now_ms - window_ms)
            )
            latest = list(
                await session.scalars(
                    select(ProviderCall.at_ms)
                    .where(mine)
                    .order_by(ProviderCall.at_ms.desc())
                    .limit(limit)
                )
            )
            at = now_ms
            if len(latest) >= limit:
                at = max(now_ms, latest[limit - 1] + window_ms)
            session.add(ProviderCall(provider=self.provider, budget=key, at_ms=at))
        return (at - now_ms) / 1000
