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
