"""Warm fetches: answered from memory by the app's entry, and never once they may be stale.

`FeedsFirst` answers a path it answered before from the body and headers it kept, while the
store's lookup generation holds (nothing committed since), the body is still cached and current,
and no validator was sent. These tests fetch a feed until it is warm, then check that a user
sees exactly what a cold fetch would give after each thing that could make the kept answer
wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from gateway.config import Settings
from gateway.feeds.access import AccessRecorder
from gateway.feeds.runtime import runtime_for
from gateway.store.db import Store
from tests.feeds.conftest import Feeds
from tests.feeds.test_cache import statements
from tests.support import Api


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _warm(feeds: Feeds, feed: dict[str, object]) -> httpx.Response:
    """Fetch until the answer comes from memory: the second fetch runs no statement."""
    first = await feeds.fetch(feed, **{"accept-encoding": "gzip"})
    assert first.status_code == 200, first.text
    await feeds.fetch(feed, **{"accept-encoding": "gzip"})  # after the render's own commit
    return first


async def test_a_warm_fetch_runs_no_statement_and_serves_the_same_answer(
    api: Api, feeds: Feeds, store: Store
):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    first = await _warm(feeds, feed)
    with statements(store) as seen:
        again = [await feeds.fetch(feed, **{"accept-encoding": "gzip"}) for _ in range(3)]
    if store.engine.url.get_backend_name() == "sqlite":
        assert seen == []  # PostgreSQL: the lookup is remembered only while a listener runs
    for response in again:
        assert response.status_code == 200
        assert response.content == first.content
        assert response.headers["etag"] == first.headers["etag"]
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["cache-control"] == "private, no-cache"
    plain = await feeds.fetch(feed, **{"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == first.content  # httpx decoded the gzip one
    assert plain.headers["etag"] != first.headers["etag"]  # each representation its own


async def test_a_change_after_warm_is_seen_by_the_next_fetch(api: Api, feeds: Feeds):
    user = await api.user()
    client = await api.client()
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    before = await _warm(feeds, feed)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    await api.appointment(
        user["id"],
        client["id"],
        start=_iso(start),
        end=_iso(start + timedelta(hours=1)),
        title="Warm path check",
    )
    after = await feeds.fetch(feed, **{"accept-encoding": "gzip"})
    assert after.status_code == 200
    assert "Warm path check" in after.text
    assert after.headers["etag"] != before.headers["etag"]


async def test_revoking_a_warm_link_stops_it_at_once(api: Api, feeds: Feeds):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    await _warm(feeds, feed)
    assert (await api.delete(f"/v1/feeds/{feed['id']}")).status_code == 204
    assert (await feeds.fetch(feed)).status_code == 404


async def test_validators_and_head_on_a_warm_link(api: Api, feeds: Feeds):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    first = await _warm(feeds, feed)
    etag = first.headers["etag"]
    conditional = await feeds.fetch(feed, **{"accept-encoding": "gzip", "if-none-match": etag})
    assert conditional.status_code == 304
    assert conditional.content == b""
    since = await feeds.fetch(
        feed,
        **{"accept-encoding": "gzip", "if-modified-since": first.headers["last-modified"]},
    )
    assert since.status_code == 304
    head = await feeds.http.head(httpx.URL(feed["url"]).path, headers={"accept-encoding": "gzip"})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == etag
    assert int(head.headers["content-length"]) == int(first.headers["content-length"])


async def test_warm_fetches_are_counted_in_the_access_record(api: Api, feeds: Feeds, store: Store):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    for _ in range(5):
        response = await feeds.fetch(feed, **{"user-agent": "Google-Calendar-Importer"})
        assert response.status_code == 200
    shown = (await api.get(f"/v1/feeds/{feed['id']}")).json()["access"]
    assert shown["fetches_7d"] == 5
    assert [app["family"] for app in shown["apps"]] == ["google-calendar"]


async def test_a_body_leaving_the_cache_takes_the_warm_answers_with_it(
    api: Api, feeds: Feeds, store: Store
):
    """Warm answers hold bodies outside the cache: they go when a body leaves it, so the
    cache's cap still bounds the memory."""
    user = await api.user()
    one = await feeds.create(scope="user", user_id=user["id"])
    other = await feeds.create(scope="account")
    await _warm(feeds, one)
    runtime = runtime_for(store, Settings())
    assert runtime.warm  # the path is answered from memory
    cache = runtime.bodies.cache
    cache.max_bytes = cache._bytes * 3 // 2  # room for one body: the next render evicts
    assert (await feeds.fetch(other)).status_code == 200
    assert not any(path in urlsplit(one["url"]).path for path in runtime.warm)
    assert all(cache.holds(warm.body) for warm in runtime.warm.values())
    assert (await feeds.fetch(one)).status_code == 200  # rendered again, still right
    assert all(cache.holds(warm.body) for warm in runtime.warm.values())


async def test_a_body_too_big_to_cache_is_not_kept_for_warm_answers(
    api: Api, feeds: Feeds, store: Store
):
    user = await api.user()
    feed = await feeds.create(scope="user", user_id=user["id"])
    runtime = runtime_for(store, Settings())
    runtime.bodies.cache.max_bytes = 1  # every body is too big
    for _ in range(3):
        assert (await feeds.fetch(feed)).status_code == 200
    assert runtime.warm == {}


async def test_the_access_record_keeps_the_latest_fetch_when_the_clock_steps_back(
    api: Api, feeds: Feeds, store: Store
):
    feed = await feeds.create(scope="account")
    recorder = AccessRecorder(store, flush_seconds=3600)
    late = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    for moment in (late, late - timedelta(seconds=5)):
        recorder.record(feed["id"], b"Thunderbird/128", "192.0.2.9", moment.timestamp())
    assert await recorder.flush() == 2
    shown = (await api.get(f"/v1/feeds/{feed['id']}")).json()["access"]
    assert shown["fetches_total"] == 2
    assert shown["last_fetched_at"].startswith("2026-10-25T00:30:00")
