"""Tables of two-way sync: integrations, their calendars and cursors, mappings, busy blocks,
per-integration log entries, and purge receipts (the only row left after a disconnect)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base, LeaseMixin
from gateway.store.types import new_id, utcnow


class Integration(LeaseMixin, Base):
    """A practitioner's connected calendar account. Claimed with a lease for each sync run, so
    one sync at a time runs per integration, whatever the number of processes.

    status: ``active``, ``reconnect_needed`` (credentials refused; never retried),
    ``paused`` (a guard stopped the sync; see last_error), ``pending`` (calendars not chosen).
    """

    __tablename__ = "sync_integrations"
    # The sync tick's claim seeks due active integrations (without it SQLite reads every
    # integration of the account); the push-channel tick reads one provider's active ones
    # (0009scale).
    __table_args__ = (
        Index("ix_sync_integrations_claim", "status", "due_at"),
        Index("ix_sync_integrations_provider_status", "provider", "status"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("int"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    server_url: Mapped[str | None] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(Text)
    # The password or token, encrypted (gateway/secrets.py); never stored in the clear.
    secret: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default="pending")
    dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_sync_at: Mapped[datetime | None] = mapped_column(default=None)
    last_success_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    counts: Mapped[Any] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncCalendar(Base):
    """One remote calendar of an integration: whether we write there and/or read busy time,
    and the provider's cursor for it."""

    __tablename__ = "sync_calendars"
    __table_args__ = (UniqueConstraint("integration_id", "remote_id", name="uq_sync_calendar"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("cal"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    remote_id: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, default="")
    write: Mapped[bool] = mapped_column(Boolean, default=False)
    busy: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor: Mapped[str | None] = mapped_column(Text, default=None)
    full_at: Mapped[datetime | None] = mapped_column(default=None)


class SyncMapping(Base):
    """One appointment's event in the write calendar: where it is, its etag, and hashes of what
    we last wrote (all fields we own) and of the remote times we last saw (echo suppression)."""

    __tablename__ = "sync_mappings"
    __table_args__ = (
        UniqueConstraint("integration_id", "appointment_id", name="uq_sync_mapping_appointment"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("map"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    appointment_id: Mapped[str] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    href: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(Text)
    written_hash: Mapped[str] = mapped_column(String(64))
    remote_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class BusyBlock(Base):
    """One busy interval from a remote event that is not ours (titles are never stored)."""

    __tablename__ = "sync_busy_blocks"
    __table_args__ = (
        Index("ix_sync_busy_user_start", "user_id", "start_at"),
        # An incremental pull replaces the blocks of the changed items only.
        Index("ix_sync_busy_calendar_href", "calendar_id", "href"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("bsy"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[str] = mapped_column(
        ForeignKey("sync_calendars.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(40))
    href: Mapped[str] = mapped_column(Text)
    uid: Mapped[str] = mapped_column(Text)
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]


class SyncLogEntry(Base):
    """Something a person should be able to see about an integration: a conflict and how it
    was resolved, a guard that stopped the sync, an error. Ids and words, no personal data."""

    __tablename__ = "sync_log"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("slg"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(24))
    appointment_id: Mapped[str | None] = mapped_column(String(40), default=None)
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PurgeReceipt(Base):
    """A disconnect: written ``pending`` when it is accepted, updated as the purge job goes (counts
    by kind), ``done`` with the time when every local row is gone. Kept after the integration is
    gone, under the integration's id. `step`: ``remote`` (events, channels, grant) then ``local``.
    """

    __tablename__ = "sync_purge_receipts"

    integration_id: Mapped[str] = mapped_column(ID, primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(String(40))
    provider: Mapped[str] = mapped_column(String(32))
    counts: Mapped[Any] = mapped_column(JSON)
    remote_removed: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16), default="done")
    step: Mapped[str] = mapped_column(String(16), default="local")
    # The practitioner is being deleted: the last of their purges deletes them.
    delete_user: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
