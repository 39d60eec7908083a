"""The access record of feeds: how often, when and by which apps each feed is fetched.

A fetch is counted in memory (no database work on the hot path) and written in batches every
`feeds_access_flush_seconds`, aggregated per feed, hour, app family and address; the feed row
keeps the running total and the last fetch. Counts of the last seconds before a crash may be
lost: they are statistics, not state. Reading the record first writes this process's pending
counts, so an API answer includes every fetch this process has served.

The raw address is kept only for `feeds_ip_retention_days` (it tells a leaked link apart from
one person's devices), then cleared by the retention sweep; rows leave after the 7-day window.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, distinct, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.feed_models import Feed, FeedAccess

log = logging.getLogger("calgate.feeds")

WINDOW = timedelta(days=7)
_MAX_ADDRESS = 45

# First match wins: specific calendar clients before the browsers and libraries they embed.
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("google-calendar", r"Google-Calendar-Importer|Google-Calendar|GoogleCalendar"),
        ("outlook", r"Outlook|Microsoft Office|MSOffice|Microsoft\.Exchange|Exchange"),
        ("apple-calendar", r"dataaccessd|CalendarAgent|iCal/|CalendarStore|macOS/.*Calendar"),
        ("thunderbird", r"Thunderbird"),
        ("davx5", r"DAVx5|DAVdroid|ICSx5|ICSdroid"),
        ("fantastical", r"Fantastical"),
        ("calendar-app", r"Calendar|CalDAV|ical"),
        ("curl", r"^curl/"),
        ("script", r"python|requests|httpx|aiohttp|Go-http-client|okhttp|Java/|node|wget"),
        ("browser", r"Mozilla/|Chrome/|Safari/|Firefox/|Edg/"),
    )
)


@functools.lru_cache(maxsize=512)  # runs on every fetch; calendar apps send few distinct values
def agent_family(user_agent: bytes | str | None) -> str:
    """A short family name for a User-Agent header, raw or decoded (the header itself is never
    stored)."""
    if isinstance(user_agent, bytes):
        user_agent = user_agent.decode("latin-1")
    if not user_agent or not user_agent.strip():
        return "none"
    for name, pattern in _FAMILIES:
        if pattern.search(user_agent):
            return name
    return "other"


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass
class _Tally:
    fetches: int = 0
    last_at: float = -math.inf  # POSIX seconds of the last fetch counted


@dataclass
class AccessRecorder:
    """This process's pending fetch counts, written to the store in batches."""

    store: Store
    flush_seconds: float
    _pending: dict[tuple[str, datetime, str, str | None], _Tally] = field(
        default_factory=lambda: defaultdict(_Tally)
    )
    _timer: asyncio.TimerHandle | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # The current hour, and where it starts and ends in POSIX seconds: working the hour out
    # costs more than the rest of a count.
    _hour_span: tuple[datetime, float, float] = (
        datetime.min.replace(tzinfo=UTC),
        math.inf,
        -math.inf,
    )

    def record(
        self, feed_id: str, user_agent: bytes | str | None, address: str | None, at: float
    ) -> None:
        """Count one fetch at instant `at` (POSIX seconds; memory only, written by the next
        flush). `user_agent` is the header as sent, raw or decoded."""
        span = self._hour_span
        if not span[1] <= at < span[2]:
            start = _hour(datetime.fromtimestamp(at, UTC))
            span = self._hour_span = (start, start.timestamp(), start.timestamp() + 3600.0)
        key = (feed_id, span[0], agent_family(user_agent), (address or None))
        if key[3] is not None and len(key[3]) > _MAX_ADDRESS:
            key = (*key[:3], key[3][:_MAX_ADDRESS])
        tally = self._pending[key]
        tally.fetches += 1
        if at > tally.last_at:  # a clock stepping back leaves the latest fetch the last one
            tally.last_at = at
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.flush_seconds, self._flush_soon)

    def _flush_soon(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush_logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # a lost count must never fail or stall serving
            log.warning("feed access not written: %s", type(exc).__name__)

    async def flush(self, session: AsyncSession | None = None) -> int:
        """Write pending counts, in `session` or a transaction of their own; returns how many
        fetches were written. (On SQLite, pass the open session of the caller if it has one:
        a second transaction would wait for its write lock.)"""
        async with self._lock:
            pending, self._pending = self._pending, defaultdict(_Tally)
            if not pending:
                return 0
            try:
                if session is not None:
                    return await _write(session, pending)
                async with self.store.transaction() as own:
                    return await _write(own, pending)
            except BaseException:
                for key, tally in pending.items():  # put them back for the next flush
                    mine = self._pending[key]
                    mine.fetches += tally.fetches
                    mine.last_at = max(mine.last_at, tally.last_at)
                raise


async def _write(
    session: AsyncSession, pending: dict[tuple[str, datetime, str, str | None], _Tally]
) -> int:
    feed_ids = {key[0] for key in pending}
    existing = set(
        (await session.scalars(select(Feed.id).where(Feed.id.in_(feed_ids)))).all()
    )  # deleted feeds' counts go with them
    totals: dict[str, _Tally] = defaultdict(_Tally)
    written = 0
    for (feed_id, bucket, agent, address), tally in pending.items():
        if feed_id not in existing or not tally.fetches:
            continue
        session.add(
            FeedAccess(
                feed_id=feed_id,
                bucket=bucket,
                agent=agent,
                address=address,
                fetches=tally.fetches,
                last_at=datetime.fromtimestamp(tally.last_at, UTC),
            )
        )
        total = totals[feed_id]
        total.fetches += tally.fetches
        total.last_at = max(total.last_at, tally.last_at)
        written += tally.fetches
    for feed_id, tally in totals.items():
        total_fetches, last_at = tally.fetches, datetime.fromtimestamp(tally.last_at, UTC)
        await session.execute(
            update(Feed)
            .where(Feed.id == feed_id)
            .values(fetch_count=Feed.fetch_count + total_fetches)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Feed)
            .where(
                Feed.id == feed_id,
                (Feed.last_fetched_at.is_(None)) | (Feed.last_fetched_at < last_at),
            )
            .values(last_fetched_at=last_at)
            .execution_options(synchronize_session=False)
        )
    await session.flush()
    return written


