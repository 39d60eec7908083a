""" "Add to my calendar": one appointment as a ``.ics`` file, and Google / Outlook links.

The file holds one VEVENT with the UID used everywhere else (feeds, invitations, synced
calendars: `gateway.domain.uids`), so an app that already shows the appointment updates it
instead of adding a copy; SEQUENCE is the appointment's version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from icalendar import Calendar, Event

from gateway.domain.uids import appointment_uid
from gateway.store.models import Appointment

PRODID = "-//calgate//client page//EN"
GOOGLE_TEMPLATE = "https://calendar.google.com/calendar/render?"
OUTLOOK_COMPOSE = "https://outlook.live.com/calendar/0/deeplink/compose?"


def event_ics(appointment: Appointment, practitioner: str, stamp: datetime) -> str:
    """A VCALENDAR (METHOD:PUBLISH) with the one appointment, CRLF line ends."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = Event()
    event.add("uid", appointment_uid(appointment.id))
    event.add("sequence", appointment.version)
    event.add("dtstamp", stamp)
    event.add("dtstart", appointment.start_at)
    event.add("dtend", appointment.end_at)
    event.add("summary", appointment.title)
    event.add("description", practitioner)
    if appointment.location:
        event.add("location", appointment.location)
    event.add("status", "CONFIRMED")
    cal.add_component(event)
    return str(cal.to_ical().decode("utf-8"))


def _google_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def google_link(appointment: Appointment, practitioner: str) -> str:
    """Google Calendar's "create event" template link, times in UTC."""
    query = {
        "action": "TEMPLATE",
        "text": appointment.title,
        "dates": f"{_google_time(appointment.start_at)}/{_google_time(appointment.end_at)}",
        "details": practitioner,
        "location": appointment.location or "",
    }
    return GOOGLE_TEMPLATE + urlencode(query)


def outlook_link(appointment: Appointment, practitioner: str) -> str:
    """Outlook on the web's compose link (ISO 8601 times in UTC)."""
    query = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": appointment.title,
        "startdt": appointment.start_at.astimezone(UTC).isoformat(),
        "enddt": appointment.end_at.astimezone(UTC).isoformat(),
        "body": practitioner,
        "location": appointment.location or "",
    }
    return OUTLOOK_COMPOSE + urlencode(query)
