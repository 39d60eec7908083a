"""SSRF guard for URLs people give us (calendar servers): checked before we connect.

Refused: schemes other than http(s), credentials inside the URL, malformed URLs, and hosts
resolving to any address that is not globally routable (loopback, private, shared address space,
link-local cloud metadata, site-local, multicast, reserved, documentation, benchmark, unspecified),
unless the host or one of its addresses is allowed by the setting `outbound_allow` (hosts or CIDR
networks). IPv6 forms that carry an IPv4 address (IPv4-mapped and -compatible, 6to4, Teredo,
NAT64) are judged by the IPv4 address they carry: `2002:a9fe:a9fe::` is 169.254.169.254.
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


# Ranges refused even where `ipaddress` calls them global (Python versions differ on some),
# or that no calendar server lives in. The `is_global` test below covers the rest.
_DENIED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # shared address space (carrier NAT; a cloud's metadata service)
        "169.254.0.0/16",  # link-local: cloud metadata at 169.254.169.254
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/3",  # multicast, reserved, broadcast
        "::/127",  # unspecified, loopback
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): reaches a private network
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed inside some networks)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and would reach): IPv4-mapped, 6to4, Teredo
    (server and client), NAT64 and the deprecated IPv4-compatible form. Empty for plain IPv6."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def _internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        carried = carried_ipv4(address)
        if carried:
            return any(_internal(v4) for v4 in carried)
    return (
        any(address in network for network in _DENIED)
        or not address.is_global
        or address.is_multicast
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
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when not a number in 0-65535
    except ValueError:
        raise ValidationFailed.one(
            field, "is not a valid URL (check the brackets around an IPv6 host and the port)"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed.one(field, "must be an http:// or https:// URL with a host")
    if port == 0:
        raise ValidationFailed.one(field, "has port 0; give a port from 1 to 65535")
    if parts.username or parts.password:
        raise ValidationFailed.one(field, "must not contain a username or password")
    host = parts.hostname.lower()
    hosts, networks = _allowed(settings)
    if host in hosts:
        return url
    try:
        infos = await asyncio.to_thread(
            socket.getaddrinfo, host, port or 443, 0, socket.SOCK_STREAM
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
