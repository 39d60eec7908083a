"""Rendered feed bodies, cached per process by (feed, version).

A change to anything a feed shows bumps `feeds.version` in the same transaction as the change
(gateway/feeds/invalidate.py), so a cached body is current exactly while the version read with
the token lookup equals its own and the clock has not reached its `valid_until`. Every process
keeps its own cache and they stay coherent through that version column.

Validators:
- ETag: a hash of the body, so it changes exactly when the bytes do (a version bump that renders
  the same bytes keeps it). The gzip representation has its own strong ETag (RFC 9110 §8.8.3).
- Last-Modified: when this body first appeared, in whole seconds, stored on the feed row. Two
  different bodies never share a Last-Modified second (the next one is at least one second
  later), so an If-Modified-Since answered 304 is always right.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import select

from gateway import metrics
from gateway.config import Settings
from gateway.feeds import render, source
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.store.types import utcnow

log = logging.getLogger("calgate.feeds")
_MAX_BUILD_ATTEMPTS = 3


class _FeedGone(Exception):
    """The feed was deleted while its body was being rendered."""


@dataclass(frozen=True)
class Body:
    """One rendered feed and its validators."""

    feed_id: str
    version: int
    identity: bytes
    gzipped: bytes
    etag: str  # quoted, of the identity bytes
    gzip_etag: str  # quoted, of the gzip bytes
    last_modified: datetime
    last_modified_http: str
    valid_until: datetime | None
    # Derived once per body and reused by every fetch (the HTTP endpoint's response headers).
    derived: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
    # `valid_until` as POSIX seconds: the warm path compares it with `time.time()`, a tenth of
    # the price of an aware datetime.
    until: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        until = math.inf if self.valid_until is None else self.valid_until.timestamp()
        object.__setattr__(self, "until", until)

    @property
    def size(self) -> int:
        """Bytes held in memory."""
        return len(self.identity) + len(self.gzipped)

    def fresh(self, version: int, at: float) -> bool:
        """True while this body is what a render at `version` and instant `at` (POSIX seconds)
        would give."""
        return version == self.version and at < self.until


def http_date(moment: datetime) -> str:
    """An IMF-fixdate (RFC 9110 §5.6.7)."""
    return format_datetime(moment, usegmt=True)


def next_last_modified(previous: datetime | None, now: datetime) -> datetime:
    """Last-Modified of a new body: now in whole seconds, but always after the previous one."""
    candidate = now.replace(microsecond=0)
    if previous is not None and candidate <= previous:
        candidate = previous + timedelta(seconds=1)
    return candidate


def _encode(snapshot: source.Snapshot) -> tuple[bytes, bytes]:
    body = render.render(snapshot.calendar)
    # mtime=0: the same body always compresses to the same bytes (one strong ETag per body).
    return body, gzip.compress(body, compresslevel=6, mtime=0)


class BodyCache:
    """Least-recently-used bodies, bounded by their total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[str, Body] = OrderedDict()
        self._bytes = 0
        # Called whenever a body leaves (evicted, dropped or replaced): whoever holds bodies
        # outside the cache lets go of them, so the cap bounds what stays in memory.
        self.on_leave: Callable[[], None] | None = None

    def holds(self, body: Body) -> bool:
        """True when `body` itself is the cached body of its feed."""
        return self._bodies.get(body.feed_id) is body

    def touch(self, feed_id: str) -> bool:
        """Mark the feed's body as just used; False when it is no longer cached."""
        try:
            self._bodies.move_to_end(feed_id)
        except KeyError:
            return False
        return True

    def get(self, feed_id: str, version: int, at: float) -> Body | None:
        """The cached body of the feed if it is current at instant `at` (POSIX seconds)."""
        body = self._bodies.get(feed_id)
        if body is None or not body.fresh(version, at):
            return None
        self._bodies.move_to_end(feed_id)
        return body

    def put(self, body: Body) -> None:
        """Keep `body` (replacing the feed's older one), evicting the least used beyond the cap."""
        self.drop(body.feed_id)
        if body.size > self.max_bytes:
            return
        self._bodies[body.feed_id] = body
        self._bytes += body.size
        while self._bytes > self.max_bytes:
            _, evicted = self._bodies.popitem(last=False)
            self._bytes -= evicted.size
            self._left()

    def drop(self, feed_id: str) -> None:
        """Forget the feed's body."""
        old = self._bodies.pop(feed_id, None)
        if old is not None:
            self._bytes -= old.size
            self._left()

    def _left(self) -> None:
        if self.on_leave is not None:
            self.on_leave()


