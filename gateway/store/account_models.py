"""Tables of an account's life: API key sign-in activity, imported event UIDs, and the receipt
left after an account is deleted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class ApiKeyActivity(Base):
    """Use of one API key on one day (UTC) from one address and one kind of client software.

    `agent` is the user-agent family (never the raw header); `address` is cleared after
    `usage_ip_retention_days`, the row itself goes with the key.
    """

    __tablename__ = "api_key_activity"
    __table_args__ = (Index("ix_api_key_activity_key_day", "api_key_id", "day"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("kac"))
    api_key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD, UTC
    agent: Mapped[str] = mapped_column(String(60))
    address: Mapped[str | None] = mapped_column(String(45), default=None)
    first_at: Mapped[datetime]
    last_at: Mapped[datetime] = mapped_column(index=True)


class ImportedEvent(Base):
    """An appointment that came from an imported .ics: the SHA-256 of its UID, so importing the
    same file twice books nothing twice (UIDs may hold addresses, hence the hash)."""

    __tablename__ = "imported_events"
    __table_args__ = (UniqueConstraint("account_id", "uid_hash", name="uq_imported_events_uid"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("imp"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    uid_hash: Mapped[str] = mapped_column(String(64))
    appointment_id: Mapped[str] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountDeletionReceipt(Base):
    """What is left of a deleted account: its id, when, and counts of what was deleted.

    Deliberately no foreign key: the account row is gone."""

    __tablename__ = "account_deletion_receipts"

    deleted_account_id: Mapped[str] = mapped_column(ID, primary_key=True)
    requested_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    counts: Mapped[Any] = mapped_column(JSON)
