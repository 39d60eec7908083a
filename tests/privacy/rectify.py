"""Shared steps of the rectification tests (tests/sync/test_rectification.py for Radicale,
tests/google/test_rectification.py for the Google stand-in): a new client name or appointment
title is in the feeds at once and in the external calendar at the next sync."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.sync.conftest import World

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"
OLD_TITLE, NEW_TITLE = "Wisdom tooth (Old)", "Check-up (New)"
OLD_NAME, NEW_NAME = "Jane Oldname", "Jane Newname"


async def account_feed(world: World) -> dict[str, Any]:
    return await world.api.created("/v1/feeds", {"scope": "account", "privacy": "full"})


async def feed_text(world: World, feed: dict[str, Any]) -> str:
    response = await world.api.http.get(urlsplit(feed["url"]).path)
    assert response.status_code == 200
    return response.text


async def rectify(world: World, apt: dict[str, Any], feed: dict[str, Any]) -> None:
    """Rename the client and retitle the appointment; the feed shows it before any sync."""
    before = await feed_text(world, feed)
    assert OLD_TITLE in before and OLD_NAME in before
    renamed = await world.api.patch(f"/v1/clients/{world.person['id']}", {"name": NEW_NAME})
    assert renamed.status_code == 200, renamed.text
    retitled = await world.api.patch(f"/v1/appointments/{apt['id']}", {"title": NEW_TITLE})
    assert retitled.status_code == 200, retitled.text
    after = await feed_text(world, feed)
    assert NEW_TITLE in after and NEW_NAME in after
    assert OLD_TITLE not in after and OLD_NAME not in after
