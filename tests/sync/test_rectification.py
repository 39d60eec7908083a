"""Rectification flows out to CalDAV: a new appointment title is in the feeds at once and on
Radicale at the next sync; the old one is nowhere, not even in Radicale's files."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.domain.uids import appointment_uid
from tests.peers import radicale
from tests.privacy.rectify import (
    END,
    NEW_NAME,
    NEW_TITLE,
    OLD_NAME,
    OLD_TITLE,
    START,
    account_feed,
    rectify,
)
from tests.sync.conftest import World
from tests.sync.test_caldav_sync import Dav, OtherSide, connect


@pytest.fixture
def radicale_dav(tmp_path: Path) -> Iterator[tuple[Dav, Path]]:
    folder = tmp_path / "radicale"
    with radicale.running(folder) as server:
        dav = Dav("radicale", server.url, server.username, server.password, "")
        yield dav, folder


async def test_a_rename_reaches_radicale_and_leaves_no_old_copy(
    world: World, radicale_dav: tuple[Dav, Path]
) -> None:
    dav, folder = radicale_dav
    other = await asyncio.to_thread(OtherSide, dav)
    try:
        world.person = (
            await world.api.patch(f"/v1/clients/{world.person['id']}", {"name": OLD_NAME})
        ).json()
        await connect(world, dav)
        feed = await account_feed(world)
        apt = await world.book(START, END, title=OLD_TITLE)
        assert (await world.sync()).pushed == 1
        uid = appointment_uid(apt["id"])
        remote = await other.by_uid(uid)
        assert str(remote.icalendar_component["SUMMARY"]) == OLD_TITLE

        await rectify(world, apt, feed)
        assert (await world.sync()).pushed == 1
        remote = await other.by_uid(uid)
        assert str(remote.icalendar_component["SUMMARY"]) == NEW_TITLE
    finally:
        other.client.close()
    stored = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
    assert NEW_TITLE.encode() in stored, "the scan must find what is there"
    assert OLD_TITLE.encode() not in stored
    # Client names are never written to external calendars (only title and location are).
    assert OLD_NAME.encode() not in stored and NEW_NAME.encode() not in stored
