"""A Radicale calendar filled with what real calendars contain (tests/data/hostile): the sync
reads what it can, skips the rest with a log entry in words, never stalls, and the busy time it
records stays bounded (issue 14: hostile calendars)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from caldav.davclient import DAVClient
from sqlalchemy import func, select

from connectors import ical
from connectors.base import Window
from gateway.store.sync_models import BusyBlock, SyncLogEntry
from tests.connectors.test_hostile_ical import corpus
from tests.peers import radicale, xandikos
from tests.sync.conftest import World

WINDOW = Window(datetime.now(UTC) - timedelta(days=60), datetime.now(UTC) + timedelta(days=400))


@dataclass
class Server:
    """A CalDAV server; `folder` is where Radicale keeps its files (None for Xandikos)."""

    url: str
    username: str
    password: str
    folder: Path | None


@pytest.fixture(params=["radicale", "xandikos"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """Radicale refuses most broken objects at PUT; Xandikos keeps some (a month 13)."""
    if request.param == "radicale":
        with radicale.running(tmp_path / "radicale") as running:
            yield Server(running.url, running.username, running.password, running.folder)
    else:
        with xandikos.running(tmp_path / "xandikos") as url:
            yield Server(url + "user/", "any", "pw-Xandikos-1", None)


async def test_a_hostile_calendar_syncs_what_it_can(world: World, server: Server) -> None:
    dav = DAVClient(server.url, username=server.username, password=server.password)
    work = await asyncio.to_thread(dav.principal().make_calendar, name="Work", cal_id="work")
    stored = []
    async with httpx.AsyncClient(auth=(server.username, server.password), timeout=120) as http:
        for name, data in corpus().items():
            answer = await http.put(
                f"{work.url}{name}", content=data, headers={"Content-Type": "text/calendar"}
            )
            if answer.status_code in (201, 204):
                # What the server serves back (it may have rewritten the object).
                served = await http.get(f"{work.url}{name}")
                stored.append((name, served.content))
    dav.close()
    assert len(stored) >= 12, stored  # most of the corpus is what servers accept and keep
    # What Radicale refuses at PUT, written straight into its storage folder: it serves what
    # it can make of it.
    folder = (server.folder or Path()) / "collections" / "collection-root" / server.username
    async with httpx.AsyncClient(auth=(server.username, server.password), timeout=120) as http:
        for name in ("latin1.ics", "bad-dates.ics") if server.folder else ():
            (folder / "work" / name).write_bytes(corpus()[name])
            served = await http.get(f"{work.url}{name}")
            if served.status_code == 200:
                stored.append(
                    (name, served.content)
                )  # most of the corpus is what servers accept and keep
    await world.connect(
        provider="caldav",
        server_url=server.url,
        username=server.username,
        password=server.password,
        write_calendar="Work",
        busy_calendars=["Work"],
    )
    started = time.monotonic()
    outcome = await world.sync()
    assert time.monotonic() - started < 120, "the sync stalled"
    assert outcome.error is None, outcome.error
    assert (await world.integration())["status"] == "active"
    log = (await world.api.get(f"/v1/integrations/{world.integration_id}/log")).json()["data"]
    skipped = [e["detail"] for e in log if e["kind"] == "skipped"]
    unreadable = []
    for name, served in stored:
        try:
            ical.parse_item("/x", "", served, WINDOW)
        except ical.Unreadable:
            unreadable.append(name)
        except ical.NotAnEvent:
            pass
    assert len(skipped) == len(unreadable), (skipped, unreadable)
    if server.folder is None:
        assert unreadable  # Xandikos keeps a month-13 date: the skip is exercised
    for detail in skipped:
        assert "was skipped: " in detail and "Big" not in detail  # words, no content
    async with world.store.transaction() as session:
        blocks = await session.scalar(select(func.count()).select_from(BusyBlock))
        entries = await session.scalar(select(func.count()).select_from(SyncLogEntry))
    # Busy time is bounded whatever the series hold: at most MAX_OCCURRENCES per object.
    assert blocks is not None and 0 < blocks <= ical.MAX_OCCURRENCES * len(stored)
    assert entries is not None and entries < 50
    # A second run (incremental) is quiet and as fast.
    again = await world.sync()
    assert again.error is None
