"""Provider state shared by every process on one PostgreSQL (connectors.base.SharedState):
values with an expiry (write pauses, access tokens, encrypted at rest) and request budgets.

A budget is a sliding window of booked call times (`ProviderCall`). A booking takes the
budget's advisory lock, so processes book one at a time, and books the new call at the earliest
time that keeps at most `limit` calls in any window: now, or the limit-th latest booking plus
the window. Times come from the database's clock, so processes on several hosts agree. Each
operation is its own short transaction; a booking is one statement (`calgate_book_call`).

A concurrency cap (`slot`) is `places` rows ``<key>#<n>`` of `ProviderState`: a holder takes a
free or expired one with a conditional upsert (the row lock makes it one winner per place),
stamped with its own random value and a lease of `hold_seconds`, and deletes it when done; a
holder that died frees its place when the lease ends.
"""

from __future__ import annotations

import asyncio
import secrets as pysecrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.dialects.postgresql import insert

from gateway import secrets
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.lifecycle_models import ProviderState
from gateway.store.types import utcnow

# Books one call in one round trip: the function (created by migration 0007lifecycle) takes the
# budget's advisory lock, drops the bookings that left the window, and books the new call at now
# or at the limit-th latest booking plus the window, whichever is later.
_BOOK = text("SELECT at_ms, now_ms FROM calgate_book_call(:provider, :budget, :limit, :window)")
_SLOT_POLL = 0.005  # first wait for a free place (seconds), doubled up to _SLOT_POLL_MAX
_SLOT_POLL_MAX = 0.1


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
        params = {
            "provider": self.provider,
            "budget": key,
            "limit": limit,
            "window": int(window_seconds * 1000),
        }
        async with self.store.engine.connect() as conn:
            # One statement in its own transaction: the lock is held only while it runs.
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            row = (await auto.execute(_BOOK, params)).one()
        return max(0.0, (int(row.at_ms) - int(row.now_ms)) / 1000)

    @asynccontextmanager
    async def slot(self, key: str, places: int, hold_seconds: float) -> AsyncIterator[None]:
        """Hold one of `places` places under `key` (every process on this database counts)."""
        holder = pysecrets.token_hex(16)
        pause = _SLOT_POLL
        while (place := await self._take(key, places, holder, hold_seconds)) is None:
            await asyncio.sleep(pause)
            pause = min(pause * 2, _SLOT_POLL_MAX)
        try:
            yield
        finally:
            async with self.store.transaction() as session:
                await session.execute(
                    delete(ProviderState).where(
                        ProviderState.provider == self.provider,
                        ProviderState.key == place,
                        ProviderState.value == holder,
                    )
                )

    async def _take(self, key: str, places: int, holder: str, hold_seconds: float) -> str | None:
        now = utcnow()
        until = now + timedelta(seconds=hold_seconds)
        async with self.store.transaction() as session:
            for n in range(places):
                statement = (
                    insert(ProviderState)
                    .values(
                        provider=self.provider, key=f"{key}#{n}", value=holder, expires_at=until
                    )
                    .on_conflict_do_update(
                        index_elements=["provider", "key"],
                        set_={"value": holder, "expires_at": until},
                        where=ProviderState.expires_at <= now,  # free only once its lease ended
                    )
                    .returning(ProviderState.key)
                )
                taken = await session.scalar(statement)
                if taken is not None:
                    return str(taken)
        return None
