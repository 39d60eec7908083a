"""Independent parsers of a feed, each reduced to {uid: (start, end)} in UTC.

- icalendar (what we build with), ical (Home Assistant's strict parser), vobject (builds its
  zones from the feed's own VTIMEZONEs), and ical.js run by node (Thunderbird's parser, with
  the feed's VTIMEZONEs registered).

vobject keeps the first VTIMEZONE it meets for each TZID for the life of the process (Radicale,
which other tests run in this process, parses with it too), so it runs in a fresh interpreter:
it reads what a client meeting this text first would read, whatever the tests before did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import icalendar
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


_VOBJECT = """
import json, sys
from datetime import UTC
import vobject
calendar = vobject.readOne(sys.stdin.read())
out = {}
for e in getattr(calendar, "vevent_list", []):
    start, end = e.dtstart.value, e.dtend.value
    assert start.tzinfo is not None and end.tzinfo is not None, f"floating time {start}"
    out[e.uid.value] = [start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()]
print(json.dumps(out))
"""


def with_vobject(text: str) -> Instants:
    done = subprocess.run(
        [sys.executable, "-c", _VOBJECT],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return {
        uid: (datetime.fromisoformat(start), datetime.fromisoformat(end))
        for uid, (start, end) in json.loads(done.stdout).items()
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
