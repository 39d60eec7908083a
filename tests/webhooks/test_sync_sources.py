"""Events caused by calendars: a move made in Radicale and in the Google stand-in arrives as
appointment.updated with its source; status changes (choosing the write calendar, completing
the consent, a reconnect-needed, a resume after a guard) and a purge arrive too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from connectors import google
from gateway.config import Settings
from gateway.domain.uids import appointment_uid
from gateway.store.db import Store
from gateway.webhooks.dispatcher import Dispatcher
from tests.conftest import make_settings
from tests.google.conftest import (  # noqa: F401 - fixtures used by these tests
    CALENDAR,
    GoogleWorld,
    google_settings,
    gworld,
)
from tests.peers import google as google_peer
from tests.peers import radicale
from tests.peers.webhook_receiver import Receiver
from tests.sync.conftest import World
from tests.sync.test_caldav_sync import Dav, OtherSide
from tests.webhooks.conftest import WEBHOOK_SETTINGS, add_endpoint, arrived

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"


@pytest.fixture
def peer() -> Iterator[google_peer.GooglePeer]:
    from tests.google.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT

    with google_peer.running() as running:
        running.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        running.add_calendar(CALENDAR, "Dr Test", tz="Europe/London")
        yield running


@pytest.fixture
def settings(tmp_path: Path, peer: google_peer.GooglePeer) -> Settings:
    """The Google stand-in, calendar servers and the receiver on 127.0.0.1."""
    return make_settings(tmp_path, **google_settings(peer), **WEBHOOK_SETTINGS)


@contextlib.asynccontextmanager
async def _connected_to_radicale(tmp_path: Path, world: World) -> AsyncIterator[OtherSide]:
    """Radicale with a "Work" calendar, `world` connected to it (writing there); the calendar's
    own side for the test to edit it."""
    with radicale.running(tmp_path / "radicale") as server:
        dav = Dav("radicale", server.url, server.username, server.password, "")
        other = await asyncio.to_thread(OtherSide, dav)
        try:
            await world.connect(
                provider="caldav",
                server_url=server.url,
                username=server.username,
                password=server.password,
                write_calendar="Work",
            )
            yield other
        finally:
            other.client.close()


async def test_move_in_radicale_arrives_as_updated_with_source_caldav(
    tmp_path: Path,
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    from tests.support import new_account

    api = await new_account(store, client)
    world = World(api, store, settings, await api.user(timezone="Europe/Paris"), await api.client())
    await add_endpoint(api, receiver)
    async with _connected_to_radicale(tmp_path, world) as other:
        apt = await world.book(START, END)
        assert (await world.sync()).pushed == 1
        obj = await other.by_uid(appointment_uid(apt["id"]))
        paris = ZoneInfo("Europe/Paris")
        obj.icalendar_component["DTSTART"].dt = datetime(2027, 1, 14, 16, tzinfo=paris)
        obj.icalendar_component["DTEND"].dt = datetime(2027, 1, 14, 17, tzinfo=paris)
        await other.run(obj.save)
        assert (await world.sync()).rescheduled == 1
        await other.run((await other.by_uid(appointment_uid(apt["id"]))).delete)
        assert (await world.sync()).cancelled == 1
    arrived_all = await arrived(dispatcher, receiver, 4)
    # Choosing the write calendar made the integration active: that arrives too (events of
    # different subjects may interleave).
    (status,) = [e["data"] for e in arrived_all if e["type"] == "integration.status_changed"]
    assert (status["previous_status"], status["status"]) == ("pending", "active")
    events = [e for e in arrived_all if e["type"].startswith("appointment.")]
    assert [(e["type"], e["data"]["source"]) for e in events] == [
        ("appointment.created", "api"),
        ("appointment.updated", "caldav"),
        ("appointment.cancelled", "caldav"),
    ]
    moved = events[1]["data"]
    assert (moved["id"], moved["version"], moved["change"]) == (apt["id"], 2, "rescheduled")
    assert (moved["start"], moved["end"]) == ("2027-01-14T15:00:00Z", "2027-01-14T16:00:00Z")


async def test_move_in_google_and_reconnect_and_purge_arrive(
    gworld: GoogleWorld,  # noqa: F811 - the fixture imported above
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    peer = gworld.peer
    assert peer is not None
    await add_endpoint(gworld.api, receiver)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    await gworld.sync()
    peer.patch_event(
        CALENDAR,
        google.event_id(appointment_uid(apt["id"])),
        {
            "start": {"dateTime": "2027-01-14T15:00:00+01:00", "timeZone": "Europe/Paris"},
            "end": {"dateTime": "2027-01-14T16:30:00+01:00", "timeZone": "Europe/Paris"},
        },
    )
    assert (await gworld.sync()).rescheduled == 1
    peer.revoke_grant(gworld.refresh_token())
    assert (await gworld.sync()).status == "reconnect_needed"
    assert (await gworld.sync()).status == "reconnect_needed"  # no second event: unchanged
    deleted = await gworld.api.delete(f"/v1/integrations/{gworld.integration_id}")
    assert deleted.status_code == 202, deleted.text
    await gworld.purge()  # the durable purge job, as the daemon's job tick runs it
    events = await arrived(dispatcher, receiver, 5)
    # One appointment's events arrive in order; events of different subjects may interleave.
    changes = [e["data"] for e in events if e["type"] == "integration.status_changed"]
    # Completing the consent made it active; the refused grant asks for a reconnection.
    assert [(c["previous_status"], c["status"]) for c in changes] == [
        ("pending", "active"),
        ("active", "reconnect_needed"),
    ]
    by_type = {e["type"]: e["data"] for e in events}
    assert sorted(by_type) == [
        "appointment.created",
        "appointment.updated",
        "integration.purged",
        "integration.status_changed",
    ]
    moved = by_type["appointment.updated"]
    assert (moved["source"], moved["start"], moved["end"]) == (
        "google",
        "2027-01-14T14:00:00Z",
        "2027-01-14T15:30:00Z",
    )
    status = by_type["integration.status_changed"]
    assert (status["status"], status["previous_status"], status["provider"]) == (
        "reconnect_needed",
        "active",
        "google",
    )
    assert status["integration_id"] == gworld.integration_id and "reconnect" in status["reason"]
    purged = by_type["integration.purged"]
    assert purged["integration_id"] == gworld.integration_id
    receipt = await gworld.api.get(f"/v1/integrations/{gworld.integration_id}/purge-receipt")
    assert purged["receipt"]["counts"] == receipt.json()["counts"]


async def _pause(store: Store, integration_id: str) -> None:
    """What a sync guard leaves behind (gateway/sync/run.py `_finish_guard`)."""
    from gateway.store.sync_models import Integration

    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None
        integration.status = "paused"
        integration.last_error = "sync stopped: the calendar was emptied"


async def test_resume_after_a_guard_arrives_as_status_changed(
    tmp_path: Path,
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    receiver: Receiver,
    dispatcher: Dispatcher,
) -> None:
    from tests.support import new_account

    api = await new_account(store, client)
    world = World(api, store, settings, await api.user(), await api.client())
    await add_endpoint(api, receiver, event_types=["integration.status_changed"])
    async with _connected_to_radicale(tmp_path, world):
        await _pause(store, world.integration_id)
        path = f"/v1/integrations/{world.integration_id}"
        resumed = await api.patch(path, {"resume": True})
        assert resumed.status_code == 200, resumed.text
        again = await api.patch(path, {"resume": True})  # already active: no second event
        assert again.status_code == 200, again.text
    events = await arrived(dispatcher, receiver, 2)
    await asyncio.sleep(0.2)
    await dispatcher.drain()
    changes = [(e["data"]["previous_status"], e["data"]["status"]) for e in receiver.app.events()]
    assert changes == [("pending", "active"), ("paused", "active")]
    assert {e["data"]["integration_id"] for e in events} == {world.integration_id}
