"""The text/calendar part of an email (iTIP, RFC 5546): REQUEST, or CANCEL for a cancellation.

The UID is the one the feeds and synced calendars use (gateway/domain/uids.py), so a calendar
app merges the invitation with the event it already shows; SEQUENCE is the appointment's
version, so a later change supersedes an earlier one (RFC 5546 §2.1.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress

from gateway.domain.uids import appointment_uid

PRODID = "-//calgate//notifications//EN"


@dataclass(frozen=True)
class Invite:
    """What the invitation says."""

    appointment_id: str
    version: int
    start: datetime
    end: datetime
    summary: str
    location: str | None
    organizer_email: str
    organizer_name: str
    attendee_email: str
    attendee_name: str
    cancelled: bool
    stamp: datetime


def _param(value: str) -> str:
    # A parameter value may not hold quotes or line breaks (RFC 5545 §3.2); collapse them.
    return " ".join(value.replace('"', "'").split())


def method_of(invite: Invite) -> str:
    """The iTIP method, equal to the MIME part's ``method=`` parameter."""
    return "CANCEL" if invite.cancelled else "REQUEST"


def build_ics(invite: Invite) -> str:
    """The VCALENDAR text, with CRLF line ends."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", method_of(invite))
    event = Event()
    event.add("uid", appointment_uid(invite.appointment_id))
    event.add("sequence", invite.version)
    event.add("dtstamp", invite.stamp)
    # UTC: exact whatever the zone (a local time in a repeated hour would be read as the first).
    event.add("dtstart", invite.start.astimezone(UTC))
    event.add("dtend", invite.end.astimezone(UTC))
    event.add("summary", invite.summary)
    if invite.location:
        event.add("location", invite.location)
    event.add("status", "CANCELLED" if invite.cancelled else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{invite.organizer_email}")
    organizer.params["CN"] = _param(invite.organizer_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{invite.attendee_email}")
    attendee.params["CN"] = _param(invite.attendee_name)
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = "NEEDS-ACTION"
    attendee.params["RSVP"] = "FALSE"
    event.add("attendee", attendee)
    cal.add_component(event)
    text: str = cal.to_ical().decode("utf-8")
    return text
