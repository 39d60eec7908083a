"""Tables of erasure: the receipt of a client's erasure, the copies of their appointments in
external calendars that the erasure job still has to delete, and the daemon's stored keys
(the key of the keyed hashes that outlive erasure)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class Erasure(Base):
    """A client's erasure: accepted (their rows here are gone at once), ``pending`` while the
    job deletes our copies of their appointments from external calendars, then ``done``.
    Counts by kind, no personal data; readable after the client is gone."""

    __tablename__ = "privacy_erasures"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("ers"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str] = mapped_column(String(16))  # "client" or "user"
    subject_id: Mapped[str] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    counts: Mapped[Any] = mapped_column(JSON, default=dict)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class ErasureCopy(Base):
    """One remote event of an erased appointment still to delete: where it is and its etag
    (ids and URLs made from our opaque UIDs, no personal data). Deleted as it is done."""

    __tablename__ = "privacy_erasure_copies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    erasure_id: Mapped[str] = mapped_column(
        ForeignKey("privacy_erasures.id", ondelete="CASCADE"), index=True
    )
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    href: Mapped[str] = mapped_column(Text)
    etag: Mapped[str] = mapped_column(Text)


class StoredKey(Base):
    """A key of the daemon's own, kept encrypted under the secrets key (re-encrypted by
    `calgate secrets rotate`): ``id`` names its purpose (``sms-optouts``: the HMAC key of the
    SMS opt-out list). No personal data."""

    __tablename__ = "stored_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
