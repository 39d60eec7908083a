"""An .ics upload split into its components as it arrives: memory holds one component at a time
(and the time zones), never the whole calendar.

The stream's lines are unfolded (RFC 5545 §3.1) and cut at the BEGIN / END lines of the
VCALENDAR's children; each child (VEVENT, VTIMEZONE, ...) is then parsed on its own by
`icalendar`. Parsing a VTIMEZONE registers its zone with `icalendar`, so the events after it
read their TZID times on its rules; a zone the file defines under a non-IANA name gets a private
name first (`connectors/ical_zones.py`), so another import's zone of the same name never lends
its rules. An event naming such a zone not defined yet (its VTIMEZONE comes later in the file,
which RFC 5545 allows) is held back and read at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from icalendar import Component

from connectors.ical_zones import ZoneNames
from gateway.errors import ValidationFailed

# One component larger than this is refused (a real appointment is a few kilobytes).
MAX_COMPONENT_CHARS = 1_000_000


@dataclass
class Piece:
    """One child of the VCALENDAR: its name, and the component or why it cannot be read."""

    name: str
    component: Component | None
    problem: str | None = None


async def _unfolded(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """Content lines with their folds joined and their line ends dropped."""
    current: str | None = None
    async for raw in lines:
        line = raw.rstrip("\r\n")
        if line[:1] in (" ", "\t") and current is not None:
            current += line[1:]
            if len(current) > MAX_COMPONENT_CHARS:
                raise ValidationFailed.one("file", "has a line over a million characters")
            continue
        if current is not None:
            yield current
        current = line
    if current is not None:
        yield current


def _begin(line: str) -> str | None:
    name, _, value = line.partition(":")
    return value.strip().upper() if name.strip().upper() == "BEGIN" else None


def _end(line: str) -> str | None:
    name, _, value = line.partition(":")
    return value.strip().upper() if name.strip().upper() == "END" else None


def _parse(name: str, text: str) -> Piece:
    try:
        component = Component.from_ical(text)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return Piece(name, None, f"cannot be read ({type(exc).__name__})")
    return Piece(name, component)


async def components(lines: AsyncIterator[str]) -> AsyncIterator[Piece]:
    """The VCALENDAR's children, in order (events naming a later VTIMEZONE at the end);
    422 when the stream is not a calendar."""
    logical = _unfolded(lines)
    first = await anext(logical, None)
    while first is not None and not first.strip():
        first = await anext(logical, None)
    if first is None or _begin(first) != "VCALENDAR":
        raise ValidationFailed.one("file", "is not an iCalendar file (RFC 5545)")
    zones = ZoneNames()  # this file's own zones, by their names in the file
    held: list[tuple[str, list[str]]] = []
    stack: list[str] = []
    body: list[str] = []
    size = 0
    async for line in logical:
        if not stack:
            if (name := _begin(line)) is not None:
                stack, body, size = [name], [line], len(line)
            elif _end(line) == "VCALENDAR":
                break
            continue  # a property of the calendar itself
        size += len(line) + 2
        if size <= MAX_COMPONENT_CHARS:
            body.append(line)
        if (inner := _begin(line)) is not None:
            stack.append(inner)
        elif _end(line) is not None:
            stack.pop()
            if stack:
                continue
            name = _end(line) or ""
            if size > MAX_COMPONENT_CHARS:
                yield Piece(name, None, "is over a million characters")
                continue
            if name == "VTIMEZONE":
                body = zones.define(body)
            elif name == "VEVENT" and any(zones.pending(line) for line in body):
                held.append((name, body))  # its VTIMEZONE may come later
                continue
            yield _parse(name, _text(zones, body))
    if stack:
        raise ValidationFailed.one("file", "ends in the middle of a component (cut short?)")
    for name, body in held:
        yield _parse(name, _text(zones, body))


def _text(zones: ZoneNames, body: list[str]) -> str:
    """A component's lines as iCalendar text, its TZIDs naming the file's own zones."""
    return "\r\n".join(zones.rename(line) for line in body) + "\r\n"
