"""Per process and store, what the feed endpoint keeps: the token lookups, the body cache, the
warm answers, the miss guard and the access recorder."""

from __future__ import annotations

import sqlite3
import weakref

from sqlalchemy import bindparam, select

from gateway.config import Settings
from gateway.domain.account_states import ACTIVE
from gateway.feeds import tokens
from gateway.feeds.access import AccessRecorder
from gateway.feeds.cache import Body, FeedBodies
from gateway.feeds.guard import MissGuard
from gateway.feeds.pg_signal import PgLookups
from gateway.feeds.representation import response_headers
from gateway.feeds.sqlite_lookup import KNOWN_MAX, Found, SqliteLookup
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.store.models import Account


class Ask:
    """The answer of `FeedRuntime.remembered` when the store must be asked."""


ASK = Ask()


class Warm:
    """A feed fetch this process answers from memory: the body and the headers of both
    representations, current while the store's lookup generation stays `generation` and the
    clock is before `until` (POSIX seconds)."""

    __slots__ = ("body", "feed_id", "generation", "gzip", "identity", "until")

    def __init__(self, body: Body, generation: int) -> None:
        self.body = body
        self.feed_id = body.feed_id
        self.generation = generation
        self.until = body.until
        self.gzip = response_headers(body, True)[1]
        self.identity = response_headers(body, False)[1]


class FeedRuntime:
    """Per process and store: the body cache, the warm answers, the miss guard and the access
    recorder."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.bodies = FeedBodies(store, settings)
        self.guard = MissGuard(
            settings.feeds_miss_free,
            settings.feeds_miss_window_seconds,
            settings.feeds_miss_delay_max_seconds,
        )
        self.recorder = AccessRecorder(store, settings.feeds_access_flush_seconds)
        # By request path ("/feeds/<token>.ics"). Let go of whenever a body leaves the cache,
        # and of the whole when the generation moves on, so they never hold more than the
        # cache does, nor outlive a commit.
        self.warm: dict[str, Warm] = {}
        self.bodies.cache.on_leave = self.warm.clear
        # The account's state comes with the same point read: a suspended account's feeds
        # answer 410 Gone (gateway/domain/account_states.py).
        self._lookup = (
            select(Feed.id, Feed.version, Account.status)
            .join(Account, Account.id == Feed.account_id)
            .where(Feed.token_hash == bindparam("h"))
        )
        url = store.engine.url
        self.sqlite: SqliteLookup | None = None
        self.postgres: PgLookups | None = None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            sql = str(self._lookup.compile(dialect=store.engine.dialect))
            self.sqlite = SqliteLookup(str(url.database), sql)
        elif url.get_backend_name() == "postgresql" and settings.feeds_remember_tokens_postgres:
            self.postgres = PgLookups(store, self._lookup_async, KNOWN_MAX)

    def remembered(self, token: str) -> Found | Ask | None:
        """The feed of `token` when it can be told without waiting (the embedded store's own
        connection), else `ASK`: then `ask` answers."""
        if self.sqlite is not None:
            try:
                return self.sqlite(token)
            except sqlite3.Error:
                self.sqlite.close()
        return ASK

    def generation(self) -> int:
        """The lookups' generation (gateway/feeds/sqlite_lookup.py, pg_signal.py): an answer
        derived from a lookup is current while it stays the same; -1 when nothing is
        remembered (every fetch asks the store)."""
        if self.sqlite is not None:
            try:
                return self.sqlite.generation()
            except sqlite3.Error:
                self.sqlite.close()
                return -1
        if self.postgres is not None:
            return self.postgres.generation()
        return -1

    def remember(self, path: str, body: Body, generation: int) -> None:
        """Answer later fetches of `path` with `body` while `generation` holds."""
        if generation < 0 or not self.bodies.cache.holds(body):
            return  # nothing is remembered, or a body too big to cache: never held outside it
        warm = self.warm
        if len(warm) >= KNOWN_MAX or (warm and next(iter(warm.values())).generation != generation):
            warm.clear()  # bounded, and nothing of an older generation stays
        warm[path] = Warm(body, generation)

    async def ask(self, token: str) -> Found | None:
        """The feed of `token` from the store (after `remembered` said ASK), or None (malformed
        tokens cost the same)."""
        digest = tokens.lookup_hash(token)
        found: Found | None
        if self.postgres is not None:
            found = await self.postgres(digest)
        else:
            found = await self._lookup_async(digest)
        return found if tokens.is_well_formed(token) else None

    async def _lookup_async(self, digest: str) -> Found | None:
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(self._lookup, {"h": digest})).first()
        return None if row is None else Found(str(row[0]), int(row[1]), row[2] == ACTIVE)


_RUNTIMES: weakref.WeakKeyDictionary[Store, FeedRuntime] = weakref.WeakKeyDictionary()


def runtime_for(store: Store, settings: Settings) -> FeedRuntime:
    """The one runtime of `store` in this process."""
    runtime = _RUNTIMES.get(store)
    if runtime is None:
        runtime = _RUNTIMES[store] = FeedRuntime(store, settings)
    return runtime
