"""Account-facing operations of the notification stage: settings, overrides, log, resend.

Called by gateway/api/notifications.py; services never commit (the API dependency does).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import phonenumbers
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain.contacts import normalize_email
from gateway.domain.scoping import get_owned
from gateway.errors import Conflict, ValidationFailed
from gateway.notify import prefs as prefs_mod
from gateway.notify.channels.senders import parse_sms_sender
from gateway.notify.planner import PlannedRow, Recipient, insert_rows
from gateway.notify.rendering import check_template, locale_chain
from gateway.store.models import Account, Appointment, Client, User
from gateway.store.notify_models import (
    PENDING,
    DeliveryAttempt,
    NotifyAccountSettings,
    NotifyClientSettings,
    NotifyTemplate,
    OutboxMessage,
)
from gateway.store.types import new_id, utcnow


def _one_line(value: str, field: str) -> str:
    if any(not ch.isprintable() for ch in value):
        raise ValidationFailed.one(field, "must be one line of printable characters")
    return value.strip()


async def update_settings(
    session: AsyncSession, settings: Settings, account: Account, changes: dict[str, Any]
) -> prefs_mod.Prefs:
    """Change an account's notification settings; absent keys stay, null restores the default."""
    row = await session.get(NotifyAccountSettings, account.id)
    if row is None:
        row = NotifyAccountSettings(
            account_id=account.id, email_enabled=True, sms_enabled=True, notify_practitioner=False
        )
        session.add(row)
    for key, value in changes.items():
        if key == "reminder_offsets":
            row.reminder_minutes = None if value is None else prefs_mod.parse_offsets(value)
        elif key in ("quiet_start", "quiet_end"):
            if value is not None:
                prefs_mod.parse_hhmm(value, key)
            setattr(row, key, value)
        elif key == "late_policy":
            if value is not None and value not in prefs_mod.LATE_POLICIES:
                raise ValidationFailed.one(key, "must be half, send or skip")
            row.late_policy = value
        elif key == "sms_countries":
            if value is not None:
                upper = [c.upper() for c in value]
                bad = [c for c in upper if c not in phonenumbers.SUPPORTED_REGIONS]
                if bad:
                    raise ValidationFailed.one(key, f"unknown country code {bad[0]!r}")
                value = sorted(set(upper))
            row.sms_countries = value
        elif key in ("email_from", "email_reply_to"):
            row_value = None if value is None else normalize_email(value, key)
            setattr(row, key, row_value)
        elif key == "sms_sender":
            try:
                row.sms_sender = None if value is None else parse_sms_sender(value)
            except ValueError as exc:
                raise ValidationFailed.one(key, str(exc)) from None
        elif key == "sender_name":
            row.sender_name = None if value is None else _one_line(value, key)
        elif key in ("email_enabled", "sms_enabled", "notify_practitioner"):
            setattr(row, key, bool(value) if value is not None else key != "notify_practitioner")
        elif key == "quiet_email":
            row.quiet_email = value
    row.updated_at = utcnow()
    await session.flush()
    return prefs_mod.effective(settings, account, row)


async def set_client_offsets(
    session: AsyncSession, account: Account, client_id: str, offsets: list[str] | None
) -> tuple[int, ...] | None:
    """Give a client their own reminder offsets (None: back to the account's)."""
    await get_owned(session, Client, account, client_id)
    row = await session.get(NotifyClientSettings, client_id)
    if offsets is None:
        if row is not None:
            await session.delete(row)
        return None
    minutes = prefs_mod.parse_offsets(offsets)
    if row is None:
        row = NotifyClientSettings(
            client_id=client_id, account_id=account.id, reminder_minutes=minutes
        )
        session.add(row)
    else:
        row.reminder_minutes = minutes
        row.updated_at = utcnow()
    await session.flush()
    return tuple(minutes)


