"""SSRF guard for URLs people give us (calendar servers): checked before we connect.

Refused: schemes other than http(s), credentials inside the URL, and hosts resolving to loopback,
private, link-local (cloud metadata), multicast, reserved or unspecified addresses, unless the
host or one of its addresses is allowed by the setting `outbound_allow` (hosts or CIDR networks).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from gateway.config import Settings
from gateway.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowed(
    settings: Settings,
) -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    hosts: set[str] = set()
    networks = []
    for entry in (e.strip() for e in settings.outbound_allow.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return hosts, networks


def _internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _internal(address.ipv4_mapped)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _may_connect(
    hosts: set[str],
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
    host: str,
    address: str,
) -> bool:
    if host.lower() in hosts:
        return True
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return any(ip in n for n in networks) or not _internal(ip)


def connect_guard(settings: Settings) -> Callable[[str, str], bool]:
    """The same rule for connectors, at each connection they open (redirects included):
    `guard(host, address)` is True when connecting to `address` (resolved from `host`) is safe.
    Checking again there closes the window between `check_url` and the connection (DNS
    rebinding) and covers redirect targets."""
    hosts, networks = _allowed(settings)
    return lambda host, address: _may_connect(hosts, networks, host, address)


async def check_url(settings: Settings, url: str, field: str = "server_url") -> str:
    """`url` if it is safe to connect to; ValidationFailed naming `field` otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed.one(field, "must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise ValidationFailed.one(field, "must not contain a username or password")
    host = parts.hostname.lower()
    hosts, networks = _allowed(settings)
    if host in hosts:
        return url
    try:
        infos = await asyncio.to_thread(
            socket.getaddrinfo, host, parts.port or 443, 0, socket.SOCK_STREAM
        )
    except (socket.gaierror, UnicodeError):
        raise ValidationFailed.one(field, "the host name does not resolve") from None
    for info in infos:
        address = str(info[4][0])
        if not _may_connect(hosts, networks, host, address):
            raise ValidationFailed.one(
                field,
                f"points to an internal address ({address}); calgate only connects there "
                "when the setting outbound_allow names it",
            )
    return url
