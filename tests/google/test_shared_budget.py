"""Two processes on one PostgreSQL share one Google request budget (issue 10, part 3).

Each "process" is a Store of its own (its own connection pool) with its own connectors, built
the way the engine builds them (gateway/sync/providers.py). Together they send 2 x 400 requests
for one grant against a budget of 500 per window; the stand-in must never see more than 500 in
any window. The window is a setting (google.budget_window_seconds), ten seconds here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from connectors import google
from connectors.base import Credentials
from gateway.config import Settings
from gateway.store.db import Store
from gateway.sync import providers
from tests.conftest import POSTGRES_URL, make_settings
from tests.google.conftest import CALENDAR, CLIENT_ID, google_settings
from tests.peers.google import GooglePeer

BUDGET = 500
WINDOW = 10.0  # seconds: longer than 500 requests take to send here, so the budget binds
PER_PROCESS = 400
CONNECTORS_PER_PROCESS = 4


@pytest.fixture
def settings(tmp_path: Path, peer: GooglePeer) -> Settings:
    return make_settings(
        tmp_path,
        **google_settings(
            peer, google_requests_per_minute=BUDGET, google_budget_window_seconds=WINDOW
        ),
    )


@pytest.fixture
async def second_process(pg_store: Store, settings: Settings) -> AsyncIterator[Store]:
    """Another Store on the same PostgreSQL schema, as a second daemon process would open."""
    async with pg_store.engine.connect() as conn:
        schema = await conn.scalar(text("SELECT current_schema()"))
    engine = create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": str(schema)}}
    )
    other = Store(engine, settings)
    try:
        yield other
    finally:
        await other.close()


async def _process(store: Store, settings: Settings, refresh: str) -> None:
    shared = providers.shared_state(store, settings, "google")
    registry = providers.registry(store, settings)

    async def one(count: int) -> None:
        connector = registry.build("google", Credentials(None, CALENDAR, refresh), shared)
        try:
            for _ in range(count):
                await connector.list_calendars()
        finally:
            await connector.close()

    share = PER_PROCESS // CONNECTORS_PER_PROCESS
    await asyncio.gather(*(one(share) for _ in range(CONNECTORS_PER_PROCESS)))


def _most_in_any_window(times: list[float]) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= WINDOW:
            first += 1
        most = max(most, last - first + 1)
    return most


async def test_two_processes_respect_one_budget(
    pg_store: Store, second_process: Store, settings: Settings, peer: GooglePeer
) -> None:
    refresh = peer.grant(CLIENT_ID, " ".join(google.SCOPES))
    calls = peer.api_calls()
    await asyncio.gather(
        _process(pg_store, settings, refresh), _process(second_process, settings, refresh)
    )
    times = [c.at for c in peer.calls[calls:]]
    assert len(times) == 2 * PER_PROCESS
    most = _most_in_any_window(times)
    assert most <= BUDGET
    # Both processes sent within one window (more than either could alone), and the budget is
    # what held the rest back: the call after the budget's 500th came a full window later.
    assert most > PER_PROCESS
    ordered = sorted(times)
    assert ordered[BUDGET] - ordered[0] >= WINDOW
