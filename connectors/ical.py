"""iCalendar (RFC 5545) to and from the neutral event type, for connectors that speak ICS.

Parsing expands recurring series inside a window with `recurring-ical-events` (RRULE, RDATE,
EXDATE, and RECURRENCE-ID overrides: a moved instance at its new time, a cancelled one marked
cancelled). Floating times (no zone, RFC 5545 §3.3.5) are read on the clock the caller names
(the calendar's own zone, or else the practitioner's). What real calendars hold and this cannot
read (broken syntax, dates out of range, unknown zones it cannot resolve) raises `Unreadable`
with the reason in words; objects without a VEVENT (tasks, journals) raise `NotAnEvent`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events

from connectors import ical_zones
from connectors.base import Event, EventStatus, RemoteItem, Skipped, Transparency, Window
from gateway.timezones import vtimezone

PRODID = "-//calgate//sync//EN"
_STATUSES: dict[str, EventStatus] = {
    "CONFIRMED": "confirmed",
    "TENTATIVE": "tentative",
    "CANCELLED": "cancelled",
}


def _zone_name(value: datetime) -> str | None:
    tz = value.tzinfo
    if tz is None:
        return None
    key = getattr(tz, "key", None)
    if isinstance(key, str):
        return key
    zone = getattr(tz, "zone", None)  # pytz / dateutil style
    return zone if isinstance(zone, str) else None


class NotAnEvent(ValueError):
    """The object holds no VEVENT (a task, a journal, free/busy): nothing to sync."""


class Unreadable(ValueError):
    """The object cannot be read as events; the message says why, in words."""


# A series is expanded inside the sync window, up to this many occurrences: a rule firing every
# minute (or COUNT=100000) must not stall a sync or flood the busy time.
MAX_OCCURRENCES = 2000


def _moment(value: Any, floating: tzinfo = UTC) -> datetime | date:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=floating)
    if isinstance(value, date):
        return value
    raise ValueError("not a date or date-time")


def _text(component: Any, name: str) -> str | None:
    value = component.get(name)
    return None if value is None else str(value)


def component_to_event(component: Any, etag: str | None = None, floating: tzinfo = UTC) -> Event:
    """One VEVENT (or an expanded occurrence of one) as a neutral Event; floating times read
    on the clock of `floating`."""
    start_raw = component.decoded("DTSTART")
    start = _moment(start_raw, floating)
    if "DTEND" in component:
        end = _moment(component.decoded("DTEND"), floating)
    elif "DURATION" in component:
        end = start + component.decoded("DURATION")
    else:
        end = start + timedelta(days=1) if not isinstance(start, datetime) else start
    for moment in (start, end):
        if isinstance(moment, datetime):
            try:
                moment.astimezone(UTC)  # a VTIMEZONE with broken rules fails here, not later
            except (ValueError, TypeError, OverflowError, IndexError) as exc:
                raise Unreadable("its time zone definition cannot be used") from exc
    transp = str(component.get("TRANSP", "OPAQUE")).upper()
    transparency: Transparency = "transparent" if transp == "TRANSPARENT" else "opaque"
    recurrence = component.get("RECURRENCE-ID")
    modified = component.get("LAST-MODIFIED")
    return Event(
        uid=str(component.get("UID", "")),
        start=start,
        end=end,
        timezone=_zone_name(start_raw) if isinstance(start_raw, datetime) else None,
        title=_text(component, "SUMMARY") or "",
        location=_text(component, "LOCATION"),
        description=_text(component, "DESCRIPTION"),
        status=_STATUSES.get(str(component.get("STATUS", "CONFIRMED")).upper(), "confirmed"),
        transparency=transparency,
        recurrence_id=_moment(recurrence.dt, floating) if recurrence is not None else None,
        etag=etag,
        last_modified=_moment(modified.dt) if modified is not None else None,  # type: ignore[arg-type]
    )


def parse_item(
    href: str, etag: str, data: str | bytes, window: Window, floating: tzinfo = UTC
) -> RemoteItem:
    """A stored calendar object: its events, recurring series expanded inside `window` (at most
    MAX_OCCURRENCES), floating times read on the clock of `floating`.

    Raises NotAnEvent when the object holds no VEVENT and Unreadable, saying why, when it
    cannot be read; never anything else, whatever the object holds.
    """
    try:
        return _parse_item(href, etag, data, window, floating)
    except (NotAnEvent, Unreadable):
        raise
    except UnicodeError:
        raise Unreadable("its text is not valid UTF-8") from None
    except (OverflowError, OSError):
        raise Unreadable("it holds a date out of the supported range") from None
    except RecursionError:
        raise Unreadable("it is nested too deeply") from None
    except Exception as exc:  # the parsers raise many types on malformed data
        raise Unreadable(f"it is not valid iCalendar ({type(exc).__name__})") from None


def read_listed(
    href: str,
    etag: str,
    data: str | bytes,
    window: Window,
    floating: tzinfo,
    skipped: list[Skipped],
) -> RemoteItem | None:
    """`parse_item` for an object met in a listing, where one bad object must not stop the rest:
    None for a task or journal (not ours to sync); an unreadable object is added to `skipped`
    with the reason in words (logged for the practitioner, never taken for a deletion)."""
    try:
        return parse_item(href, etag, data, window, floating)
    except NotAnEvent:
        return None
    except Unreadable as exc:
        skipped.append(Skipped(href, str(exc)))
        return None


def _parse_item(
    href: str, etag: str, data: str | bytes, window: Window, floating: tzinfo
) -> RemoteItem:
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    # Zones the body defines get private names first: icalendar keeps definitions by TZID for
    # the whole process, and another account's "Custom/Zone" must not give this one its rules.
    calendar = icalendar.Calendar.from_ical(ical_zones.isolate(data))
    _check_zone_rules(calendar)
    vevents = [c for c in calendar.walk("VEVENT")]
    if not vevents:
        raise NotAnEvent("no VEVENT")
    masters = [c for c in vevents if c.get("RECURRENCE-ID") is None]
    head = masters[0] if masters else vevents[0]
    uid = str(head.get("UID", ""))
    recurring = any("RRULE" in c or "RDATE" in c for c in masters) or not masters
    if not recurring:
        return RemoteItem(href, etag, uid, (component_to_event(head, etag, floating),), False)
    query = recurring_ical_events.of(calendar, skip_bad_series=True)
    # Expanded in spans that double from one day: a rule firing every minute stops after a
    # few thousand occurrences instead of expanding the whole window (or the years to 2200).
    events: list[Event] = []
    span_start, span = window.start, timedelta(days=1)
    while span_start < window.end and len(events) < MAX_OCCURRENCES:
        span_end = min(span_start + span, window.end)
        for occurrence in query.between(span_start, span_end):
            event = component_to_event(occurrence, etag, floating)
            if _starts_before(event, span_start) and span_start > window.start:
                continue  # began in an earlier span, already taken
            events.append(event)
        span_start, span = span_end, span * 2
    events = events[:MAX_OCCURRENCES]
    return RemoteItem(href, etag, uid, tuple(events), True)


_BYDAY = re.compile(r"([+-]?\d{1,3})?(MO|TU|WE|TH|FR|SA|SU)")


def _check_zone_rules(calendar: Any) -> None:
    """Refuse a VTIMEZONE whose rules name no real day (BYMONTH=13, the 9th Sunday of a
    month): computing an offset from them searches the calendar to year 9999."""
    for timezone in calendar.walk("VTIMEZONE"):
        for part in timezone.subcomponents:
            rule = part.get("RRULE")
            if rule is None:
                continue
            months = [int(m) for m in rule.get("BYMONTH", [])]
            if any(not 1 <= m <= 12 for m in months):
                raise Unreadable("its time zone definition names a month that does not exist")
            for day in rule.get("BYDAY", []):
                found = _BYDAY.fullmatch(str(day))
                ordinal = int(found.group(1) or 0) if found else 99
                if abs(ordinal) > (5 if months else 53):
                    raise Unreadable("its time zone definition names a day that does not exist")


def _starts_before(event: Event, moment: datetime) -> bool:
    if isinstance(event.start, datetime):
        return event.start < moment
    return event.start < moment.date()


def calendar_zone(vtimezone: str) -> ZoneInfo | None:
    """The zone a CALDAV:calendar-timezone property (a VCALENDAR holding one VTIMEZONE) names,
    when it is an IANA zone this machine knows; None otherwise."""
    try:
        calendar = icalendar.Calendar.from_ical(ical_zones.isolate(vtimezone))
        found = [str(c.get("TZID", "")) for c in calendar.walk("VTIMEZONE")]
    except Exception:  # an unreadable property is no zone
        return None
    return _zone(found[0]) if found else None


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _ambiguous(local: datetime) -> bool:
    """True when the zone shows this wall-clock time twice (DST fall-back): RFC 5545 §3.3.5
    reads such a TZID time as the first of the two, whichever we meant."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()


