"""The body cache: one query when warm, one render however many ask, invalidated with changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from gateway.config import Settings
from gateway.feeds import source
from gateway.feeds.cache import Body, BodyCache, next_last_modified
from gateway.feeds.runtime import runtime_for
from gateway.store.db import Store
from tests.feeds.conftest import Feeds
from tests.support import Api


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements run on `store` inside the block (transaction control left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.split()[0].upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            seen.append(statement)

    def trace(statement: str) -> None:
        record(None, None, statement)

    # The SQLite lookup runs on a connection of its own, outside the engine: trace both.
    lookup = runtime_for(store, Settings()).sqlite
    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    if lookup is not None:
        lookup.trace = trace
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)
        if lookup is not None:
            lookup.trace = None


async def _booked(api: Api, days: float = 2, **over: Any) -> tuple[dict[str, Any], ...]:
    user = await api.user()
    client = await api.client()
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    apt = await api.appointment(
        user["id"],
        client["id"],
        start=_iso(start),
        end=_iso(start + timedelta(hours=1)),
        **over,
    )
    return user, client, apt


async def test_a_warm_fetch_runs_only_the_token_lookup(api: Api, feeds: Feeds, store: Store):
    user, _, _ = await _booked(api)
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    assert (await feeds.fetch(feed)).status_code == 200  # cold: renders
    with statements(store) as seen:
        for _ in range(3):
            assert (await feeds.fetch(feed)).status_code == 200
    # SQLite: the token query only when something committed since the last fetch (the cold
    # render's stamp did, once); the change check reads the wal-index header, not SQL
    # (tests/feeds/test_change_signal.py). PostgreSQL: the query each time.
    queries = [s for s in seen if s != "PRAGMA data_version"]
    assert "PRAGMA data_version" not in seen, seen
    assert len(queries) <= (1 if store.engine.url.get_backend_name() == "sqlite" else 3), seen
    assert all("FROM feeds" in s and "token_hash" in s for s in queries), seen


async def test_concurrent_cold_fetches_render_once(
    api: Api, feeds: Feeds, caplog: pytest.LogCaptureFixture
):
    user, _, _ = await _booked(api)
    feed = await feeds.create(scope="user", user_id=user["id"])
    with caplog.at_level(logging.INFO, logger="calgate.feeds"):
        answers = await asyncio.gather(*(feeds.fetch(feed) for _ in range(10)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1
    assert [r.message for r in caplog.records].count("feed rendered") == 1


async def test_changes_show_at_the_next_fetch(api: Api, feeds: Feeds):
    user, client, apt = await _booked(api, title="First")
    other = await api.user(name="Other Practitioner")
    mine = await feeds.create(scope="user", user_id=user["id"], privacy="limited")
    theirs = await feeds.create(scope="user", user_id=other["id"], privacy="limited")
    everyone = await feeds.create(scope="account", privacy="limited")
    its_client = await feeds.create(scope="client", client_id=client["id"], privacy="limited")
    for feed in (mine, everyone, its_client):
        assert "SUMMARY:First" in await feeds.text(feed)
    assert "SUMMARY:First" not in await feeds.text(theirs)

    await api.patch(f"/v1/appointments/{apt['id']}", {"title": "Second"})
    for feed in (mine, everyone, its_client):
        assert "SUMMARY:Second" in await feeds.text(feed)

    await api.patch(f"/v1/appointments/{apt['id']}", {"user_id": other["id"]})  # handed over
    assert "VEVENT" not in await feeds.text(mine)
    assert "SUMMARY:Second" in await feeds.text(theirs)

    await api.post(f"/v1/appointments/{apt['id']}/cancel")
    assert "STATUS:CANCELLED" in await feeds.text(theirs)

    booked = await api.appointment(
        user["id"],
        client["id"],
        start=_iso(datetime.now(UTC) + timedelta(days=3)),
        end=_iso(datetime.now(UTC) + timedelta(days=3, hours=1)),
        title="Third",
    )
    assert "SUMMARY:Third" in await feeds.text(mine)
    assert booked["id"] in await feeds.text(everyone)


async def test_people_changes_show_too(api: Api, feeds: Feeds):
    user, client, _ = await _booked(api)
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    assert "X-WR-TIMEZONE:Europe/London" in await feeds.text(feed)
    await api.patch(f"/v1/users/{user['id']}", {"timezone": "Asia/Tokyo"})
    assert "X-WR-TIMEZONE:Asia/Tokyo" in await feeds.text(feed)
    await api.patch(f"/v1/clients/{client['id']}", {"name": "New Name"})
    assert "Client: New Name" in await feeds.text(feed)
    await api.delete(f"/v1/clients/{client['id']}")
    assert "VEVENT" not in await feeds.text(feed)


async def test_a_failed_change_invalidates_nothing(api: Api, feeds: Feeds, store: Store):
    user, _, apt = await _booked(api)
    feed = await feeds.create(scope="user", user_id=user["id"])
    await feeds.fetch(feed)
    bad = await api.patch(f"/v1/appointments/{apt['id']}", {"timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    with statements(store) as seen:
        await feeds.fetch(feed)
    # Still warm: the rolled-back transaction bumped nothing, so nothing is rendered. (Other
    # commits, such as the usage record of the failed request, may cost one token query.)
    assert not any("appointments" in s for s in seen), seen
    assert len([s for s in seen if "token_hash" in s]) <= 1, seen


async def test_the_snapshot_knows_when_the_clock_changes_it(
    api: Api, feeds: Feeds, store, settings
):
    user, client, apt = await _booked(api, days=2)
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=800)
    await api.appointment(
        user["id"], client["id"], start=_iso(far), end=_iso(far + timedelta(hours=1))
    )
    feed = await feeds.create(scope="user", user_id=user["id"])
    now = datetime.now(UTC)
    async with store.transaction() as session:
        snap = await source.load(session, feed["id"], settings, now)
    assert snap is not None and len(snap.calendar.events) == 1
    end = datetime.fromisoformat(apt["end"])
    assert snap.valid_until == min(end + timedelta(days=60), far - timedelta(days=730))
    cancelled = (await api.post(f"/v1/appointments/{apt['id']}/cancel")).json()
    async with store.transaction() as session:
        snap = await source.load(session, feed["id"], settings, now)
    assert snap is not None
    assert snap.valid_until == datetime.fromisoformat(cancelled["cancelled_at"]) + timedelta(days=7)


def _body(feed_id: str, size: int, version: int = 1) -> Body:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Body(feed_id, version, b"x" * size, b"", '"a"', '"a-gz"', moment, "", None)


def test_the_cache_is_bounded_and_keyed_by_version():
    cache = BodyCache(max_bytes=250)
    now = datetime.now(UTC).timestamp()
    for name in ("a", "b"):
        cache.put(_body(name, 100))
    assert cache.get("a", 1, now) is not None  # a is now the most recent
    cache.put(_body("c", 100))
    assert cache.get("b", 1, now) is None  # evicted: least recently used
    assert cache.get("a", 1, now) is not None
    assert cache.get("a", 2, now) is None  # another version is a miss
    cache.put(_body("huge", 1000))
    assert cache.get("huge", 1, now) is None


def test_last_modified_moves_forward_by_whole_seconds():
    now = datetime(2026, 1, 1, 12, 0, 0, 400_000, tzinfo=UTC)
    first = next_last_modified(None, now)
    assert first == now.replace(microsecond=0)
    assert next_last_modified(first, now) == first + timedelta(seconds=1)
    assert next_last_modified(first, now + timedelta(seconds=5)) == first + timedelta(seconds=5)
