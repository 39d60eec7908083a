"""The purge job (gateway/privacy/purge.py) on the memory provider: once accepted, no sync runs
and no change is taken; it waits for a sync in flight; it deletes each of our events once, a
page at a time, and keeps the provider's other events."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connectors.memory import MemoryServer
from gateway.domain import appointments
from gateway.privacy import purge, remote
from gateway.store.models import Account
from gateway.store.sync_models import Integration, PurgeReceipt
from gateway.store.types import utcnow
from tests.sync.conftest import World
from tests.sync.test_engine_memory import END, START, connected


async def test_an_accepted_purge_stops_the_sync_and_refuses_changes(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    assert (await world.sync()).pushed == 1

    response = await world.api.delete(f"/v1/integrations/{world.integration_id}")
    assert response.status_code == 202, response.text
    pending = response.json()
    assert pending["state"] == "pending" and pending["counts"] == {}
    assert (await world.integration())["status"] == "purging"
    # A new booking is not pushed: the integration is no longer synced.
    await world.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    outcome = await world.sync()
    assert outcome.status == "purging" and outcome.pushed == 0
    assert len(server.calendars["work"]) == 1
    resume = await world.api.patch(f"/v1/integrations/{world.integration_id}", {"resume": True})
    assert resume.status_code == 409, resume.text
    again = await world.api.delete(f"/v1/integrations/{world.integration_id}")
    assert again.status_code == 202 and again.json() == pending
    receipt = await world.api.get(f"/v1/integrations/{world.integration_id}/purge-receipt")
    assert receipt.json() == pending

    await world.purge()
    assert server.calendars["work"] == {}
    done = (await world.api.get(f"/v1/integrations/{world.integration_id}/purge-receipt")).json()
    assert done["state"] == "done" and done["counts"]["remote_events_deleted"] == 1
    assert (await world.api.delete(f"/v1/integrations/{world.integration_id}")).status_code == 404


async def test_the_purge_waits_for_a_sync_in_flight(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    await world.sync()
    async with world.store.transaction() as session:
        row = await session.get(Integration, world.integration_id)
        assert row is not None
        row.lease_owner = "another-process:sync"  # a sync run claimed it and is running
        row.lease_expires_at = utcnow() + timedelta(seconds=30)
    assert (await world.api.delete(f"/v1/integrations/{world.integration_id}")).status_code == 202
    payload = {"integration_id": world.integration_id}

    later = await purge.run(world.store, world.settings, payload)
    assert later is not None and later > utcnow()
    assert len(server.calendars["work"]) == 1  # nothing touched while the sync runs
    async with world.store.transaction() as session:
        row = await session.get(Integration, world.integration_id)
        assert row is not None
        row.lease_owner = row.lease_expires_at = None  # the sync run ended
    assert await purge.run(world.store, world.settings, payload) is None
    assert server.calendars["work"] == {}


async def test_each_event_is_deleted_once_page_by_page_and_foreign_ones_stay(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    n = remote.PAGE_SIZE + 20
    async with world.store.transaction() as session:
        account = await session.scalar(select(Account))
        assert account is not None
        for i in range(n):
            start = utcnow() + timedelta(days=1, hours=i)
            await appointments.create_appointment(
                session,
                account,
                {
                    "user_id": world.user["id"],
                    "client_id": world.person["id"],
                    "start_at": start,
                    "end_at": start + timedelta(minutes=30),
                    "title": "Consultation",
                },
            )
    assert (await world.sync()).pushed == n
    foreign = len(server.calendars["work"])
    server.calendars["work"]["foreign.ics"] = next(iter(server.calendars["work"].values()))
    writes = server.writes

    assert (await world.api.delete(f"/v1/integrations/{world.integration_id}")).status_code == 202
    await world.purge()
    assert list(server.calendars["work"]) == ["foreign.ics"]
    assert server.writes - writes == n == foreign  # one delete per event, none twice
    async with world.store.transaction() as session:
        receipt = await session.get(PurgeReceipt, world.integration_id)
    assert receipt is not None and receipt.state == "done"
    assert receipt.counts["remote_events_deleted"] == n and receipt.counts["mappings"] == n


async def test_deleting_a_user_whose_disconnect_is_pending_deletes_them_at_the_end(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    await world.sync()
    assert (await world.api.delete(f"/v1/integrations/{world.integration_id}")).status_code == 202
    response = await world.api.delete(f"/v1/users/{world.user['id']}")
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["user_id"], body["state"]) == (world.user["id"], "pending")
    assert body["integration_ids"] == [world.integration_id]
    assert (await world.api.get(f"/v1/users/{world.user['id']}")).status_code == 200
    await world.purge()
    assert (await world.api.get(f"/v1/users/{world.user['id']}")).status_code == 404
    assert server.calendars["work"] == {}
