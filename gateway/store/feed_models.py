"""Tables of the private iCal feeds: the feeds themselves and their access record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.store.models import ID, Base
from gateway.store.types import new_id, utcnow


class Feed(Base):
    """A secret feed URL: one user's, one client's or the whole account's appointments.

    The token itself is never stored: only its SHA-256 (`token_hash`) and a short `token_prefix`
    that lets people tell their links apart. `version` goes up in the same transaction as any
    change to what the feed shows; the rendered body is cached per (feed, version).
    """

    __tablename__ = "feeds"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("fed"))
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(16))  # user | client | account
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    client_id: Mapped[str | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    privacy: Mapped[str] = mapped_column(String(16))  # full | limited | busy
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The strong validator of the last body rendered, and when that body first appeared
    # (whole seconds, strictly increasing per change: see gateway/feeds/cache.py).
    body_etag: Mapped[str | None] = mapped_column(String(80), default=None)
    body_modified_at: Mapped[datetime | None] = mapped_column(default=None)
    fetch_count: Mapped[int] = mapped_column(Integer, default=0)
    last_fetched_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)


class FeedAccess(Base):
    """Fetches of one feed, aggregated per hour, app family and address.

    `address` is the raw client address, kept only for the retention setting
    (`feeds_ip_retention_days`) and then cleared; the rows themselves leave after the 7-day
    window the API reports on.
    """

    __tablename__ = "feed_access"
    __table_args__ = (Index("ix_feed_access_feed_bucket", "feed_id", "bucket"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=lambda: new_id("fac"))
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    bucket: Mapped[datetime] = mapped_column(index=True)  # start of the hour, UTC
    agent: Mapped[str] = mapped_column(String(40))  # user-agent family, never the raw header
    address: Mapped[str | None] = mapped_column(String(45), default=None)
    fetches: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime]
