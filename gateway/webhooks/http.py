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


def client(settings: Settings) -> httpx.AsyncClient:
    """A client for deliveries: guarded connections, kept alive, no redirects, no env proxies."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx offers no hook for the network backend: build its pool the same way, with ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=None,
        max_keepalive_connections=128,
        keepalive_expiry=5.0,
        network_backend=_GuardedBackend(outbound.connect_guard(settings)),
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        timeout=settings.webhooks_timeout_seconds,
        headers={"user-agent": "calgate-webhooks/0.1"},
    )


async def attempt(client: httpx.AsyncClient, item: Item, response_bytes: int) -> Attempt:
    """Sign and post `item` once; what happened, as an Attempt (never raises for the
    receiver's failures: a timeout or connection error is part of the outcome)."""
    started_at = utcnow()
    clock = time.perf_counter()
    status: int | None = None
    error: str | None = None
    answer = b""
    retry_after: str | None = None
    try:
        headers = signing.headers(item.signing_secrets, item.event_id, item.body, started_at)
        request = client.build_request("POST", item.url, content=item.body, headers=headers)
        response = await client.send(request, stream=True)
        try:
            status = response.status_code
            retry_after = response.headers.get("retry-after")
            answer = await _first_bytes(response, response_bytes)
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        error = "timeout"
    except httpx.TransportError as exc:
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


async def _first_bytes(response: httpx.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the answer; the rest is not read (a huge answer costs nothing)."""
    kept = b""
    if limit <= 0:
        return kept
    async for chunk in response.aiter_raw():
        kept += chunk
        if len(kept) >= limit:
            break
    return kept[:limit]


def _words(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if REFUSED in text:
        return REFUSED
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {text}"[:200]
    return f"{type(exc).__name__}: {text}"[:200]
