"""CalDAV objects of different accounts defining a zone under the same non-IANA TZID with other
rules, read by the connectors' iCalendar reader (what `connectors/caldav.py` calls for every
object it lists): each event at its own file's instant, whichever was read first; a Windows name
without a VTIMEZONE still reads as its IANA zone, and the private names never reach an Event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors import ical
from connectors.base import Window
from tests.connectors.test_hostile_ical import WINDOW, corpus

WINDOW_2030 = Window(datetime(2030, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC))


def _object(tzid: str, offset: str, uid: str, rule: str = "") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other System//EN\r\n"
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
        f'DTSTART;TZID="{tzid}":20300412T100000\r\nDTEND;TZID={tzid}:20300412T110000\r\n'
        f"{rule}SUMMARY:At ten\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _starts(data: str) -> list[datetime]:
    item = ical.parse_item(f"/cal/{len(data)}.ics", '"1"', data, WINDOW_2030)
    for event in item.events:
        assert event.timezone is None  # a zone of the file's own: no IANA name to report
    return [e.start.astimezone(UTC) for e in item.events if isinstance(e.start, datetime)]


# Each case uses rules no other case uses, so each is the first this process sees of them.
@pytest.mark.parametrize(
    ("tzid", "first", "second", "first_utc", "second_utc"),
    [
        ("Custom/Zone", "+0300", "-0500", "07:00", "15:00"),
        ("Custom/Zone", "-0400", "+0200", "14:00", "08:00"),
        ("Eastern Standard Time", "+0130", "-0730", "08:30", "17:30"),
        ("/vendor.example/Custom/Zone", "-0630", "+0530", "16:30", "04:30"),
    ],
)
def test_one_zone_name_two_definitions(
    tzid: str, first: str, second: str, first_utc: str, second_utc: str
) -> None:
    def at(utc: str) -> datetime:
        return datetime.fromisoformat(f"2030-04-12T{utc}:00+00:00")

    assert _starts(_object(tzid, first, "a")) == [at(first_utc)]
    assert _starts(_object(tzid, second, "b")) == [at(second_utc)]
    assert _starts(_object(tzid, first, "c")) == [at(first_utc)]  # the first again, after
    # A series is expanded on its own file's rules too.
    weekly = _starts(_object(tzid, second, "d", "RRULE:FREQ=WEEKLY;COUNT=2\r\n"))
    assert weekly[0] == at(second_utc) and len(weekly) == 2


def test_a_windows_name_without_its_vtimezone_is_its_iana_zone() -> None:
    """Another object defining "W. Europe Standard Time" with its own rules does not change
    what the name means in an object that leaves the definition out."""
    assert _starts(_object("W. Europe Standard Time", "+0300", "w")) == [
        datetime(2030, 4, 12, 7, tzinfo=UTC)
    ]
    item = ical.parse_item("/cal/w.ics", '"1"', corpus()["windows-tzid.ics"], WINDOW)
    (event,) = item.events
    assert event.timezone == "Europe/Berlin"
    assert event.start == datetime(2027, 1, 15, 8, tzinfo=UTC)


def test_an_iana_name_keeps_the_system_rules() -> None:
    """An IANA TZID is read on the system's zone data whatever the object's VTIMEZONE says
    (as before), and reported by that name."""
    item = ical.parse_item("/cal/p.ics", '"1"', _object("Europe/Paris", "+0900", "p"), WINDOW_2030)
    (event,) = item.events
    assert event.timezone == "Europe/Paris"
    assert event.start == datetime(2030, 4, 12, 8, tzinfo=UTC)
