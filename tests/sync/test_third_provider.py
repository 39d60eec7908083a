"""A provider gets the whole lifecycle (consent → sync → watch → purge) by declaring its
capabilities: the consent test provider (tests/peers/consent_memory.py) is loaded through
``sync.connectors`` and nothing in the engine names it.

Also: the engine (gateway/sync, gateway/privacy) names no provider at all.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from gateway.privacy.receipts import count_rows
from gateway.store.lifecycle_models import OAuthConsent, WatchChannel
from gateway.store.sync_models import Integration
from gateway.sync import watch
from tests.peers import consent_memory
from tests.sync.conftest import World

REPO = Path(__file__).resolve().parents[2]
ENGINE = ("gateway/sync", "gateway/privacy")
PROVIDER_NAMES = re.compile(r"google|caldav|outlook|microsoft|graph", re.IGNORECASE)


def _engine_files() -> list[Path]:
    return sorted(p for folder in ENGINE for p in (REPO / folder).rglob("*.py"))


def test_the_engine_names_no_provider() -> None:
    files = _engine_files()
    assert len(files) > 5, "the engine's files were found"
    named = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if PROVIDER_NAMES.search(line)
    ]
    assert named == []


def test_no_engine_file_names_the_third_provider() -> None:
    gateway = sorted((REPO / "gateway").rglob("*.py"))
    named = [
        str(p.relative_to(REPO))
        for p in gateway
        if consent_memory.NAME in p.read_text() or "consent_memory" in p.read_text()
    ]
    assert named == []


async def _connect(world: World, peer: consent_memory.ConsentPeer) -> dict[str, object]:
    created = await world.connect(provider=consent_memory.NAME)
    assert created["status"] == "pending" and created["consent_url"]
    code, state = peer.consent(str(created["consent_url"]))
    page = await world.api.http.get(
        f"/oauth/{consent_memory.NAME}/callback", params={"code": code, "state": state}
    )
    assert page.status_code == 200, page.text
    assert "Memory calendar is connected" in page.text
    # The state was spent: the same link connects nothing twice.
    again = await world.api.http.get(
        f"/oauth/{consent_memory.NAME}/callback", params={"code": code, "state": state}
    )
    assert again.status_code == 200  # a reload of the landing page: nothing done again
    assert "already connected" in again.text
    return await world.integration()


async def test_consent_sync_watch_and_purge_by_capabilities_only(world: World) -> None:
    peer = consent_memory.running()
    integration = await _connect(world, peer)
    assert integration["status"] == "active"
    # The account's own calendar is written to, though a shared one is listed first.
    assert integration["write_calendar"] == "My calendar"
    async with world.store.transaction() as session:
        consent = await session.scalar(select(OAuthConsent))
        assert consent is not None and consent.provider == consent_memory.NAME

    # Sync: the appointment goes to the account's own calendar.
    await world.book("2027-03-02T09:00:00Z", "2027-03-02T10:00:00Z")
    assert (await world.sync()).pushed == 1
    assert len(peer.server.calendars[peer.own_calendar]) == 1
    assert peer.server.calendars["team@memory.test"] == {}

    # Watch: a channel per synced calendar, at the provider's own webhook address.
    assert await watch.tick(world.store, world.settings) == 1
    ((channel_id, (calendar, address, token)),) = peer.channels.items()
    assert calendar == peer.own_calendar
    assert address == world.settings.public_url + f"/webhooks/{consent_memory.NAME}"
    hook = f"/webhooks/{consent_memory.NAME}"
    good = {"X-Memory-Channel": channel_id, "X-Memory-Token": token, "X-Memory-Changed": "yes"}
    forged = {**good, "X-Memory-Token": "forged"}
    unknown = {**good, "X-Memory-Channel": "nope"}
    assert (await world.api.http.post(hook, headers=forged)).status_code == 403
    assert (await world.api.http.post(hook, headers=unknown)).status_code == 404
    assert not await _dirty(world)
    assert (await world.api.http.post(hook, headers=good)).status_code == 200
    assert await _dirty(world)

    # Purge: channel stopped, grant revoked, our event removed, nothing left but the receipt.
    grant = peer.grant()
    response = await world.api.delete(f"/v1/integrations/{world.integration_id}")
    assert response.status_code == 202, response.text
    await world.purge()  # the durable purge job, as the daemon's job tick runs it
    assert peer.stopped == [channel_id]
    assert peer.revoked == [grant]
    assert peer.server.calendars[peer.own_calendar] == {}
    async with world.store.transaction() as session:
        left = await count_rows(session, world.integration_id)
        channels = list(await session.scalars(select(WatchChannel)))
    assert set(left.values()) == {0}, left
    assert channels == []


async def _dirty(world: World) -> bool:
    async with world.store.transaction() as session:
        row = await session.get(Integration, world.integration_id)
        assert row is not None
        return row.dirty
