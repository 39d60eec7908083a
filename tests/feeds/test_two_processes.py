"""Rotation and revocation seen at once by another process's remembered token lookups.

Each app below has its own store on the same SQLite file (or PostgreSQL schema), as two
`calgate serve` processes would: its own engine and its own lookup connection with its own
remembered answers (on PostgreSQL: its own listening connection).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway import features
from gateway.app import create_app
from gateway.config import Settings
from gateway.feeds.pg_signal import socket_of
from gateway.feeds.runtime import runtime_for
from gateway.store.db import Store
from tests.conftest import POSTGRES_URL
from tests.feeds.conftest import Feeds
from tests.feeds.test_cache import statements
from tests.support import Api, new_account


@pytest.fixture
async def other_process(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    store = Store.from_url(settings.database_url, settings=settings)
    app = create_app(settings, store, run_ticks=False)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://other") as c:
            yield c
    finally:
        await store.close()


async def _get(http: httpx.AsyncClient, url: str) -> int:
    return (await http.get(urlsplit(url).path)).status_code


async def test_rotate_in_one_process_stops_the_old_link_in_the_other(
    api: Api, feeds: Feeds, other_process: httpx.AsyncClient
):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    for _ in range(3):  # the other process now remembers the token
        assert await _get(other_process, feed["url"]) == 200

    rotated = await api.post(f"/v1/feeds/{feed['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    assert await _get(other_process, feed["url"]) == 404
    assert await _get(other_process, rotated.json()["url"]) == 200

    assert (await api.delete(f"/v1/feeds/{feed['id']}")).status_code == 204
    assert await _get(other_process, rotated.json()["url"]) == 404


async def test_a_change_in_one_process_is_fresh_in_the_other(
    api: Api, feeds: Feeds, other_process: httpx.AsyncClient
):
    user = await api.user()
    client = await api.client()
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="limited")
    day = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    apt = await api.appointment(
        user["id"],
        client["id"],
        start=f"{day}T10:00:00Z",
        end=f"{day}T11:00:00Z",
        title="Before",
    )
    path = urlsplit(feed["url"]).path
    assert "SUMMARY:Before" in (await other_process.get(path)).text
    await api.patch(f"/v1/appointments/{apt['id']}", {"title": "After"})
    assert "SUMMARY:After" in (await other_process.get(path)).text


# --------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(params=[False, True], ids=["asks-each-fetch", "remembers"])
async def pg_pair(
    pg_store: Store, settings: Settings, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Store]]:
    """Two apps, each with its own engine on the same PostgreSQL schema (two processes), with
    the default (every fetch asks the database) or `feeds.remember_tokens_postgres` on."""
    settings = settings.model_copy(update={"feeds_remember_tokens_postgres": request.param})
    async with pg_store.engine.connect() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar_one()
    engine = create_async_engine(
        POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}}
    )
    other = features.install(Store(engine, settings))
    first_app = create_app(settings, pg_store, run_ticks=False)
    other_app = create_app(settings, other, run_ticks=False)
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=first_app), base_url="http://a"
            ) as a,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=other_app), base_url="http://b"
            ) as b,
        ):
            yield a, b, other
    finally:
        await other.close()


async def _remembering(http: httpx.AsyncClient, store: Store, url: str) -> None:
    """Fetch until the other process listens for changes and answers `url` from memory."""
    lookups = runtime_for(store, store.settings or Settings()).postgres
    assert lookups is not None
    for _ in range(200):
        assert await _get(http, url) == 200
        if lookups.listening:
            break
        await asyncio.sleep(0.05)
    assert lookups.listening, "the listener did not start"
    assert await _get(http, url) == 200  # remembered now
    with statements(store) as seen:
        for _ in range(3):
            assert await _get(http, url) == 200
    assert [s for s in seen if "token_hash" in s] == []  # no token query on a warm fetch


async def _within(seconds: float, check: Callable[[], Awaitable[bool]]) -> float:
    """How long until `check()` holds (fails after `seconds`)."""
    began = time.monotonic()
    while not await check():
        assert time.monotonic() - began < seconds, "still stale"
        await asyncio.sleep(0.005)
    return time.monotonic() - began


async def test_postgres_rotate_in_one_process_stops_the_old_link_in_the_other(
    pg_store: Store, pg_pair: tuple[httpx.AsyncClient, httpx.AsyncClient, Store]
):
    """By default the old link stops at the commit in the other process too. With
    `feeds.remember_tokens_postgres` the other process stops once PostgreSQL's notification
    reaches it: the window README documents (bounded here at 5 s for a loaded machine)."""
    first, second, other = pg_pair
    remembers = runtime_for(other, other.settings or Settings()).postgres is not None
    api = await new_account(pg_store, first)
    feeds = Feeds(api)
    user = await api.user()
    client = await api.client()
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="limited")
    if remembers:
        await _remembering(second, other, feed["url"])
    else:
        assert await _get(second, feed["url"]) == 200

    async def gone(url: str) -> bool:
        return await _get(second, url) == 404

    rotated = await api.post(f"/v1/feeds/{feed['id']}/rotate")
    assert rotated.status_code == 200, rotated.text
    if remembers:
        await _within(5.0, lambda: gone(feed["url"]))
    else:
        assert await gone(feed["url"])  # from the commit on
    assert await _get(second, rotated.json()["url"]) == 200

    day = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    if remembers:
        await _remembering(second, other, rotated.json()["url"])
    await api.appointment(
        user["id"], client["id"], start=f"{day}T10:00:00Z", end=f"{day}T11:00:00Z", title="New"
    )

    async def fresh() -> bool:
        return "SUMMARY:New" in (await second.get(urlsplit(rotated.json()["url"]).path)).text

    if remembers:
        await _within(5.0, fresh)
    else:
        assert await fresh()

    assert (await api.delete(f"/v1/feeds/{feed['id']}")).status_code == 204
    if remembers:
        await _within(5.0, lambda: gone(rotated.json()["url"]))
    else:
        assert await gone(rotated.json()["url"])


async def test_postgres_listener_finds_its_socket_or_stops_remembering(pg_store: Store):
    """The unread-notification check needs the listening connection's socket, which asyncpg
    exposes only privately: this fails on an asyncpg that moved it (remembering would then be
    silently off), and anything without one gives None (every fetch queries)."""
    raw = await pg_store.engine.raw_connection()
    try:
        sock = socket_of(raw.driver_connection)
        assert sock is not None
        assert sock.fileno() >= 0
    finally:
        raw.close()
    assert socket_of(object()) is None
