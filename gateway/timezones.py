"""IANA time zones: validation (the only way a zone name enters calgate) and the VTIMEZONE that
every ICS calgate writes carries for a zone.

Zones are accepted only by their canonical IANA key (``Europe/London``), never as an offset or a
path, so that a stored zone always loads and DST rules always apply.
"""

from __future__ import annotations

import zoneinfo
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

from icalendar import Timezone

# Files in the zone database that are not zones a person lives in: "localtime" is whatever the
# server's clock says (so a record would change meaning with the host), "Factory" has no offset
# rules, and posix/ and right/ are copies or leap-second variants.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@lru_cache(maxsize=1)
def known_zones() -> frozenset[str]:
    """Every IANA zone key this machine (or the tzdata package) knows, less the host-dependent
    and rule-less entries."""
    return frozenset(
        name
        for name in zoneinfo.available_timezones()
        if name not in _NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


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


@lru_cache(maxsize=256)
def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """The VTIMEZONE of `tzid` for whole years (cached: rules do not change while we run).

    Bounded to the years the events need (a year of margin each side: parsers may look at the
    previous transition) rather than icalendar's default 1970-2038: that one starts with odd
    historical periods (London's all-year BST of 1968-71) that some parsers (vobject, which
    Radicale, khal and vdirsyncer use) carry forward, reading every later time an hour off.
    """
    return Timezone.from_tzid(
        tzid, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1)
    )
