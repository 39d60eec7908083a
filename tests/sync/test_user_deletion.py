"""Deleting a practitioner purges their integrations through the one disconnect path: our events
removed from the calendar, a receipt kept, and what a failed remote step left said in words."""

from __future__ import annotations

from sqlalchemy import select

from connectors.base import Transient
from connectors.memory import MemoryServer, serve
from gateway.privacy.receipts import count_rows
from gateway.store.sync_models import SyncMapping
from tests.support import new_account
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


async def test_deleting_a_user_gives_one_receipt_for_everything(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    first = await connected(world, memory)
    first_id = world.integration_id
    second = MemoryServer(password="pw")
    second.add_calendar("work", "Work")
    serve("memory://user-erasure-second", second)
    await world.connect(
        provider="memory",
        server_url="memory://user-erasure-second",
        username="u",
        password="pw",
        write_calendar="Work",
    )
    await world.book(START, END)
    await world.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await world.api.created("/v1/feeds", {"scope": "user", "user_id": world.user["id"]})
    for integration_id in (first_id, world.integration_id):
        world.integration_id = integration_id
        assert (await world.sync()).pushed == 2

    response = await world.api.delete(f"/v1/users/{world.user['id']}")
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["state"] == "pending" and accepted["counts"] == {"integrations": 2}
    assert sorted(accepted["integration_ids"]) == sorted([first_id, world.integration_id])
    await world.purge()
    assert first.calendars["work"] == {} and second.calendars["work"] == {}

    later = await world.api.get(f"/v1/users/{world.user['id']}/erasure")
    assert later.status_code == 200, later.text
    receipt = later.json()
    assert receipt["id"] == accepted["id"] and receipt["state"] == "done"
    counts = receipt["counts"]
    assert counts["integrations"] == 2 and counts["credentials"] == 2
    assert counts["remote_events_deleted"] == 4 and counts["remote_events_not_deleted"] == 0
    assert counts["appointments"] == 2 and counts["feeds"] == 1
    assert receipt["remote_left"] is None and receipt["done_at"] is not None
    assert (await world.api.get(f"/v1/users/{world.user['id']}")).status_code == 404
    other = await new_account(world.store, world.api.http, name="Other")
    assert (await other.get(f"/v1/users/{world.user['id']}/erasure")).status_code == 404


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
