"""What a feed shows, read from the store in one transaction (one consistent snapshot).

The window: appointments that end after ``now - past`` and start before ``now + future``;
cancelled ones only while ``cancelled_at`` is within the grace period. Because the window moves
with the clock, a snapshot also says until when it stays exact (`valid_until`): the first
moment an event leaves or enters the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from gateway.config import Settings
from gateway.feeds.render import CalendarData, EventData
from gateway.store.feed_models import Feed
from gateway.store.models import Account, Appointment, Client, User

CANCELLED = "cancelled"


@dataclass(frozen=True)
class Snapshot:
    """A feed's content at one version, and until when it holds without any change."""

    feed_id: str
    version: int
    calendar: CalendarData
    valid_until: datetime | None


def scope_filter(feed: Feed) -> ColumnElement[bool]:
    """Which appointments of the account a feed covers."""
    if feed.scope == "user":
        return Appointment.user_id == feed.user_id
    if feed.scope == "client":
        return Appointment.client_id == feed.client_id
    return Appointment.account_id == feed.account_id


async def _owner_zone(session: AsyncSession, feed: Feed, account: Account) -> str:
    if feed.scope == "user":
        user_zone = await session.scalar(select(User.timezone).where(User.id == feed.user_id))
        return user_zone or account.timezone
    if feed.scope == "client":
        client_zone = await session.scalar(
            select(Client.timezone).where(Client.id == feed.client_id)
        )
        return client_zone or account.timezone
    return account.timezone


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return min(present) if present else None


async def load(
    session: AsyncSession, feed_id: str, settings: Settings, now: datetime
) -> Snapshot | None:
    """The snapshot of feed `feed_id`, or None when the feed no longer exists."""
    feed = await session.get(Feed, feed_id, populate_existing=True)
    if feed is None:
        return None
    account = await session.get(Account, feed.account_id)
    assert account is not None  # feeds cascade with their account
    past = now - timedelta(days=settings.feeds_past_days)
    future = now + timedelta(days=settings.feeds_future_days)
    grace = timedelta(days=settings.feeds_cancelled_grace_days)
    owner = aliased(User)
    # Columns, not ORM objects: a 5,000-event feed re-rendered after one change spends most of
    # its time here, and building identity-mapped objects for every row tripled it.
    query: Any = (
        select(
            Appointment.id,
            Appointment.start_at,
            Appointment.end_at,
            Appointment.timezone,
            Appointment.title,
            Appointment.location,
            Appointment.notes,
            Appointment.status,
            Appointment.version,
            Appointment.created_at,
            Appointment.updated_at,
            Appointment.cancelled_at,
            Client.name,
            owner.name,
        )
        .join(Client, Client.id == Appointment.client_id)
        .join(owner, owner.id == Appointment.user_id)
        .where(
            Appointment.account_id == feed.account_id,
            scope_filter(feed),
            Appointment.end_at > past,
            Appointment.start_at < future,
            or_(Appointment.status != CANCELLED, Appointment.cancelled_at > now - grace),
        )
        .order_by(Appointment.start_at, Appointment.id)
    )
    show_client = feed.scope in ("user", "account")
    show_user = feed.scope in ("client", "account")
    events: list[EventData] = []
    valid_until: datetime | None = None
    for apt in await session.execute(query):
        client_name, user_name = apt[-2], apt[-1]
        events.append(
            EventData(
                id=apt.id,
                start_at=apt.start_at,
                end_at=apt.end_at,
                timezone=apt.timezone,
                title=apt.title,
                location=apt.location,
                notes=apt.notes,
                client_name=client_name if show_client else None,
                user_name=user_name if show_user else None,
                status=apt.status,
                version=apt.version,
                created_at=apt.created_at,
                updated_at=apt.updated_at,
            )
        )
        leaves = apt.end_at + timedelta(days=settings.feeds_past_days)
        if apt.status == CANCELLED and apt.cancelled_at is not None:
            leaves = min(leaves, apt.cancelled_at + grace)
        valid_until = _earliest(valid_until, leaves)
    # The next appointment beyond the horizon enters the feed when the horizon reaches it.
    next_start = await session.scalar(
        select(func.min(Appointment.start_at)).where(
            and_(
                Appointment.account_id == feed.account_id,
                scope_filter(feed),
                Appointment.start_at >= future,
            )
        )
    )
    if next_start is not None:
        entry = next_start - timedelta(days=settings.feeds_future_days)
        valid_until = _earliest(valid_until, entry)
    calendar = CalendarData(
        name=feed.name,
        timezone=await _owner_zone(session, feed, account),
        privacy=feed.privacy,
        refresh=timedelta(minutes=settings.feeds_refresh_minutes),
        events=tuple(events),
    )
    return Snapshot(feed.id, feed.version, calendar, valid_until)
