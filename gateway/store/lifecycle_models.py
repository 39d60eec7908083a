"""Tables of an integration's lifecycle, for every provider: pending consents (OAuth state),
push channels, and the provider state shared between processes (request budgets, write pauses,
cached access tokens).

Consents and channels hang off a sync integration and go with it (ON DELETE CASCADE) when it is
purged. Secrets are stored only as SHA-256 hashes (the consent `state`, the channel token) or
encrypted (provider state values, gateway/sync/shared.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class OAuthConsent(Base):
    """One consent link handed out: its state (hashed), bound to the account, the user and the
    integration it connects; used at most once, before it expires (CSRF protection of the
    callback)."""

    __tablename__ = "oauth_consents"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("ocs"))
    provider: Mapped[str] = mapped_column(String(32))
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


class WatchChannel(Base):
    """One push channel (a subscription at the provider) on one calendar of an integration."""

    __tablename__ = "watch_channels"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("wch"))
    provider: Mapped[str] = mapped_column(String(32))
    integration_id: Mapped[str] = mapped_column(
        ForeignKey("sync_integrations.id", ondelete="CASCADE"), index=True
    )
    calendar_id: Mapped[str] = mapped_column(Text)  # the remote calendar id
    channel_id: Mapped[str] = mapped_column(String(255), unique=True)
    resource_id: Mapped[str] = mapped_column(Text)
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)


class ProviderState(Base):
    """One value a connector shares with every process (a write pause, an access token, the
    lock row of a request budget), under its provider's name and its own key, until it expires."""

    __tablename__ = "provider_state"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime]


class ProviderCall(Base):
    """One call booked in a request budget: when it may be made. Rows older than the budget's
    window are removed as new calls are booked."""

    __tablename__ = "provider_calls"
    __table_args__ = (Index("ix_provider_calls_budget", "provider", "budget", "at_ms"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    budget: Mapped[str] = mapped_column(String(200))
    at_ms: Mapped[int] = mapped_column(BigInteger)  # epoch milliseconds (the database's clock)
