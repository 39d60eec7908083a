"""The SSRF guard on easily missed ranges, and on URLs that do not parse (issue 14: 1, 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ValidationFailed
from gateway.sync import outbound
from tests.conftest import make_settings


@pytest.mark.parametrize(
    "url",
    [
        "http://100.64.0.1/",  # shared address space
        "http://100.100.100.200/",  # a cloud's metadata service, inside 100.64.0.0/10
        "http://[2002:a9fe:a9fe::]/",  # 6to4 carrying 169.254.169.254
        "http://[2002:7f00:1::]/",  # 6to4 carrying 127.0.0.1
        "http://[fec0::1]/",  # site-local
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 carrying 169.254.169.254
        "http://[64:ff9b::a00:1]/",  # NAT64 carrying 10.0.0.1
        "http://[64:ff9b:1::1]/",  # local-use NAT64
        # Teredo whose client (the obfuscated last 32 bits) is 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
        "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped metadata address
        "http://[::a9fe:a9fe]/",  # IPv4-compatible metadata address
        "http://[fd00::1]/",  # unique local
        "http://198.18.0.1/",  # benchmarking
        "http://192.0.0.170/",  # IETF protocol assignments
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
    ],
)
async def test_every_internal_range_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationFailed, match="internal address") as raised:
        await outbound.check_url(make_settings(tmp_path), url)
    assert raised.value.problems[0].field == "server_url"


@pytest.mark.parametrize(
    ("address", "carried"),
    [
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        ("64:ff9b::808:808", "8.8.8.8"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.45"),
    ],
)
def test_carried_ipv4_is_decoded(address: str, carried: str) -> None:
    import ipaddress

    found = outbound.carried_ipv4(ipaddress.IPv6Address(address))
    assert carried in [str(a) for a in found]


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2606:4700:4700::1111", "2002:808:808::1", "64:ff9b::808:808"]
)
def test_public_addresses_pass_the_connect_guard(tmp_path: Path, address: str) -> None:
    guard = outbound.connect_guard(make_settings(tmp_path))
    assert guard("calendar.example", address)


@pytest.mark.parametrize("address", ["100.64.0.1", "2002:a9fe:a9fe::", "fec0::1"])
def test_internal_addresses_fail_the_connect_guard(tmp_path: Path, address: str) -> None:
    guard = outbound.connect_guard(make_settings(tmp_path))
    assert not guard("calendar.example", address)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/", "http://[::1/", "http://calendar.example:0/", "https://h:x/"]
)
async def test_malformed_urls_name_the_field(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        await outbound.check_url(make_settings(tmp_path), url)
    assert raised.value.problems[0].field == "server_url"
