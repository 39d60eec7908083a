"""Deleting a practitioner purges their integrations through the one disconnect path: our events
removed from the calendar, a receipt kept, and what a failed remote step left said in words."""

from __future__ import annotations

from sqlalchemy import select

from connectors.base import Transient
from connectors.memory import MemoryServer
from gateway.privacy.receipts import count_rows
from gateway.store.sync_models import SyncMapping
from tests.sync.conftest import World
from tests.sync.test_engine_memory import END, START, connected


def _scan(world: World, needle: str) -> list[str]:
    files = world.settings.data_dir.glob("calgate.db*")
    return [p.name for p in files if needle.encode() in p.read_bytes()]


async def _delete_user(world: World) -> dict[str, object]:
    response = await world.api.delete(f"/v1/users/{world.user['id']}")
    assert response.status_code == 202, response.text
    assert response.json()["integration_ids"] == [world.integration_id]
    await world.purge()
    assert (await world.api.get(f"/v1/users/{world.user['id']}")).status_code == 404
    receipt = await world.api.get(f"/v1/integrations/{world.integration_id}/purge-receipt")
    assert receipt.status_code == 200, receipt.text
    body: dict[str, object] = receipt.json()
    async with world.store.transaction() as session:
        left = await count_rows(session, world.integration_id)
    assert set(left.values()) == {0}, left
    return body


async def test_deleting_a_user_removes_our_events_and_keeps_a_receipt(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    assert (await world.sync()).pushed == 1
    assert len(server.calendars["work"]) == 1
    async with world.store.transaction() as session:
        href = await session.scalar(select(SyncMapping.href))
    assert href and _scan(world, href), "the scan must be able to find what it looks for"

    receipt = await _delete_user(world)
    assert _scan(world, href) == []  # not in the database file nor in its WAL
    assert server.calendars["work"] == {}
    assert receipt["user_id"] == world.user["id"] and receipt["remote_removed"] is True
    counts = receipt["counts"]
    assert isinstance(counts, dict)
    assert counts["remote_events_deleted"] == 1 and counts["remote_events_not_deleted"] == 0
    assert counts["mappings"] == 1 and counts["credentials"] == 1
    assert receipt["remote_left"] is None


async def test_a_transient_remote_failure_still_purges_and_says_what_is_left(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    await world.sync()
    server.fail_next.append(Transient("server away", retry_after=30))

    receipt = await _delete_user(world)
    assert len(server.calendars["work"]) == 1  # could not be removed
    counts = receipt["counts"]
    assert isinstance(counts, dict) and counts["remote_events_not_deleted"] == 1
    words = receipt["remote_left"]
    assert isinstance(words, str)
    assert "1 event added by calgate could not be removed" in words


async def test_deleting_a_client_leaves_integrations_alone(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    await connected(world, memory)
    response = await world.api.delete(f"/v1/clients/{world.person['id']}")
    assert response.status_code == 202, response.text
    assert (await world.integration())["status"] == "active"
