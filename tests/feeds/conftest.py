"""Fixtures of the feed tests: an account with a practitioner, a client, and feed helpers."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from gateway.store.db import Store
from tests.feeds import parsers
from tests.support import Api, new_account


class Feeds:
    """One account's feeds: create them through the API and fetch them like an app would."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.http = api.http

    async def create(self, **body: Any) -> dict[str, Any]:
        return await self.api.created("/v1/feeds", body)

    async def fetch(self, feed_or_url: dict[str, Any] | str, **headers: str) -> httpx.Response:
        url = feed_or_url if isinstance(feed_or_url, str) else feed_or_url["url"]
        return await self.http.get(urlsplit(url).path, headers=headers)

    async def text(self, feed: dict[str, Any] | str) -> str:
        response = await self.fetch(feed)
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture
async def api(store: Store, client: httpx.AsyncClient) -> Api:
    return await new_account(store, client)


@pytest.fixture
def feeds(api: Api) -> Feeds:
    return Feeds(api)


@pytest.fixture(scope="session")
def icaljs_ready(tmp_path_factory: pytest.TempPathFactory) -> None:
    """ical.js installed under tests/.node (npm, once per checkout); skips saying why not."""
    reason = parsers.install_icaljs(tmp_path_factory.mktemp("npm-cache"))
    if reason is not None:
        pytest.skip(f"ical.js unavailable: {reason}")
