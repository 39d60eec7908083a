"""Push channels: events.watch, the webhook's checks, renewal, and a pull within seconds.

The app is served on a real socket (uvicorn in the test's loop), because the stand-in posts
its notifications over HTTP, as Google does.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select, update

from connectors import google
from gateway.app import create_app
from gateway.config import Settings
from gateway.domain.uids import appointment_uid
from gateway.store.db import Store
from gateway.store.lifecycle_models import WatchChannel
from gateway.store.sync_models import Integration
from gateway.sync import watch
from gateway.sync.schedule import SyncTicker
from gateway.worker import JobRunner
from tests.conftest import make_settings
from tests.google.conftest import CALENDAR, GoogleWorld, google_settings
from tests.peers.google import GooglePeer

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def settings(tmp_path: Path, peer: GooglePeer, listener: socket.socket) -> Settings:
    port = listener.getsockname()[1]
    return make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}", **google_settings(peer))


@pytest.fixture
async def served(settings: Settings, store: Store, listener: socket.socket) -> AsyncIterator[None]:
    app = create_app(settings, store, run_ticks=False)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task
        listener.close()


async def wait_for(peer: GooglePeer, state: str, count: int = 1) -> list[dict[str, str]]:
    for _ in range(300):
        found = [n for n in peer.notifications if n["X-Goog-Resource-State"] == state]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {state!r} notification arrived")


async def integration_row(gworld: GoogleWorld) -> Integration:
    async with gworld.store.transaction() as session:
        row = await session.get(Integration, gworld.integration_id)
        assert row is not None
        return row


async def connected_with_channel(gworld: GoogleWorld) -> tuple[GooglePeer, dict[str, Any]]:
    peer = gworld.peer
    assert peer is not None
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    assert (await gworld.sync()).pushed == 1
    assert await watch.tick(gworld.store, gworld.settings) == 1
    return peer, apt


async def test_connecting_starts_a_channel_at_the_next_job_tick(
    gworld: GoogleWorld, served: None
) -> None:
    """As for every provider with channels: one job tick after the consent, not the 5-minute
    channel tick."""
    peer = gworld.peer
    assert peer is not None
    await gworld.connect_google()
    assert peer.channels == {}
    assert await JobRunner(gworld.store, gworld.settings).tick() == 1
    (channel,) = peer.channels.values()
    assert channel.calendar_id == CALENDAR
    await wait_for(peer, "sync")  # Google's first message on the new channel reached us
    assert await watch.tick(gworld.store, gworld.settings) == 0


async def test_notification_triggers_a_pull_within_seconds(
    gworld: GoogleWorld, served: None
) -> None:
    peer, apt = await connected_with_channel(gworld)
    (channel,) = peer.channels.values()
    assert channel.address == gworld.settings.public_url + "/webhooks/google"
    assert channel.calendar_id == CALENDAR
    # The first message is "sync": answered 200, and nothing is marked.
    (first,) = await wait_for(peer, "sync")
    assert first["status"] == "200"
    assert not (await integration_row(gworld)).dirty

    peer.patch_event(
        CALENDAR,
        google.event_id(appointment_uid(apt["id"])),
        {
            "start": {"dateTime": "2027-01-12T16:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-12T17:00:00Z", "timeZone": "UTC"},
        },
    )
    (note,) = await wait_for(peer, "exists")
    assert note["status"] == "200"
    row = await integration_row(gworld)
    assert row.dirty
    # The sync tick claims it at once (due now) and pulls the move.
    assert await SyncTicker(gworld.store, gworld.settings).tick() == 1
    got = await gworld.appointment(apt["id"])
    assert got["start"] == "2027-01-12T16:00:00Z"


async def test_webhook_refuses_forged_notifications(gworld: GoogleWorld, served: None) -> None:
    peer, _ = await connected_with_channel(gworld)
    await wait_for(peer, "sync")
    (channel,) = peer.channels.values()
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Token": "forged",
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": "exists",
        "X-Goog-Message-Number": "7",
    }
    base = gworld.settings.public_url
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.post("/webhooks/google", headers=headers)).status_code == 403
        del headers["X-Goog-Channel-Token"]
        assert (await http.post("/webhooks/google", headers=headers)).status_code == 403
        unknown = {**headers, "X-Goog-Channel-ID": "nope", "X-Goog-Channel-Token": "x"}
        assert (await http.post("/webhooks/google", headers=unknown)).status_code == 404
        assert (await http.post("/webhooks/google")).status_code == 400
    assert not (await integration_row(gworld)).dirty


async def test_channels_are_renewed_before_expiry(gworld: GoogleWorld, served: None) -> None:
    peer, _ = await connected_with_channel(gworld)
    (old,) = list(peer.channels)
    # Nothing to do while the channel has more than the renewal margin left.
    assert await watch.tick(gworld.store, gworld.settings) == 0
    renewing = gworld.settings.model_copy(update={"google_channel_renew_hours": 200.0})
    assert await watch.tick(gworld.store, renewing) == 1
    assert peer.stopped_channels == [old]
    async with gworld.store.transaction() as session:
        rows = list(await session.scalars(select(WatchChannel)))
    assert [r.channel_id for r in rows] == [c for c in peer.channels if c != old]
    assert rows[0].token_hash and len(rows[0].token_hash) == 64
    # The old channel is gone for good: its notifications would be refused.
    await wait_for(peer, "sync", 2)


async def test_polling_slows_down_while_the_channel_works(
    gworld: GoogleWorld, served: None
) -> None:
    peer = gworld.peer
    assert peer is not None
    await gworld.connect_google()
    ticker = SyncTicker(gworld.store, gworld.settings)
    assert await ticker.tick() == 1
    row = await integration_row(gworld)
    poll = timedelta(minutes=gworld.settings.sync_poll_minutes)
    assert row.due_at - datetime.now(UTC) <= poll  # no channel: the engine's interval
    assert await watch.tick(gworld.store, gworld.settings) == 1
    async with gworld.store.transaction() as session:
        await session.execute(update(Integration).values(due_at=datetime.now(UTC), dirty=False))
    assert await ticker.tick() == 1
    row = await integration_row(gworld)
    backstop = timedelta(minutes=gworld.settings.google_push_poll_minutes)
    assert row.due_at - datetime.now(UTC) > backstop - timedelta(minutes=1)
    assert backstop > poll
