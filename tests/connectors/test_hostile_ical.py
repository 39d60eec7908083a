"""What real calendars hold, read by the iCalendar parser of the connectors (issue 14: hostile
calendars): every object gives events or a reason in words, never a crash or a stall, and a
series never more than MAX_OCCURRENCES occurrences."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import ical
from connectors.base import Window

CORPUS = Path(__file__).parent.parent / "data" / "hostile"
WINDOW = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def one_megabyte_description() -> bytes:
    line = "DESCRIPTION:" + "x" * (1024 * 1024)
    folded = "\r\n ".join(line[i : i + 74] for i in range(0, len(line), 74))
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hostile//corpus//EN\r\nBEGIN:VEVENT\r\n"
        "UID:one-megabyte\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:20270124T090000Z\r\n"
        f"DTEND:20270124T100000Z\r\nSUMMARY:Big\r\n{folded}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def corpus() -> dict[str, bytes]:
    items = {p.name: p.read_bytes() for p in sorted(CORPUS.glob("*.ics"))}
    items["one-megabyte-description.ics"] = one_megabyte_description()
    return items


def _read(data: bytes, floating: ZoneInfo | None = None) -> ical.RemoteItem | str:
    try:
        return ical.parse_item("/cal/x.ics", '"1"', data, WINDOW, floating or ZoneInfo("UTC"))
    except ical.NotAnEvent:
        return "not an event"
    except ical.Unreadable as exc:
        return f"unreadable: {exc}"


EXPECTED_UNREADABLE = {"latin1.ics", "truncated.ics", "bad-dates.ics", "odd-vtimezone.ics"}
NOT_EVENTS = {"vtodo.ics", "vjournal.ics"}


@pytest.mark.parametrize("name", sorted(corpus()))
def test_every_corpus_item_reads_or_says_why(name: str) -> None:
    started = time.monotonic()
    result = _read(corpus()[name])
    assert time.monotonic() - started < 10, "a stall"
    if name in NOT_EVENTS:
        assert result == "not an event"
    elif name in EXPECTED_UNREADABLE:
        assert isinstance(result, str) and result.startswith("unreadable: "), result
        assert len(result) > len("unreadable: ") + 10  # a reason in words
    elif not isinstance(result, str):
        assert 0 < len(result.events) <= ical.MAX_OCCURRENCES
        for event in result.events:
            assert isinstance(event.start, datetime) and event.start.tzinfo is not None


def test_series_are_bounded() -> None:
    every_minute = _read(corpus()["rrule-count-100000.ics"])
    hourly_to_2200 = _read(corpus()["rrule-until-2200.ics"])
    assert not isinstance(every_minute, str) and not isinstance(hourly_to_2200, str)
    assert len(every_minute.events) == ical.MAX_OCCURRENCES
    assert len(hourly_to_2200.events) == ical.MAX_OCCURRENCES
    assert all(WINDOW.start <= e.start < WINDOW.end for e in hourly_to_2200.events)  # type: ignore[operator]


def test_floating_times_are_read_on_the_clock_given() -> None:
    paris = ZoneInfo("Europe/Paris")
    result = _read(corpus()["floating.ics"], paris)
    assert not isinstance(result, str)
    (event,) = result.events
    assert event.start == datetime(2027, 1, 13, 9, tzinfo=paris)
    assert event.start.astimezone(UTC) == datetime(2027, 1, 13, 8, tzinfo=UTC)  # type: ignore[union-attr]


def test_a_calendar_timezone_property_names_the_zone() -> None:
    vtimezone = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x//EN\r\nBEGIN:VTIMEZONE\r\n"
        "TZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19701101T020000\r\n"
        "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        "END:VCALENDAR\r\n"
    )
    assert ical.calendar_zone(vtimezone) == ZoneInfo("America/New_York")
    assert ical.calendar_zone("garbage") is None


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    # The long series take seconds each; their parsing is covered above.
    base=st.sampled_from(sorted(n for n in corpus() if "megabyte" not in n and "rrule" not in n)),
    cut=st.integers(min_value=0, max_value=2000),
    noise=st.binary(max_size=40),
    at=st.integers(min_value=0, max_value=2000),
)
def test_mangled_objects_never_crash(base: str, cut: int, noise: bytes, at: int) -> None:
    """Truncated, spliced with random bytes, lines broken anywhere: events or a reason."""
    data = corpus()[base]
    mangled = data[:at] + noise + data[at:cut] if cut > at else data[:cut] + noise
    result = _read(mangled)
    if not isinstance(result, str):
        assert len(result.events) <= ical.MAX_OCCURRENCES
        for event in result.events:
            assert event.end >= event.start or not isinstance(event.start, datetime)
            assert event.start - timedelta(0) == event.start
