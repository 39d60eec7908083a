"""At most 4 Graph requests at once per mailbox across processes (issue 11, part 6).

Each "process" is a Store of its own on one PostgreSQL schema, with connectors built the way the
engine builds them (gateway/sync/providers.py). The sync lease alone would not cap this: the
channel tick, an erasure, calendar discovery and a second integration of the same mailbox talk
to Graph beside a sync, from any process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.base import Credentials
from connectors.outlook import OutlookConnector, limits
from connectors.registry import Grant
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.lifecycle_models import ProviderState
from gateway.store.types import utcnow
from gateway.sync import providers
from tests.conftest import POSTGRES_URL
from tests.connectors.contract import WINDOW
from tests.peers.graph import GraphPeer

CONNECTORS_PER_PROCESS = 3
REQUESTS_EACH = 4


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


async def _process(store: Store, settings: Settings, secret: str, calendar: str) -> None:
    shared = providers.shared_state(store, settings, "outlook")
    registry = providers.registry(store, settings)

    async def one() -> None:
        connector = registry.build("outlook", Credentials(None, None, secret), shared)
        try:
            await asyncio.gather(
                *(connector.find_by_uid(calendar, f"u{i}", WINDOW) for i in range(REQUESTS_EACH))
            )
        finally:
            await connector.close()

    await asyncio.gather(*(one() for _ in range(CONNECTORS_PER_PROCESS)))


async def test_two_processes_send_at_most_four_at_once(
    pg_store: Store, second_process: Store, settings: Settings, peer: GraphPeer, grant: Grant
) -> None:
    (calendar,) = peer.calendars
    peer.delay = 0.05
    await asyncio.gather(
        _process(pg_store, settings, grant.secret, calendar),
        _process(second_process, settings, grant.secret, calendar),
    )
    sent = 2 * CONNECTORS_PER_PROCESS * REQUESTS_EACH
    assert peer.graph_calls == sent
    # 24 requests were ready at once; the mailbox never saw more than 4 (and did see several).
    assert 2 <= peer.most_in_flight <= limits.CONCURRENT_PER_MAILBOX
    async with pg_store.transaction() as session:
        left = await session.scalar(text("SELECT count(*) FROM provider_state"))
    assert left == 0  # every place given back


async def test_a_place_whose_holder_died_frees_when_its_lease_ends(
    pg_store: Store, settings: Settings, peer: GraphPeer, grant: Grant
) -> None:
    (calendar,) = peer.calendars
    connector = providers.registry(pg_store, settings).build(
        "outlook",
        Credentials(None, None, grant.secret),
        providers.shared_state(pg_store, settings, "outlook"),
    )
    assert isinstance(connector, OutlookConnector)
    key = f"slots:{connector.limits.key}"
    # A process took all 4 places and died: its leases run 1.5 s more.
    async with pg_store.transaction() as session:
        for n in range(limits.CONCURRENT_PER_MAILBOX):
            await session.execute(
                insert(ProviderState).values(
                    provider="outlook",
                    key=f"{key}#{n}",
                    value="dead",
                    expires_at=utcnow() + timedelta(seconds=1.5),
                )
            )
    try:
        began = time.monotonic()
        assert await connector.find_by_uid(calendar, "u", WINDOW) is None
        assert time.monotonic() - began >= 1.0  # it waited for a lease to end, then went
    finally:
        await connector.close()