@dataclass(frozen=True)
class AppUse:
    """One app family's fetches of a feed in the last 7 days."""

    family: str
    fetches: int
    last_fetched_at: datetime


@dataclass(frozen=True)
class AccessSummary:
    """What the API shows about a feed's fetches in the last 7 days."""

    fetches_7d: int = 0
    distinct_apps_7d: int = 0
    distinct_addresses_7d: int = 0
    apps: tuple[AppUse, ...] = ()


async def summaries(
    session: AsyncSession, feed_ids: Iterable[str], now: datetime
) -> dict[str, AccessSummary]:
    """The 7-day access summary of each feed (feeds never fetched get an empty one)."""
    ids = list(feed_ids)
    since = _hour(now - WINDOW)
    in_window = (FeedAccess.feed_id.in_(ids), FeedAccess.bucket >= since)
    rows = await session.execute(
        select(
            FeedAccess.feed_id,
            FeedAccess.agent,
            func.sum(FeedAccess.fetches),
            func.max(FeedAccess.last_at),
        )
        .where(*in_window)
        .group_by(FeedAccess.feed_id, FeedAccess.agent)
        .order_by(FeedAccess.feed_id, func.sum(FeedAccess.fetches).desc(), FeedAccess.agent)
    )
    apps: dict[str, list[AppUse]] = defaultdict(list)
    for feed_id, agent, fetches, last_at in rows:
        apps[feed_id].append(AppUse(agent, int(fetches), last_at))
    counted = await session.execute(
        select(FeedAccess.feed_id, func.count(distinct(FeedAccess.address)))
        .where(*in_window, FeedAccess.address.is_not(None))
        .group_by(FeedAccess.feed_id)
    )
    addresses = {feed_id: int(count) for feed_id, count in counted}
    return {
        feed_id: AccessSummary(
            fetches_7d=sum(a.fetches for a in apps[feed_id]),
            distinct_apps_7d=len(apps[feed_id]),
            distinct_addresses_7d=int(addresses.get(feed_id, 0)),
            apps=tuple(apps[feed_id]),
        )
        for feed_id in ids
    }


async def sweep(session: AsyncSession, settings: Settings, now: datetime) -> dict[str, int]:
    """Clear addresses past retention and delete rows past the 7-day window; return counts."""
    keep = timedelta(days=settings.feeds_ip_retention_days)
    # Rows are hourly and this sweep runs hourly: clearing one hour early guarantees no address
    # outlives the setting.
    address_cutoff = now - max(keep - timedelta(hours=1), timedelta(0))
    cleared = await session.execute(
        update(FeedAccess)
        .where(FeedAccess.address.is_not(None), FeedAccess.bucket < address_cutoff)
        .values(address=None)
        .execution_options(synchronize_session=False)
    )
    deleted = await session.execute(
        delete(FeedAccess).where(FeedAccess.bucket < _hour(now - WINDOW) - timedelta(hours=1))
    )
    return {
        "feed_access_addresses": int(cleared.rowcount),  # type: ignore[attr-defined]
        "feed_access_rows": int(deleted.rowcount),  # type: ignore[attr-defined]
    }
