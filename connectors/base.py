"""The connector interface: what the sync engine needs from any calendar provider.

One abstract class (`Connector`), the neutral event type (`Event`), what a listing returns
(`RemoteItem`, `ChangeSet`), what a connector may declare (`Capabilities`) and the state it may
share between processes (`SharedState`). Each provider is one module or package
(connectors/caldav.py, connectors/google/, ...) that turns its library's errors into the tree of
connectors/errors.py where they are raised; the engine (gateway/sync/) only ever sees the names in
these files, never a provider's. How providers are found: connectors/registry.py.
"""

from __future__ import annotations

import abc
import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import ClassVar, Literal, Protocol

from connectors.errors import (
    AuthExpired,
    ConnectorError,
    CursorExpired,
    RemoteChanged,
    RemoteConflict,
    RemoteExists,
    RemoteNotFound,
    Transient,
    WritesPaused,
)

_SLOT_POLL = 0.002  # first wait for a free place (seconds), doubled up to _SLOT_POLL_MAX
_SLOT_POLL_MAX = 0.05

__all__ = [
    "AuthExpired",
    "ConnectorError",
    "CursorExpired",
    "RemoteChanged",
    "RemoteConflict",
    "RemoteExists",
    "RemoteNotFound",
    "Transient",
    "WritesPaused",
]

EventStatus = Literal["confirmed", "tentative", "cancelled"]
Transparency = Literal["opaque", "transparent"]


