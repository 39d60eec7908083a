"""Times in a repeated hour reach CalDAV servers as the instant we meant (issue 14: 7).

For each zone of the DST matrix, every fall-back transition of 2026 and 2027, and both
occurrences of a wall-clock time inside the repeated hour: the event is written by the
connector, read back through the server, and found by the server's own time-range query at
the right instant (not an hour, or half an hour for Lord Howe, away).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from caldav.davclient import DAVClient

from connectors import ical
from connectors.base import Credentials, Event, Window
from connectors.caldav import CalDAVConnector
from tests.feeds import parsers
from tests.peers import radicale, xandikos

# The DST matrix of the feed tests; Kolkata has no transition and is a control.
ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata")
WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def fall_backs(zone: str) -> list[tuple[datetime, timedelta]]:
    """(instant of the transition, how far the clock goes back) in 2026-2027."""
    tz = ZoneInfo(zone)
    found = []
    moment = WINDOW.start
    while moment < WINDOW.end:
        before = moment.astimezone(tz).utcoffset()
        after = (moment + timedelta(minutes=30)).astimezone(tz).utcoffset()
        assert before is not None and after is not None
        if after < before:
            found.append((moment + timedelta(minutes=30), before - after))
        moment += timedelta(minutes=30)
    return found


def repeated_instants() -> list[tuple[str, datetime, datetime]]:
    """(zone, instant, the other instant with the same wall-clock time)."""
    cases = []
    for zone in ZONES:
        for transition, back in fall_backs(zone):
            first = transition - back + timedelta(minutes=10)
            second = transition + timedelta(minutes=10)
            assert (
                first.astimezone(ZoneInfo(zone)).time() == second.astimezone(ZoneInfo(zone)).time()
            )
            cases += [(zone, first, second), (zone, second, first)]
    return cases


CASES = repeated_instants()


def test_the_matrix_has_both_transitions_of_each_dst_zone() -> None:
    zones = [zone for zone, _, _ in CASES]
    assert {z: zones.count(z) for z in set(zones)} == {
        "America/New_York": 4,
        "Europe/London": 4,
        "Australia/Lord_Howe": 4,
    }
    # The issue's own example: the second 01:10 of New York's 2027 fall-back day.
    assert ("America/New_York", datetime(2027, 11, 7, 6, 10, tzinfo=UTC)) in [
        (z, i) for z, i, _ in CASES
    ]


def test_written_times_name_one_instant() -> None:
    for zone, instant, _other in CASES:
        text = ical.event_to_ics(_event(zone, instant), datetime(2026, 1, 1, tzinfo=UTC))
        assert f"DTSTART:{instant:%Y%m%dT%H%M%S}Z" in text
    # Outside the repeated hour, the zone's clock (with VTIMEZONE) as before.
    plain = ical.event_to_ics(
        _event("America/New_York", datetime(2027, 11, 8, 15, 0, tzinfo=UTC)), WINDOW.start
    )
    assert "DTSTART;TZID=America/New_York:20271108T100000" in plain


def _event(zone: str, instant: datetime) -> Event:
    uid = f"apt_dst{int(instant.timestamp())}{zone.replace('/', '')}@calgate"
    return Event(
        uid=uid, start=instant, end=instant + timedelta(minutes=10), timezone=zone, title="DST"
    )


async def _round_trip(connector: CalDAVConnector, dav: DAVClient, cal_url: str) -> None:
    calendar = dav.calendar(url=cal_url)
    for zone, instant, other in CASES:
        written = await connector.create(cal_url, _event(zone, instant))
        item = await connector.get(cal_url, written.href, WINDOW)
        (read,) = item.events
        assert isinstance(read.start, datetime)
        assert read.start.astimezone(UTC) == instant, (zone, instant)
        assert read.end == instant + timedelta(minutes=10)
        # The server's own reading of the instant: its time-range filter (RFC 4791 §9.9).
        here = await asyncio.to_thread(
            calendar.search,
            start=instant,
            end=instant + timedelta(minutes=5),
            event=True,
            expand=False,
        )
        there = await asyncio.to_thread(
            calendar.search,
            start=other,
            end=other + timedelta(minutes=5),
            event=True,
            expand=False,
        )
        uid = _event(zone, instant).uid
        assert uid in [str(e.icalendar_component["UID"]) for e in here], (zone, instant)
        assert uid not in [str(e.icalendar_component["UID"]) for e in there], (zone, instant)
        await connector.delete(cal_url, written.href, written.etag)


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[radicale.RadicaleServer]:
    with radicale.running(tmp_path / "radicale") as server:
        yield server


async def test_repeated_hour_round_trips_through_radicale(
    radicale_server: radicale.RadicaleServer,
) -> None:
    server = radicale_server
    dav = DAVClient(server.url, username=server.username, password=server.password)
    cal_url = str(dav.principal().make_calendar(name="DST", cal_id="dst").url)
    connector = CalDAVConnector(Credentials(server.url, server.username, server.password))
    await _round_trip(connector, dav, cal_url)


async def test_repeated_hour_round_trips_through_xandikos(tmp_path: Path) -> None:
    with xandikos.running(tmp_path / "xandikos") as url:
        dav = DAVClient(url + "user/")
        cal_url = str(dav.principal().make_calendar(name="dst", cal_id="dst").url)
        connector = CalDAVConnector(Credentials(url + "user/", "any", "any"))
        try:
            await _round_trip(connector, dav, cal_url)
        finally:
            dav.close()
            connector.client.close()


def _ordinary_days() -> list[tuple[str, datetime]]:
    """Each zone of the matrix: a winter and a summer morning, and the day after each
    transition of 2026-2027 (the days a wrong VTIMEZONE shows first)."""
    cases = []
    for zone in ZONES:
        tz = ZoneInfo(zone)
        cases += [
            (zone, datetime(2026, 12, 10, 9, tzinfo=tz)),
            (zone, datetime(2027, 7, 1, 9, tzinfo=tz)),
        ]
        moment = WINDOW.start
        while moment < WINDOW.end:
            if (moment + timedelta(days=1)).astimezone(tz).utcoffset() != moment.astimezone(
                tz
            ).utcoffset():
                day_after = (moment + timedelta(days=2)).astimezone(tz).date()
                cases.append(
                    (zone, datetime.combine(day_after, datetime.min.time(), tz).replace(hour=9))
                )
            moment += timedelta(days=1)
    return cases


@pytest.mark.parametrize(("zone", "start"), _ordinary_days(), ids=str)
def test_what_we_write_reads_the_same_in_vobject(zone: str, start: datetime) -> None:
    """The VTIMEZONE we write for a zone says that zone's offsets to vobject too: icalendar's
    default 1970-2038 definition begins with London's all-year BST of 1968-71, and vobject read
    every later London time an hour early from it."""
    event = Event("u@calgate", start, start + timedelta(hours=1), zone, "Check-up")
    body = ical.event_to_ics(event, datetime(2026, 11, 30, tzinfo=UTC))
    # In a fresh interpreter: vobject keeps the first VTIMEZONE per TZID for the process's life.
    assert parsers.with_vobject(body)["u@calgate"][0] == start.astimezone(UTC), body
