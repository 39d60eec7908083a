"""The HTTP client deliveries go through: every connection checked by the outbound guard.

The endpoint URL was checked when it was saved, but a name can resolve elsewhere later (DNS
rebinding). So the client resolves each host itself, keeps only the addresses the guard
(gateway/sync/outbound.py) allows, and connects to one of those: the address connected to is the
one checked. Redirects are not followed, and no proxy or netrc comes from the environment.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

from gateway.config import Settings
from gateway.sync import outbound

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
