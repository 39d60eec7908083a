"""The connector error tree: what a provider did, in names no API error can be mistaken for.

Each provider module turns its library's errors into these where they are raised; the engine
(gateway/sync/) only ever sees these names. They carry no HTTP status: `gateway.errors.describe`
turns each into the words a person reads and a next step (`action`).

    ExternalError (gateway/errors.py)    also the parent of ChannelError and SecretUnreadable
    └── ConnectorError                   anything a provider did that we could not use
        ├── AuthExpired                  credentials refused or revoked: never retried, "reconnect"
        ├── Transient(retry_after)       try again later (timeouts, 5xx, 429, rate limits)
        │   └── WritesPaused(until)      writes refused until `until` (a usage quota), reads go on
        ├── CursorExpired                the provider no longer accepts the cursor: list in full
        └── RemoteConflict               an optimistic-concurrency condition did not hold
            ├── RemoteNotFound           the item is not there (404 / 410)
            ├── RemoteExists             create found an item with that id already
            └── RemoteChanged            the item changed since the etag we hold (412 on If-Match)
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from gateway.errors import ExternalError


class ConnectorError(ExternalError):
    """A provider answered something we could not use. The message never quotes its data."""

    code = "provider_error"


class AuthExpired(ConnectorError):
    """The provider refused our credentials (wrong password, revoked or expired grant).

    Never retried: the integration waits for the person to reconnect.
    """

    code = "reconnect_needed"
    action = "reconnect"


class Transient(ConnectorError):
    """A temporary failure (timeout, connection refused, 5xx, 429, rate limit): retry later.

    `retry_after` is the provider's own hint in seconds (Retry-After), or None.
    """

    code = "provider_unavailable"
    action = "retry"


def retry_after_seconds(value: object) -> float | None:
    """Seconds from a Retry-After value (RFC 9110 §10.2.3: delta-seconds or an HTTP date), or
    None when there is none or it cannot be read; never negative."""
    if value is None or value == "":
        return None
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        pass
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, says RFC 5322
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


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


class RemoteConflict(ConnectorError):
    """An optimistic-concurrency condition did not hold at the provider."""

    code = "remote_conflict"
    action = "conflict"


class RemoteNotFound(RemoteConflict):
    """The item (or calendar) is not there (404 / 410)."""

    code = "remote_not_found"


class RemoteExists(RemoteConflict):
    """A create found an item with the same id already (If-None-Match: * failed, 409 on insert)."""

    code = "remote_already_exists"


class RemoteChanged(RemoteConflict):
    """The item changed since the etag we hold (412 on If-Match)."""

    code = "remote_changed"
