"""What to send, to whom, when: outbox rows written in the appointment change's own transaction.

`plan()` is pure (no I/O, no clock): it turns a change and the people involved into rows.
`on_appointment_change()` gathers the inputs, withdraws the older version's pending rows and
inserts the new ones with ``ON CONFLICT DO NOTHING`` on the idempotency key, so planning the
same change twice (a retried request, two processes) cannot produce a second message.

Rules:
- created → a confirmation now, and a reminder per offset before the start.
- rescheduled → every pending row of older versions is cancelled; a "rescheduled" notice now
  (a "confirmation" if the recipient never received one), and the reminders anew.
- edited (title, notes, location) → nothing new: messages render at send time, so pending
  reminders already carry the edit. A change of client or practitioner re-plans like a booking.
- cancelled → pending rows cancelled; a cancellation notice to every recipient who already
  received something (or is being sent something right now) on that channel.
- Quiet hours (SMS always; email when `quiet_email` is set): a reschedule or cancellation notice
  due inside the recipient's quiet window moves to its end, or goes at once when the end would
  be at or after the appointment. Every reminder, late or not, moves to the window's end, or to
  its start when the end is too late and the start still ahead, else it is skipped (see
  `reminder_time`). A confirmation is never delayed.
- Reminder offsets are exact durations before the start instant (a "24 h" reminder before a
  09:00 appointment on the morning after a DST change goes out at 08:00 or 10:00 local time).
- A reminder already past at planning time follows the late policy, judged at the moment it
  would really go out after quiet hours (default: send if at least half the offset remains
  then, else skip).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.notify import optouts
from gateway.notify import prefs as prefs_mod
from gateway.notify.quiet import adjust_for_quiet, quiet_window
from gateway.store.db import session_settings
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.notify_models import (
    CANCELLED,
    DELIVERED,
    PENDING,
    SENT,
    SKIPPED,
    SUPPRESSED,
    UNDELIVERED,
    OutboxMessage,
)
from gateway.store.types import new_id, utcnow
from gateway.timezones import zone as load_zone

if TYPE_CHECKING:  # appointments.py imports this module: no import cycle at run time
    from gateway.domain.appointments import AppointmentChange

NOTICE_OF = {"created": "confirmation", "rescheduled": "rescheduled", "cancelled": "cancellation"}
REACHED = (SENT, DELIVERED, UNDELIVERED)


@dataclass(frozen=True)
class Recipient:
    """One person on one channel, with where and how to reach them."""

    type: str  # client | user
    id: str
    channel: str  # email | sms
    zone: str
    suppressed: str | None = None  # why nothing may be sent (kept in the log as such)


@dataclass(frozen=True)
class PlannedRow:
    """One outbox row to insert."""

    recipient: Recipient
    kind: str
    offset_minutes: int
    due_at: datetime
    deadline_at: datetime
    status: str
    note: str | None


def idem_key(appointment_id: str, r: Recipient, kind: str, offset: int, version: int) -> str:
    """The idempotency key: (appointment, recipient, channel, kind, offset, version)."""
    return f"{appointment_id}:{r.type}:{r.id}:{r.channel}:{kind}:{offset}:{version}"


def sms_block_reason(client: Client, allowed: tuple[str, ...], opted_out: bool) -> str | None:
    """Why `client` may not get an SMS now, or None."""
    if not client.phone:
        return "no phone number"
    if not client.sms_consent:
        return "no SMS consent"
    if opted_out:
        return "number opted out (STOP)"
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(client.phone, None))
    except phonenumbers.NumberParseException:
        return "unreadable phone number"
    if region not in allowed:
        return f"country {region} not allowed for SMS"
    return None


def plan(
    *,
    kind: str | None,
    recipients: list[Recipient],
    start: datetime,
    now: datetime,
    offsets: tuple[int, ...],
    prefs: prefs_mod.Prefs,
    retry: timedelta,
    notice_kind_for: dict[tuple[str, str, str], str],
) -> list[PlannedRow]:
    """The rows for one appointment version. `kind` is the notice (None: reminders only)."""
    rows: list[PlannedRow] = []
    if start <= now:
        return rows  # nothing is announced or reminded about the past
    for r in recipients:
        status = SUPPRESSED if r.suppressed else PENDING
        zone = load_zone(r.zone)
        quiet = r.channel == "sms" or prefs.quiet_email
        if kind is not None:
            notice = notice_kind_for.get((r.type, r.id, r.channel), kind)
            due = now
            if quiet and notice != "confirmation":  # a booking made now is confirmed now
                due = max(
                    now, adjust_for_quiet(now, zone, prefs.quiet_start, prefs.quiet_end, start)
                )
            rows.append(
                PlannedRow(r, notice, 0, due, min(start, now + retry), status, r.suppressed)
            )
        if kind == "cancellation":
            continue
        for minutes in offsets:
            due, row_status, note = reminder_time(
                start - timedelta(minutes=minutes), start, now, minutes, zone, prefs, quiet
            )
            if row_status == PENDING and r.suppressed:  # the log says why nothing went
                row_status, note = SUPPRESSED, r.suppressed
            rows.append(PlannedRow(r, "reminder", minutes, due, start, row_status, note))
    return rows


def reminder_time(
    nominal: datetime,
    start: datetime,
    now: datetime,
    minutes: int,
    zone: ZoneInfo,
    prefs: prefs_mod.Prefs,
    quiet: bool,
) -> tuple[datetime, str, str | None]:
    """When a reminder due at `nominal` goes out: (due, status, note).

    Late or not, a reminder on a quiet channel never goes out inside the recipient's quiet
    window: it moves to the window's end, or to the window's start when the end is at or after
    the appointment and the start is still ahead; when neither is possible (a booking made in
    the night for an appointment before the night ends) it is skipped. A late reminder (its
    time already past) is judged by the late policy at the moment it would really go out:
    `half` wants at least half the offset left then, `send` any time before the start, `skip`
    never sends.
    """
    late = nominal < now
    due = now if late else nominal
    if quiet:
        window = quiet_window(due, zone, prefs.quiet_start, prefs.quiet_end)
        if window is not None:
            begin, finish = window
            if finish < start:
                due = finish
            elif begin > now:
                due = begin
            else:
                return now, SKIPPED, "quiet hours until the appointment"
    if not late:
        return due, PENDING, None
    useful = prefs.late_policy == "send" or (
        prefs.late_policy == "half" and start - due >= timedelta(minutes=minutes) / 2
    )
    if not useful:
        return now, SKIPPED, f"late at booking (policy {prefs.late_policy})"
    return due, PENDING, None


async def _recipients(
    session: AsyncSession,
    appointment: Appointment,
    prefs: prefs_mod.Prefs,
) -> list[Recipient]:
    client = await session.get(Client, appointment.client_id)
    user = await session.get(User, appointment.user_id)
    out: list[Recipient] = []
    if client is not None and user is not None:
        zone = client.timezone or user.timezone
        if prefs.email_enabled and client.notify_email and client.email:
            out.append(Recipient("client", client.id, "email", zone))
        if prefs.sms_enabled and client.notify_sms:
            opted = client.phone is not None and await optouts.is_opted_out(session, client.phone)
            reason = sms_block_reason(client, prefs.sms_countries, opted)
            out.append(Recipient("client", client.id, "sms", zone, reason))
    if user is not None and prefs.notify_practitioner and prefs.email_enabled and user.email:
        out.append(Recipient("user", user.id, "email", user.timezone))
    return out


async def _withdraw_older(session: AsyncSession, appointment: Appointment) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.appointment_id == appointment.id,
            OutboxMessage.status == PENDING,
            OutboxMessage.version < appointment.version,
        )
        .values(status=CANCELLED, last_error="withdrawn by a later change", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def _history(
    session: AsyncSession, appointment_id: str
) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """Who was reached on which channel, and who is being sent something right now."""
    rows = await session.execute(
        select(
            OutboxMessage.recipient_type,
            OutboxMessage.recipient_id,
            OutboxMessage.channel,
            OutboxMessage.status,
            OutboxMessage.lease_expires_at,
        ).where(OutboxMessage.appointment_id == appointment_id)
    )
    reached: set[tuple[str, str, str]] = set()
    in_flight: set[tuple[str, str, str]] = set()
    now = utcnow()
    for rtype, rid, channel, status, lease in rows:
        key = (rtype, rid, channel)
        if status in REACHED:
            reached.add(key)
        elif lease is not None and lease > now:
            in_flight.add(key)
    return reached, in_flight


def message_id_for(row_id: str, settings: Settings) -> str:
    """A Message-ID derived from the outbox row: the same on every retry of that row."""
    host = urlsplit(settings.public_url).hostname or "calgate"
    return f"<{row_id}@{host}>"


async def insert_rows(
    session: AsyncSession,
    settings: Settings,
    appointment: Appointment,
    rows: list[PlannedRow],
    *,
    key_suffix: str = "",
) -> int:
    """Insert `rows`, skipping any whose idempotency key exists; returns how many were new."""
    if not rows:
        return 0
    now = utcnow()
    values: list[dict[str, Any]] = []
    for p in rows:
        row_id = new_id("ntf")
        values.append(
            {
                "id": row_id,
                "account_id": appointment.account_id,
                "appointment_id": appointment.id,
                "recipient_type": p.recipient.type,
                "recipient_id": p.recipient.id,
                "channel": p.recipient.channel,
                "kind": p.kind,
                "offset_minutes": p.offset_minutes,
                "version": appointment.version,
                "idem_key": idem_key(
                    appointment.id, p.recipient, p.kind, p.offset_minutes, appointment.version
                )
                + key_suffix,
                "status": p.status,
                "planned_at": p.due_at,
                "due_at": p.due_at,
                "deadline_at": p.deadline_at,
                "attempts": 0,
                "last_error": p.note,
                "message_id": message_id_for(row_id, settings)
                if p.recipient.channel == "email"
                else None,
                "created_at": now,
                "updated_at": now,
            }
        )
    bind = session.get_bind()
    insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    result = await session.execute(
        insert(OutboxMessage).values(values).on_conflict_do_nothing(index_elements=["idem_key"])
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def on_appointment_change(
    session: AsyncSession, change: AppointmentChange, settings: Settings | None = None
) -> None:
    """Plan the notifications of `change` (called from appointments.after_change)."""
    settings = settings or session_settings(session)
    appointment = change.appointment
    account = await session.get(Account, appointment.account_id)
    if account is None:
        return
    participants_changed = any(k in change.previous for k in ("client_id", "user_id"))
    if change.kind == "edited" and not participants_changed:
        return
    if change.notify == "none":  # NOTIFY_NONE
        return
    kind: str | None = NOTICE_OF.get(change.kind, "confirmation")
    if change.kind == "created" and change.notify == "reminders":  # NOTIFY_REMINDERS
        kind = None  # an imported booking: the old system confirmed it; reminders only
    prefs = await prefs_mod.account_prefs(session, settings, account)
    recipients = await _recipients(session, appointment, prefs)
    reached, in_flight = await _history(session, appointment.id)
    if change.kind != "created":
        await _withdraw_older(session, appointment)
    notice_kind_for: dict[tuple[str, str, str], str] = {}
    if change.kind == "cancelled":
        recipients = [r for r in recipients if (r.type, r.id, r.channel) in reached | in_flight]
    elif change.kind in ("rescheduled", "edited"):
        for r in recipients:
            key = (r.type, r.id, r.channel)
            notice_kind_for[key] = "rescheduled" if key in reached | in_flight else "confirmation"
    offsets = await prefs_mod.client_offsets(session, appointment.client_id)
    rows = plan(
        kind=kind,
        recipients=recipients,
        start=appointment.start_at,
        now=utcnow(),
        offsets=offsets if offsets is not None else prefs.reminder_minutes,
        prefs=prefs,
        retry=timedelta(hours=settings.notify_retry_hours),
        notice_kind_for=notice_kind_for,
    )
    if participants_changed:
        rows += await _farewells(session, appointment, recipients, reached | in_flight, settings)
    await insert_rows(session, settings, appointment, rows)


async def _farewells(
    session: AsyncSession,
    appointment: Appointment,
    recipients: list[Recipient],
    reached: set[tuple[str, str, str]],
    settings: Settings,
) -> list[PlannedRow]:
    """Cancellation notices to people taken off the appointment who had heard of it."""
    now = utcnow()
    current = {(r.type, r.id, r.channel) for r in recipients}
    out: list[PlannedRow] = []
    for rtype, rid, channel in sorted(reached - current):
        person = await session.get(Client if rtype == "client" else User, rid)
        practitioner = await session.get(User, appointment.user_id)
        if person is None or practitioner is None:
            continue
        zone = getattr(person, "timezone", None) or practitioner.timezone
        deadline = now + timedelta(hours=settings.notify_retry_hours)
        recipient = Recipient(rtype, rid, channel, zone)
        out.append(PlannedRow(recipient, "cancellation", 0, now, deadline, PENDING, None))
    return out
