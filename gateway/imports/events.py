"""Appointments from an .ics (a practitioner moving from another system): each VEVENT becomes
an appointment of the chosen practitioner, with the client whose email is the event's ATTENDEE
(created from the attendee's name and email when there is none). An event already imported
(same UID) is not imported again.

The body is streamed: split into components as it arrives and each parsed on its own
(gateway/imports/ics_stream.py), so memory holds one event at a time; it is never written to
disk.

Notifications (`notify`): an imported appointment was booked in the old system, which told the
client already, so by default it gets no confirmation, only the reminders any appointment gets
(``reminders``); ``none`` plans nothing at all, ``all`` a confirmation too, as for a booking
made now.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from icalendar import Component
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Event
from connectors.ical import component_to_event
from gateway.domain.appointments import NOTIFY_REMINDERS, create_appointment
from gateway.domain.people import create_client
from gateway.domain.scoping import get_referenced
from gateway.errors import ValidationFailed
from gateway.imports.ics_stream import components
from gateway.imports.report import ImportReport
from gateway.imports.streams import text_lines
from gateway.store.account_models import ImportedEvent
from gateway.store.models import Account, Client, User
from gateway.timezones import is_known_zone, zone

IMPORT_SOURCE = "import"  # AppointmentChange.source of an imported appointment
# Our fields → the iCalendar property a problem with them is reported on.
_PROPERTY_OF = {"start": "DTSTART", "end": "DTEND", "title": "SUMMARY", "location": "LOCATION"}


class _Skip(Exception):
    def __init__(self, column: str, problem: str) -> None:
        self.column, self.problem = column, problem


def uid_hash(uid: str) -> str:
    """How an imported UID is kept (UIDs may hold addresses)."""
    return hashlib.sha256(uid.encode()).hexdigest()


def _times(component: Component, user: User) -> Event:
    """The event through the sync's own reader (connectors/ical.py); a floating time is on
    the practitioner's clock here (a calendar exported from their own system)."""
    if component.get("DTSTART") is None:
        raise _Skip("DTSTART", "is missing")
    try:
        event = component_to_event(component)
    except (ValueError, TypeError):
        raise _Skip("DTSTART", "is not a date-time") from None
    if not isinstance(event.start, datetime) or not isinstance(event.end, datetime):
        raise _Skip("DTSTART", "is a date (an all-day event), not a time: not an appointment")
    if component.decoded("DTSTART").tzinfo is None:
        local = zone(user.timezone)
        span = event.end - event.start
        start = event.start.replace(tzinfo=local)
        event = replace(event, start=start, end=start + span, timezone=None)
    if event.end == event.start and component.get("DTEND") is None:
        # No DTEND nor DURATION: RFC 5545 §3.6.1 makes it an instant; an hour is bookable.
        event = replace(event, end=event.start + timedelta(hours=1))
    return event


def _attendee(event: Component) -> tuple[str, str | None]:
    attendees = event.get("ATTENDEE")
    for attendee in attendees if isinstance(attendees, list) else [attendees]:
        if attendee is None:
            continue
        address = str(attendee)
        if address.lower().startswith("mailto:"):
            name = attendee.params.get("CN") if hasattr(attendee, "params") else None
            return address[7:], str(name) if name else None
    raise _Skip("ATTENDEE", "no attendee with an email address: whom is it with?")


async def _client_for(
    session: AsyncSession, account: Account, email: str, name: str | None
) -> Client:
    found = await session.scalar(
        select(Client).where(Client.account_id == account.id, Client.email == email.lower())
    )
    if found is not None:
        return found
    try:
        return await create_client(session, account, {"name": name or email, "email": email})
    except ValidationFailed as exc:
        raise _Skip("ATTENDEE", exc.message) from None


async def _one(
    session: AsyncSession,
    account: Account,
    user: User,
    event: Component,
    report: ImportReport,
    notify: str,
) -> None:
    uid = str(event.get("UID") or "").strip()
    if not uid:
        raise _Skip("UID", "is missing: it is what lets the same file be imported twice")
    if event.get("RRULE") is not None:
        raise _Skip("RRULE", "recurring events are not imported: export single occurrences")
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        raise _Skip("STATUS", "the event is cancelled")
    digest = uid_hash(uid)
    seen = await session.scalar(
        select(ImportedEvent.id).where(
            ImportedEvent.account_id == account.id, ImportedEvent.uid_hash == digest
        )
    )
    if seen is not None:
        report.already_present += 1
        return
    times = _times(event, user)
    email, name = _attendee(event)
    client = await _client_for(session, account, email, name)
    values: dict[str, Any] = {
        "user_id": user.id,
        "client_id": client.id,
        "start_at": times.start,
        "end_at": times.end,
        "timezone": times.timezone if times.timezone and is_known_zone(times.timezone) else None,
        "title": (times.title or "Appointment")[:500],
        "location": times.location,
        "notes": times.description,
    }
    try:
        # Every check comes before the row is added: a refusal leaves nothing behind.
        appointment = await create_appointment(
            session, account, values, source=IMPORT_SOURCE, notify=notify
        )
    except ValidationFailed as exc:
        field = exc.problems[0].field if exc.problems else "VEVENT"
        raise _Skip(_PROPERTY_OF.get(field, field), exc.message) from None
    session.add(
        ImportedEvent(account_id=account.id, uid_hash=digest, appointment_id=appointment.id)
    )
    report.imported += 1


async def import_events(
    session: AsyncSession,
    account: Account,
    user_id: str,
    chunks: AsyncIterator[bytes],
    notify: str = NOTIFY_REMINDERS,
) -> ImportReport:
    """Import the calendar's events as appointments of `user_id` (in the session's
    transaction); `notify` as in the module docstring."""
    user = await get_referenced(session, User, account, user_id, "user_id")
    report = ImportReport("appointments")
    number = 0
    async for piece in components(text_lines(chunks)):
        if piece.name != "VEVENT":
            continue  # time zones are registered as they are read; to-dos, journals ignored
        number += 1
        report.rows += 1
        try:
            if piece.component is None:
                raise _Skip("VEVENT", piece.problem or "cannot be read")
            await _one(session, account, user, piece.component, report, notify)
        except _Skip as skip:
            report.reject(number, skip.column, skip.problem)
    await session.flush()
    return report
