"""RFC 5545 / RFC 7986 text of a feed, built with the icalendar library from a snapshot.

Pure: no database, no clock. The same snapshot always gives the same bytes, which is what makes
the strong ETag (a hash of the body) change exactly when the content does.

- Every DTSTART/DTEND carries the TZID of the zone the appointment was booked in, with one
  VTIMEZONE per TZID (RFC 5545 §3.6.5), generated from the IANA rules for the whole years the
  events span. A wall-clock time that a zone repeats (the hour after a DST fall-back) cannot be
  written with a TZID without ambiguity (§3.3.5 picks the first occurrence), so such an event's
  times are written in UTC instead; UTC-booked appointments use UTC (``Z``) too.
- DTSTAMP is the appointment's last change, not the render time (§3.8.7.2 allows it with
  METHOD:PUBLISH), so re-rendering unchanged data gives an identical body.
- Lines end in CRLF and are folded at 75 octets between UTF-8 characters (icalendar's folding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from icalendar import Calendar, Event, Timezone
from icalendar.prop import vDuration, vText

from gateway.domain.uids import appointment_uid
from gateway.timezones import vtimezone, zone

PRODID = "-//calgate//calgate feeds 1.0//EN"
BUSY_SUMMARY = "Busy"
PRIVACY_LEVELS = ("full", "limited", "busy")
# RFC 5545 §3.3.11: TEXT may hold HTAB but no other control character; line breaks travel as
# the escaped \n, so CR LF and lone CR become LF first.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(value: str) -> str:
    """`value` as RFC 5545 TEXT allows it: LF line breaks, no control characters."""
    return _CONTROLS.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


@dataclass(frozen=True)
class EventData:
    """One appointment as a feed may show it. Names are None where the feed's scope omits them."""

    id: str
    start_at: datetime
    end_at: datetime
    timezone: str
    title: str
    location: str | None
    notes: str | None
    client_name: str | None
    user_name: str | None
    status: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CalendarData:
    """Everything a feed body is made of."""

    name: str
    timezone: str
    privacy: str
    refresh: timedelta
    events: tuple[EventData, ...]


def _ambiguous(local: datetime) -> bool:
    """True when the zone shows this wall-clock time twice (DST fall-back)."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def event_times(event: EventData) -> tuple[datetime, datetime]:
    """DTSTART and DTEND: local times in the booking zone, or UTC where that is not exact."""
    start_utc, end_utc = event.start_at.astimezone(UTC), event.end_at.astimezone(UTC)
    if event.timezone in ("UTC", "Etc/UTC"):
        return start_utc, end_utc
    tz = zone(event.timezone)
    start, end = start_utc.astimezone(tz), end_utc.astimezone(tz)
    if _ambiguous(start) or _ambiguous(end):
        return start_utc, end_utc
    return start, end


def _description(event: EventData) -> str | None:
    lines = []
    if event.client_name:
        lines.append(f"Client: {event.client_name}")
    if event.user_name:
        lines.append(f"With: {event.user_name}")
    if event.notes:
        if lines:
            lines.append("")
        lines.append(event.notes)
    return "\n".join(lines) or None


def _vevent(event: EventData, privacy: str) -> Event:
    vevent = Event()
    vevent.add("UID", appointment_uid(event.id))
    vevent.add("DTSTAMP", event.updated_at.astimezone(UTC))
    vevent.add("CREATED", event.created_at.astimezone(UTC))
    vevent.add("LAST-MODIFIED", event.updated_at.astimezone(UTC))
    vevent.add("SEQUENCE", event.version)
    start, end = event_times(event)
    vevent.add("DTSTART", start)
    vevent.add("DTEND", end)
    cancelled = event.status == "cancelled"
    vevent.add("STATUS", "CANCELLED" if cancelled else "CONFIRMED")
    # A cancelled event no longer blocks time (RFC 5545 §3.8.2.7).
    vevent.add("TRANSP", "TRANSPARENT" if cancelled else "OPAQUE")
    if privacy == "busy":
        vevent.add("SUMMARY", BUSY_SUMMARY)
        vevent.add("CLASS", "PRIVATE")
        return vevent
    vevent.add("SUMMARY", clean_text(event.title))
    if event.location:
        vevent.add("LOCATION", clean_text(event.location))
    if privacy == "full" and (description := _description(event)) is not None:
        vevent.add("DESCRIPTION", clean_text(description))
    return vevent


def _timezones(events: list[tuple[datetime, datetime]]) -> list[Timezone]:
    spans: dict[str, tuple[int, int]] = {}
    for start, end in events:
        for moment in (start, end):
            key = getattr(moment.tzinfo, "key", None)
            if key is None or moment.tzinfo is UTC:
                continue
            low, high = spans.get(key, (moment.year - 1, moment.year + 1))
            spans[key] = (min(low, moment.year - 1), max(high, moment.year + 1))
    return [vtimezone(tzid, *spans[tzid]) for tzid in sorted(spans)]


# Rendered VEVENTs, keyed by everything they are made of (the appointment at its version, the
# names shown and the privacy level): after one change, a feed re-renders one event and
# reassembles the rest. Bounded: about 1 KB each with its key.
_EVENT_CACHE_SIZE = 50_000


@lru_cache(maxsize=_EVENT_CACHE_SIZE)
def event_bytes(event: EventData, privacy: str) -> bytes:
    """One VEVENT's lines (BEGIN to END, CRLF, folded), rendered once per content."""
    body: bytes = _vevent(event, privacy).to_ical()
    return body


def render(data: CalendarData) -> bytes:
    """The feed body: UTF-8, CRLF line endings, folded at 75 octets.

    The calendar's own lines and its VTIMEZONEs are built each time (a few lines); each event
    comes from `event_bytes`, so the cost follows the events that changed.
    """
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    calendar.add("CALSCALE", "GREGORIAN")
    calendar.add("METHOD", "PUBLISH")
    # A calendar name is one line whatever was stored; vText escapes `;` `,` `\\` on both.
    name = " ".join(clean_text(data.name).split())
    calendar.add("NAME", vText(name))  # RFC 7986 §5.1
    calendar.add("X-WR-CALNAME", vText(name))
    calendar.add("X-WR-TIMEZONE", data.timezone)
    # RFC 7986 §5.7 requires VALUE=DURATION on REFRESH-INTERVAL.
    calendar.add("REFRESH-INTERVAL", vDuration(data.refresh), parameters={"VALUE": "DURATION"})
    calendar.add("X-PUBLISHED-TTL", vDuration(data.refresh))
    times = [event_times(event) for event in data.events]
    for timezone in _timezones(times):  # before the events that use them
        calendar.add_component(timezone)
    head: bytes = calendar.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert head.endswith(end)
    parts = [head[: -len(end)]]
    parts.extend(event_bytes(event, data.privacy) for event in data.events)
    parts.append(end)
    return b"".join(parts)
