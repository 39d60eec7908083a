"""The sync engine with the Google connector, through the stand-in: the CalDAV scenarios that
apply, plus Google's own (client ids, private extended property, 410, cancelled instances)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from connectors import google
from gateway.domain.uids import appointment_uid
from gateway.privacy.receipts import count_rows
from gateway.store.lifecycle_models import OAuthConsent, WatchChannel
from gateway.store.sync_models import SyncMapping
from tests.google.conftest import CALENDAR, GoogleWorld
from tests.peers.google import GooglePeer

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"
T0 = datetime(2027, 1, 12, 9, tzinfo=UTC)
PARIS = "Europe/Paris"


def peer_of(gworld: GoogleWorld) -> GooglePeer:
    assert gworld.peer is not None
    return gworld.peer


def writes(peer: GooglePeer) -> list[str]:
    return [f"{c.method} {c.path}" for c in peer.calls if c.method in ("POST", "PUT", "DELETE")]


def ours(peer: GooglePeer) -> dict[str, dict[str, Any]]:
    return {
        e["extendedProperties"]["private"][google.UID_PROPERTY]: e
        for e in peer.live_events(CALENDAR)
        if "extendedProperties" in e
    }


async def test_push_create_reschedule_cancel(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    uid = appointment_uid(apt["id"])
    event = ours(peer)[uid]
    assert event["id"] == google.event_id(uid)
    assert event["iCalUID"] == uid
    assert event["start"] == {"dateTime": "2027-01-12T10:00:00+01:00", "timeZone": PARIS}
    assert event["summary"] == "Consultation"

    await gworld.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T11:00:00Z", "end": "2027-01-12T12:00:00Z"},
    )
    assert (await gworld.sync()).pushed == 1
    assert ours(peer)[uid]["start"]["dateTime"] == "2027-01-12T12:00:00+01:00"
    (put,) = [c for c in peer.calls if c.method == "PUT"]
    assert put.headers["if-match"] == event["etag"]

    await gworld.api.post(f"/v1/appointments/{apt['id']}/cancel")
    await gworld.sync()
    assert ours(peer) == {}
    (delete,) = [c for c in peer.calls if c.method == "DELETE"]
    assert delete.headers["if-match"]
    status = await gworld.integration()
    assert status["counts"]["mappings"] == 0 and status["last_error"] is None


async def test_echo_produces_no_write(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    await gworld.book(START, END)
    await gworld.sync()
    before = writes(peer)
    await gworld.sync()
    await gworld.sync()
    assert writes(peer) == before


async def test_move_and_delete_in_google_flow_back(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    moved = await gworld.book(START, END)
    deleted = await gworld.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await gworld.sync()
    peer.patch_event(
        CALENDAR,
        google.event_id(appointment_uid(moved["id"])),
        {
            "start": {"dateTime": "2027-01-14T15:00:00+01:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-01-14T16:30:00+01:00", "timeZone": PARIS},
        },
    )
    peer.delete_event(CALENDAR, google.event_id(appointment_uid(deleted["id"])))
    before = writes(peer)
    outcome = await gworld.sync()
    assert outcome.error is None
    assert outcome.rescheduled == 1 and outcome.cancelled == 1
    got = await gworld.appointment(moved["id"])
    assert (got["start"], got["end"]) == ("2027-01-14T14:00:00Z", "2027-01-14T15:30:00Z")
    assert (await gworld.appointment(deleted["id"]))["status"] == "cancelled"
    assert writes(peer) == before  # nothing echoed back
    await gworld.sync()
    assert writes(peer) == before


async def test_both_sides_changed_calgate_wins(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    await gworld.sync()
    uid = appointment_uid(apt["id"])
    peer.patch_event(
        CALENDAR,
        google.event_id(uid),
        {
            "start": {"dateTime": "2027-01-20T09:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2027-01-20T10:00:00Z", "timeZone": "UTC"},
        },
    )
    await gworld.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T15:00:00Z", "end": "2027-01-12T16:00:00Z"},
    )
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.conflicts == 1
    assert ours(peer)[uid]["start"]["dateTime"] == "2027-01-12T16:00:00+01:00"
    assert "conflict" in await gworld.log_kinds()


async def test_busy_from_recurring_series_with_exceptions_and_all_day(
    gworld: GoogleWorld,
) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    # Weekly 10:00 Paris on Mondays from 2027-03-15, across the DST change of 2027-03-28; the
    # 22nd moved to 14:00, the 29th cancelled; a transparent event is ignored.
    series = peer.put_event(
        CALENDAR,
        {
            "summary": "Private weekly",
            "start": {"dateTime": "2027-03-15T10:00:00+01:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-03-15T11:00:00+01:00", "timeZone": PARIS},
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
        },
    )
    peer.move_instance(
        CALENDAR,
        series,
        datetime(2027, 3, 22, 9, tzinfo=UTC),
        datetime(2027, 3, 22, 13, tzinfo=UTC),
        datetime(2027, 3, 22, 14, tzinfo=UTC),
    )
    peer.put_event(
        CALENDAR,
        {"summary": "Holiday", "start": {"date": "2027-03-28"}, "end": {"date": "2027-03-29"}},
    )
    peer.put_event(
        CALENDAR,
        {
            "summary": "Maybe",
            "transparency": "transparent",
            "start": {"dateTime": "2027-03-16T12:00:00Z"},
            "end": {"dateTime": "2027-03-16T13:00:00Z"},
        },
    )
    assert (await gworld.sync()).error is None
    # Cancelled after the first sync: arrives incrementally as a cancelled instance.
    peer.cancel_instance(CALENDAR, series, datetime(2027, 3, 29, 8, tzinfo=UTC))
    assert (await gworld.sync()).error is None
    response = await gworld.api.get(
        f"/v1/users/{gworld.user['id']}/busy",
        params={"from": "2027-03-14T00:00:00Z", "to": "2027-04-10T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    busy = [(i["start"], i["end"]) for i in response.json()["busy"]]
    assert busy == [
        ("2027-03-15T09:00:00Z", "2027-03-15T10:00:00Z"),  # CET
        ("2027-03-22T13:00:00Z", "2027-03-22T14:00:00Z"),  # the moved instance
        ("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z"),  # all-day in Paris: 23 hours (DST)
        ("2027-04-05T08:00:00Z", "2027-04-05T09:00:00Z"),  # CEST
    ]


async def test_expired_sync_token_full_resync_without_duplicates(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    peer.page_size = 2  # several pages in every listing
    await gworld.connect_google()
    for day in range(12, 17):
        await gworld.book(f"2027-01-{day}T09:00:00Z", f"2027-01-{day}T10:00:00Z")
    peer.put_event(
        CALENDAR,
        {
            "start": {"dateTime": "2027-01-12T12:00:00Z"},
            "end": {"dateTime": "2027-01-12T13:00:00Z"},
        },
    )
    assert (await gworld.sync()).pushed == 5
    assert (await gworld.sync()).full_listings == 0  # incremental now
    peer.expire_sync_tokens()
    before = writes(peer)
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.full_listings == 1
    assert "cursor_expired" in await gworld.log_kinds()
    assert writes(peer) == before
    assert len(peer.live_events(CALENDAR)) == 6
    status = await gworld.integration()
    assert status["counts"]["mappings"] == 5 and status["counts"]["busy_blocks"] >= 1


async def test_retried_insert_after_a_lost_answer_makes_one_event(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    uid = appointment_uid(apt["id"])
    # An earlier insert reached Google but its answer was lost: the event is there, unmapped.
    peer.put_event(
        CALENDAR,
        {
            "id": google.event_id(uid),
            "iCalUID": uid,
            "summary": "Consultation",
            "start": {"dateTime": "2027-01-12T10:00:00+01:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-01-12T11:00:00+01:00", "timeZone": PARIS},
            "extendedProperties": {"private": {google.UID_PROPERTY: uid}},
        },
    )
    outcome = await gworld.sync()
    assert outcome.error is None
    assert [e["id"] for e in peer.live_events(CALENDAR)] == [google.event_id(uid)]
    assert (await gworld.integration())["counts"]["mappings"] == 1


async def test_empty_calendar_guard(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    for day in range(12, 16):
        await gworld.book(f"2027-01-{day}T09:00:00Z", f"2027-01-{day}T10:00:00Z")
    await gworld.sync()
    for event in peer.live_events(CALENDAR):
        peer.delete_event(CALENDAR, event["id"])
    peer.expire_sync_tokens()  # and Google asks for a full listing, which is empty
    outcome = await gworld.sync()
    assert outcome.status == "paused"
    status = await gworld.integration()
    assert status["status"] == "paused" and status["counts"]["mappings"] == 4


def _scan(gworld: GoogleWorld, *needles: str) -> list[str]:
    found = []
    for path in gworld.settings.data_dir.glob("calgate.db*"):
        data = path.read_bytes()
        found += [f"{n!r} in {path.name}" for n in needles if n.encode() in data]
    return found


@pytest.mark.parametrize("remove", [True, False])
async def test_disconnect_revokes_stops_channel_and_purges(
    gworld: GoogleWorld, remove: bool
) -> None:
    from gateway.sync import watch

    peer = peer_of(gworld)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    foreign = peer.put_event(
        CALENDAR,
        {
            "summary": "Zyxwv private title",
            "start": {"dateTime": "2027-01-13T12:00:00Z"},
            "end": {"dateTime": "2027-01-13T13:00:00Z"},
        },
    )
    await gworld.sync()
    assert await watch.tick(gworld.store, gworld.settings) == 1
    (channel_id,) = list(peer.channels)
    refresh = gworld.refresh_token()
    href = google.event_id(appointment_uid(apt["id"]))
    async with gworld.store.transaction() as session:
        assert await session.scalar(select(SyncMapping.href)) == href
    assert _scan(gworld, href, foreign), "the scan must be able to find what it looks for"

    response = await gworld.api.delete(
        f"/v1/integrations/{gworld.integration_id}", params={"remove_events": str(remove).lower()}
    )
    assert response.status_code == 202, response.text
    await gworld.purge()
    done = await gworld.api.get(f"/v1/integrations/{gworld.integration_id}/purge-receipt")
    receipt = done.json()
    assert receipt["state"] == "done", receipt
    assert receipt["counts"]["mappings"] == 1 and receipt["counts"]["credentials"] == 1
    assert receipt["counts"]["remote_events_deleted"] == (1 if remove else 0)
    assert "revoke_failed" not in receipt["counts"]
    # At Google: the channel stopped, the grant revoked, our event gone (or kept).
    assert peer.stopped_channels == [channel_id]
    assert peer.revoked == [refresh] and peer.refresh_tokens[refresh]["revoked"]
    assert (href in {e["id"] for e in peer.live_events(CALENDAR)}) == (not remove)
    # Here: nothing left but the receipt.
    async with gworld.store.transaction() as session:
        left = await count_rows(session, gworld.integration_id)
        channels_left = list(await session.scalars(select(WatchChannel)))
        consents_left = list(await session.scalars(select(OAuthConsent)))
    assert set(left.values()) == {0}, left
    assert channels_left == [] and consents_left == []
    assert _scan(gworld, refresh, "Zyxwv", href, foreign) == []


async def test_reconnect_adopts_our_events_without_duplicates(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    await gworld.book(START, END)
    await gworld.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await gworld.sync()
    response = await gworld.api.delete(
        f"/v1/integrations/{gworld.integration_id}", params={"remove_events": "false"}
    )
    assert response.status_code == 202
    await gworld.purge()
    await gworld.connect_google()
    calls = len(peer.calls)
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.pushed == 0
    assert len(peer.live_events(CALENDAR)) == 2
    assert (await gworld.integration())["counts"]["mappings"] == 2
    assert not [c for c in peer.calls[calls:] if c.method in ("POST", "PUT", "DELETE")]


async def test_window_bounds_the_full_listing(gworld: GoogleWorld) -> None:
    peer = peer_of(gworld)
    await gworld.connect_google()
    old = datetime.now(UTC) - timedelta(days=400)
    peer.put_event(
        CALENDAR,
        {
            "start": {"dateTime": old.isoformat()},
            "end": {"dateTime": (old + timedelta(hours=1)).isoformat()},
        },
    )
    await gworld.sync()
    (listing,) = [c for c in peer.calls if c.path.endswith("/events") and c.method == "GET"][:1]
    assert "timeMin" in listing.query and "syncToken" not in listing.query
    assert (await gworld.integration())["counts"]["busy_blocks"] == 0
