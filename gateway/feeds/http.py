"""The public endpoint ``GET|HEAD /feeds/{token}.ics``: the hot path, a bare ASGI app.

A fetch: the token lookup (token hash → feed id and version), the body cache, an in-memory
count, and the bytes (what is kept per process: gateway/feeds/runtime.py; headers and
validators: gateway/feeds/representation.py). On the embedded SQLite store the lookup runs on a
connection of its own in the event loop and its answers are remembered until anything commits (a
look at the wal-index header per request, gateway/feeds/sqlite_lookup.py); on PostgreSQL, when
configured, until a NOTIFY says a feed changed (gateway/feeds/pg_signal.py). `FeedsFirst`, the
app's entry, hands feed requests to the endpoint ahead of FastAPI and its middleware stack, and
answers a path fetched before from what it kept (`Warm`) while the lookups' generation says
nothing changed: the change signal, the clock, the count and the bytes. Every miss (unknown,
revoked, malformed or traversing token) does the same lookup and gets the same 404; an address
that keeps missing is slowed down (gateway/feeds/guard.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.asgi import App
from gateway.config import Settings
from gateway.feeds.representation import (
    accepts_gzip,
    etag_matches,
    not_modified_since,
    response_headers,
)
from gateway.feeds.runtime import Ask, FeedRuntime, runtime_for
from gateway.metrics import FEED_CACHE_HITS
from gateway.store.db import Store

log = logging.getLogger("calgate.feeds")
PREFIX = "/feeds/"
PATH = PREFIX + "{name:path}"
SUFFIX = ".ics"
_NOT_FOUND = b"Not found\n"


async def _send(
    send: Send, status: int, headers: Iterable[tuple[bytes, bytes]], content: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


_READ = ("GET", "HEAD")
_WANTED = frozenset((b"if-none-match", b"if-modified-since", b"accept-encoding", b"user-agent"))
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
        validators, full = response_headers(body, gzipped)
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
