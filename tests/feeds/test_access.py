"""The access record: counts per feed and app family, the 7-day view, and address retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text

from gateway.app import create_app
from gateway.feeds.access import AccessRecorder, agent_family
from gateway.privacy import retention
from gateway.store.db import Store
from gateway.store.feed_models import Feed, FeedAccess
from tests.conftest import make_settings
from tests.feeds.conftest import Feeds
from tests.support import Api, new_account

APPS = {
    "Google-Calendar-Importer": "google-calendar",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)": "outlook",
    "iOS/17.4 (21E219) dataaccessd/1.0": "apple-calendar",
    "macOS/14.4 (23E214) CalendarAgent/988": "apple-calendar",
    "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0": "thunderbird",
    "ICSx5/2.2.3-gplay (ical4j/3.2.14 okhttp/4.12.0 Android/14)": "davx5",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0": "browser",
    "curl/8.5.0": "curl",
    "python-requests/2.31": "script",
    "": "none",
    "SomethingElse/1.0": "other",
}


@pytest.mark.parametrize(("header", "family"), list(APPS.items()))
def test_agent_families(header: str, family: str):
    assert agent_family(header) == family


async def test_fetches_are_counted_per_app(api: Api, feeds: Feeds, store: Store):
    feed = await feeds.create(scope="account")
    agents = [
        "Google-Calendar-Importer",
        "Google-Calendar-Importer",
        "iOS/17.4 (21E219) dataaccessd/1.0",
        "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.9.0",
    ]
    etag = ""
    for agent in agents:
        response = await feeds.fetch(feed, **{"User-Agent": agent, "If-None-Match": etag})
        etag = response.headers["etag"]
    assert response.status_code == 304  # a revalidation is a fetch too
    await feeds.fetch("http://x/feeds/" + "B" * 43 + ".ics")  # misses count for nobody
    shown = (await api.get(f"/v1/feeds/{feed['id']}")).json()["access"]
    assert shown["fetches_total"] == 4
    assert shown["fetches_7d"] == 4
    assert shown["distinct_apps_7d"] == 3
    assert shown["distinct_addresses_7d"] == 1
    assert shown["apps"][0]["family"] == "google-calendar"
    assert shown["apps"][0]["fetches"] == 2
    last = datetime.fromisoformat(shown["last_fetched_at"])
    assert datetime.now(UTC) - last < timedelta(minutes=1)
    listed = (await api.get("/v1/feeds")).json()["data"][0]["access"]
    assert listed == shown
    async with store.transaction() as session:
        dump = repr((await session.execute(text("SELECT * FROM feed_access"))).all())
    assert "dataaccessd" not in dump  # the family only, never the header
    assert "apple-calendar" in dump


async def test_counts_reach_the_store_without_being_asked(tmp_path: Path):
    settings = make_settings(tmp_path, feeds_access_flush_seconds=0.05)
    store = Store.from_url(settings.database_url)
    from gateway.store import migrate

    await migrate.upgrade(store)
    app = create_app(settings, store, run_ticks=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            api = await new_account(store, http)
            made = await Feeds(api).create(scope="account")
            await Feeds(api).fetch(made)
            for _ in range(50):
                await asyncio.sleep(0.02)
                async with store.transaction() as session:
                    feed = await session.get(Feed, made["id"])
                    assert feed is not None
                    if feed.fetch_count:
                        break
            assert feed.fetch_count == 1
            assert feed.last_fetched_at is not None
    finally:
        await store.close()


async def test_retention_clears_addresses_and_old_rows(
    api: Api, feeds: Feeds, store: Store, settings
):
    made = await feeds.create(scope="account")
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    async with store.transaction() as session:
        for age_days, address in ((0, "192.0.2.1"), (6.5, "192.0.2.2"), (9, "192.0.2.3")):
            bucket = hour - timedelta(days=age_days)
            session.add(
                FeedAccess(
                    feed_id=made["id"],
                    bucket=bucket,
                    agent="outlook",
                    address=address,
                    fetches=3,
                    last_at=bucket + timedelta(minutes=5),
                )
            )
    async with store.transaction() as session:
        counts = await retention.sweep(session, settings.model_copy(), now)
    assert counts["feed_access_rows"] == 1  # the 9-day-old row
    assert counts["feed_access_addresses"] == 1  # the same row's, not the 6.5-day-old one
    short = settings.model_copy(update={"feeds_ip_retention_days": 1.0})
    async with store.transaction() as session:
        counts = await retention.sweep(session, short, now)
        rows = (await session.scalars(select(FeedAccess).order_by(FeedAccess.bucket))).all()
    assert counts["feed_access_addresses"] == 1
    assert [r.address for r in rows] == [None, "192.0.2.1"]
    shown = (await api.get(f"/v1/feeds/{made['id']}")).json()["access"]
    assert shown["fetches_7d"] == 6
    assert shown["distinct_addresses_7d"] == 1


async def test_counts_fall_into_the_hour_of_each_fetch(feeds: Feeds, store: Store):
    """The recorder works the hour out once per hour: fetches on both sides of an hour's end,
    and after the clock steps back, still land in their own hours."""
    feed = await feeds.create(scope="account")
    recorder = AccessRecorder(store, flush_seconds=3600)
    base = datetime(2026, 3, 29, 0, 59, 59, tzinfo=UTC)  # a DST night in Europe: UTC goes on
    for moment in (base, base + timedelta(seconds=1), base - timedelta(minutes=30), base):
        recorder.record(feed["id"], b"Google-Calendar-Importer", "192.0.2.1", moment.timestamp())
    assert await recorder.flush() == 4
    async with store.transaction() as session:
        rows = (
            await session.execute(
                select(FeedAccess.bucket, FeedAccess.fetches).where(
                    FeedAccess.feed_id == feed["id"]
                )
            )
        ).all()
    by_hour = {bucket.replace(tzinfo=UTC): fetches for bucket, fetches in rows}
    assert by_hour == {
        base.replace(minute=0, second=0): 3,
        base.replace(hour=1, minute=0, second=0): 1,
    }
