"""What to send: one claimed notification's snapshot turned into the message its channel sends.

`compose` is pure: no database, no clock, no I/O. Everything it needs was read inside the claim
transaction into a frozen `Snapshot`; it renders the words (Jinja, Babel) in the recipient's
zone and language and builds the wire form (MIME with the invitation for email, GSM-folded text
for SMS). It runs after the claim's commit, one message at a time between sends, so rendering
neither holds the database's write lock nor stops the connections already sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.notify.channels.base import Outgoing
from gateway.notify.channels.email import EmailEnvelope, build_message
from gateway.notify.channels.sms import fold_to_gsm
from gateway.notify.invite import Invite, build_ics, method_of
from gateway.notify.prefs import Prefs
from gateway.notify.rendering import Overrides, message_context, render

# Notices that carry an invitation, and its method.
_INVITES = {"confirmation", "rescheduled", "cancellation"}


@dataclass(frozen=True)
class Snapshot:
    """One notification as read at claim time: the row, its recipient, the appointment."""

    row_id: str
    kind: str
    channel: str  # email | sms
    offset_minutes: int
    recipient_type: str  # client | user
    message_id: str | None
    name: str
    locale: str
    zone: str
    email: str | None
    phone: str | None
    client_name: str
    practitioner_name: str
    appointment_id: str
    version: int
    start: datetime
    end: datetime
    title: str
    location: str | None
    prefs: Prefs
    overrides: Overrides
    public_url: str
    now: datetime  # the claim's instant: the invitation's DTSTAMP
    manage_url: str = ""  # a client's own page: the signed link (email) or a short one (SMS)


def compose(s: Snapshot) -> Outgoing:
    """The message `s` describes, ready for its channel; raises what rendering raises."""
    context = message_context(
        kind=s.kind,
        locale=s.locale,
        zone=s.zone,
        start=s.start,
        end=s.end,
        offset_minutes=s.offset_minutes,
        recipient_name=s.name,
        client_name=s.client_name,
        practitioner_name=s.practitioner_name,
        business_name=s.prefs.sender_name,
        title=s.title,
        location=s.location,
        for_practitioner=s.recipient_type == "user",
        manage_url=s.manage_url,
        calendar_url=(
            f"{s.manage_url}/appointments/{s.appointment_id}.ics"
            if s.manage_url and s.channel == "email" and s.kind != "cancellation"
            else ""
        ),
    )
    rendered = render(s.channel, s.kind, s.locale, context, s.overrides)
    if s.channel == "sms":
        if s.phone is None:
            raise ValueError("an SMS snapshot without a phone number")
        return Outgoing(
            channel="sms",
            recipient=s.phone,
            payload=fold_to_gsm(rendered.text),
            token=s.row_id,
            sender=s.prefs.sms_sender,
            callback=f"{s.public_url}/webhooks/twilio/status?n={s.row_id}",
        )
    if s.email is None:
        raise ValueError("an email snapshot without an address")
    envelope = EmailEnvelope(
        message_id=s.message_id or f"<{s.row_id}@calgate>",
        from_name=s.prefs.sender_name,
        from_address=s.prefs.email_from,
        reply_to=s.prefs.email_reply_to,
        to_name=s.name,
        to_address=s.email,
        unsubscribe_url=f"{s.manage_url}/unsubscribe" if s.manage_url else None,
    )
    ics = method = None
    if s.kind in _INVITES and s.recipient_type == "client":
        invite = Invite(
            appointment_id=s.appointment_id,
            version=s.version,
            start=s.start,
            end=s.end,
            summary=s.title,
            location=s.location,
            organizer_email=s.prefs.email_from,
            organizer_name=f"{s.practitioner_name} ({s.prefs.sender_name})",
            attendee_email=s.email,
            attendee_name=s.name,
            cancelled=s.kind == "cancellation",
            stamp=s.now,
        )
        ics, method = build_ics(invite), method_of(invite)
    return Outgoing(
        channel="email",
        recipient=s.email,
        payload=build_message(envelope, rendered, ics, method),
        token=s.row_id,
        sender=s.prefs.email_from,
    )
