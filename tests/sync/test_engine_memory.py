"""The engine end to end against the in-memory provider: the rules, fast and exhaustive.

The same scenarios run against a real CalDAV server in test_caldav_sync.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from connectors.base import Event, Transient
from connectors.memory import MemoryServer
from gateway.domain.uids import appointment_uid
from gateway.store.notify_models import OutboxMessage
from tests.sync.conftest import World

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"
T0 = datetime(2027, 1, 12, 9, tzinfo=UTC)


async def connected(world: World, memory: tuple[str, MemoryServer]) -> MemoryServer:
    url, server = memory
    body = await world.connect(
        provider="memory", server_url=url, username="u", password="pw", write_calendar="Work"
    )
    assert body["status"] == "active"
    return server


def ours(server: MemoryServer) -> dict[str, Event]:
    return {o.uid: o.events[0] for o in server.calendars["work"].values()}


async def test_push_create_reschedule_cancel(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    outcome = await world.sync()
    assert outcome.error is None and outcome.pushed == 1
    event = ours(server)[appointment_uid(apt["id"])]
    assert event.start == T0 and event.title == "Consultation"
    assert event.timezone == "Europe/Paris"

    await world.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T11:00:00Z", "end": "2027-01-12T12:00:00Z"},
    )
    await world.sync()
    assert ours(server)[appointment_uid(apt["id"])].start == T0 + timedelta(hours=2)

    await world.api.post(f"/v1/appointments/{apt['id']}/cancel")
    await world.sync()
    assert ours(server) == {}
    status = await world.integration()
    assert status["counts"]["mappings"] == 0 and status["last_error"] is None


async def test_echo_produces_no_write(world: World, memory) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    await world.sync()
    writes = server.writes
    await world.sync()
    await world.sync()
    assert server.writes == writes


async def test_move_in_the_calendar_reschedules(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    href = next(iter(server.calendars["work"]))
    moved = replace(
        ours(server)[appointment_uid(apt["id"])],
        start=T0 + timedelta(days=1),
        end=T0 + timedelta(days=1, hours=1),
    )
    server.put("work", href, moved)
    outcome = await world.sync()
    assert outcome.rescheduled == 1
    got = await world.appointment(apt["id"])
    assert got["start"] == "2027-01-13T09:00:00Z" and got["version"] == 2
    # Same code path as the API: the notification planner replanned (rows of version 2).
    async with world.store.transaction() as session:
        kinds = set(
            await session.scalars(
                select(OutboxMessage.kind).where(
                    OutboxMessage.appointment_id == apt["id"], OutboxMessage.version == 2
                )
            )
        )
    assert "reminder" in kinds, kinds  # reminders replanned for the new time
    writes = server.writes
    await world.sync()  # the reschedule is not echoed back
    assert server.writes == writes


async def test_text_edit_in_the_calendar_is_ignored(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    href = next(iter(server.calendars["work"]))
    server.put("work", href, replace(ours(server)[appointment_uid(apt["id"])], title="Renamed"))
    outcome = await world.sync()
    assert outcome.rescheduled == 0
    assert (await world.appointment(apt["id"]))["title"] == "Consultation"


async def test_delete_in_the_calendar_cancels(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    server.remove("work", next(iter(server.calendars["work"])))
    outcome = await world.sync()
    assert outcome.cancelled == 1
    assert (await world.appointment(apt["id"]))["status"] == "cancelled"


async def test_conflict_calgate_wins_and_is_recorded(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    href = next(iter(server.calendars["work"]))
    theirs = ours(server)[appointment_uid(apt["id"])]
    server.put(
        "work", href, replace(theirs, start=T0 + timedelta(hours=5), end=T0 + timedelta(hours=6))
    )
    await world.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T13:00:00Z", "end": "2027-01-12T14:00:00Z"},
    )
    outcome = await world.sync()
    assert outcome.conflicts == 1
    assert ours(server)[appointment_uid(apt["id"])].start == T0 + timedelta(hours=4)
    assert (await world.appointment(apt["id"]))["start"] == "2027-01-12T13:00:00Z"
    assert "conflict" in await world.log_kinds()
    response = await world.api.get(f"/v1/integrations/{world.integration_id}/log")
    (entry,) = [e for e in response.json()["data"] if e["kind"] == "conflict"]
    assert entry["appointment_id"] == apt["id"]
    assert "calgate version was kept" in entry["detail"]


async def test_412_rereads_and_reconciles(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    await world.sync()
    href = next(iter(server.calendars["work"]))
    uid = appointment_uid(apt["id"])
    # Between our listing and our write, someone edits the text: our If-Match fails once.
    server.after_list.append(
        lambda: server.put("work", href, replace(ours(server)[uid], title="x"))
    )
    await world.api.patch(f"/v1/appointments/{apt['id']}", {"title": "Follow-up"})
    outcome = await world.sync()
    assert outcome.error is None
    assert ours(server)[uid].title == "Follow-up"


async def test_empty_calendar_guard(world: World, memory) -> None:
    server = await connected(world, memory)
    ids = [
        (await world.book(f"2027-01-1{d}T09:00:00Z", f"2027-01-1{d}T10:00:00Z"))["id"]
        for d in range(3, 7)
    ]
    await world.sync()
    for href in list(server.calendars["work"]):
        server.remove("work", href)
    outcome = await world.sync()
    assert outcome.status == "paused"
    status = await world.integration()
    assert status["status"] == "paused"
    assert "of our 4 events" in status["last_error"]
    for apt_id in ids:
        assert (await world.appointment(apt_id))["status"] == "confirmed"


async def test_expired_cursor_full_resync_without_duplicates(world: World, memory) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    await world.sync()
    server.expire_cursors()
    server.put(
        "work",
        "other.ics",
        Event("dentist@elsewhere", T0 + timedelta(days=2), T0 + timedelta(days=2, hours=1)),
    )
    outcome = await world.sync()
    assert outcome.error is None and outcome.full_listings == 1
    assert len(server.calendars["work"]) == 2
    assert "cursor_expired" in await world.log_kinds()


async def test_retried_create_after_lost_answer_gives_one_event(world: World, memory) -> None:
    server = await connected(world, memory)
    apt = await world.book(START, END)
    # The first create reached the server but its answer was lost (a timeout).
    from gateway.sync.plan import AppointmentSnap, render

    snap = AppointmentSnap(
        apt["id"], T0, T0 + timedelta(hours=1), "Europe/Paris", "Consultation", None, False
    )
    server.put("work", f"{appointment_uid(apt['id'])}.ics", render(snap))
    server.fail_next.append(Transient("timeout"))
    first = await world.sync()
    assert first.error is not None
    second = await world.sync()
    assert second.error is None
    assert len(server.calendars["work"]) == 1
    assert (await world.integration())["counts"]["mappings"] == 1


async def test_transient_error_then_recovery(world: World, memory) -> None:
    server = await connected(world, memory)
    await world.book(START, END)
    server.fail_next.append(Transient("busy", retry_after=30))
    outcome = await world.sync()
    assert outcome.retry_after == 30
    status = await world.integration()
    assert status["status"] == "active" and status["last_error"]
    assert (await world.sync()).error is None
    assert (await world.integration())["last_error"] is None


async def test_wrong_password_says_so(world: World, memory) -> None:
    url, _server = memory
    body = await world.connect(provider="memory", server_url=url, username="u", password="nope")
    assert body["status"] == "reconnect_needed"
    assert "refused" in body["last_error"]
    fixed = await world.api.patch(
        f"/v1/integrations/{body['id']}", {"password": "pw", "write_calendar": "Work"}
    )
    assert fixed.json()["status"] == "active"


async def test_other_accounts_see_nothing(world: World, memory) -> None:
    from tests.support import new_account

    await connected(world, memory)
    other = await new_account(world.store, world.api.http, name="Other Clinic")
    base = f"/v1/integrations/{world.integration_id}"
    assert (await other.get(base)).status_code == 404
    assert (await other.get(f"{base}/log")).status_code == 404
    assert (await other.delete(base)).status_code == 404
    assert (await other.get(f"{base}/purge-receipt")).status_code == 404
    busy = await other.get(
        f"/v1/users/{world.user['id']}/busy",
        params={"from": "2027-01-01T00:00:00Z", "to": "2027-02-01T00:00:00Z"},
    )
    assert busy.status_code == 404
    assert (await world.api.get(base)).status_code == 200
