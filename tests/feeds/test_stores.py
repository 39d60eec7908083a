"""The whole feed path on both stores (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from gateway.app import create_app
from gateway.privacy import retention
from gateway.store.db import Store
from tests.feeds.conftest import Feeds
from tests.support import new_account


async def test_create_fetch_change_rotate_record(any_store: Store, settings):
    app = create_app(settings, any_store, run_ticks=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        api = await new_account(any_store, http)
        feeds = Feeds(api)
        user = await api.user()
        client = await api.client()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
        apt = await api.appointment(
            user["id"],
            client["id"],
            start=start.isoformat(),
            end=(start + timedelta(hours=1)).isoformat(),
            timezone="Australia/Lord_Howe",
        )
        feed = await feeds.create(scope="user", user_id=user["id"], privacy="limited")
        first = await feeds.fetch(feed)
        assert first.status_code == 200
        assert "DTSTART;TZID=Australia/Lord_Howe:" in first.text
        same = await feeds.fetch(feed, **{"If-None-Match": first.headers["etag"]})
        assert same.status_code == 304
        await api.patch(f"/v1/appointments/{apt['id']}", {"title": "Changed"})
        changed = await feeds.fetch(feed, **{"If-None-Match": first.headers["etag"]})
        assert changed.status_code == 200
        assert "SUMMARY:Changed" in changed.text
        rotated = (await api.post(f"/v1/feeds/{feed['id']}/rotate")).json()
        assert (await feeds.fetch(feed)).status_code == 404
        assert (await feeds.fetch(rotated)).status_code == 200
        shown = (await api.get(f"/v1/feeds/{feed['id']}")).json()["access"]
        assert shown["fetches_total"] == 4
        async with any_store.transaction() as session:
            counts = await retention.sweep(session, settings, datetime.now(UTC))
        assert counts["feed_access_rows"] == 0
