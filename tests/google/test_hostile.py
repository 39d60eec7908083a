"""The Google stand-in's calendar filled with what Google's JSON can carry from real calendars
(issue 14: hostile calendars, the Google side; CalDAV: tests/sync/test_hostile_calendars.py):
the sync reads what it can, skips the rest with a log entry in words, never stalls, keeps busy
time bounded, and still writes our appointments."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from connectors import ical
from gateway.store.sync_models import BusyBlock
from tests.google.conftest import CALENDAR, CLIENT_ID, CLIENT_SECRET, REDIRECT, GoogleWorld
from tests.peers import google as google_peer
from tests.peers.google import GooglePeer

SOON = (datetime.now(UTC) + timedelta(days=5)).replace(hour=9, minute=0, second=0, microsecond=0)


@pytest.fixture
def peer() -> Iterator[GooglePeer]:
    """The stand-in with Google's own page size (250), not the tests' usual 3: a series read to
    its cap then takes 8 pages, not 667."""
    with google_peer.running(GooglePeer(page_size=250)) as running:
        running.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        running.add_calendar(CALENDAR, "Dr Test", tz="Europe/London")
        yield running


def _at(hours: float) -> dict[str, str]:
    return {"dateTime": (SOON + timedelta(hours=hours)).isoformat(), "timeZone": "UTC"}


def hostile() -> dict[str, tuple[dict[str, Any], bool]]:
    """Event resources by name, and whether calgate can read them (True) or must skip them."""
    day = SOON.date()
    return {
        "no end": ({"start": _at(0), "summary": "No end"}, True),
        "end unspecified": (
            {"start": _at(1), "end": _at(1), "endTimeUnspecified": True, "summary": "x"},
            True,
        ),
        "windows zone": (
            {
                "start": {"dateTime": _at(2)["dateTime"], "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": _at(3)["dateTime"], "timeZone": "W. Europe Standard Time"},
            },
            True,
        ),
        "unknown zone, no offset": (
            {
                "start": {"dateTime": "2027-03-01T10:00:00", "timeZone": "Mars/Olympus_Mons"},
                "end": {"dateTime": "2027-03-01T11:00:00", "timeZone": "Mars/Olympus_Mons"},
            },
            True,
        ),
        "huge description": (
            {"start": _at(4), "end": _at(5), "description": "Big " * 262144},
            True,
        ),
        "hourly to 2200": (
            {
                "start": _at(6),
                "end": _at(6.5),
                "recurrence": ["RRULE:FREQ=HOURLY;UNTIL=22000101T000000Z"],
            },
            True,
        ),
        "count 100000": (
            {"start": _at(7), "end": _at(7.25), "recurrence": ["RRULE:FREQ=DAILY;COUNT=100000"]},
            True,
        ),
        "duplicate uid 1": ({"start": _at(8), "end": _at(9), "iCalUID": "same@x"}, True),
        "duplicate uid 2": ({"start": _at(10), "end": _at(11), "iCalUID": "same@x"}, True),
        "cancelled instance without master": (
            {
                "status": "cancelled",
                "recurringEventId": "nosuchmaster",
                "originalStartTime": _at(12),
                "start": _at(12),
                "end": _at(13),
            },
            True,  # not an event to read: nothing to skip either
        ),
        "end before start": ({"start": _at(15), "end": _at(14)}, False),
        "all-day and timed": ({"start": {"date": day.isoformat()}, "end": _at(16)}, False),
        "month 13": (
            {"start": {"dateTime": "2027-13-01T10:00:00Z"}, "end": {"dateTime": "2027-13-01T11Z"}},
            False,
        ),
        "start is a string": ({"start": "tomorrow", "end": _at(17)}, False),
        "no start": ({"end": _at(18), "summary": "No start"}, False),
        "year 9999": (
            {"start": {"dateTime": "9999-12-31T23:00:00-14:00"}, "end": {"date": "9999-12-31"}},
            False,
        ),
        "100-year all-day": (
            {
                "start": {"date": day.isoformat()},
                "end": {"date": day.replace(year=day.year + 100).isoformat()},
            },
            True,
        ),
    }


async def test_a_hostile_google_calendar_syncs_what_it_can(
    gworld: GoogleWorld, peer: GooglePeer
) -> None:
    corpus = hostile()
    for body, _ in corpus.values():
        peer.put_event(CALENDAR, body)
    await gworld.connect_google()
    started = time.monotonic()
    outcome = await gworld.sync()
    assert time.monotonic() - started < 120, "the sync stalled"
    assert outcome.error is None, outcome.error
    assert (await gworld.integration())["status"] == "active"
    log = (await gworld.api.get(f"/v1/integrations/{gworld.integration_id}/log")).json()["data"]
    skipped = [e["detail"] for e in log if e["kind"] == "skipped"]
    assert len(skipped) == sum(not readable for _, readable in corpus.values()), skipped
    for detail in skipped:
        assert "was skipped: " in detail and "{" not in detail and "Error" not in detail
    async with gworld.store.transaction() as session:
        blocks = await session.scalar(select(func.count()).select_from(BusyBlock))
    assert blocks is not None
    assert 0 < blocks <= 2 * ical.MAX_OCCURRENCES + len(corpus), "busy time not bounded"

    # The rest syncs: our appointment is written, once, and a second run is quiet.
    start = SOON + timedelta(days=2)
    await gworld.book(start.isoformat(), (start + timedelta(hours=1)).isoformat())
    assert (await gworld.sync()).error is None
    ours = [e for e in peer.live_events(CALENDAR) if "extendedProperties" in e]
    assert len(ours) == 1
    again = await gworld.sync()
    assert again.error is None and again.pushed == 0
