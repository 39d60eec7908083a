"""The public endpoint ``GET|HEAD /feeds/{token}.ics``: the hot path, a bare ASGI app.

A fetch: the token lookup (token hash → feed id and version), the body cache, an in-memory
count, and the bytes. On the embedded SQLite store the lookup runs on a connection of its own in
the event loop and its answers are remembered until anything commits (a look at the wal-index
header per request, gateway/feeds/sqlite_lookup.py); on PostgreSQL, when configured, until a
NOTIFY says a feed changed (gateway/feeds/pg_signal.py). `FeedsFirst`, the app's entry, hands feed
requests to the endpoint ahead of FastAPI and its middleware stack, and answers a path fetched
before from what it kept (`Warm`) while the lookups' generation says nothing changed: the change
signal, the clock, the count and the bytes. The response headers are built once per rendered
body. Every miss (unknown, revoked, malformed or traversing token) does the same lookup and gets
the same 404; an address that keeps missing is slowed down (gateway/feeds/guard.py).

Caching (RFC 9110 §13.2.2): If-None-Match wins over If-Modified-Since; an If-Modified-Since that
does not parse or lies in the future is ignored. Both representations (identity and gzip) carry
their own strong ETag and ``Vary: Accept-Encoding``; ``Cache-Control: private`` keeps shared
caches out.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from sqlalchemy import bindparam, select
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi import App
from gateway.config import Settings
from gateway.domain.account_states import ACTIVE
from gateway.feeds import tokens
from gateway.feeds.access import AccessRecorder
from gateway.feeds.cache import Body, FeedBodies
from gateway.feeds.guard import MissGuard
from gateway.feeds.pg_signal import PgLookups
from gateway.feeds.sqlite_lookup import KNOWN_MAX, Found, SqliteLookup
from gateway.metrics import FEED_CACHE_HITS
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.store.models import Account

log = logging.getLogger("calgate.feeds")
PREFIX = "/feeds/"
PATH = PREFIX + "{name:path}"
SUFFIX = ".ics"
CACHE_CONTROL = b"private, no-cache"
_NOT_FOUND = b"Not found\n"
_COMMON = [
    (b"cache-control", CACHE_CONTROL),
    (b"vary", b"accept-encoding"),
    (b"x-content-type-options", b"nosniff"),
    # The URL is the secret: never hand it on to another site.
    (b"referrer-policy", b"no-referrer"),
]


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
        self.gzip = _headers(body, True)[1]
        self.identity = _headers(body, False)[1]


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


@functools.lru_cache(maxsize=512)  # runs on every fetch; clients send few distinct values
def accepts_gzip(raw: bytes) -> bool:
    """True when an Accept-Encoding value allows gzip (q=0 refuses it; ``*`` counts)."""
    star = False
    for part in raw.decode("latin-1").split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding in ("gzip", "x-gzip"):
            return quality > 0
        if coding == "*":
            star = quality > 0
    return star


def etag_matches(header: str, body: Body) -> bool:
    """If-None-Match with the weak comparison (RFC 9110 §13.1.2): either representation."""
    current = {body.etag, body.gzip_etag}
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag in current:
            return True
    return False


def not_modified_since(header: str, body: Body, now: datetime) -> bool:
    """True when a valid If-Modified-Since is at or after the body's Last-Modified."""
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    if since > now:  # a date in the future is invalid (RFC 9110 §13.1.3)
        return False
    return body.last_modified <= since