class FeedBodies:
    """The body of a feed at a version: from the cache, or rendered once however many ask."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.cache = BodyCache(settings.feeds_cache_mb * 1024 * 1024)
        self._building: dict[tuple[str, int], asyncio.Future[Body | None]] = {}

    def cached(self, feed_id: str, version: int, at: float) -> Body | None:
        """The body current at instant `at` (POSIX seconds) if this process has it (counted as
        a cache hit), else None."""
        body = self.cache.get(feed_id, version, at)
        if body is not None:
            metrics.FEED_CACHE_HITS.inc()
        return body

    async def get(self, feed_id: str, version: int, at: float | None = None) -> Body | None:
        """The current body (at instant `at`, POSIX seconds, default the clock), rendered when
        this process does not have it; None when the feed was deleted meanwhile."""
        body = self.cached(feed_id, version, time.time() if at is None else at)
        if body is not None:
            return body
        metrics.FEED_CACHE_MISSES.inc()
        key = (feed_id, version)
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Body | None] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            built = await self._build(feed_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        else:
            future.set_result(built)
            return built
        finally:
            del self._building[key]

    async def _build(self, feed_id: str) -> Body | None:
        for _ in range(_MAX_BUILD_ATTEMPTS):
            now = utcnow()
            async with self.store.transaction() as session:
                snapshot = await source.load(session, feed_id, self.settings, now)
            if snapshot is None:
                self.cache.drop(feed_id)
                return None
            # Rendering thousands of events is CPU work: keep the event loop answering meanwhile.
            with metrics.timed_render():
                identity, gzipped = await asyncio.to_thread(_encode, snapshot)
            digest = hashlib.sha256(identity).hexdigest()[:32]
            try:
                stamp = await self._stamp(feed_id, snapshot.version, digest, utcnow())
            except _FeedGone:
                self.cache.drop(feed_id)
                return None
            if stamp is None:
                continue  # the feed changed while we rendered: render the newer version
            body = Body(
                feed_id=feed_id,
                version=snapshot.version,
                identity=identity,
                gzipped=gzipped,
                etag=f'"{digest}"',
                gzip_etag=f'"{digest}-gz"',
                last_modified=stamp,
                last_modified_http=http_date(stamp),
                valid_until=snapshot.valid_until,
            )
            self.cache.put(body)
            log.info(
                "feed rendered",
                extra={"feed_id": feed_id, "events": len(snapshot.calendar.events)},
            )
            return body
        raise RuntimeError("feed kept changing while it was rendered")

    async def _stamp(
        self, feed_id: str, version: int, digest: str, now: datetime
    ) -> datetime | None:
        """Record the body's validator on the feed row and return its Last-Modified.

        None when the feed's version moved on since the snapshot (the body is already stale);
        raises _FeedGone when the feed no longer exists.
        """
        async with self.store.transaction() as session:
            feed = await session.scalar(
                select(Feed)
                .where(Feed.id == feed_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            if feed is None:
                raise _FeedGone
            if feed.version != version:
                return None
            if feed.body_etag == digest and feed.body_modified_at is not None:
                return feed.body_modified_at
            feed.body_etag = digest
            feed.body_modified_at = next_last_modified(feed.body_modified_at, now)
            return feed.body_modified_at
