"""Tables of the Google connection: pending consents (OAuth state) and push channels.

Both hang off a sync integration and go with it (ON DELETE CASCADE) when it is purged.
Secrets are stored only as SHA-256 hashes: the consent `state` and the channel token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class GoogleConsent(Base):
    """One consent link handed out: its state (hashed), bound to the user and the integration it
    connects; used at most once, before it expires (CSRF protection of the callback)."""

    __tablename__ = "google_consents"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("gcs"))
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class GoogleChannel(Base):
    """One events.watch push channel on one calendar of an integration."""

    __tablename__ = "google_channels"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("gch"))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[str] = mapped_column(Text)  # the remote calendar id
    channel_id: Mapped[str] = mapped_column(String(64), unique=True)
    resource_id: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
