"""A stand-in for Google's OAuth 2.0 endpoints and the Calendar API v3, on 127.0.0.1.

It follows Google's public reference for what calgate uses, failures included:

- OAuth 2.0 web server flow: ``GET /o/oauth2/auth`` consents at once and redirects to the
  registered redirect URI with ``code`` and ``state``; ``POST /token`` (grant types
  ``authorization_code`` and ``refresh_token``; ``400 invalid_grant`` for a bad, used, expired or
  revoked grant); ``POST /revoke`` (``400 invalid_token`` for an unknown one).
- Calendar API under ``/calendar/v3/``: ``users/me/calendarList``; ``events`` list (pages of
  ``page_size`` items with ``nextPageToken``; ``nextSyncToken`` on the last page only; a
  ``syncToken`` listing returns changes, deletions as ``status: cancelled``; ``410
  fullSyncRequired`` for a token it has invalidated; ``timeMin``; ``privateExtendedProperty``;
  ``iCalUID``; ``singleEvents``), ``instances``, insert (client-supplied id, ``409 duplicate``),
  get, update (PUT), patch, delete with ``If-Match`` (``412 conditionNotMet``), ``404`` / ``410
  deleted``; ``events/watch`` and ``channels/stop``, with real POSTs to the channel's address
  carrying the documented ``X-Goog-*`` headers (``sync`` first, then ``exists``).
- Switchable failures for the next N API calls: 429 with Retry-After, 403 rateLimitExceeded /
  userRateLimitExceeded / quotaExceeded, 500 backendError.

Tests act as the Google Calendar app through the `GooglePeer` methods (`put_event`,
`move_instance`, `cancel_instance`, `delete_event`, ...). Error bodies have Google's shape:
``{"error": {"errors": [{"domain", "reason", "message"}], "code", "message"}}``.
"""

from __future__ import annotations

import base64
import itertools
import json
import queue
import re
import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
_API = "/calendar/v3/"


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        domain: str = "global",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "errors": [{"domain": self.domain, "reason": self.reason, "message": self.message}],
                "code": self.status,
                "message": self.message,
            }
        }


FAILURES: dict[str, ApiError] = {
    "429": ApiError(
        429, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits", {"Retry-After": "1"}
    ),
    "rateLimitExceeded": ApiError(403, "rateLimitExceeded", "Rate Limit Exceeded", "usageLimits"),
    "userRateLimitExceeded": ApiError(
        403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits"
    ),
    "quotaExceeded": ApiError(
        403, "quotaExceeded", "Calendar usage limits exceeded.", "usageLimits"
    ),
    "500": ApiError(500, "backendError", "Backend Error"),
}


def _parse_time(value: dict[str, Any]) -> datetime | date:
    if "date" in value:
        return date.fromisoformat(value["date"])
    moment = datetime.fromisoformat(value["dateTime"])
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
    return moment


def _instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Channel:
    id: str
    resource_id: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    message_number: int = 0
    stopped: bool = False


