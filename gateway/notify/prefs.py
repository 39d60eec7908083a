"""Notification preferences: the daemon's defaults, an account's choices, a client's override.

Durations are written as ``1d``, ``24h``, ``90m`` or ``1h30m`` at the edges and kept in whole
minutes inside; quiet-hour bounds are ``HH:MM`` in the recipient's local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.errors import ValidationFailed
from gateway.store.models import Account
from gateway.store.notify_models import NotifyAccountSettings, NotifyClientSettings

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")
MAX_OFFSET_MINUTES = 60 * 24 * 60  # 60 days
MAX_OFFSETS = 10
LATE_POLICIES = ("half", "send", "skip")


def parse_duration(text: str, field: str = "reminder_offsets") -> int:
    """Minutes in ``1d``, ``24h``, ``90m``, ``1h30m``; at least one minute."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None:
        raise ValidationFailed.one(field, f"{text!r} is not a duration such as 24h, 90m or 1d")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    total = days * 1440 + hours * 60 + minutes
    if total < 1:
        raise ValidationFailed.one(field, "a reminder offset must be at least one minute")
    if total > MAX_OFFSET_MINUTES:
        raise ValidationFailed.one(field, "a reminder offset may be at most 60 days")
    return total


def format_duration(minutes: int) -> str:
    """The shortest of ``1d``, ``24h``-style spellings for `minutes` (``1d2h30m``)."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    text = (
        (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{mins}m" if mins else "")
    )
    return text or "0m"


def parse_offsets(values: list[str], field: str = "reminder_offsets") -> list[int]:
    """Distinct offsets in minutes, largest first."""
    if len(values) > MAX_OFFSETS:
        raise ValidationFailed.one(field, f"at most {MAX_OFFSETS} reminders")
    return sorted({parse_duration(v, field) for v in values}, reverse=True)


def parse_hhmm(text: str, field: str) -> time:
    """A wall-clock time written ``HH:MM``."""
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", text.strip())
    if match is None:
        raise ValidationFailed.one(field, f"{text!r} is not a time such as 21:00")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class Prefs:
    """An account's effective notification preferences (defaults filled in)."""

    reminder_minutes: tuple[int, ...]
    late_policy: str
    quiet_start: time
    quiet_end: time
    quiet_email: bool
    email_enabled: bool
    sms_enabled: bool
    notify_practitioner: bool
    sms_countries: tuple[str, ...]
    sender_name: str
    email_from: str
    email_reply_to: str | None
    sms_sender: str | None  # None: the daemon's


def effective(settings: Settings, account: Account, row: NotifyAccountSettings | None) -> Prefs:
    """Merge an account's row (may be None) over the daemon's defaults."""
    minutes = (
        row.reminder_minutes
        if row is not None and row.reminder_minutes is not None
        else parse_offsets(settings.notify_reminder_offsets)
    )

    def pick(value: str | None, default: str) -> str:
        return value if value is not None else default

    return Prefs(
        reminder_minutes=tuple(minutes),
        late_policy=pick(row.late_policy if row else None, settings.notify_late_policy),
        quiet_start=parse_hhmm(
            pick(row.quiet_start if row else None, settings.notify_quiet_start), "quiet_start"
        ),
        quiet_end=parse_hhmm(
            pick(row.quiet_end if row else None, settings.notify_quiet_end), "quiet_end"
        ),
        quiet_email=(
            row.quiet_email
            if row is not None and row.quiet_email is not None
            else settings.notify_quiet_email
        ),
        email_enabled=row.email_enabled if row else True,
        sms_enabled=row.sms_enabled if row else True,
        notify_practitioner=row.notify_practitioner if row else False,
        sms_countries=tuple(
            row.sms_countries if row and row.sms_countries is not None else [account.country]
        ),
        sender_name=(row.sender_name if row and row.sender_name else account.name),
        email_from=(row.email_from if row and row.email_from else settings.smtp_from),
        email_reply_to=row.email_reply_to if row else None,
        sms_sender=row.sms_sender if row else None,
    )


async def account_prefs(session: AsyncSession, settings: Settings, account: Account) -> Prefs:
    """The effective preferences of `account`."""
    row = await session.get(NotifyAccountSettings, account.id)
    return effective(settings, account, row)


async def client_offsets(session: AsyncSession, client_id: str) -> tuple[int, ...] | None:
    """A client's own reminder offsets, or None to use the account's."""
    row = await session.get(NotifyClientSettings, client_id)
    return tuple(row.reminder_minutes) if row is not None else None
