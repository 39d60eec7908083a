"""The connector interface: what the sync engine needs from any calendar provider.

One abstract class (`Connector`), the neutral event type (`Event`), what a listing returns
(`RemoteItem`, `ChangeSet`), and the one connector error tree. Each provider is one module
(connectors/caldav.py, google.py, ...) that turns its library's errors into these where they are
raised; the engine (gateway/sync/) only ever sees the names in this file, never a provider's.

Error tree (all `CalgateError`s, see gateway/errors.py):

    ConnectorError                 anything a provider did that we could not use
    ├── AuthExpired                credentials refused or revoked: never retried, "reconnect"
    ├── Transient(retry_after)     try again later (timeouts, 5xx, 429, rate limits)
    ├── CursorExpired              the provider no longer accepts the cursor: list in full
    └── PreconditionFailed         an optimistic-concurrency condition did not hold
        ├── NotFound               the item is not there (404 / 410)
        ├── AlreadyExists          create found an item with that id already (If-None-Match)
        └── WrongEtag              the item changed since the etag we hold (412 on If-Match)
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import ClassVar, Literal

from gateway.errors import CalgateError

EventStatus = Literal["confirmed", "tentative", "cancelled"]
Transparency = Literal["opaque", "transparent"]


# --- errors -------------------------------------------------------------------------------


class ConnectorError(CalgateError):
    """A provider answered something we could not use. The message never quotes its data."""

    status_code = 502
    code = "provider_error"


class AuthExpired(ConnectorError):
    """The provider refused our credentials (wrong password, revoked or expired grant).

    Never retried: the integration waits for the person to reconnect.
    """

    code = "reconnect_needed"


class Transient(ConnectorError):
    """A temporary failure (timeout, connection refused, 5xx, 429, rate limit): retry later.

    `retry_after` is the provider's own hint in seconds (Retry-After), or None.
    """

    status_code = 503
    code = "provider_unavailable"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WritesPaused(Transient):
    """The provider refuses writes to a calendar until `until` (a usage quota), reads go on.

    Raised by writes only. The engine then stops pushing for this run but still records what it
    read (busy time, moves in the calendar); the pushes stay pending until the pause ends.
    """

    code = "provider_writes_paused"

    def __init__(self, message: str, until: datetime, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after)
        self.until = until


class CursorExpired(ConnectorError):
    """The provider declared the cursor invalid (sync token expired): do a full listing."""

    code = "cursor_expired"


class PreconditionFailed(ConnectorError):
    """An optimistic-concurrency condition did not hold."""

    status_code = 409
    code = "precondition_failed"


class NotFound(PreconditionFailed):
    """The item (or calendar) is not there (404 / 410)."""

    code = "remote_not_found"


class AlreadyExists(PreconditionFailed):
    """A create found an item with the same id already (If-None-Match: * failed, 409 on insert)."""

    code = "remote_already_exists"


class WrongEtag(PreconditionFailed):
    """The item changed since the etag we hold (412 on If-Match)."""

    code = "remote_changed"


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
    """A push-notification subscription: opaque to the engine, kept to stop or renew it."""

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
        (the caller then lists in full with None); NotFound when the calendar is gone.
        """

    @abc.abstractmethod
    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        """The object at `href`, as it is now. Raises NotFound."""

    @abc.abstractmethod
    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        """The object whose UID is `uid`, or None. Used to adopt our events on reconnect and
        after an AlreadyExists."""

    @abc.abstractmethod
    async def create(self, calendar_id: str, event: Event) -> Written:
        """Create `event`, named from its UID so that a retried create cannot duplicate it
        (CalDAV: If-None-Match: *; Google: client-supplied id).

        Raises AlreadyExists when an object with that UID/name is already there.
        """

    @abc.abstractmethod
    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        """Replace the object at `href` with `event`, only if it is still at `etag` (If-Match).

        Raises WrongEtag when it changed meanwhile; NotFound when it is gone.
        """

    @abc.abstractmethod
    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        """Delete the object at `href` (If-Match `etag` when given).

        Raises WrongEtag when it changed meanwhile; NotFound when it is already gone.
        """

    async def revoke(self) -> None:  # noqa: B027 - optional, nothing to revoke by default
        """Give up the credentials at the provider (OAuth revoke); a no-op where there is none.

        Raises Transient; AuthExpired means they were already invalid (fine to ignore).
        """

    async def watch_start(self, calendar_id: str, address: str, token: str) -> WatchChannel:
        """Subscribe `address` to push notifications for the calendar (capabilities.watch)."""
        raise NotImplementedError(f"{self.name} has no push notifications")

    async def watch_stop(self, channel: WatchChannel) -> None:
        """End a subscription made by watch_start. Raises NotFound when already gone."""
        raise NotImplementedError(f"{self.name} has no push notifications")

    def credentials_changed(self) -> Credentials | None:
        """New credentials to store (a rotated refresh token), or None. Read after each sync."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional
        """Release network resources."""


ConnectorFactory = Callable[[Credentials], Connector]
_REGISTRY: dict[str, tuple[ConnectorFactory, Capabilities]] = {}


def register(
    name: str, factory: ConnectorFactory, capabilities: Capabilities | None = None
) -> None:
    """Make the provider `name` available to integrations (done at import by each module;
    connectors/available.py imports them all). `capabilities` defaults to the factory's own
    `capabilities` attribute when it is a Connector class, else to `Capabilities()`."""
    found = capabilities or getattr(factory, "capabilities", None)
    _REGISTRY[name] = (factory, found if isinstance(found, Capabilities) else Capabilities())


def _entry(name: str) -> tuple[ConnectorFactory, Capabilities]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConnectorError(f"unknown calendar provider {name!r}") from None


def capabilities_of(name: str) -> Capabilities:
    """What provider `name` can do. Raises ConnectorError for an unknown provider."""
    return _entry(name)[1]


def build(name: str, credentials: Credentials) -> Connector:
    """A connector for provider `name`. Raises ConnectorError for an unknown provider."""
    return _entry(name)[0](credentials)


def providers() -> list[str]:
    """The registered provider names."""
    return sorted(_REGISTRY)
