"""An in-memory calendar provider: the engine's tests run against it, and the contract suite
checks it behaves like the real ones (etags, sync cursors, 412s, expired cursors).

A `MemoryServer` plays the provider; `MemoryConnector` is the client side. Servers are found by
the integration's server URL (``memory://NAME``) through `serve()`. Recurring series are stored
already expanded (their occurrences), so the connector just filters them by window.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from connectors.registry import Provider, plain

if TYPE_CHECKING:
    from gateway.config import Settings
from connectors.base import (
    AuthExpired,
    CalendarInfo,
    Capabilities,
    ChangeSet,
    Connector,
    ConnectorError,
    Credentials,
    CursorExpired,
    Event,
    RemoteChanged,
    RemoteExists,
    RemoteItem,
    RemoteNotFound,
    Window,
    Written,
)


def _instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.combine(value, time.min, tzinfo=UTC)


def _overlaps(event: Event, window: Window) -> bool:
    return _instant(event.start) < window.end and _instant(event.end) > window.start


@dataclass
class _Object:
    uid: str
    etag: str
    events: tuple[Event, ...]
    recurring: bool


@dataclass
class MemoryServer:
    """The provider's side: calendars of objects, a change log for cursors, failure switches."""

    password: str = "secret"  # noqa: S105 - test credential
    calendars: dict[str, dict[str, _Object]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    # (sequence number, calendar, href) of every change; cursors are sequence numbers.
    log: list[tuple[int, str, str]] = field(default_factory=list)
    expired_before: int = 0  # cursors older than this answer CursorExpired
    fail_next: list[ConnectorError] = field(default_factory=list)
    requests: int = 0
    writes: int = 0
    # Called once after the next listing (a test acting between our read and our write).
    after_list: list[Callable[[], None]] = field(default_factory=list)
    latency: float = 0.0  # seconds each listing takes (a slow server)
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _last: int = 0

    def add_calendar(self, calendar_id: str, name: str = "") -> None:
        self.calendars.setdefault(calendar_id, {})
        self.names[calendar_id] = name or calendar_id

    def _bump(self, calendar_id: str, href: str) -> str:
        self._last = next(self._seq)
        self.log.append((self._last, calendar_id, href))
        return f'"{self._last}"'

    def put(self, calendar_id: str, href: str, *events: Event, recurring: bool = False) -> str:
        """Store (or replace) an object as another calendar app would; returns its new etag."""
        etag = self._bump(calendar_id, href)
        self.calendars[calendar_id][href] = _Object(events[0].uid, etag, events, recurring)
        return etag

    def remove(self, calendar_id: str, href: str) -> None:
        """Delete an object as another calendar app would."""
        del self.calendars[calendar_id][href]
        self._bump(calendar_id, href)

    def expire_cursors(self) -> None:
        """Invalidate every cursor handed out so far (a provider dropping its sync state)."""
        self.expired_before = self._last + 1

    def find(self, calendar_id: str, uid: str) -> tuple[str, _Object] | None:
        for href, obj in self.calendars[calendar_id].items():
            if obj.uid == uid:
                return href, obj
        return None


_SERVERS: dict[str, MemoryServer] = {}


def serve(url: str, server: MemoryServer) -> None:
    """Make `server` reachable at `url` (``memory://NAME``)."""
    _SERVERS[url] = server


class MemoryConnector(Connector):
    """The client side of a MemoryServer."""

    name = "memory"
    capabilities = Capabilities(incremental=True, watch=False, client_ids=True)

    def __init__(self, credentials: Credentials) -> None:
        server = _SERVERS.get(credentials.server_url or "")
        if server is None:
            raise ConnectorError("no memory server at that address")
        self.server = server
        self.credentials = credentials

    def _enter(self, write: bool = False) -> None:
        self.server.requests += 1
        self.server.writes += write
        if self.server.fail_next:
            raise self.server.fail_next.pop(0)
        if self.credentials.secret != self.server.password:
            raise AuthExpired("the provider refused the credentials")

    def _calendar(self, calendar_id: str) -> dict[str, _Object]:
        try:
            return self.server.calendars[calendar_id]
        except KeyError:
            raise RemoteNotFound("no such calendar") from None

    def _item(self, href: str, obj: _Object, window: Window) -> RemoteItem:
        events = obj.events
        if obj.recurring:
            events = tuple(e for e in events if _overlaps(e, window))
        return RemoteItem(
            href, obj.etag, obj.uid, tuple(replace(e, etag=obj.etag) for e in events), obj.recurring
        )

    async def list_calendars(self) -> list[CalendarInfo]:
        self._enter()
        return [CalendarInfo(c, self.server.names.get(c, c)) for c in self.server.calendars]

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        self._enter()
        if self.server.latency:
            await asyncio.sleep(self.server.latency)
        objects = self._calendar(calendar_id)
        now = str(self.server._last)
        hooks, self.server.after_list = self.server.after_list, []
        if cursor is None:
            items = tuple(self._item(h, o, window) for h, o in sorted(objects.items()))
            for hook in hooks:
                hook()
            return ChangeSet(now, items, (), full=True)
        since = int(cursor)
        if since < self.server.expired_before - 1:
            raise CursorExpired("the provider no longer accepts this cursor")
        hrefs = sorted({h for seq, cal, h in self.server.log if seq > since and cal == calendar_id})
        changed = tuple(self._item(h, objects[h], window) for h in hrefs if h in objects)
        deleted = tuple(h for h in hrefs if h not in objects)
        for hook in hooks:
            hook()
        return ChangeSet(now, changed, deleted, full=False)

    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        self._enter()
        obj = self._calendar(calendar_id).get(href)
        if obj is None:
            raise RemoteNotFound("no such item")
        return self._item(href, obj, window)

    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        self._enter()
        self._calendar(calendar_id)
        found = self.server.find(calendar_id, uid)
        return self._item(found[0], found[1], window) if found else None

    async def create(self, calendar_id: str, event: Event) -> Written:
        self._enter(write=True)
        objects = self._calendar(calendar_id)
        href = f"{event.uid}.ics"
        if href in objects:
            raise RemoteExists("an item with this UID exists")
        etag = self.server.put(calendar_id, href, event)
        return Written(href, etag)

    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        self._enter(write=True)
        obj = self._calendar(calendar_id).get(href)
        if obj is None:
            raise RemoteNotFound("no such item")
        if obj.etag != etag:
            raise RemoteChanged("the item changed meanwhile")
        return Written(href, self.server.put(calendar_id, href, event))

    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        self._enter(write=True)
        obj = self._calendar(calendar_id).get(href)
        if obj is None:
            raise RemoteNotFound("no such item")
        if etag is not None and obj.etag != etag:
            raise RemoteChanged("the item changed meanwhile")
        self.server.remove(calendar_id, href)


def provider(settings: Settings) -> Provider:
    """Memory calendar for `connectors.load` (nothing to configure)."""
    return plain(MemoryConnector, "Memory calendar")
