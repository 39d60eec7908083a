"""403 quotaExceeded ("Calendar usage limits exceeded"): writes to the calendar pause for the
configured time, the integration's status says until when, reads go on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.config import Settings
from tests.conftest import make_settings
from tests.google.conftest import GoogleWorld, google_settings
from tests.peers.google import GooglePeer


@pytest.fixture
def settings(tmp_path: Path, peer: GooglePeer) -> Settings:
    return make_settings(tmp_path, **google_settings(peer, google_quota_pause_minutes=0.02))


async def test_quota_exceeded_pauses_writes_and_says_so(gworld: GoogleWorld) -> None:
    peer = gworld.peer
    assert peer is not None
    await gworld.connect_google()
    await gworld.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    peer.fail_next("quotaExceeded", methods={"POST"})
    outcome = await gworld.sync()
    assert outcome.error is not None and "usage limits" in outcome.error
    assert outcome.retry_after is not None and 0 < outcome.retry_after <= 2
    status = await gworld.integration()
    assert status["status"] == "active"
    assert "writes to this calendar are paused until" in status["last_error"]
    # While paused, no write reaches Google (reads still do).
    posts = [c for c in peer.calls if c.method == "POST"]
    outcome = await gworld.sync()
    assert "paused" in (outcome.error or "")
    assert [c for c in peer.calls if c.method == "POST"] == posts
    # After the pause, the write goes through.
    await asyncio.sleep(1.3)
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    assert (await gworld.integration())["last_error"] is None


async def test_paused_writes_still_commit_what_was_read(gworld: GoogleWorld) -> None:
    """A quota pause refuses the push, but the pull of the same run is kept: busy time and a move
    made in Google arrive now; the refused push stays pending and goes out after the pause."""
    from sqlalchemy import select

    from connectors import google
    from gateway.domain.uids import appointment_uid
    from gateway.store.sync_models import Integration, SyncMapping
    from tests.google.conftest import CALENDAR

    peer = gworld.peer
    assert peer is not None
    await gworld.connect_google()
    moved = await gworld.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    assert (await gworld.sync()).pushed == 1
    peer.patch_event(
        CALENDAR,
        google.event_id(appointment_uid(moved["id"])),
        {
            "start": {"dateTime": "2027-01-14T15:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-14T16:00:00Z", "timeZone": "UTC"},
        },
    )
    peer.put_event(
        CALENDAR,
        {
            "summary": "Dentist",
            "start": {"dateTime": "2027-01-13T12:00:00Z"},
            "end": {"dateTime": "2027-01-13T13:00:00Z"},
        },
    )
    new = await gworld.book("2027-01-15T09:00:00Z", "2027-01-15T10:00:00Z")
    peer.fail_next("quotaExceeded", methods={"POST"})

    outcome = await gworld.sync()
    assert "paused" in (outcome.error or "") and outcome.retry_after is not None
    assert outcome.rescheduled == 1  # the move in Google was applied
    got = await gworld.appointment(moved["id"])
    assert (got["start"], got["end"]) == ("2027-01-14T15:00:00Z", "2027-01-14T16:00:00Z")
    busy = await gworld.api.get(
        f"/v1/users/{gworld.user['id']}/busy",
        params={"from": "2027-01-13T00:00:00Z", "to": "2027-01-14T00:00:00Z"},
    )
    assert busy.json()["busy"] == [{"start": "2027-01-13T12:00:00Z", "end": "2027-01-13T13:00:00Z"}]
    status = await gworld.integration()
    assert status["status"] == "active"
    assert "writes to this calendar are paused until" in status["last_error"]
    async with gworld.store.transaction() as session:
        row = await session.get(Integration, gworld.integration_id)
        assert row is not None and row.dirty  # the push is pending
        mapped = set(await session.scalars(select(SyncMapping.appointment_id)))
    assert mapped == {moved["id"]}

    await asyncio.sleep(1.3)
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    assert google.event_id(appointment_uid(new["id"])) in {
        e["id"] for e in peer.live_events(CALENDAR)
    }
    assert (await gworld.integration())["last_error"] is None
