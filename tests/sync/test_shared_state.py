"""Provider state shared through PostgreSQL (gateway/sync/shared.py): what one process writes
another reads, a restart keeps it, it expires, and it is encrypted at rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.sync import providers
from gateway.sync.shared import StoreState


async def test_values_are_shared_kept_expired_and_sealed(
    pg_store: Store, settings: Settings
) -> None:
    one = providers.shared_state(pg_store, settings, "acme")
    assert isinstance(one, StoreState)
    until = utcnow() + timedelta(hours=1)
    await one.write("pause:cal", "writes paused until noon", until)
    # Another process (another state object on the same database) sees it; so would a restart.
    other = StoreState(pg_store, settings, "acme")
    assert await other.read("pause:cal") == "writes paused until noon"
    assert await StoreState(pg_store, settings, "other-provider").read("pause:cal") is None
    async with pg_store.engine.connect() as conn:
        raw = await conn.scalar(text("SELECT value FROM provider_state WHERE key = 'pause:cal'"))
    assert raw and "noon" not in raw  # encrypted at rest

    await other.write("token", "t-1", utcnow() - timedelta(seconds=1))
    assert await one.read("token") is None  # expired
    await one.forget("pause:cal")
    assert await other.read("pause:cal") is None


async def test_a_budget_makes_later_calls_wait(pg_store: Store, settings: Settings) -> None:
    state = StoreState(pg_store, settings, "acme")
    waits = [await state.book("grant", 3, 60) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 59 < waits[3] <= 60
    assert await state.book("another-grant", 3, 60) == 0.0