async def _send(
    send: Send, status: int, headers: Iterable[tuple[bytes, bytes]], content: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


_READ = ("GET", "HEAD")
_WANTED = frozenset((b"if-none-match", b"if-modified-since", b"accept-encoding", b"user-agent"))
_Headers = tuple[tuple[bytes, bytes], ...]


def _headers(body: Body, gzipped: bool) -> tuple[_Headers, _Headers]:
    """The headers of a 304 and of a 200 for `body` in one representation, built once per body
    (they depend on nothing else) and kept with it."""
    cached = body.derived.get(gzipped)
    if cached is not None:
        return cached  # type: ignore[return-value]
    etag = body.gzip_etag if gzipped else body.etag
    validators = (
        *_COMMON,
        (b"etag", etag.encode()),
        (b"last-modified", body.last_modified_http.encode()),
    )
    length = len(body.gzipped if gzipped else body.identity)
    full = (
        *validators,
        (b"content-type", b"text/calendar; charset=utf-8"),
        (b"content-length", str(length).encode()),
        (b"content-disposition", b'inline; filename="calendar.ics"'),
        *([(b"content-encoding", b"gzip")] if gzipped else []),
    )
    body.derived[gzipped] = (validators, full)
    return validators, full


# The subscription page of a found feed: (scope, receive, send, token, feed id).
FeedPageHandler = Callable[[Scope, Receive, Send, str, str], Awaitable[None]]


class FeedEndpoint:
    """The ASGI app behind `PATH`: ``<token>.ics`` is the feed, ``<token>`` its page."""

    def __init__(self, store: Store, settings: Settings, page: FeedPageHandler | None) -> None:
        self.store = store
        self.settings = settings
        self.page = page
        self.runtime: FeedRuntime | None = None  # found on the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(scope, receive, send, str(scope.get("path_params", {}).get("name", "")))

    async def serve(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        """Answer a GET or HEAD of ``/feeds/<name>``.

        The hot path: a warm fetch neither awaits nor allocates beyond what it must, as each
        costs a measurable share of serving the cached bytes (bench/feeds.py).
        """
        runtime = self.runtime
        if runtime is None:
            runtime = self.runtime = runtime_for(self.store, self.settings)
        if name.endswith(SUFFIX):
            token, is_page = name[: -len(SUFFIX)], False
        else:
            token, is_page = name, self.page is not None
            if not is_page:
                token = ""
        generation = runtime.generation()  # before the lookup: a commit after it shows
        found = runtime.remembered(token)
        if isinstance(found, Ask):
            found = await runtime.ask(token)
        if found is not None and not found.active:
            # A suspended account (or one being deleted): gone, and nothing to read.
            await _send(
                send, 410, [(b"cache-control", b"no-store"), (b"content-length", b"0")], b""
            )
            return
        client = scope.get("client")
        address = str(client[0]) if client else ""
        if is_page and self.page is not None:
            if found is None:  # the same miss, the same 404, as an unknown feed
                await self._miss(runtime, address, send)
            else:
                await self.page(scope, receive, send, token, found.feed_id)
            return
        at = time.time()  # POSIX seconds: an aware datetime costs ten times more per fetch
        body = None
        if found is not None:
            body = runtime.bodies.cached(found.feed_id, found.version, at)
            if body is None:
                body = await runtime.bodies.get(found.feed_id, found.version, at)
        if body is None:
            await self._miss(runtime, address, send)
            return
        inm = ims = agent = encoding = None
        for key, value in scope["headers"]:
            if key in _WANTED:
                if key == b"accept-encoding":
                    encoding = value
                elif key == b"user-agent":
                    agent = value
                elif key == b"if-none-match":
                    inm = value.decode("latin-1")
                else:
                    ims = value.decode("latin-1")
        runtime.recorder.record(body.feed_id, agent, address, at)
        runtime.remember(PREFIX + name, body, generation)
        gzipped = encoding is not None and accepts_gzip(encoding)
        validators, full = _headers(body, gzipped)
        if (inm is not None and etag_matches(inm, body)) or (
            inm is None
            and ims is not None
            and not_modified_since(ims, body, datetime.fromtimestamp(at, UTC))
        ):
            await _send(send, 304, validators, b"")
            return
        # The tuple itself: ASGI takes any iterable of pairs, and a copy per fetch shows.
        await send({"type": "http.response.start", "status": 200, "headers": full})
        content = b"" if scope["method"] == "HEAD" else body.gzipped if gzipped else body.identity
        await send({"type": "http.response.body", "body": content})

    async def _miss(self, runtime: FeedRuntime, address: str, send: Send) -> None:
        verdict = runtime.guard.miss(address)
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"content-length", str(len(_NOT_FOUND)).encode()),
        ]
        if verdict.refuse:
            retry = str(max(1, round(verdict.delay))).encode()
            await _send(
                send,
                429,
                [(b"content-type", b"text/plain"), (b"retry-after", retry)],
                b"Too many requests\n",
            )
            return
        if verdict.first_held:
            # No address, no path: the address is personal data and the path holds a guess.
            log.warning("feed misses from one address are now held back")
        if verdict.delay > 0:
            runtime.guard.waiting(address, +1)
            try:
                await asyncio.sleep(verdict.delay)
            finally:
                runtime.guard.waiting(address, -1)
        await _send(send, 404, headers, _NOT_FOUND)


