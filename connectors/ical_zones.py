"""Private names for the time zones an iCalendar body defines for itself.

`icalendar` keeps one registry of VTIMEZONE definitions per process, keyed by TZID, and the
first definition it parses under a name wins for every later parse: an Outlook
"Eastern Standard Time" or a "Custom/Zone" with one account's rules would give another
account's appointments the wrong offsets. Before a body is parsed, every VTIMEZONE whose TZID
is not an IANA name is renamed TZID + `MARK` + a digest of its rules, in the VTIMEZONE and in
every `TZID=` parameter of the same body: equal definitions share one registry entry, different
ones never meet. IANA names are left alone (`icalendar` reads them from the system's zone data,
whatever the body says), and so is a Windows name with no VTIMEZONE in the body (`icalendar`
maps it to its IANA zone through the CLDR table). Zones read from a body's own rules carry no
IANA key, so the private name never reaches an Event.
"""

from __future__ import annotations

import functools
import hashlib
import re
import zoneinfo

from icalendar.parser.content_line import NEWLINE, UFOLD
from icalendar.prop import vText
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

MARK = "~calgate-"
_TZID_PARAM = re.compile(r'(;TZID=)("[^"]*"|[^;:,"]*)', re.IGNORECASE)


@functools.cache
def _iana() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def own_zone(tzid: str) -> bool:
    """True when a VTIMEZONE named `tzid` would be kept by its TZID process-wide (the name is
    not an IANA zone; the same test `icalendar` applies before registering a definition)."""
    return tzid not in _iana() and tzid.strip("/") not in _iana()


def _split(line: str) -> tuple[str, str]:
    """A content line cut at the colon before its value (the first one outside quotes)."""
    quoted = False
    for at, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[:at], line[at:]
    return line, ""


def _name(line: str) -> str:
    return _split(line)[0].split(";", 1)[0].strip().upper()


def _tzid_params(line: str) -> list[str]:
    if "TZID=" not in line.upper():
        return []
    return [m.group(2).strip('"') for m in _TZID_PARAM.finditer(_split(line)[0])]


class ZoneNames:
    """The private names given to the VTIMEZONEs of one body, as they are met."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def define(self, lines: list[str]) -> list[str]:
        """A VTIMEZONE's unfolded lines (BEGIN to END), its TZID made private when it is not
        an IANA name; remembered for `rename`."""
        at = [i for i, line in enumerate(lines) if _name(line) == "TZID"]
        if len(at) != 1:
            return lines  # no name, or two: icalendar keeps or refuses it as before
        head, value = _split(lines[at[0]])
        tzid = str(vText.from_ical(value[1:]))
        if not own_zone(tzid) or '"' in tzid:
            return lines
        rules = "\n".join(line.rstrip() for i, line in enumerate(lines) if i != at[0])
        suffix = MARK + hashlib.sha256(rules.encode("utf-8", "replace")).hexdigest()[:24]
        self.names.setdefault(tzid, tzid + suffix)  # RFC 5545 gives one TZID one definition
        renamed = list(lines)
        renamed[at[0]] = head + value + suffix  # the suffix needs no escaping
        return renamed

    def pending(self, line: str) -> bool:
        """Whether `line` names a zone that only a VTIMEZONE of this body can define, and none
        has been met yet (RFC 5545 lets it come later). A Windows name is not waited for: it
        reads as its IANA zone until its VTIMEZONE comes, as before, so an Outlook export
        without VTIMEZONEs still streams."""
        return any(
            own_zone(n) and n.strip("/") not in WINDOWS_TO_OLSON and n not in self.names
            for n in _tzid_params(line)
        )

    def rename(self, line: str) -> str:
        """`line` with its TZID parameters naming this body's private zones."""
        if not self.names or "TZID=" not in line.upper():
            return line
        head, value = _split(line)

        def swap(found: re.Match[str]) -> str:
            new = self.names.get(found.group(2).strip('"'))
            return found.group(0) if new is None else f'{found.group(1)}"{new}"'

        return _TZID_PARAM.sub(swap, head) + value


def isolate(text: str) -> str:
    """A whole iCalendar body with its own zones given private names (see the module's
    docstring); the body unchanged when it defines none."""
    if "VTIMEZONE" not in text.upper():
        return text
    names = ZoneNames()
    lines: list[str] = []
    block: list[str] | None = None
    for line in NEWLINE.split(UFOLD.sub("", text)):
        marker = line.strip().upper()
        if block is None and marker == "BEGIN:VTIMEZONE":
            block = [line]
        elif block is not None:
            block.append(line)
            if marker == "END:VTIMEZONE":
                lines.extend(names.define(block))
                block = None
        else:
            lines.append(line)
    lines.extend(block or [])
    if not names.names:
        return text
    return "\r\n".join(names.rename(line) for line in lines)
