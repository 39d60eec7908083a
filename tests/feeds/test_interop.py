"""The feed as other software reads it: four parsers, DST transition days, and a CalDAV server.

A practitioner in Europe/London has appointments booked in America/New_York, Asia/Kolkata
(half-hour offset), Australia/Lord_Howe (half-hour DST) and Europe/London, around the next DST
transitions of each zone (found from the zone rules, not hard-coded, so the test does not depend
on today's date): before, across, just after (in a repeated hour) and exactly at each transition.
Every parser must read every event at the instants the API returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from tests.feeds import parsers
from tests.feeds.conftest import Feeds
from tests.peers import radicale
from tests.support import Api

ZONES = ("America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "Europe/London")


def transitions(zone: str, start: datetime, days: int = 400) -> list[datetime]:
    """Instants (UTC, to the minute) at which `zone` changes its offset."""
    tz = ZoneInfo(zone)
    found: list[datetime] = []
    moment = start.replace(minute=0, second=0, microsecond=0)
    end = moment + timedelta(days=days)
    step = timedelta(hours=1)
    while moment < end:
        nxt = moment + step
        if moment.astimezone(tz).utcoffset() != nxt.astimezone(tz).utcoffset():
            minute = moment
            while minute.astimezone(tz).utcoffset() == moment.astimezone(tz).utcoffset():
                minute += timedelta(minutes=1)
            found.append(minute)
        moment = nxt
    return found


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _slots(zone: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """(start, end) instants worth testing in `zone`."""
    slots: list[tuple[datetime, datetime]] = []
    edges = transitions(zone, now + timedelta(days=1))
    hour = timedelta(hours=1)
    half = timedelta(minutes=30)
    for edge in edges:
        slots += [
            (edge - 2 * hour, edge - hour),  # before
            (edge - half, edge + half),  # across
            (edge, edge + hour),  # exactly at the change
            (edge + 10 * timedelta(minutes=1), edge + 40 * timedelta(minutes=1)),  # just after
            (edge + half - timedelta(minutes=10), edge + 2 * hour),  # repeated/skipped hour
        ]
        # 09:00 wall-clock on the transition day, as people book.
        local_day = edge.astimezone(ZoneInfo(zone)).date()
        nine = datetime(local_day.year, local_day.month, local_day.day, 9, tzinfo=ZoneInfo(zone))
        slots.append((nine, nine + hour))
    if not edges:  # no DST (Kolkata): a morning, an evening crossing UTC midnight
        day = (now + timedelta(days=10)).astimezone(ZoneInfo(zone)).date()
        for hh in (9, 23):
            local = datetime(day.year, day.month, day.day, hh, 30, tzinfo=ZoneInfo(zone))
            slots.append((local, local + hour))
    return slots


async def _dst_feed(api: Api, feeds: Feeds) -> tuple[dict[str, Any], dict[str, Any]]:
    """A London practitioner's full feed and the API's appointments by UID."""
    user = await api.user(timezone="Europe/London")
    client = await api.client(name="Río Ñandú 😀")
    now = datetime.now(UTC)
    expected: dict[str, Any] = {}
    for zone in ZONES:
        for start, end in _slots(zone, now):
            apt = await api.appointment(
                user["id"],
                client["id"],
                start=_iso(start),
                end=_iso(end),
                timezone=zone,
                title=f"Session {zone}",
            )
            expected[f"{apt['id']}@calgate"] = apt
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    return feed, expected


def _api_instants(expected: dict[str, Any]) -> dict[str, tuple[datetime, datetime]]:
    return {
        uid: (
            datetime.fromisoformat(apt["start"]).astimezone(UTC),
            datetime.fromisoformat(apt["end"]).astimezone(UTC),
        )
        for uid, apt in expected.items()
    }


def test_the_scenario_really_covers_transitions():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert len(transitions("America/New_York", now, 366)) == 2
    assert len(transitions("Australia/Lord_Howe", now, 366)) == 2
    assert transitions("Asia/Kolkata", now, 366) == []
    # Lord Howe moves by 30 minutes.
    edge = transitions("Australia/Lord_Howe", now, 366)[0]
    tz = ZoneInfo("Australia/Lord_Howe")
    before = (edge - timedelta(minutes=1)).astimezone(tz).utcoffset()
    after = edge.astimezone(tz).utcoffset()
    assert before is not None and after is not None
    assert abs(after - before) == timedelta(minutes=30)


async def test_python_parsers_read_the_api_instants(api: Api, feeds: Feeds):
    feed, expected = await _dst_feed(api, feeds)
    text = await feeds.text(feed)
    want = _api_instants(expected)
    assert len(want) > 30
    for parse in (parsers.with_icalendar, parsers.with_ical, parsers.with_vobject):
        got = parse(text)
        assert got == want, parse.__name__


async def test_icaljs_reads_the_api_instants(api: Api, feeds: Feeds, icaljs_ready, tmp_path):
    feed, expected = await _dst_feed(api, feeds)
    text = await feeds.text(feed)
    assert parsers.with_icaljs(text, tmp_path) == _api_instants(expected)
    dump = parsers.icaljs_dump(text, tmp_path)
    props = dump["props"]
    assert isinstance(props, dict)
    assert props["method"] == "PUBLISH"
    assert props["version"] == "2.0"
    assert props["x-wr-timezone"] == "Europe/London"
    events = dump["events"]
    assert isinstance(events, list)
    zoned = {e["start_zone"] for e in events}
    # Times are in their booking zones (only ambiguous wall-clock times fall back to UTC).
    assert {"America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"} <= zoned
    assert all(e["description"].startswith("Client: Río Ñandú 😀") for e in events)


def _split(text: str) -> list[tuple[str, bytes]]:
    """One VCALENDAR per VEVENT, with the VTIMEZONEs it uses: what a CalDAV PUT carries."""
    calendar = icalendar.Calendar.from_ical(text)
    zones = {str(tz["TZID"]): tz for tz in calendar.walk("VTIMEZONE")}
    out = []
    for event in calendar.walk("VEVENT"):
        single = icalendar.Calendar()
        single.add("PRODID", calendar["PRODID"])
        single.add("VERSION", "2.0")
        for prop in ("DTSTART", "DTEND"):
            tzid = event[prop].params.get("TZID")
            if tzid and tzid not in {str(c.get("TZID")) for c in single.walk("VTIMEZONE")}:
                single.add_component(zones[tzid])
        single.add_component(event)
        out.append((str(event["UID"]), single.to_ical()))
    return out


async def test_each_event_is_accepted_by_radicale(api: Api, feeds: Feeds, tmp_path: Path):
    feed, expected = await _dst_feed(api, feeds)
    text = await feeds.text(feed)
    with radicale.running(tmp_path / "radicale") as server:
        auth = (server.username, server.password)
        collection = f"{server.url}{server.username}/feed/"
        async with httpx.AsyncClient(auth=auth, timeout=30) as http:
            made = await http.request("MKCALENDAR", collection)
            assert made.status_code == 201, made.text
            for uid, ics in _split(text):
                put = await http.put(
                    f"{collection}{uid.split('@')[0]}.ics",
                    content=ics,
                    headers={"Content-Type": "text/calendar; charset=utf-8"},
                )
                assert put.status_code == 201, (uid, put.status_code, put.text)
            stored = await http.get(collection)
            assert stored.status_code == 200
    assert parsers.with_icalendar(stored.text) == _api_instants(expected)


@pytest.mark.parametrize("privacy", ["full", "limited", "busy"])
async def test_every_privacy_level_parses_strictly(api: Api, feeds: Feeds, privacy: str):
    user = await api.user()
    client = await api.client()
    start = datetime.now(UTC) + timedelta(days=3)
    await api.appointment(
        user["id"],
        client["id"],
        start=_iso(start),
        end=_iso(start + timedelta(hours=1)),
        location="Room 4, 2nd floor; back door",
        notes="Line one\nLine two",
    )
    feed = await feeds.create(scope="account", privacy=privacy)
    text = await feeds.text(feed)
    assert len(parsers.with_ical(text)) == 1
    assert len(parsers.with_vobject(text)) == 1
