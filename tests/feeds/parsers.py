"""Independent parsers of a feed, each reduced to {uid: (start, end)} in UTC.

- icalendar (what we build with), ical (Home Assistant's strict parser), vobject (builds its
  zones from the feed's own VTIMEZONEs), and ical.js run by node (Thunderbird's parser, with
  the feed's VTIMEZONEs registered).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import icalendar
import vobject
from ical.calendar_stream import IcsCalendarStream

from tests.node import NODE_DIR, npm_install

Instants = dict[str, tuple[datetime, datetime]]
HERE = Path(__file__).parent


def _utc(value: datetime) -> datetime:
    assert isinstance(value, datetime), value
    assert value.tzinfo is not None, f"floating time {value}"
    return value.astimezone(UTC)


def with_icalendar(text: str) -> Instants:
    calendar = icalendar.Calendar.from_ical(text)
    return {
        str(e["UID"]): (_utc(e.decoded("DTSTART")), _utc(e.decoded("DTEND")))
        for e in calendar.walk("VEVENT")
    }


def with_ical(text: str) -> Instants:
    calendar = IcsCalendarStream.calendar_from_ics(text)
    out: Instants = {}
    for event in calendar.events:
        assert isinstance(event.dtstart, datetime)
        assert isinstance(event.dtend, datetime)
        out[str(event.uid)] = (_utc(event.dtstart), _utc(event.dtend))
    return out


def with_vobject(text: str) -> Instants:
    calendar = vobject.readOne(text)
    return {
        e.uid.value: (_utc(e.dtstart.value), _utc(e.dtend.value))
        for e in getattr(calendar, "vevent_list", [])
    }


def install_icaljs(cache: Path) -> str | None:
    """npm-install ical.js into tests/.node unless present; the reason it failed, or None."""
    return npm_install(cache)


def icaljs_dump(text: str, folder: Path) -> dict[str, object]:
    """Run ical.js on `text`; its JSON dump (props and events)."""
    path = folder / "feed.ics"
    path.write_bytes(text.encode("utf-8"))
    done = subprocess.run(
        ["node", str(HERE / "icaljs_dump.mjs"), str(NODE_DIR), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def with_icaljs(text: str, folder: Path) -> Instants:
    dump = icaljs_dump(text, folder)
    events = dump["events"]
    assert isinstance(events, list)
    return {
        e["uid"]: (
            datetime.fromtimestamp(e["start"], UTC),
            datetime.fromtimestamp(e["end"], UTC),
        )
        for e in events
    }
