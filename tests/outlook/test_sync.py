"""The sync engine with the Outlook connector through the Graph stand-in: the scenarios the
CalDAV and Google suites run that this connector covers so far (see /work/notes/outlook.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from connectors import outlook
from gateway.domain.uids import appointment_uid
from gateway.store.models import Job
from gateway.store.notify_models import OutboxMessage
from tests.outlook.conftest import OutlookWorld
from tests.peers.graph import GraphPeer

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"


def peer_of(oworld: OutlookWorld) -> GraphPeer:
    assert oworld.peer is not None
    return oworld.peer


def writes(peer: GraphPeer) -> list[str]:
    return [f"{m} {p}" for m, p, _ in peer.calls if m in ("POST", "PATCH", "DELETE")]


def ours(oworld: OutlookWorld) -> dict[str, dict[str, Any]]:
    """Our events in the Outlook calendar, by our UID (the extended property)."""
    peer = peer_of(oworld)
    found = {}
    for event in peer.calendars[oworld.calendar].events.values():
        if event.get("_deleted"):
            continue
        for prop in event.get("singleValueExtendedProperties", []):
            if prop["id"] == outlook.UID_PROPERTY:
                found[prop["value"]] = event
    return found


async def test_push_create_reschedule_cancel(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    apt = await oworld.book(START, END)
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    uid = appointment_uid(apt["id"])
    event = ours(oworld)[uid]
    assert event["subject"] == "Consultation"
    assert event["originalStartTimeZone"] == "Romance Standard Time"  # Paris, as Graph names it
    assert event["start"]["dateTime"].startswith("2027-01-12T09:00:00")  # UTC
    assert event["transactionId"]
    etag = event["@odata.etag"]

    await oworld.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T11:00:00Z", "end": "2027-01-12T12:00:00Z"},
    )
    assert (await oworld.sync()).pushed == 1
    assert ours(oworld)[uid]["start"]["dateTime"].startswith("2027-01-12T11:00:00")
    (patch,) = [h for m, _, h in peer.calls if m == "PATCH"]
    assert patch["if-match"] == etag

    await oworld.api.post(f"/v1/appointments/{apt['id']}/cancel")
    await oworld.sync()
    assert ours(oworld) == {}
    (delete,) = [h for m, _, h in peer.calls if m == "DELETE"]
    assert delete["if-match"]
    status = await oworld.integration()
    assert status["counts"]["mappings"] == 0 and status["last_error"] is None


async def test_echo_produces_no_write(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    await oworld.sync()
    before = writes(peer)
    await oworld.sync()
    await oworld.sync()
    assert writes(peer) == before


async def test_move_and_delete_in_outlook_flow_back(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    moved = await oworld.book(START, END)
    deleted = await oworld.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await oworld.sync()
    mine = ours(oworld)
    peer.patch_event(
        oworld.calendar,
        mine[appointment_uid(moved["id"])]["id"],
        {
            "start": {"dateTime": "2027-01-14T15:00:00", "timeZone": "Romance Standard Time"},
            "end": {"dateTime": "2027-01-14T16:30:00", "timeZone": "Romance Standard Time"},
        },
    )
    peer.delete_event(oworld.calendar, mine[appointment_uid(deleted["id"])]["id"])
    before = writes(peer)
    outcome = await oworld.sync()
    assert outcome.error is None
    assert outcome.rescheduled == 1 and outcome.cancelled == 1
    got = await oworld.appointment(moved["id"])
    assert (got["start"], got["end"]) == ("2027-01-14T14:00:00Z", "2027-01-14T15:30:00Z")
    assert (await oworld.appointment(deleted["id"]))["status"] == "cancelled"
    # The same path as the API: reminders replanned for the new time (version 2).
    async with oworld.store.transaction() as session:
        kinds = set(
            await session.scalars(
                select(OutboxMessage.kind).where(
                    OutboxMessage.appointment_id == moved["id"],
                    OutboxMessage.version == got["version"],
                )
            )
        )
        planned = list(
            await session.scalars(
                select(OutboxMessage.planned_at).where(
                    OutboxMessage.appointment_id == moved["id"],
                    OutboxMessage.kind == "reminder",
                    OutboxMessage.version == got["version"],
                )
            )
        )
    assert got["version"] == 2 and "reminder" in kinds, kinds
    old, new = datetime(2027, 1, 12, 9, tzinfo=UTC), datetime(2027, 1, 14, 14, tzinfo=UTC)
    assert planned and all(old < p.replace(tzinfo=UTC) < new for p in planned), planned
    assert writes(peer) == before  # nothing echoed back
    await oworld.sync()
    assert writes(peer) == before


async def test_both_sides_changed_calgate_wins(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    apt = await oworld.book(START, END)
    await oworld.sync()
    uid = appointment_uid(apt["id"])
    peer.patch_event(
        oworld.calendar,
        ours(oworld)[uid]["id"],
        {
            "start": {"dateTime": "2027-01-20T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-20T10:00:00", "timeZone": "UTC"},
        },
    )
    await oworld.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T15:00:00Z", "end": "2027-01-12T16:00:00Z"},
    )
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.conflicts == 1
    assert ours(oworld)[uid]["start"]["dateTime"].startswith("2027-01-12T15:00:00")


async def test_412_changed_between_read_and_write_is_reread_and_reconciled(
    oworld: OutlookWorld,
) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    apt = await oworld.book(START, END)
    await oworld.sync()
    uid = appointment_uid(apt["id"])
    event_id = ours(oworld)[uid]["id"]
    await oworld.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T15:00:00Z", "end": "2027-01-12T16:00:00Z"},
    )
    # The person moves it in Outlook after our delta read, before our PATCH lands.
    peer.edit_after_read = (
        oworld.calendar,
        event_id,
        {
            "start": {"dateTime": "2027-01-20T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-20T10:00:00", "timeZone": "UTC"},
        },
    )
    before = len(peer.calls)
    outcome = await oworld.sync()
    assert outcome.error is None, outcome.error
    patches = [(p, h["if-match"]) for m, p, h in peer.calls[before:] if m == "PATCH"]
    rereads = [p for m, p, _ in peer.calls[before:] if m == "GET" and p.endswith(event_id)]
    assert len(patches) == 2 and patches[0][1] != patches[1][1]  # 412, re-read, then written
    assert rereads  # the event read again after the 412
    # Reconciled as any conflict: calgate's time wins, the person's edit is logged, one event.
    assert outcome.conflicts == 1
    (event,) = ours(oworld).values()
    assert event["id"] == event_id
    assert event["start"]["dateTime"].startswith("2027-01-12T15:00:00")
    got = await oworld.appointment(apt["id"])
    assert (got["start"], got["end"]) == ("2027-01-12T15:00:00Z", "2027-01-12T16:00:00Z")
    assert "conflict" in await oworld.log_kinds()
    before = writes(peer)
    await oworld.sync()
    assert writes(peer) == before  # settled: no echo


async def test_410_resyncs_without_duplicates(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    for day in range(12, 17):  # more than one delta page (the stand-in pages by 3)
        await oworld.book(f"2027-01-{day}T09:00:00Z", f"2027-01-{day}T10:00:00Z")
    assert (await oworld.sync()).pushed == 5
    peer.put_event(
        oworld.calendar,
        outlook.to_body(_foreign()) | {"singleValueExtendedProperties": []},
    )
    peer.invalidate_delta()
    before = writes(peer)
    outcome = await oworld.sync()
    assert outcome.error is None, outcome.error
    assert outcome.full_listings >= 1  # the 410 made the engine list in full
    assert writes(peer) == before
    assert len(ours(oworld)) == 5
    assert len(peer.live_events(oworld.calendar)) == 6


async def test_lost_create_answer_leaves_one_event(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    peer.drop_next_answer = True  # Graph creates the event; the answer never arrives
    first = await oworld.sync()
    assert first.error is not None
    assert len(peer.live_events(oworld.calendar)) == 1
    again = await oworld.sync()
    assert again.error is None, again.error
    assert len(peer.live_events(oworld.calendar)) == 1  # adopted, not created twice
    assert (await oworld.integration())["counts"]["mappings"] == 1


@pytest.mark.parametrize("answer", ["429", "503"])
async def test_throttling_waits_for_retry_after(oworld: OutlookWorld, answer: str) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    peer.fail_next(answer, 2)
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    assert len(ours(oworld)) == 1


def _foreign() -> Any:
    from datetime import UTC, datetime

    from connectors.base import Event

    start = datetime(2027, 1, 12, 13, tzinfo=UTC)
    return Event(uid="dentist@elsewhere", start=start, end=start.replace(hour=14), title="Dentist")


async def test_busy_from_windows_zones_all_day_and_free(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    paris = "Romance Standard Time"  # what Outlook clients write; IANA Europe/Paris
    for day in ("2027-03-15", "2027-04-05"):  # either side of the DST change of 2027-03-28
        peer.put_event(
            oworld.calendar,
            {
                "subject": "Private",
                "start": {"dateTime": f"{day}T10:00:00", "timeZone": paris},
                "end": {"dateTime": f"{day}T11:00:00", "timeZone": paris},
            },
        )
    peer.put_event(
        oworld.calendar,
        {
            "subject": "Holiday",
            "isAllDay": True,
            "start": {"dateTime": "2027-03-28T00:00:00", "timeZone": paris},
            "end": {"dateTime": "2027-03-29T00:00:00", "timeZone": paris},
        },
    )
    peer.put_event(
        oworld.calendar,
        {
            "subject": "Maybe",
            "showAs": "free",
            "start": {"dateTime": "2027-03-16T12:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-03-16T13:00:00", "timeZone": "UTC"},
        },
    )
    assert (await oworld.sync()).error is None
    response = await oworld.api.get(
        f"/v1/users/{oworld.user['id']}/busy",
        params={"from": "2027-03-14T00:00:00Z", "to": "2027-04-10T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    busy = [(i["start"], i["end"]) for i in response.json()["busy"]]
    assert busy == [
        ("2027-03-15T09:00:00Z", "2027-03-15T10:00:00Z"),  # CET
        ("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z"),  # all-day in Paris: 23 hours (DST)
        ("2027-04-05T08:00:00Z", "2027-04-05T09:00:00Z"),  # CEST
    ]


async def test_disconnect_deletes_our_events_and_leaves_theirs(oworld: OutlookWorld) -> None:
    from gateway.privacy.receipts import count_rows

    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    await oworld.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    peer.put_event(
        oworld.calendar, outlook.to_body(_foreign()) | {"singleValueExtendedProperties": []}
    )
    assert (await oworld.sync()).pushed == 2
    assert len(ours(oworld)) == 2
    response = await oworld.api.delete(f"/v1/integrations/{oworld.integration_id}")
    assert response.status_code == 202, response.text
    await oworld.purge()  # the durable purge job, as the daemon's job tick runs it
    assert ours(oworld) == {}
    assert [e["subject"] for e in peer.live_events(oworld.calendar)] == ["Dentist"]
    async with oworld.store.transaction() as session:
        left = await count_rows(session, oworld.integration_id)
    assert set(left.values()) == {0}, left


async def test_empty_calendar_guard(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    for day in range(12, 16):
        await oworld.book(f"2027-01-{day}T09:00:00Z", f"2027-01-{day}T10:00:00Z")
    await oworld.sync()
    for event in peer.live_events(oworld.calendar):
        peer.delete_event(oworld.calendar, event["id"])
    peer.invalidate_delta()  # and Graph asks for a full listing, which is empty
    outcome = await oworld.sync()
    assert outcome.status == "paused"
    status = await oworld.integration()
    assert status["status"] == "paused" and status["counts"]["mappings"] == 4


def _scan(oworld: OutlookWorld, *needles: str) -> list[str]:
    found = []
    for path in oworld.settings.data_dir.glob("calgate.db*"):
        data = path.read_bytes()
        found += [f"{n!r} in {path.name}" for n in needles if n.encode() in data]
    return found


async def test_disconnect_leaves_nothing_in_the_raw_database(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    foreign = peer.put_event(
        oworld.calendar,
        {
            "subject": "Zyxwv private title",
            "start": {"dateTime": "2027-01-13T12:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-13T13:00:00", "timeZone": "UTC"},
        },
    )
    await oworld.sync()
    (href,) = [e["id"] for e in ours(oworld).values()]
    assert _scan(oworld, href, foreign), "the scan must be able to find what it looks for"
    (refresh,) = [t for t, r in peer.refresh_tokens.items() if not r["revoked"]]
    response = await oworld.api.delete(f"/v1/integrations/{oworld.integration_id}")
    assert response.status_code == 202, response.text
    await oworld.purge()  # the durable purge job, as the daemon's job tick runs it
    receipt = await oworld.api.get(f"/v1/integrations/{oworld.integration_id}/purge-receipt")
    assert receipt.json()["counts"]["remote_events_deleted"] == 1
    # Graph has no per-app revoke: the receipt says where the person withdraws the consent.
    words = receipt.json()["remote_left"]
    assert "https://account.live.com/consent/Manage" in words and "consent" in words
    assert _scan(oworld, refresh, "Zyxwv", href, foreign) == []


async def test_reconnect_adopts_our_events_without_duplicates(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    await oworld.book(START, END)
    await oworld.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await oworld.sync()
    response = await oworld.api.delete(
        f"/v1/integrations/{oworld.integration_id}", params={"remove_events": "false"}
    )
    assert response.status_code == 202
    await oworld.purge()
    await oworld.connect_outlook()
    calls = len(peer.calls)
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.pushed == 0
    assert len(peer.live_events(oworld.calendar)) == 2
    assert (await oworld.integration())["counts"]["mappings"] == 2
    assert not [c for c in peer.calls[calls:] if c[0] in ("POST", "PATCH", "DELETE")]


async def test_http_public_url_connects_without_a_channel_job(oworld: OutlookWorld) -> None:
    """Graph only calls https: no job to start a subscription it would refuse (polled)."""
    assert oworld.settings.public_url.startswith("http://")
    await oworld.connect_outlook()
    async with oworld.store.transaction() as session:
        assert list(await session.scalars(select(Job.kind))) == []
    assert (await oworld.integration())["status"] == "active"