async def save_template(
    session: AsyncSession,
    account: Account,
    channel: str,
    kind: str,
    locale: str,
    parts: dict[str, str],
) -> list[NotifyTemplate]:
    """Store overrides for the given parts after compiling and test-rendering each."""
    if not parts:
        raise ValidationFailed.one("parts", "give at least one part")
    if locale_chain(locale)[0] != locale or len(locale) > 35:
        raise ValidationFailed.one("locale", "must be a tag such as en or fr-CA")
    for part, source in parts.items():
        check_template(channel, kind, locale, part, source)
    saved: list[NotifyTemplate] = []
    for part, source in parts.items():
        row = await session.scalar(
            select(NotifyTemplate).where(
                NotifyTemplate.account_id == account.id,
                NotifyTemplate.channel == channel,
                NotifyTemplate.kind == kind,
                NotifyTemplate.locale == locale,
                NotifyTemplate.part == part,
            )
        )
        if row is None:
            row = NotifyTemplate(
                account_id=account.id,
                channel=channel,
                kind=kind,
                locale=locale,
                part=part,
                source=source,
            )
            session.add(row)
        else:
            row.source = source
            row.updated_at = utcnow()
        saved.append(row)
    await session.flush()
    return saved


async def delete_templates(
    session: AsyncSession, account: Account, channel: str, kind: str, locale: str
) -> None:
    """Remove an account's overrides for one channel, kind and locale."""
    await session.execute(
        delete(NotifyTemplate).where(
            NotifyTemplate.account_id == account.id,
            NotifyTemplate.channel == channel,
            NotifyTemplate.kind == kind,
            NotifyTemplate.locale == locale,
        )
    )


async def list_templates(session: AsyncSession, account: Account) -> list[NotifyTemplate]:
    """An account's overrides."""
    rows = await session.scalars(
        select(NotifyTemplate)
        .where(NotifyTemplate.account_id == account.id)
        .order_by(NotifyTemplate.channel, NotifyTemplate.kind, NotifyTemplate.locale)
    )
    return list(rows)


async def appointment_log(
    session: AsyncSession, account: Account, appointment_id: str
) -> list[tuple[OutboxMessage, list[DeliveryAttempt]]]:
    """Every outbox row of an appointment with its attempts, in due order."""
    await get_owned(session, Appointment, account, appointment_id)
    rows = list(
        await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.appointment_id == appointment_id)
            .order_by(OutboxMessage.planned_at, OutboxMessage.id)
        )
    )
    attempts: dict[str, list[DeliveryAttempt]] = {r.id: [] for r in rows}
    if rows:
        for a in await session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.outbox_id.in_(list(attempts)))
            .order_by(DeliveryAttempt.started_at, DeliveryAttempt.attempt)
        ):
            attempts[a.outbox_id].append(a)
    return [(r, attempts[r.id]) for r in rows]


async def resend(
    session: AsyncSession, settings: Settings, account: Account, outbox_id: str
) -> OutboxMessage:
    """Queue the message of `outbox_id` again, now, as a new row of the current version."""
    original = await get_owned(session, OutboxMessage, account, outbox_id)
    appointment = await get_owned(session, Appointment, account, original.appointment_id)
    if appointment.status == "cancelled" and original.kind != "cancellation":
        raise Conflict("the appointment is cancelled; only its cancellation can be resent")
    now = utcnow()
    if appointment.start_at <= now and original.kind != "cancellation":
        raise Conflict("the appointment has already started")
    person = await session.get(
        Client if original.recipient_type == "client" else User, original.recipient_id
    )
    if person is None:
        raise Conflict("the recipient no longer exists")
    recipient = Recipient(original.recipient_type, original.recipient_id, original.channel, "UTC")
    deadline = min(appointment.start_at, now + timedelta(hours=settings.notify_retry_hours))
    if original.kind == "cancellation":
        deadline = now + timedelta(hours=settings.notify_retry_hours)
    planned = PlannedRow(
        recipient, original.kind, original.offset_minutes, now, deadline, PENDING, None
    )
    suffix = f":resend:{new_id('r')}"
    await insert_rows(session, settings, appointment, [planned], key_suffix=suffix)
    row = await session.scalar(select(OutboxMessage).where(OutboxMessage.idem_key.endswith(suffix)))
    assert row is not None
    return row