@dataclass
class Calendar:
    id: str
    summary: str
    access_role: str = "owner"
    time_zone: str = "UTC"
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Call:
    """One API request as it arrived (for tests counting requests or reading headers)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)  # when it arrived


class GooglePeer:
    """The provider's state and the test's hands on it. Thread-safe (one lock)."""

    def __init__(self, page_size: int = 3) -> None:
        self.lock = threading.RLock()
        self.page_size = page_size
        self.base_url = ""  # set by running()
        self.calendars: dict[str, Calendar] = {}
        self.primary: str | None = None  # the account's own calendar; the first added if None
        self.clients: dict[str, tuple[str, set[str]]] = {}  # client id → (secret, redirect URIs)
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, tuple[str, datetime]] = {}  # token → (refresh token, expiry)
        self.revoked: list[str] = []  # tokens revoked at /revoke, in order
        self.channels: dict[str, Channel] = {}
        self.stopped_channels: list[str] = []
        self.calls: list[Call] = []
        self.token_requests: list[dict[str, str]] = []
        self.failures: list[tuple[ApiError, set[str] | None]] = []
        self.notifications: list[dict[str, str]] = []
        self.access_token_seconds = 3599
        self._seq = itertools.count(1)
        self.last_seq = 0
        self.sync_epoch = 0
        self._pages: dict[str, tuple[list[dict[str, Any]], str | None]] = {}
        self._outbox: queue.Queue[tuple[str, dict[str, str]] | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._sender.start()

    # --- the test's hands -----------------------------------------------------------------

    def add_client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = (secret, {redirect_uri})

    def add_calendar(
        self, calendar_id: str, summary: str = "", access_role: str = "owner", tz: str = "UTC"
    ) -> None:
        with self.lock:
            self.calendars.setdefault(
                calendar_id, Calendar(calendar_id, summary or calendar_id, access_role, tz)
            )

    def put_event(self, calendar_id: str, body: dict[str, Any]) -> str:
        """Create or replace an event as the Google Calendar app would; returns its id."""
        with self.lock:
            event = dict(body)
            event.setdefault("id", secrets.token_hex(12).translate(str.maketrans("", "", "wxyz")))
            event.setdefault("status", "confirmed")
            event.setdefault("iCalUID", f"{event['id']}@google.com")
            self._store(calendar_id, event)
            return str(event["id"])

    def patch_event(self, calendar_id: str, event_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            event = {**self.calendars[calendar_id].events[event_id], **changes}
            self._store(calendar_id, event)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            event = self.calendars[calendar_id].events[event_id]
            self._store(calendar_id, {**event, "status": "cancelled"})

    def move_instance(
        self, calendar_id: str, master_id: str, original: datetime, start: datetime, end: datetime
    ) -> str:
        """Move one occurrence of a recurring event (an exception event, as Google stores it)."""
        return self._exception(calendar_id, master_id, original, start, end, "confirmed")

    def cancel_instance(self, calendar_id: str, master_id: str, original: datetime) -> str:
        """Cancel one occurrence of a recurring event."""
        return self._exception(calendar_id, master_id, original, None, None, "cancelled")

    def _exception(
        self,
        calendar_id: str,
        master_id: str,
        original: datetime,
        start: datetime | None,
        end: datetime | None,
        status: str,
    ) -> str:
        with self.lock:
            master = self.calendars[calendar_id].events[master_id]
            tz = master["start"].get("timeZone", "UTC")
            length = _instant(_parse_time(master["end"])) - _instant(_parse_time(master["start"]))
            start = start or original
            end = end or original + length
            instance_id = f"{master_id}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            event = {
                "id": instance_id,
                "status": status,
                "iCalUID": master.get("iCalUID"),
                "recurringEventId": master_id,
                "originalStartTime": {"dateTime": _rfc3339(original), "timeZone": tz},
                "summary": master.get("summary", ""),
                "start": {"dateTime": start.isoformat(), "timeZone": tz},
                "end": {"dateTime": end.isoformat(), "timeZone": tz},
            }
            self._store(calendar_id, event)
            return instance_id

    def expire_sync_tokens(self) -> None:
        """Invalidate every sync token handed out so far (next use answers 410)."""
        with self.lock:
            self.sync_epoch += 1

    def fail_next(
        self,
        kind: str,
        times: int = 1,
        methods: set[str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        """Answer the next `times` API calls (of `methods`, e.g. {"POST"}) with failure `kind`
        (429 carries Retry-After: 1 unless `retry_after` says otherwise)."""
        failure = FAILURES[kind]
        if retry_after is not None:
            failure = ApiError(
                failure.status,
                failure.reason,
                failure.message,
                failure.domain,
                {"Retry-After": str(retry_after)},
            )
        with self.lock:
            self.failures.extend([(failure, methods)] * times)

    def grant(self, client_id: str, scope: str = "") -> str:
        """A refresh token as if the user had consented (skips the browser round trip)."""
        with self.lock:
            refresh = "1//" + secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = {
                "client_id": client_id,
                "scope": scope,
                "revoked": False,
            }
            return refresh

    def revoke_grant(self, refresh_token: str) -> None:
        """The user removes the app's access in their Google account."""
        with self.lock:
            self._revoke(refresh_token)

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e
                for e in self.calendars[calendar_id].events.values()
                if e["status"] != "cancelled" and "recurringEventId" not in e
            ]

    def api_calls(self) -> int:
        return len(self.calls)

    # --- internals ------------------------------------------------------------------------

    def _store(self, calendar_id: str, event: dict[str, Any]) -> None:
        seq = next(self._seq)
        self.last_seq = seq
        event["_seq"] = seq
        event["etag"] = f'"{seq:016d}"'
        event["updated"] = _rfc3339(datetime.now(UTC))
        event.setdefault("created", event["updated"])
        event["kind"] = "calendar#event"
        self.calendars[calendar_id].events[event["id"]] = event
        for channel in self.channels.values():
            if channel.calendar_id == calendar_id and not channel.stopped:
                self._notify(channel, "exists")

    def _notify(self, channel: Channel, state: str) -> None:
        channel.message_number += 1
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": datetime.fromtimestamp(
                channel.expiration_ms / 1000, UTC
            ).strftime("%a, %d %b %Y %H:%M:%S GMT"),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": f"{self.base_url}{_API}calendars/"
            f"{quote(channel.calendar_id, safe='')}/events?alt=json",
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.message_number),
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        self._outbox.put((channel.address, headers))

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            address, headers = item
            request = urllib.request.Request(address, data=b"", headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            with self.lock:
                self.notifications.append({**headers, "status": str(status)})

    def close(self) -> None:
        self._outbox.put(None)

    def _revoke(self, token: str) -> bool:
        if token in self.refresh_tokens:
            self.refresh_tokens[token]["revoked"] = True
            for access, (refresh, _) in list(self.access_tokens.items()):
                if refresh == token:
                    del self.access_tokens[access]
            return True
        if token in self.access_tokens:
            del self.access_tokens[token]
            return True
        return False

    def _issue_access(self, refresh: str) -> dict[str, Any]:
        access = "ya29." + secrets.token_urlsafe(24)
        expiry = datetime.now(UTC) + timedelta(seconds=self.access_token_seconds)
        self.access_tokens[access] = (refresh, expiry)
        return {
            "access_token": access,
            "expires_in": self.access_token_seconds,
            "scope": self.refresh_tokens[refresh]["scope"],
            "token_type": "Bearer",
        }

    # OAuth endpoints (https://developers.google.com/identity/protocols/oauth2/web-server)

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        client = self.clients.get(query.get("client_id", ""))
        redirect = query.get("redirect_uri", "")
        if client is None:
            return 400, {}, {"error": "invalid_client"}
        if redirect not in client[1]:
            return 400, {}, {"error": "redirect_uri_mismatch"}
        if query.get("response_type") != "code":
            return 400, {}, {"error": "unsupported_response_type"}
        code = "4/" + secrets.token_urlsafe(16)
        self.codes[code] = {
            "client_id": query["client_id"],
            "redirect_uri": redirect,
            "scope": query.get("scope", ""),
            "offline": query.get("access_type") == "offline",
            "expires": datetime.now(UTC) + timedelta(minutes=10),
        }
        params = {"code": code, "scope": query.get("scope", "")}
        if "state" in query:
            params["state"] = query["state"]
        return 302, {"Location": f"{redirect}?{urlencode(params)}"}, None

    def token(self, form: dict[str, str], auth: str | None) -> tuple[int, Any]:
        self.token_requests.append(dict(form))
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if auth and auth.lower().startswith("basic "):
            raw = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = raw.partition(":")
        client = self.clients.get(client_id)
        if client is None or client[0] != secret:
            return 401, {"error": "invalid_client", "error_description": "Unauthorized"}
        grant = form.get("grant_type")
        bad = {"error": "invalid_grant", "error_description": "Bad Request"}
        if grant == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            if (
                code is None
                or code["client_id"] != client_id
                or code["redirect_uri"] != form.get("redirect_uri")
                or code["expires"] < datetime.now(UTC)
            ):
                return 400, bad
            refresh = "1//" + secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = {
                "client_id": client_id,
                "scope": code["scope"],
                "revoked": False,
            }
            answer = self._issue_access(refresh)
            if code["offline"]:
                answer["refresh_token"] = refresh
            return 200, answer
        if grant == "refresh_token":
            record = self.refresh_tokens.get(form.get("refresh_token", ""))
            if record is None or record["revoked"] or record["client_id"] != client_id:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            return 200, self._issue_access(form["refresh_token"])
        return 400, {"error": "unsupported_grant_type"}

    # Calendar API (https://developers.google.com/calendar/api/v3/reference)

    def api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, dict[str, str], Any]:
        self.calls.append(Call(method, path, query, headers))
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        held = self.access_tokens.get(token)
        if held is None or held[1] < datetime.now(UTC):
            raise ApiError(401, "authError", "Invalid Credentials")
        for index, (failure, methods) in enumerate(self.failures):
            if methods is None or method in methods:
                del self.failures[index]
                raise failure
        q = {k: v[-1] for k, v in query.items()}
        parts = [p for p in path[len(_API) :].split("/") if p]
        parts = [urllib.parse.unquote(p) for p in parts]
        if parts == ["users", "me", "calendarList"] and method == "GET":
            return 200, {}, self._calendar_list()
        if parts == ["channels", "stop"] and method == "POST":
            return self._stop(body)
        if len(parts) < 3 or parts[0] != "calendars" or parts[2] != "events":
            raise ApiError(404, "notFound", "Not Found")
        calendar = self.calendars.get(parts[1])
        if calendar is None:
            raise ApiError(404, "notFound", "Not Found")
        rest = parts[3:]
        if not rest:
            if method == "GET":
                return 200, {}, self._list(calendar, q, query)
            if method == "POST":
                return 200, {}, self._insert(calendar, body)
        elif rest == ["watch"] and method == "POST":
            return 200, {}, self._watch(calendar, body)
        elif len(rest) == 2 and rest[1] == "instances" and method == "GET":
            return 200, {}, self._instances(calendar, rest[0], q)
        elif len(rest) == 1:
            event_id = rest[0]
            if method == "GET":
                return 200, {}, self._public(self._get(calendar, event_id))
            if method in ("PUT", "PATCH"):
                return 200, {}, self._update(calendar, event_id, body, headers, method == "PATCH")
            if method == "DELETE":
                self._delete(calendar, event_id, headers)
                return 204, {}, None
        raise ApiError(404, "notFound", "Not Found")

    def _calendar_list(self) -> dict[str, Any]:
        own = self.primary or next(iter(self.calendars), None)
        items = [
            {
                "kind": "calendar#calendarListEntry",
                "id": c.id,
                "summary": c.summary,
                "accessRole": c.access_role,
                "timeZone": c.time_zone,
                # Google marks the primary calendar and leaves the field out on the others.
                **({"primary": True} if c.id == own else {}),
            }
            for c in self.calendars.values()
        ]
        return {"kind": "calendar#calendarList", "items": items, "nextSyncToken": "cl1"}

    @staticmethod
    def _public(event: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in event.items() if not k.startswith("_")}

    def _get(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        event = calendar.events.get(event_id)
        if event is None:
            raise ApiError(404, "notFound", "Not Found")
        return event

    def _sync_token(self, seq: int) -> str:
        return f"CP{self.sync_epoch}x{seq}"

    def _list(
        self, calendar: Calendar, q: dict[str, str], multi: dict[str, list[str]]
    ) -> dict[str, Any]:
        if "pageToken" in q:
            return self._next_page(q)
        events = sorted(calendar.events.values(), key=lambda e: e["_seq"])
        single = q.get("singleEvents") == "true"
        if "syncToken" in q:
            # https://developers.google.com/calendar/api/guides/sync: incompatible parameters.
            for banned in ("timeMin", "timeMax", "privateExtendedProperty", "iCalUID", "q"):
                if banned in q:
                    raise ApiError(400, "invalid", f"{banned} cannot be used with syncToken")
            match = re.fullmatch(r"CP(\d+)x(\d+)", q["syncToken"])
            if match is None or int(match.group(1)) != self.sync_epoch:
                raise ApiError(
                    410,
                    "fullSyncRequired",
                    "Sync token is no longer valid, a full sync is required.",
                )
            since = int(match.group(2))
            items = [e for e in events if e["_seq"] > since]
        else:
            show_deleted = q.get("showDeleted") == "true"
            items = []
            for e in events:
                # Cancelled instances are still listed when showDeleted and singleEvents are
                # both false (events.list reference).
                hidden = single or "recurringEventId" not in e
                if e["status"] == "cancelled" and not show_deleted and hidden:
                    continue
                items.append(e)
            if "timeMin" in q:
                low = datetime.fromisoformat(q["timeMin"].replace("Z", "+00:00"))
                items = [e for e in items if "recurrence" in e or self._ends_after(e, low)]
            for prop in multi.get("privateExtendedProperty", []):
                key, _, value = prop.partition("=")
                items = [
                    e
                    for e in items
                    if e.get("extendedProperties", {}).get("private", {}).get(key) == value
                ]
            if "iCalUID" in q:
                items = [e for e in items if e.get("iCalUID") == q["iCalUID"]]
        if single:
            items = self._expand_all(calendar, items, q)
        public = [self._public(e) for e in items]
        return self._page(public, self._sync_token(self.last_seq), int(q.get("maxResults", 0)))

    def _next_page(self, q: dict[str, str]) -> dict[str, Any]:
        try:
            items, sync = self._pages.pop(q["pageToken"])
        except KeyError:
            raise ApiError(400, "invalid", "Invalid page token") from None
        return self._page(items, sync, int(q.get("maxResults", self.page_size)))

    def _page(self, items: list[dict[str, Any]], sync: str | None, size: int) -> dict[str, Any]:
        size = min(size or self.page_size, self.page_size)
        answer: dict[str, Any] = {"kind": "calendar#events", "items": items[:size]}
        if len(items) > size:
            token = secrets.token_urlsafe(12)
            self._pages[token] = (items[size:], sync)
            answer["nextPageToken"] = token
        elif sync is not None:
            answer["nextSyncToken"] = sync
        return answer

    def _end(self, event: dict[str, Any]) -> datetime:
        return _instant(_parse_time(event["end"]))

    def _ends_after(self, event: dict[str, Any], low: datetime) -> bool:
        """timeMin's filter; an event whose end cannot be read (put there by a test as an
        imported calendar file might leave it) is listed, for the client to cope with."""
        try:
            return self._end(event) > low
        except (KeyError, TypeError, ValueError):
            return True

    def _occurrences(
        self, calendar: Calendar, master: dict[str, Any], low: datetime, high: datetime
    ) -> list[dict[str, Any]]:
        start = _parse_time(master["start"])
        end = _parse_time(master["end"])
        all_day = not isinstance(start, datetime)
        tz = ZoneInfo(master["start"].get("timeZone") or "UTC")
        if isinstance(start, datetime):
            dtstart = start.astimezone(tz).replace(tzinfo=None)
        else:
            dtstart = datetime(start.year, start.month, start.day)
        length = (
            _instant(end) - _instant(start) if not all_day else timedelta(days=(end - start).days)  # type: ignore[operator]
        )
        lines = [f"DTSTART:{dtstart:%Y%m%dT%H%M%S}", *master.get("recurrence", [])]
        rules = rrulestr("\n".join(lines), forceset=True, ignoretz=True)
        exceptions = {
            e["originalStartTime"].get("dateTime") or e["originalStartTime"].get("date"): e
            for e in calendar.events.values()
            if e.get("recurringEventId") == master["id"]
        }
        found: list[dict[str, Any]] = []
        horizon_low = (low - length).astimezone(tz).replace(tzinfo=None)
        horizon_high = high.astimezone(tz).replace(tzinfo=None)
        for local in rules.between(horizon_low, horizon_high, inc=True):
            if all_day:
                day = local.date()
                key = day.isoformat()
                instance_id = f"{master['id']}_{day:%Y%m%d}"
                body_start: dict[str, Any] = {"date": key}
                body_end: dict[str, Any] = {"date": (day + length).isoformat()}
                original: dict[str, Any] = {"date": key}
            else:
                moment = local.replace(tzinfo=tz)
                key = _rfc3339(moment)
                instance_id = f"{master['id']}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
                body_start = {"dateTime": moment.isoformat(), "timeZone": tz.key}
                body_end = {"dateTime": (moment + length).isoformat(), "timeZone": tz.key}
                original = {"dateTime": key, "timeZone": tz.key}
            exception = exceptions.pop(key, None)
            if exception is not None:
                if exception["status"] != "cancelled":
                    found.append(self._public(exception))
                continue
            instance = {
                k: v
                for k, v in self._public(master).items()
                if k not in ("recurrence", "id", "start", "end")
            }
            instance.update(
                id=instance_id,
                recurringEventId=master["id"],
                originalStartTime=original,
                start=body_start,
                end=body_end,
            )
            found.append(instance)
        # Moved in from outside the expansion range.
        for exception in exceptions.values():
            if exception["status"] != "cancelled" and self._end(exception) > low:
                found.append(self._public(exception))
        return [i for i in found if self._end(i) > low and _instant(_parse_time(i["start"])) < high]

    def _expand_all(
        self, calendar: Calendar, items: list[dict[str, Any]], q: dict[str, str]
    ) -> list[dict[str, Any]]:
        low = datetime.fromisoformat(
            q.get("timeMin", "1970-01-01T00:00:00Z").replace("Z", "+00:00")
        )
        high = datetime.fromisoformat(
            q.get("timeMax", "2100-01-01T00:00:00Z").replace("Z", "+00:00")
        )
        out: list[dict[str, Any]] = []
        for e in items:
            if "recurringEventId" in e:
                continue  # part of its master's expansion
            if "recurrence" in e and e["status"] != "cancelled":
                out.extend(self._occurrences(calendar, e, low, high))
            else:
                out.append(e)
        return out

    def _instances(self, calendar: Calendar, event_id: str, q: dict[str, str]) -> dict[str, Any]:
        if "pageToken" in q:
            return self._next_page(q)
        master = self._get(calendar, event_id)
        if master["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        if "recurrence" not in master:
            items = [self._public(master)]
        else:
            low = datetime.fromisoformat(
                q.get("timeMin", "1970-01-01T00:00:00Z").replace("Z", "+00:00")
            )
            high = datetime.fromisoformat(
                q.get("timeMax", "2100-01-01T00:00:00Z").replace("Z", "+00:00")
            )
            items = self._occurrences(calendar, master, low, high)
        return self._page(items, None, int(q.get("maxResults", 0)))

    def _insert(self, calendar: Calendar, body: dict[str, Any]) -> dict[str, Any]:
        event = dict(body)
        if "id" in event:
            if not _ID_RE.fullmatch(event["id"]):
                raise ApiError(400, "invalid", "Invalid resource id value.")
            if event["id"] in calendar.events:
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            event["id"] = secrets.token_hex(13)
        if "start" not in event or "end" not in event:
            raise ApiError(400, "required", "Missing end time.")
        event.setdefault("status", "confirmed")
        event.setdefault("iCalUID", f"{event['id']}@google.com")
        self._store(calendar.id, event)
        return self._public(event)

    def _check_etag(self, event: dict[str, Any], headers: dict[str, str]) -> None:
        wanted = headers.get("if-match")
        if wanted is not None and wanted != "*" and wanted != event["etag"]:
            raise ApiError(412, "conditionNotMet", "Precondition Failed")

    def _update(
        self,
        calendar: Calendar,
        event_id: str,
        body: dict[str, Any],
        headers: dict[str, str],
        patch: bool,
    ) -> dict[str, Any]:
        event = self._get(calendar, event_id)
        self._check_etag(event, headers)
        keep = {k: v for k, v in event.items() if k in ("id", "iCalUID", "created")}
        new = {**event, **body} if patch else {**body, **keep}
        new.setdefault("status", "confirmed")
        self._store(calendar.id, new)
        return self._public(new)

    def _delete(self, calendar: Calendar, event_id: str, headers: dict[str, str]) -> None:
        event = self._get(calendar, event_id)
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted", "Resource has been deleted")
        self._check_etag(event, headers)
        self._store(calendar.id, {**event, "status": "cancelled"})

    def _watch(self, calendar: Calendar, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("type") != "web_hook" or not body.get("address") or not body.get("id"):
            raise ApiError(400, "invalid", "Invalid channel")
        if body["id"] in self.channels:
            raise ApiError(400, "channelIdNotUnique", "Channel id not unique")
        ttl = int(body.get("params", {}).get("ttl", 604800))
        expiration = int((datetime.now(UTC) + timedelta(seconds=ttl)).timestamp() * 1000)
        channel = Channel(
            body["id"],
            secrets.token_urlsafe(18),
            calendar.id,
            body["address"],
            body.get("token"),
            expiration,
        )
        self.channels[channel.id] = channel
        self._notify(channel, "sync")
        return {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": f"{self.base_url}{_API}calendars/{quote(calendar.id, safe='')}/events",
            "token": channel.token,
            "expiration": str(expiration),
        }

    def _stop(self, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        channel = self.channels.get(body.get("id", ""))
        if channel is None or channel.stopped or channel.resource_id != body.get("resourceId"):
            raise ApiError(404, "notFound", "Channel not found")
        channel.stopped = True
        self.stopped_channels.append(channel.id)
        return 204, {}, None


class _Handler(BaseHTTPRequestHandler):
    peer: GooglePeer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(split.query)
        flat = {k: v[-1] for k, v in query.items()}
        peer = self.peer
        with peer.lock:
            if split.path == "/o/oauth2/auth" and self.command == "GET":
                status, extra, body = peer.authorize(flat)
                self._answer(status, extra, body)
                return
            if split.path == "/token" and self.command == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                status, body = peer.token(form, headers.get("authorization"))
                self._answer(status, {}, body)
                return
            if split.path == "/revoke" and self.command == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                token = form.get("token") or flat.get("token", "")
                peer.revoked.append(token)
                if peer._revoke(token):
                    self._answer(200, {}, {})
                else:
                    self._answer(400, {}, {"error": "invalid_token", "error_description": "Bad"})
                return
            if split.path.startswith(_API):
                try:
                    body = json.loads(raw) if raw else {}
                    status, extra, answer = peer.api(self.command, split.path, query, headers, body)
                except ApiError as exc:
                    self._answer(exc.status, exc.headers, exc.body())
                    return
                self._answer(status, extra, answer)
                return
        self._answer(404, {}, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle


@contextmanager
def running(peer: GooglePeer | None = None) -> Iterator[GooglePeer]:
    """Serve `peer` (a new one by default) on 127.0.0.1 at an ephemeral port."""
    the_peer = peer or GooglePeer()
    handler = type("Handler", (_Handler,), {"peer": the_peer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    the_peer.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield the_peer
    finally:
        server.shutdown()
        server.server_close()
        the_peer.close()
