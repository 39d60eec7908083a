"""Tables of the notification stage: settings, template overrides, the outbox and its log.

The outbox is the single source of truth for what will be, is being, or was sent. A row is
written in the same transaction as the appointment change that caused it, and its
`idem_key` (appointment, recipient, channel, kind, offset, version) is unique, so planning the
same change twice cannot produce a second message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base, LeaseMixin
from gateway.store.types import new_id, utcnow

# Outbox statuses. pending = waiting or being retried; the rest are final, except that a Twilio
# status callback may still move sent → delivered / undelivered / failed.
PENDING = "pending"
SENT = "sent"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"
FAILED = "failed"
CANCELLED = "cancelled"  # withdrawn by a reschedule or cancellation
SKIPPED = "skipped"  # a reminder whose time had passed (late policy) or expired unsent
SUPPRESSED = "suppressed"  # no consent, opted out, country not allowed, no address


class NotifyAccountSettings(Base):
    """An account's notification choices; absent = the daemon's defaults (config [notify])."""

    __tablename__ = "notify_account_settings"

    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    # Reminder offsets in minutes before the start.
    reminder_minutes: Mapped[list[int] | None] = mapped_column(JSON, default=None)
    late_policy: Mapped[str | None] = mapped_column(String(8), default=None)
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_email: Mapped[bool | None] = mapped_column(Boolean, default=None)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    notify_practitioner: Mapped[bool] = mapped_column(Boolean, default=False)
    # ISO 3166 codes SMS may go to; None = the account's own country.
    sms_countries: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    sender_name: Mapped[str | None] = mapped_column(String(200), default=None)
    email_from: Mapped[str | None] = mapped_column(String(320), default=None)
    email_reply_to: Mapped[str | None] = mapped_column(String(320), default=None)
    # The account's own SMS sender (number, alphanumeric ID or messaging service); None = the
    # daemon's (config [twilio]). Added by migration 0006notify.
    sms_sender: Mapped[str | None] = mapped_column(String(34), default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyClientSettings(Base):
    """One client's override of the account's reminder offsets."""

    __tablename__ = "notify_client_settings"

    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    reminder_minutes: Mapped[list[int]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotifyTemplate(Base):
    """An account's own template for one channel, kind, locale and part, checked when saved."""

    __tablename__ = "notify_templates"
    __table_args__ = (
        UniqueConstraint(
            "account_id", "channel", "kind", "locale", "part", name="uq_notify_templates_key"
        ),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("tpl"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    locale: Mapped[str] = mapped_column(String(35))
    part: Mapped[str] = mapped_column(String(8))  # subject, text, html (email) or text (sms)
    source: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SmsOptOut(Base):
    """A number that replied STOP to our sender: no SMS goes to it until it replies START.

    Kept as a keyed hash of the E.164 number only (gateway/notify/optouts.py), so it outlives
    the erasure of the person without keeping their number."""

    __tablename__ = "notify_sms_optouts"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxMessage(LeaseMixin, Base):
    """One message to one recipient over one channel, due at `due_at` (UTC)."""

    __tablename__ = "notify_outbox"
    __table_args__ = (
        Index("ix_notify_outbox_appointment", "appointment_id", "status"),
        Index("ix_notify_outbox_claim", "status", "due_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("ntf"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    recipient_type: Mapped[str] = mapped_column(String(8))  # client | user
    recipient_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(8))  # email | sms
    kind: Mapped[str] = mapped_column(String(16))  # confirmation rescheduled cancellation reminder
    offset_minutes: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer)
    idem_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(12), default=PENDING)
    # When the row was first due (due_at moves with retries); lateness is measured against it.
    planned_at: Mapped[datetime]
    # No attempt starts after this instant (reminders: the appointment's start).
    deadline_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    provider_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    segments: Mapped[int | None] = mapped_column(Integer, default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One try at sending an outbox row, or one provider status report about it."""

    __tablename__ = "notify_delivery_log"
    __table_args__ = (Index("ix_notify_delivery_log_outbox", "outbox_id", "started_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("att"))
    outbox_id: Mapped[str] = mapped_column(ForeignKey("notify_outbox.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # None while in flight (a crash leaves it so: "interrupted"); sent, retry, failed, status.
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    provider_id: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