def written_time(value: datetime, zone: ZoneInfo | None) -> datetime:
    """`value` as DTSTART/DTEND should carry it: on the clock of `zone` when that names one
    instant, in UTC otherwise (no zone, or a repeated wall-clock time)."""
    if zone is not None:
        local = value.astimezone(zone)
        if not _ambiguous(local):
            return local
    return value.astimezone(UTC)


def event_to_ics(event: Event, stamp: datetime) -> str:
    """A VCALENDAR holding `event`, times in its zone (with VTIMEZONE) when it has one, and in
    UTC where a local time would be ambiguous."""
    calendar = icalendar.Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    vevent = icalendar.Event()
    vevent.add("UID", event.uid)
    vevent.add("DTSTAMP", stamp.astimezone(UTC))
    zone = _zone(event.timezone)
    for name, value in (("DTSTART", event.start), ("DTEND", event.end)):
        if isinstance(value, datetime):
            vevent.add(name, written_time(value, zone))
        else:
            vevent.add(name, value)
    vevent.add("SUMMARY", event.title)
    if event.location:
        vevent.add("LOCATION", event.location)
    if event.description:
        vevent.add("DESCRIPTION", event.description)
    vevent.add("STATUS", event.status.upper())
    vevent.add("TRANSP", event.transparency.upper())
    if event.last_modified is not None:
        vevent.add("LAST-MODIFIED", event.last_modified.astimezone(UTC))
    zoned = [v for v in (event.start, event.end) if isinstance(v, datetime)]
    key = getattr(zone, "key", None)
    if key and any(written_time(v, zone).tzinfo not in (UTC, None) for v in zoned):
        years = [v.astimezone(zone).year for v in zoned]
        calendar.add_component(vtimezone(key, min(years) - 1, max(years) + 1))
    calendar.add_component(vevent)
    return cast(bytes, calendar.to_ical()).decode("utf-8")
