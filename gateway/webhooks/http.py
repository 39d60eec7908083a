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
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from gateway.config import Settings
from gateway.store.types import utcnow
from gateway.sync import outbound
from gateway.webhooks import signing
from gateway.webhooks.outcomes import Attempt

if TYPE_CHECKING:
    from gateway.webhooks.dispatcher import Item

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
    """The connection pool for deliveries: guarded connections, kept alive, no proxies.

    httpcore's pool (httpx's own transport) without httpx's client layer on top: a webhook post
    needs none of its cookies, redirects, auth or models, which cost a third of each post."""
    return Pool(
        httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=None,
            max_keepalive_connections=128,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(outbound.connect_guard(settings)),
        ),
        settings.webhooks_timeout_seconds,
    )


class Pool:
    """The pool and the timeout of each step of a post (connect, write, read, wait for a
    connection), as httpx applies one."""

    def __init__(self, pool: httpcore.AsyncConnectionPool, timeout: float) -> None:
        self.pool = pool
        self.extensions = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }

    async def aclose(self) -> None:
        """Close every connection."""
        await self.pool.aclose()


_USER_AGENT = (b"user-agent", b"calgate-webhooks/0.1")


async def attempt(client: Pool, item: Item, response_bytes: int) -> Attempt:
    """Sign and post `item` once; what happened, as an Attempt (never raises for the
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
        async with client.pool.stream(
            "POST", item.url, headers=headers, content=item.body, extensions=client.extensions
        ) as response:
            status = response.status
            for key, value in response.headers:
                if key.lower() == b"retry-after":
                    retry_after = value.decode("latin-1")
            answer = await _first_bytes(response, response_bytes)
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