# --- data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One calendar event (or one occurrence of a recurring one), provider-neutral.

    `start` / `end` are aware instants, or both `date`s for an all-day event (end exclusive,
    RFC 5545 §3.6.1). `timezone` is the IANA zone the event was written in (None: UTC or floating;
    for all-day events, the calendar owner's zone is used to place the days). `recurrence_id`
    identifies one occurrence of a series (None for a single event or a series master).
    `etag` and `last_modified` are the provider's, when known.
    """

    uid: str
    start: datetime | date
    end: datetime | date
    timezone: str | None = None
    title: str = ""
    location: str | None = None
    description: str | None = None
    status: EventStatus = "confirmed"
    transparency: Transparency = "opaque"
    recurrence_id: datetime | date | None = None
    etag: str | None = None
    last_modified: datetime | None = None

    @property
    def all_day(self) -> bool:
        """True when start and end are dates rather than instants."""
        return not isinstance(self.start, datetime)


@dataclass(frozen=True)
class RemoteItem:
    """One stored object of a calendar: its address, its version, and what it contains.

    `href` is the provider's id of the object (CalDAV: the resource path; Google: the event id).
    `events` holds the object itself when it is a single event, or the occurrences of a recurring
    series that fall inside the listing window (moved ones at their new time, cancelled ones
    absent), so the engine never expands recurrences itself.
    """

    href: str
    etag: str
    uid: str
    events: tuple[Event, ...]
    recurring: bool = False


@dataclass(frozen=True)
class ChangeSet:
    """The answer to `list_changes`: what changed, and the cursor to pass next time.

    `full` is True when this is a complete listing (the cursor was empty): any href the engine
    knows that is absent from `changed` is gone. Otherwise `deleted` lists hrefs removed since the
    cursor.
    """

    cursor: str
    changed: tuple[RemoteItem, ...]
    deleted: tuple[str, ...] = ()
    full: bool = False
    # Items that could not be read (bad iCalendar, a date out of range, ...), left out of
    # `changed`: the engine logs each one in words and carries on with the rest.
    skipped: tuple[Skipped, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """One remote item left out of a listing, and why, in words (never its content)."""

    href: str
    reason: str


@dataclass(frozen=True)
class Written:
    """Where a create or update left the object: its href and its new etag."""

    href: str
    etag: str


@dataclass(frozen=True)
class CalendarInfo:
    """One calendar the credentials can see. `id` is what every other method takes."""

    id: str
    name: str
    writable: bool = True
    primary: bool = False  # the account's own calendar (written to until the person chooses)


@dataclass(frozen=True)
class Window:
    """The time range a full listing covers and recurrences are expanded in (aware instants)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do, so the engine can choose (never by provider name)."""

    incremental: bool = True  # list_changes with a cursor returns only changes
    watch: bool = False  # watch_start / watch_stop push notifications
    client_ids: bool = True  # create() names the object from the event's UID (retry-safe)
    user_url: bool = False  # the person types the server URL (checked against SSRF first)
    oauth: bool = False  # connects by consent at the provider (the provider's `OAuth`)


@dataclass(frozen=True)
class Credentials:
    """What a connector is built from. `secret` is the password or token, decrypted.

    `extra` holds provider-specific non-secret settings (e.g. a principal URL found at discovery).
    `guard(host, address)`, when given, must be asked before every connection the connector
    opens to a user-given address (redirect targets included): False means do not connect
    (the SSRF rule, gateway/sync/outbound.py). Connectors refuse with a ConnectorError.
    """

    server_url: str | None
    username: str | None
    secret: str
    extra: Mapping[str, str] = field(default_factory=dict)
    guard: Callable[[str, str], bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class WatchChannel:
    """A push-notification subscription: opaque to the engine, kept to stop or renew it.
    `resource_id` is what notifications must name as watched ("": nothing to compare)."""

    id: str
    resource_id: str
    expires_at: datetime


# --- the interface ------------------------------------------------------------------------


class Connector(abc.ABC):
    """One provider account, as the engine sees it. Every method may also raise AuthExpired or
    Transient; the ones named below are the specific outcomes callers handle."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, credentials: Credentials) -> None:
        """Hold the credentials; no network here (the first call connects). Raises
        ConnectorError when they cannot work at all (e.g. no server URL)."""
        self.credentials = credentials
        # Where a calendar names no zone for its floating times (RFC 5545 §3.3.5 "local
        # time"), they are read on this clock: the engine sets the practitioner's zone.
        self.floating_zone: tzinfo = UTC

    @abc.abstractmethod
    async def list_calendars(self) -> list[CalendarInfo]:
        """The calendars these credentials can see (discovery included).

        Raises AuthExpired on refused credentials, Transient on network trouble.
        """

    @abc.abstractmethod
    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        """Everything changed in the calendar since `cursor`.

        With `cursor` None: a full listing of the calendar, recurrences expanded within `window`
        (`ChangeSet.full` is True). Raises CursorExpired when the provider refuses the cursor
        (the caller then lists in full with None); RemoteNotFound when the calendar is gone.
        """

    @abc.abstractmethod
    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        """The object at `href`, as it is now. Raises RemoteNotFound."""

    @abc.abstractmethod
    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        """The object whose UID is `uid`, or None. Used to adopt our events on reconnect and
        after a RemoteExists."""

    @abc.abstractmethod
    async def create(self, calendar_id: str, event: Event) -> Written:
        """Create `event`, named from its UID so that a retried create cannot duplicate it
        (CalDAV: If-None-Match: *; Google: client-supplied id).

        Raises RemoteExists when an object with that UID/name is already there.
        """

    @abc.abstractmethod
    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        """Replace the object at `href` with `event`, only if it is still at `etag` (If-Match).

        Raises RemoteChanged when it changed meanwhile; RemoteNotFound when it is gone.
        """

    @abc.abstractmethod
    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        """Delete the object at `href` (If-Match `etag` when given).

        Raises RemoteChanged when it changed meanwhile; RemoteNotFound when it is already gone.
        """

    async def revoke(self) -> None:  # noqa: B027 - optional, nothing to revoke by default
        """Give up the credentials at the provider (OAuth revoke); a no-op where there is none.

        Raises Transient; AuthExpired means they were already invalid (fine to ignore).
        """

    async def watch_start(self, calendar_id: str, address: str, token: str) -> WatchChannel:
        """Subscribe `address` to push notifications for the calendar (capabilities.watch)."""
        raise NotImplementedError(f"{self.name} has no push notifications")

    async def watch_stop(self, channel: WatchChannel) -> None:
        """End a subscription made by watch_start. Raises RemoteNotFound when already gone."""
        raise NotImplementedError(f"{self.name} has no push notifications")

    async def watch_renew(self, channel: WatchChannel) -> WatchChannel:
        """Extend a subscription made by watch_start, keeping its id and token: the channel with
        its new expiry. Raises NotImplementedError where channels cannot be extended (a new one
        is started instead), RemoteNotFound when it is gone at the provider."""
        raise NotImplementedError(f"{self.name} cannot renew push channels")

    def credentials_changed(self) -> Credentials | None:
        """New credentials to store (a rotated refresh token), or None. Read after each sync."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional
        """Release network resources."""


class SharedState(Protocol):
    """State a connector shares with every process on the same database (request budgets,
    write pauses, cached access tokens), under keys of its own. The daemon gives each connector
    one (gateway/sync/shared.py); a connector used on its own gets a `LocalState`.

    Values are secrets at rest where they need to be: the daemon's implementation encrypts them.
    """

    async def read(self, key: str) -> str | None:
        """The value stored under `key`, or None when there is none or it expired."""

    async def write(self, key: str, value: str, until: datetime) -> None:
        """Store `value` under `key` until `until` (aware)."""

    async def forget(self, key: str) -> None:
        """Remove `key`."""

    async def book(self, key: str, limit: int, window_seconds: float) -> float:
        """Book one call in the budget `key` (at most `limit` calls in any `window_seconds`):
        the seconds to wait before making it (0 when it fits now). The booking counts at the
        time it is made plus that wait."""

    def slot(self, key: str, places: int, hold_seconds: float) -> AbstractAsyncContextManager[None]:
        """Hold one of `places` places under `key` while the block runs, waiting for one: at
        most `places` holders at once among everyone sharing this state (a concurrency cap). A
        holder that dies without leaving frees its place after `hold_seconds`."""


class LocalState:
    """`SharedState` held in this process only: for a connector used on its own (tests, scripts)
    and for the SQLite store, which one process uses (see gateway/sync/shared.py)."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, datetime]] = {}
        self._calls: dict[str, deque[float]] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    async def read(self, key: str) -> str | None:
        """See `SharedState.read`."""
        with self._lock:
            value, until = self._values.get(key, ("", datetime.min.replace(tzinfo=UTC)))
        return value if until > datetime.now(UTC) else None

    async def write(self, key: str, value: str, until: datetime) -> None:
        """See `SharedState.write`."""
        with self._lock:
            self._values[key] = (value, until)

    async def forget(self, key: str) -> None:
        """See `SharedState.forget`."""
        with self._lock:
            self._values.pop(key, None)

    async def book(self, key: str, limit: int, window_seconds: float) -> float:
        """See `SharedState.book` (a sliding window of booked call times)."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and calls[0] <= now - window_seconds:
                calls.popleft()
            wait = 0.0
            if len(calls) >= limit:
                wait = calls[len(calls) - limit] + window_seconds - now
            calls.append(now + max(0.0, wait))
        return max(0.0, wait)

    @asynccontextmanager
    async def slot(self, key: str, places: int, hold_seconds: float) -> AsyncIterator[None]:
        """See `SharedState.slot` (a counter: holders here cannot die without this process)."""
        pause = _SLOT_POLL
        while True:
            with self._lock:
                if self._held.get(key, 0) < places:
                    self._held[key] = self._held.get(key, 0) + 1
                    break
            await asyncio.sleep(pause)  # polled: no event loop is bound to this state
            pause = min(pause * 2, _SLOT_POLL_MAX)
        try:
            yield
        finally:
            with self._lock:
                self._held[key] -= 1
