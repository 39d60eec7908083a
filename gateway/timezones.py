"""IANA time zone validation: the only way a zone name enters calgate.

Zones are accepted only by their canonical IANA key (``Europe/London``), never as an offset or a
path, so that a stored zone always loads and DST rules always apply.
"""

from __future__ import annotations

import zoneinfo
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """Every IANA zone key this machine (or the tzdata package) knows."""
    return frozenset(zoneinfo.available_timezones())


def is_known_zone(name: str) -> bool:
    """True when `name` is an IANA zone key, e.g. ``America/New_York`` or ``UTC``."""
    return name in known_zones()


def check_zone(name: str) -> str:
    """Return `name` if it is a known IANA zone, else raise ValueError naming the problem."""
    if not is_known_zone(name):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as 'Europe/London'")
    return name


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for a validated zone name (cached: zones are immutable)."""
    return ZoneInfo(check_zone(name))
