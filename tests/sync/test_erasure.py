"""Erasing a client: gone here at once, and our copies of their appointments removed from every
connected calendar by the durable erasure job; other clients' events and the practitioner's own
stay; the receipt is readable afterwards; a raw scan finds none of the client's strings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from connectors.base import Event
from connectors.memory import MemoryServer, serve
from gateway.domain.uids import appointment_uid
from gateway.privacy import erasure
from gateway.worker import drain
from tests.support import raw_scan
from tests.sync.conftest import World
from tests.sync.test_engine_memory import END, START, T0, connected

SECRETS = ("Zyxwv Erasable", "zyxwv.erasable@example.org", "+442079460123", "Qwxzv title")


def _uids(server: MemoryServer) -> set[str]:
    return {o.uid for o in server.calendars["work"].values()}


async def test_erasing_a_client_reaches_every_connected_calendar(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    first = await connected(world, memory)
    # A second practitioner with a calendar of their own.
    second = MemoryServer(password="pw")
    second.add_calendar("work", "Work")
    serve("memory://erasure-second", second)
    other_user = await world.api.user(name="Dr Two", timezone="Europe/Paris")
    body = await world.api.created(
        "/v1/integrations",
        {
            "user_id": other_user["id"],
            "provider": "memory",
            "server_url": "memory://erasure-second",
            "username": "u",
            "password": "pw",
            "write_calendar": "Work",
        },
    )
    name, email, phone, title = SECRETS
    person = await world.api.client(name=name, email=email, phone=phone)
    ours: list[dict[str, Any]] = []
    for user in (world.user, other_user):
        response = await world.api.post(
            "/v1/appointments",
            {
                "user_id": user["id"],
                "client_id": person["id"],
                "start": START,
                "end": END,
                "title": title,
                "notes": f"{title} notes",
            },
            headers={"Idempotency-Key": f"booking-{user['id']}"},
        )
        assert response.status_code == 201, response.text
        ours.append(response.json())
    kept = await world.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")  # another client
    first.put("work", "own.ics", Event("own@elsewhere", T0, T0 + timedelta(hours=1), title="Lunch"))
    assert (await world.sync()).error is None
    world.integration_id = body["id"]
    assert (await world.sync()).error is None
    assert appointment_uid(ours[0]["id"]) in _uids(first)
    assert appointment_uid(ours[1]["id"]) in _uids(second)
    assert raw_scan(world.settings.data_dir, *SECRETS), (
        "the scan must be able to find what it looks for"
    )

    response = await world.api.delete(f"/v1/clients/{person['id']}")
    assert response.status_code == 202, response.text
    receipt = response.json()
    assert receipt["state"] == "pending" and receipt["client_id"] == person["id"]
    assert receipt["counts"]["appointments"] == 2 and receipt["counts"]["remote_copies"] == 2
    assert receipt["counts"]["idempotency_records"] == 2
    # Gone here at once.
    assert (await world.api.get(f"/v1/clients/{person['id']}")).status_code == 404
    for apt in ours:
        assert (await world.api.get(f"/v1/appointments/{apt['id']}")).status_code == 404

    await drain(world.store, world.settings, (erasure.JOB_KIND,))
    done = await world.api.get(f"/v1/clients/{person['id']}/erasure")
    assert done.status_code == 200, done.text
    receipt = done.json()
    assert receipt["state"] == "done" and receipt["remote_left"] is None
    assert receipt["counts"]["remote_events_deleted"] == 2
    assert _uids(first) == {appointment_uid(kept["id"]), "own@elsewhere"}
    assert _uids(second) == set()
    assert raw_scan(world.settings.data_dir, *SECRETS) == []
    # The calendars' next syncs put nothing back.
    assert (await world.sync()).pushed == 0
    assert _uids(second) == set()


async def test_a_disconnect_first_removes_the_copies_an_erasure_waits_for(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    assert (await world.api.delete(f"/v1/clients/{world.person['id']}")).status_code == 202
    # Disconnected (keeping our events there) before the erasure job ran.
    response = await world.api.delete(
        f"/v1/integrations/{world.integration_id}", params={"remove_events": "false"}
    )
    assert response.status_code == 202
    await world.purge()
    assert appointment_uid(apt["id"]) not in _uids(server)  # the erasure asked for it
    await drain(world.store, world.settings, (erasure.JOB_KIND,))
    receipt = (await world.api.get(f"/v1/clients/{world.person['id']}/erasure")).json()
    assert receipt["state"] == "done" and receipt["counts"]["remote_events_deleted"] == 1
