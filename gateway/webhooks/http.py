"""The HTTP client deliveries go through (every connection checked by the outbound guard), and
one signed attempt at a delivery through it.

The endpoint URL was checked when it was saved, but a name can resolve elsewhere later (DNS
rebinding). So the client resolves each host itself, keeps only the addresses the guard
(gateway/sync/outbound.py) allows, and connects to one of those: the address connected to is the
one checked. Redirects are not followed, and no proxy or netrc comes from the environment.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from gateway.config import Settings
from gateway.store.types import utcnow
from gateway.sync import outbound
from gateway.webhooks import signing
from gateway.webhooks.items import Item
from gateway.webhooks.outcomes import Attempt

REFUSED = "refused: the endpoint's address is internal (see outbound.allow)"


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, connecting only to addresses the guard allows."""

    def __init__(self, guard: Callable[[str, str], bool]) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._guard = guard

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"the host name does not resolve: {exc}") from None
        allowed = [str(i[4][0]) for i in infos if self._guard(host, str(i[4][0]))]
        if not allowed:
            raise httpcore.ConnectError(REFUSED)
        # TLS still checks the certificate against `host`: httpcore passes the origin's name
        # as server_hostname after this returns.
        return await self._inner.connect_tcp(
            allowed[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not webhook endpoints")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client(settings: Settings) -> Pool:
    """The connections for deliveries: guarded, kept alive, no proxies, no redirects."""
    return Pool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        backend=_GuardedBackend(outbound.connect_guard(settings)),
        timeout=settings.webhooks_timeout_seconds,
    )


_Key = tuple[bytes, bytes, int]  # scheme, host, port


class Pool:
    """Kept-alive connections by origin, lent to one `Lane` at a time.

    httpcore's connections (httpx's own transport, with its TLS context and timeouts) without
    httpx's client layer or httpcore's pool on top: a webhook post needs none of the client's
    cookies, redirects, auth or models (a third of each post), and the pool checks every idle
    connection for expiry on each request (a fifth of each post with 8 senders). A sender
    posts one delivery after another, so it keeps one connection for as long as it runs and
    hands it back here for the next sender of the same origin.
    """

    KEEPALIVE_SECONDS = 5.0
    IDLE_PER_ORIGIN = 64

    def __init__(self, *, ssl_context: Any, backend: httpcore.AsyncNetworkBackend, timeout: float):
        self.ssl_context = ssl_context
        self.backend = backend
        self.extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout}}
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}

    async def take(self, url: httpcore.URL) -> httpcore.AsyncHTTPConnection:
        """A kept-alive connection to `url`'s origin that is still good, else a new one (it
        connects on its first request)."""
        origin = url.origin
        idle = self._idle.get((origin.scheme, origin.host, origin.port))
        while idle:
            conn = idle.pop()
            if conn.is_idle() and not conn.has_expired():
                return conn
            await conn.aclose()
        return httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self.ssl_context,
            keepalive_expiry=self.KEEPALIVE_SECONDS,
            network_backend=self.backend,
        )

    async def give_back(self, url: httpcore.URL, conn: httpcore.AsyncHTTPConnection) -> None:
        """Keep `conn` for the next lane to `url`'s origin if it can take another request."""
        origin = url.origin
        idle = self._idle.setdefault((origin.scheme, origin.host, origin.port), [])
        if conn.is_idle() and len(idle) < self.IDLE_PER_ORIGIN:
            idle.append(conn)
        else:
            await conn.aclose()

    def kept(self) -> int:
        """How many idle connections are kept."""
        return sum(len(conns) for conns in self._idle.values())

    async def close_expired(self) -> None:
        """Close the kept connections past their keep-alive or closed by the receiver (the
        dispatcher's tick: an origin with no more posts would keep its sockets open)."""
        for key, conns in list(self._idle.items()):
            keep = []
            for conn in conns:
                if conn.is_idle() and not conn.has_expired():
                    keep.append(conn)
                else:
                    await conn.aclose()
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    async def aclose(self) -> None:
        """Close every kept connection."""
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                await conn.aclose()


class Lane:
    """One sender's connection, kept from one post to the next (`Pool`)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._conn: httpcore.AsyncHTTPConnection | None = None
        self._endpoint = ""  # the URL the connection was taken for
        self._url = httpcore.URL("http://localhost/")
        self._host = (b"host", b"")

    async def post(
        self, endpoint: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> httpcore.Response:
        """Post `body` to `endpoint` on this lane's connection (a new one when the last is
        gone or was for another origin); the caller closes the response."""
        conn = self._conn
        if endpoint != self._endpoint:
            await self.close()
            url = httpcore.URL(endpoint)
            default = {b"http": 80, b"https": 443}.get(url.scheme)
            # An IPv6 literal goes in brackets (RFC 9110 §7.2, RFC 3986 §3.2.2).
            host = b"[%b]" % url.host if b":" in url.host else url.host
            host = host if url.port in (None, default) else b"%b:%d" % (host, url.port)
            self._endpoint, self._url, self._host = endpoint, url, (b"host", host)
            conn = None
        # Posts follow each other at once on a lane, so its connection is checked for a
        # close by the receiver only when taken from the pool; one that answered
        # "Connection: close" (or broke) is no longer idle.
        if conn is None or not conn.is_idle():
            if conn is not None:
                await conn.aclose()
            conn = self._conn = await self.pool.take(self._url)
        request = httpcore.Request(
            b"POST",
            self._url,
            headers=[self._host, *headers, (b"content-length", b"%d" % len(body))],
            content=body,
            extensions=self.pool.extensions,
        )
        return await conn.handle_async_request(request)

    async def close(self) -> None:
        """Give the connection back to the pool (or close it when it cannot be reused)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.pool.give_back(self._url, conn)


_USER_AGENT = (b"user-agent", b"calgate-webhooks/0.1")


async def attempt(lane: Lane, item: Item, response_bytes: int) -> Attempt:
    """Sign and post `item` once on `lane`; what happened, as an Attempt (never raises for the
    receiver's failures: a timeout or connection error is part of the outcome)."""
    started_at = utcnow()
    clock = time.perf_counter()
    status: int | None = None
    error: str | None = None
    answer = b""
    retry_after: str | None = None
    try:
        signed = signing.headers(item.signing_secrets, item.event_id, item.body, started_at)
        headers = [_USER_AGENT, *((k.encode(), v.encode()) for k, v in signed.items())]
        response = await lane.post(item.url, headers, item.body)
        try:
            status = response.status
            for key, value in response.headers:
                if key.lower() == b"retry-after":
                    retry_after = value.decode("latin-1")
            answer = await _first_bytes(response, response_bytes)
        finally:
            await response.aclose()
    except httpcore.TimeoutException:
        error = "timeout"
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        error = _words(exc)
    return Attempt(
        item=item,
        started_at=started_at,
        duration_ms=(time.perf_counter() - clock) * 1000.0,
        status=status,
        error=error,
        answer=answer.decode("utf-8", "replace"),
        retry_after=retry_after,
    )


async def _first_bytes(response: httpcore.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the answer; the rest is not read (a huge answer costs nothing)."""
    kept = b""
    if limit <= 0:
        return kept
    async for chunk in response.aiter_stream():
        kept += chunk
        if len(kept) >= limit:
            break
    return kept[:limit]


def _words(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if REFUSED in text:
        return REFUSED
    if isinstance(exc, httpcore.ConnectError):
        return f"connection failed: {text}"[:200]
    return f"{type(exc).__name__}: {text}"[:200]
