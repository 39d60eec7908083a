"""Google Calendar's wire format: event ids, event bodies, push-notification headers, and its
errors turned into ours (connectors/errors.py).

- Event ids: ours are client-supplied, derived from our UID (base32hex, Google's alphabet), so a
  retried insert answers 409 instead of duplicating; our UID also goes into
  ``extendedProperties.private`` (`UID_PROPERTY`), which finds our events again on reconnect.
- Writes carry ``If-Match``: 412 → RemoteChanged; 404 / 410 → RemoteNotFound; 409 → RemoteExists;
  ``410 fullSyncRequired`` → CursorExpired; 401 and ``invalid_grant`` → AuthExpired.
- Push: the ``X-Goog-*`` headers of a notification (`read_notification`).
"""

from __future__ import annotations

import base64
import hashlib
import socket
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from connectors.base import Event
from connectors.errors import (
    AuthExpired,
    ConnectorError,
    CursorExpired,
    RemoteChanged,
    RemoteExists,
    RemoteNotFound,
    Transient,
    retry_after_seconds,
)
from connectors.registry import Incoming, Notification
from gateway.errors import network_words

UID_PROPERTY = "calgateUid"  # our UID in extendedProperties.private
RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}


# --- ids and event bodies -----------------------------------------------------------------


def event_id(uid: str) -> str:
    """Google event id for our UID: base32hex (a-v, 0-9) of its SHA-256, 52 characters."""
    digest = hashlib.sha256(uid.encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def _when(value: datetime | date, zone: str | None) -> dict[str, str]:
    if isinstance(value, datetime):
        tz = ZoneInfo(zone) if zone else UTC
        body = {"dateTime": value.astimezone(tz).isoformat()}
        body["timeZone"] = zone or "UTC"
        return body
    return {"date": value.isoformat()}


def to_body(event: Event) -> dict[str, Any]:
    """The Google event resource for a neutral event of ours."""
    body: dict[str, Any] = {
        "iCalUID": event.uid,
        "summary": event.title,
        "start": _when(event.start, event.timezone),
        "end": _when(event.end, event.timezone),
        "status": "tentative" if event.status == "tentative" else "confirmed",
        "transparency": event.transparency,
        "extendedProperties": {"private": {UID_PROPERTY: event.uid}},
    }
    if event.location:
        body["location"] = event.location
    if event.description:
        body["description"] = event.description
    return body


class Unreadable(ValueError):
    """An event resource that cannot be read as an event; the message says why, in words."""


def _zone_or_none(name: Any) -> str | None:
    """`name` when it is an IANA zone this machine knows (Google also passes on what calendar
    files imported into it said: Windows names, made-up zones), else None."""
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _parse_when(value: Any) -> datetime | date:
    if not isinstance(value, Mapping):
        raise Unreadable("its start or end is not a date or time")
    try:
        if "date" in value:
            return date.fromisoformat(str(value["date"]))
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:  # Google always sends an offset; be safe anyway
            moment = moment.replace(tzinfo=ZoneInfo(_zone_or_none(value.get("timeZone")) or "UTC"))
        moment.astimezone(UTC)  # out of range fails here, not later
    except (KeyError, ValueError, TypeError, OverflowError):
        raise Unreadable("its start or end cannot be read as a date or time") from None
    return moment


def uid_of(resource: Mapping[str, Any]) -> str:
    """Our UID of a Google event: the private property, else its iCalUID, else its id."""
    private = resource.get("extendedProperties", {}).get("private", {})
    return str(private.get(UID_PROPERTY) or resource.get("iCalUID") or resource["id"])


def from_body(resource: Mapping[str, Any]) -> Event:
    """A neutral event from a Google event resource (an instance keeps its original start).

    Raises Unreadable (in words) for what cannot be an event. A missing end is read as RFC 5545
    reads a missing DTEND (a day for an all-day event, no length for a timed one), as Google's
    ``endTimeUnspecified`` means; a zone this machine does not know is left out (the times
    carry their offsets).
    """
    if "start" not in resource:
        raise Unreadable("it has no start")
    start = _parse_when(resource["start"])
    if resource.get("end") is None:
        end: datetime | date = start if isinstance(start, datetime) else start + timedelta(days=1)
    else:
        end = _parse_when(resource["end"])
    if isinstance(start, datetime) != isinstance(end, datetime):
        raise Unreadable("its start and end mix an all-day date with a time")
    if end < start:
        raise Unreadable("its end is before its start")
    original = resource.get("originalStartTime")
    updated = resource.get("updated")
    status = resource.get("status", "confirmed")
    try:
        modified = datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None
    except (AttributeError, ValueError):
        modified = None
    return Event(
        uid=uid_of(resource),
        start=start,
        end=end,
        timezone=_zone_or_none(resource["start"].get("timeZone")),
        title=resource.get("summary", ""),
        location=resource.get("location"),
        description=resource.get("description"),
        status=status if status in ("confirmed", "tentative", "cancelled") else "confirmed",
        transparency="transparent" if resource.get("transparency") == "transparent" else "opaque",
        recurrence_id=_parse_when(original) if original else None,
        etag=resource.get("etag"),
        last_modified=modified,
    )


def rfc3339(moment: datetime) -> str:
    """An instant as Google's query parameters want it (UTC, Z)."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- errors -------------------------------------------------------------------------------


def reason(exc: HttpError) -> str:
    """The ``reason`` of Google's error body (``quotaExceeded``, ``rateLimitExceeded``, ...)."""
    details = exc.error_details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
    return ""


def retry_after(headers: Any) -> float | None:
    """The Retry-After header in seconds, or None."""
    return retry_after_seconds(headers.get("retry-after") if headers is not None else None)


def translate(exc: Exception, what: str) -> ConnectorError:
    """One library or network error as ours (never quoting Google's data)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, HttpError):
        status, why = exc.status_code, reason(exc)
        if status == 401:
            return AuthExpired("Google refused the access token")
        if status == 429 or (status == 403 and why in RATE_REASONS):
            return Transient("Google asked us to slow down", retry_after(exc.resp))
        if status == 403:
            return ConnectorError(f"Google refused {what} ({why or 'forbidden'})")
        if status == 404:
            return RemoteNotFound(f"{what}: not found at Google")
        if status == 410:
            if why == "fullSyncRequired":
                return CursorExpired("Google no longer accepts the sync token")
            return RemoteNotFound(f"{what}: deleted at Google")
        if status == 409:
            return RemoteExists(f"{what}: an event with this id exists at Google")
        if status == 412:
            return RemoteChanged(f"{what}: changed at Google meanwhile")
        if status >= 500:
            return Transient(f"Google answered {status}", retry_after(exc.resp))
        return ConnectorError(f"Google answered {status} to {what} ({why or 'error'})")
    if isinstance(exc, google.auth.exceptions.RefreshError):
        text = str(exc.args[0]) if exc.args else ""
        if text.startswith("invalid_grant"):
            return AuthExpired("Google refused the grant (revoked or expired): reconnect needed")
        if getattr(exc, "retryable", False):
            return Transient("Google's token endpoint failed")
        return AuthExpired("Google refused to refresh the access token")
    if isinstance(exc, google.auth.exceptions.TransportError):
        return Transient(f"could not reach Google's token endpoint: {network_words(exc)}")
    if isinstance(exc, httplib2.HttpLib2Error | OSError | socket.timeout):
        return Transient(f"could not reach Google: {network_words(exc)}")
    if isinstance(exc, ValueError):  # json.JSONDecodeError among them: a cut-off or HTML answer
        return Transient(f"Google's answer to {what} was not the JSON asked for (cut short?)")
    return ConnectorError(f"Google's answer to {what} could not be used")


def unusable(answer: Any, what: str) -> Transient | None:
    """An answer that is not the JSON object asked for (googleapiclient hands back the raw text
    of a body it could not decode: a proxy's web page, a cut-off answer): a passing failure."""
    if answer is None or answer == "" or isinstance(answer, dict):
        return None
    return Transient(f"Google answered {what} with something other than calendar data")


# --- push notifications -------------------------------------------------------------------


def read_notification(request: Incoming) -> Notification | None:
    """The notification in a webhook request's ``X-Goog-*`` headers, or None if it is not one.

    Every message but the initial ``sync`` says the calendar changed.
    """
    lower = {k.lower(): v for k, v in request.headers.items()}
    channel = lower.get("x-goog-channel-id")
    state = lower.get("x-goog-resource-state")
    if not channel or not state:
        return None
    return Notification(
        channel,
        lower.get("x-goog-channel-token"),
        lower.get("x-goog-resource-id"),
        changed=state != "sync",
    )
