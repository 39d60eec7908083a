"""Graph's event bodies both ways, our UID's place in them, and Graph's errors turned into ours.

- Our UID lives in a single-value extended property (Graph's iCalUId is read-only), found with
  ``$filter=singleValueExtendedProperties/Any(...)``. calendarView/delta cannot ``$expand`` it,
  so the UID is also carried, reversibly, in the ``transactionId`` (set once at creation: Graph
  answers a retried POST with the same transactionId with the event already created).
- Graph answers times in UTC with the zone written kept in ``originalStartTimeZone``, often a
  Windows name (``Romance Standard Time``): mapped to IANA with icalendar's CLDR table.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from connectors import errors
from connectors.base import Event

# "String {guid} Name calgateUid": a property set of calgate's own (a fixed, made-up GUID).
UID_PROPERTY = f"String {{{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:calgate:uid')}}} Name calgateUid"
_TRANSACTION_PREFIX = "calgate1."


def transaction_id(uid: str) -> str:
    """The transactionId of our event with `uid` (the same on every retry, reversible)."""
    return _TRANSACTION_PREFIX + base64.urlsafe_b64encode(uid.encode()).decode().rstrip("=")


def uid_of(body: dict[str, Any]) -> str:
    """Our UID (extended property or transactionId), else Graph's iCalUId, else the id."""
    for prop in body.get("singleValueExtendedProperties") or ():
        if prop.get("id", "").lower() == UID_PROPERTY.lower() and prop.get("value"):
            return str(prop["value"])
    transaction = str(body.get("transactionId") or "")
    if transaction.startswith(_TRANSACTION_PREFIX):
        text = transaction[len(_TRANSACTION_PREFIX) :]
        try:
            return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            pass
    return str(body.get("iCalUId") or body["id"])


def iana(zone: str | None) -> str | None:
    """The IANA name of a Graph zone name (Windows or IANA), or None when unknown."""
    if not zone:
        return None
    name = WINDOWS_TO_OLSON.get(zone, zone)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _moment(value: dict[str, Any]) -> datetime:
    naive = datetime.fromisoformat(str(value["dateTime"])[:26])
    zone = iana(value.get("timeZone")) or "UTC"
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def from_body(body: dict[str, Any]) -> Event:
    """The neutral event of a Graph event."""
    zone = iana(body.get("originalStartTimeZone"))
    start: datetime | date
    end: datetime | date
    if body.get("isAllDay"):
        start = date.fromisoformat(str(body["start"]["dateTime"])[:10])
        end = date.fromisoformat(str(body["end"]["dateTime"])[:10])
    else:
        start, end = _moment(body["start"]), _moment(body["end"])
    show_as = body.get("showAs")
    content = (body.get("body") or {}).get("content") or None
    modified = body.get("lastModifiedDateTime")
    return Event(
        uid=uid_of(body),
        start=start,
        end=end,
        timezone=None if zone == "UTC" else zone,
        title=str(body.get("subject") or ""),
        location=(body.get("location") or {}).get("displayName") or None,
        description=content,
        status="cancelled"
        if body.get("isCancelled")
        else ("tentative" if show_as == "tentative" else "confirmed"),
        transparency="transparent" if show_as == "free" else "opaque",
        etag=body.get("@odata.etag"),
        last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
    )


def _graph_time(value: datetime | date, zone: str) -> dict[str, str]:
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": zone}
    return {"dateTime": f"{value.isoformat()}T00:00:00", "timeZone": zone}


def to_body(event: Event) -> dict[str, Any]:
    """The Graph body of our event (zone kept as IANA, which Graph accepts)."""
    zone = event.timezone or "UTC"
    body: dict[str, Any] = {
        "subject": event.title,
        "body": {"contentType": "text", "content": event.description or ""},
        "start": _graph_time(event.start, zone),
        "end": _graph_time(event.end, zone),
        "isAllDay": event.all_day,
        "showAs": "free"
        if event.transparency == "transparent"
        else ("tentative" if event.status == "tentative" else "busy"),
        "location": {"displayName": event.location or ""},
        "singleValueExtendedProperties": [{"id": UID_PROPERTY, "value": event.uid}],
    }
    return body


def translate(status: int, body: dict[str, Any], what: str, headers: dict[str, str]) -> Exception:
    """Our error for a Graph error answer (the message names the step, never the data)."""
    error = body.get("error")
    code = str(error.get("code", "")) if isinstance(error, dict) else ""
    words = f"{what}: Graph answered {status} {code}".rstrip()
    if status == 401:
        return errors.AuthExpired(words)
    if status == 404:
        return errors.RemoteNotFound(words)
    if status == 410:
        return (
            errors.CursorExpired(words) if "sync" in code.lower() else errors.RemoteNotFound(words)
        )
    if status in (409, 412):
        return errors.RemoteChanged(words)
    if status == 429 or status >= 500:
        return errors.Transient(words, errors.retry_after_seconds(headers.get("retry-after")))
    return errors.ConnectorError(words)