class FeedsFirst:
    """The entry of the app (gateway/asgi.py): hands feed fetches to the endpoint before
    FastAPI's dispatch and the middleware stack (the error, telemetry and body-limit layers and
    the API's own), and answers warm ones itself.

    Feed fetches are the hot path and carry no API key: the request log, usage record and body
    checks of the API, and even the await of each pure ASGI layer, would cost more than serving
    the cached bytes. An exception in the endpoint goes to the server, which logs it and answers
    500 (uvicorn's plain-text 500 instead of the API's JSON one). What a fetch leaves behind
    is the access record; misses are counted by the guard, which logs when it starts holding an
    address back. Other methods on /feeds/ fall through to the route (405).

    A warm fetch (`FeedRuntime.warm`: a path answered before, nothing committed since, the body
    still cached and current, no validator sent) is answered here with the body and headers
    kept for it: the store's change signal, the clock, the access count and the bytes. On a
    shared machine every bytecode of this path shows in the feed bench's figures, so it does
    nothing else. Anything else, 304s included, goes to `FeedEndpoint.serve`.
    """

    def __init__(self, app: ASGIApp, *, endpoint: FeedEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _READ:
            path = str(scope["path"])
            root = scope.get("root_path")
            if root and path.startswith(root):
                path = path[len(root) :]
            if path.startswith(PREFIX):
                runtime = self.endpoint.runtime
                warm = None if runtime is None else runtime.warm.get(path)
                if (
                    runtime is not None
                    and warm is not None
                    and warm.generation == runtime.generation()
                    and (at := time.time()) < warm.until
                    and runtime.bodies.cache.touch(warm.feed_id)
                ):
                    # The endpoint's scan of the headers, cut short by a validator (a call
                    # to share it shows in the feed bench).
                    encoding = agent = None
                    for key, value in scope["headers"]:
                        if key in _WANTED:
                            if key == b"accept-encoding":
                                encoding = value
                            elif key == b"user-agent":
                                agent = value
                            else:  # a validator: the endpoint answers 304s
                                break
                    else:
                        client = scope.get("client")
                        runtime.recorder.record(
                            warm.feed_id, agent, client[0] if client else "", at
                        )
                        FEED_CACHE_HITS.inc()
                        body = warm.body
                        if encoding is not None and accepts_gzip(encoding):
                            headers, content = warm.gzip, body.gzipped
                        else:
                            headers, content = warm.identity, body.identity
                        await send(
                            {"type": "http.response.start", "status": 200, "headers": headers}
                        )
                        if scope["method"] == "HEAD":
                            content = b""
                        await send({"type": "http.response.body", "body": content})
                        return
                await self.endpoint.serve(scope, receive, send, path[len(PREFIX) :])
                return
        await self.app(scope, receive, send)


def install(
    app: App, store: Store, settings: Settings, page: FeedPageHandler | None = None
) -> None:
    """Serve `PATH` on `app`: the route (for the schema of methods) and the fast path in front;
    `page` answers ``/feeds/<token>`` (no extension) for a found token."""
    endpoint = FeedEndpoint(store, settings, page)
    app.router.routes.insert(0, Route(PATH, endpoint, methods=["GET"], include_in_schema=False))
    app.entry = FeedsFirst(app.entry, endpoint=endpoint)
