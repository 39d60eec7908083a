"""Rotation and revocation seen at once by another process's remembered token lookups.

Each app below has its own store on the same SQLite file, as two `calgate serve` processes
would: its own engine and its own lookup connection with its own remembered answers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.db import Store
from tests.feeds.conftest import Feeds
from tests.support import Api


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
