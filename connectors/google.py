"""Google Calendar (API v3) through google-api-python-client and google-auth.

The libraries are synchronous (httplib2): every call runs in a worker thread, one at a time per
connector. What this module knows about Google, and nobody else has to:

- OAuth 2.0 web server flow (offline access, minimal scopes): `consent_url`, `exchange_code`;
  the refresh token is the connector's `Credentials.secret`; google-auth refreshes the access
  token (cached per grant in this process); ``invalid_grant`` → AuthExpired, never retried.
- Event ids: ours are client-supplied, derived from our UID (base32hex, Google's alphabet), so a
  retried insert answers 409 instead of duplicating; our UID also goes into
  ``extendedProperties.private`` (`UID_PROPERTY`), which finds our events again on reconnect.
- Listing: a full listing is bounded with ``timeMin`` and read through every page up to the
  ``nextSyncToken`` (the cursor); later listings pass ``syncToken`` (Google forbids timeMin and
  filters with it); ``410 fullSyncRequired`` → CursorExpired; ``status: cancelled`` → deleted.
  Recurring series are expanded with ``events.instances`` inside the window (moved occurrences at
  their new time, cancelled ones absent); a changed or cancelled occurrence re-reads its series.
- Writes carry ``If-Match``: 412 → WrongEtag; 404 / 410 → NotFound; 409 → AlreadyExists.
- Limits: 429 and 403 rateLimitExceeded / userRateLimitExceeded are retried here a few times
  with exponential backoff and jitter, honouring Retry-After, then → Transient(retry_after);
  403 quotaExceeded ("Calendar usage limits exceeded") pauses writes to that calendar for
  `GoogleApp.quota_pause_seconds` (reads go on) → `WritesPaused`, a Transient whose message and
  retry_after say until when; every grant gets a request budget per minute (requests wait).
- Push: ``events.watch`` web_hook channels and ``channels.stop``; the webhook's header checks
  are in `check_notification`.

Settings come from `configure(GoogleApp(...))`, done once by the daemon from its settings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import google.auth.exceptions
import google.oauth2.credentials
import google_auth_httplib2
import httplib2
from googleapiclient.discovery import build as build_service
from googleapiclient.errors import HttpError

from connectors import base
from connectors.base import (
    AlreadyExists,
    AuthExpired,
    CalendarInfo,
    Capabilities,
    ChangeSet,
    Connector,
    ConnectorError,
    Credentials,
    CursorExpired,
    Event,
    NotFound,
    RemoteItem,
    Transient,
    WatchChannel,
    Window,
    Written,
    WrongEtag,
    register,
)

T = TypeVar("T")

# Minimal scopes: read and write events, read the list of calendars (to choose from).
SCOPES = (
    "https://www.googleapis.com/auth/calendar.events",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
)
UID_PROPERTY = "calgateUid"  # our UID in extendedProperties.private
_PAGE = 250  # events.list maxResults (Google's default; the maximum is 2500)
_INLINE_RETRIES = 3  # rate-limit answers retried inside one call before giving up
_BACKOFF_SECONDS = 0.5  # first backoff step; doubled at each retry, with full jitter
_INLINE_MAX_WAIT = 8.0  # a longer Retry-After is handed to the engine instead of slept here
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded"}
_WRITE_METHODS = {"insert", "update", "patch", "delete"}


@dataclass(frozen=True)
class GoogleApp:
    """The OAuth client registration and where Google's endpoints are (settings: [google])."""

    client_id: str
    client_secret: str
    redirect_url: str
    auth_uri: str = "https://accounts.google.com/o/oauth2/v2/auth"
    token_uri: str = "https://oauth2.googleapis.com/token"  # noqa: S105 - an address
    revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    api_base: str = "https://www.googleapis.com/calendar/v3/"
    requests_per_minute: int = 500
    quota_pause_seconds: float = 3600.0
    channel_ttl_seconds: int = 7 * 86400
    timeout_seconds: float = 30.0


_APP: GoogleApp | None = None


def configure(app: GoogleApp | None) -> None:
    """Set (or clear) the OAuth client and endpoints every Google connector of this process uses."""
    global _APP
    _APP = app
    _ACCESS.clear()


def configured() -> GoogleApp:
    """The configured app. Raises ConnectorError when Google is not set up."""
    if _APP is None or not _APP.client_id:
        raise ConnectorError("Google Calendar is not configured (google.client_id is empty)")
    return _APP


# --- process-wide state per grant: access tokens, request budget, write pauses -------------

_ACCESS: dict[str, tuple[str, datetime]] = {}  # grant key → (access token, naive UTC expiry)
_BUDGET: dict[str, deque[float]] = {}  # grant key → monotonic times of the last minute's calls
_PAUSED: dict[tuple[str, str], float] = {}  # (grant key, calendar) → wall-clock end of pause
_STATE_LOCK = threading.Lock()


def grant_key(refresh_token: str) -> str:
    """A short stable name for one grant (never the token itself)."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:24]


def writes_paused_until(refresh_token: str, calendar_id: str) -> datetime | None:
    """When writes to that calendar resume after a quotaExceeded answer, or None."""
    with _STATE_LOCK:
        until = _PAUSED.get((grant_key(refresh_token), calendar_id))
    if until is None or until <= time.time():
        return None
    return datetime.fromtimestamp(until, UTC)


def _budget_wait(key: str, per_minute: int) -> float:
    """Seconds to wait before the next request of this grant fits in its budget (and book it)."""
    now = time.monotonic()
    with _STATE_LOCK:
        calls = _BUDGET.setdefault(key, deque())
        while calls and calls[0] <= now - 60:
            calls.popleft()
        wait = 0.0
        if len(calls) >= per_minute:
            wait = calls[len(calls) - per_minute] + 60 - now
        calls.append(now + wait)
    return max(0.0, wait)


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


def _parse_when(value: Mapping[str, Any]) -> datetime | date:
    if "date" in value:
        return date.fromisoformat(value["date"])
    moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:  # Google always sends an offset; be safe anyway
        moment = moment.replace(tzinfo=ZoneInfo(value.get("timeZone") or "UTC"))
    return moment


def _uid(resource: Mapping[str, Any]) -> str:
    private = resource.get("extendedProperties", {}).get("private", {})
    return str(private.get(UID_PROPERTY) or resource.get("iCalUID") or resource["id"])


def from_body(resource: Mapping[str, Any]) -> Event:
    """A neutral event from a Google event resource (an instance keeps its original start)."""
    start = _parse_when(resource["start"])
    end = _parse_when(resource["end"])
    original = resource.get("originalStartTime")
    updated = resource.get("updated")
    status = resource.get("status", "confirmed")
    return Event(
        uid=_uid(resource),
        start=start,
        end=end,
        timezone=resource["start"].get("timeZone"),
        title=resource.get("summary", ""),
        location=resource.get("location"),
        description=resource.get("description"),
        status=status if status in ("confirmed", "tentative", "cancelled") else "confirmed",
        transparency="transparent" if resource.get("transparency") == "transparent" else "opaque",
        recurrence_id=_parse_when(original) if original else None,
        etag=resource.get("etag"),
        last_modified=(datetime.fromisoformat(updated.replace("Z", "+00:00")) if updated else None),
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- errors -------------------------------------------------------------------------------


class WritesPaused(base.WritesPaused):
    """Google said the calendar's usage limits are exceeded: writes wait until `until`."""

    code = "provider_quota_exceeded"

    def __init__(self, until: datetime) -> None:
        super().__init__(
            "Google Calendar usage limits exceeded: writes to this calendar are paused until "
            f"{until:%Y-%m-%d %H:%M} UTC",
            until,
            max(1.0, (until - datetime.now(UTC)).total_seconds()),
        )


def _reason(exc: HttpError) -> str:
    details = exc.error_details
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict) and item.get("reason"):
                return str(item["reason"])
    return ""


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _translate(exc: Exception, what: str) -> ConnectorError:
    """One library or network error as ours (never quoting Google's data)."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, HttpError):
        status, reason = exc.status_code, _reason(exc)
        if status == 401:
            return AuthExpired("Google refused the access token")
        if status == 429 or (status == 403 and reason in _RATE_REASONS):
            return Transient("Google asked us to slow down", _retry_after(exc.resp))
        if status == 403:
            return ConnectorError(f"Google refused {what} ({reason or 'forbidden'})")
        if status == 404:
            return NotFound(f"{what}: not found at Google")
        if status == 410:
            if reason == "fullSyncRequired":
                return CursorExpired("Google no longer accepts the sync token")
            return NotFound(f"{what}: deleted at Google")
        if status == 409:
            return AlreadyExists(f"{what}: an event with this id exists at Google")
        if status == 412:
            return WrongEtag(f"{what}: changed at Google meanwhile")
        if status >= 500:
            return Transient(f"Google answered {status}", _retry_after(exc.resp))
        return ConnectorError(f"Google answered {status} to {what} ({reason or 'error'})")
    if isinstance(exc, google.auth.exceptions.RefreshError):
        text = str(exc.args[0]) if exc.args else ""
        if text.startswith("invalid_grant"):
            return AuthExpired("Google refused the grant (revoked or expired): reconnect needed")
        if getattr(exc, "retryable", False):
            return Transient("Google's token endpoint failed")
        return AuthExpired("Google refused to refresh the access token")
    if isinstance(exc, google.auth.exceptions.TransportError):
        return Transient(f"could not reach Google's token endpoint ({type(exc).__name__})")
    if isinstance(exc, httplib2.HttpLib2Error | OSError | socket.timeout):
        return Transient(f"could not reach Google ({type(exc).__name__})")
    return ConnectorError(f"unexpected failure during {what} ({type(exc).__name__})")


# --- OAuth 2.0 web server flow ------------------------------------------------------------


def consent_url(app: GoogleApp, state: str, login_hint: str | None = None) -> str:
    """Where to send the person to consent: offline access (a refresh token), minimal scopes.

    ``prompt=consent`` makes Google issue a refresh token again on a reconnect.
    """
    params = {
        "client_id": app.client_id,
        "redirect_uri": app.redirect_url,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "include_granted_scopes": "true",
        "prompt": "consent",
        "state": state,
    }
    if login_hint:
        params["login_hint"] = login_hint
    return f"{app.auth_uri}?{urlencode(params)}"


@dataclass(frozen=True)
class Grant:
    """What the code exchange gave: the refresh token (to store encrypted) and the scopes."""

    refresh_token: str
    scopes: tuple[str, ...]


def _post_form(app: GoogleApp, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    http = httplib2.Http(timeout=int(app.timeout_seconds))
    try:
        response, content = http.request(
            url,
            "POST",
            body=urlencode(form),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    finally:
        http.close()
    try:
        data = json.loads(content or b"{}")
    except ValueError:
        data = {}
    return int(response.status), data if isinstance(data, dict) else {}


async def exchange_code(app: GoogleApp, code: str) -> Grant:
    """Trade an authorization code for tokens at the token endpoint.

    Raises AuthExpired for a bad, used or expired code (``invalid_grant``), Transient when the
    endpoint cannot be reached, ConnectorError for anything else (e.g. no refresh token).
    """
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": app.redirect_url,
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    try:
        status, data = await asyncio.to_thread(_post_form, app, app.token_uri, form)
    except (httplib2.HttpLib2Error, OSError) as exc:
        raise Transient(f"could not reach Google's token endpoint ({type(exc).__name__})") from None
    if status == 400 and data.get("error") == "invalid_grant":
        raise AuthExpired("Google refused the authorization code (used or expired)")
    if status >= 500:
        raise Transient(f"Google's token endpoint answered {status}")
    if status != 200:
        raise ConnectorError(f"Google's token endpoint refused the exchange ({status})")
    refresh = data.get("refresh_token")
    if not refresh:
        raise ConnectorError("Google gave no refresh token (offline access was not granted)")
    granted = tuple(str(data.get("scope", "")).split())
    missing = [s for s in SCOPES if granted and s not in granted]
    if missing:
        raise ConnectorError("Google granted fewer permissions than calgate needs")
    access = data.get("access_token")
    if access:
        expires = int(data.get("expires_in", 0))
        expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=max(0, expires - 60))
        with _STATE_LOCK:
            _ACCESS[grant_key(refresh)] = (str(access), expiry)
    return Grant(str(refresh), granted)


# --- push notifications -------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """The X-Goog-* headers of one push notification."""

    channel_id: str
    token: str | None
    resource_id: str | None
    state: str
    message_number: int | None


def read_notification(headers: Mapping[str, str]) -> Notification | None:
    """The notification in a webhook request's headers (any case), or None if it is not one."""
    lower = {k.lower(): v for k, v in headers.items()}
    channel = lower.get("x-goog-channel-id")
    state = lower.get("x-goog-resource-state")
    if not channel or not state:
        return None
    number = lower.get("x-goog-message-number")
    return Notification(
        channel,
        lower.get("x-goog-channel-token"),
        lower.get("x-goog-resource-id"),
        state,
        int(number) if number and number.isdigit() else None,
    )


def wants_pull(notification: Notification) -> bool:
    """True when the notification says the calendar changed (not the initial ``sync``)."""
    return notification.state != "sync"


# --- the connector ------------------------------------------------------------------------


class GoogleConnector(Connector):
    """One Google account. `Credentials.secret` is the refresh token; `username` its address."""

    name = "google"
    capabilities = Capabilities(incremental=True, watch=True, client_ids=True)

    def __init__(self, credentials: Credentials, app: GoogleApp | None = None) -> None:
        super().__init__(credentials)
        self.app = app or configured()
        if not credentials.secret:
            raise AuthExpired("no Google refresh token stored: reconnect needed")
        self.key = grant_key(credentials.secret)
        self._lock = threading.Lock()
        self._service: Any = None
        self._creds: google.oauth2.credentials.Credentials | None = None
        self.requests = 0  # API requests made (for benchmarks and tests)

    # plumbing

    def _build(self) -> Any:
        if self._service is None:
            with _STATE_LOCK:
                token, expiry = _ACCESS.get(self.key, (None, None))
            self._creds = google.oauth2.credentials.Credentials(  # type: ignore[no-untyped-call]
                token=token,
                expiry=expiry,
                refresh_token=self.credentials.secret,
                token_uri=self.app.token_uri,
                client_id=self.app.client_id,
                client_secret=self.app.client_secret,
                scopes=list(SCOPES),
            )
            http = google_auth_httplib2.AuthorizedHttp(
                self._creds, http=httplib2.Http(timeout=int(self.app.timeout_seconds))
            )
            self._service = build_service(
                "calendar",
                "v3",
                http=http,
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": self.app.api_base},
            )
        return self._service

    def _remember_token(self) -> None:
        creds = self._creds
        if creds is not None and creds.token and creds.expiry:
            with _STATE_LOCK:
                _ACCESS[self.key] = (creds.token, creds.expiry)

    async def _call(
        self,
        what: str,
        make: Callable[[Any], Any],
        *,
        calendar_id: str | None = None,
        write: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Run one API request in a thread: budget, write pause, inline rate-limit retries."""
        if write and calendar_id is not None:
            until = writes_paused_until(self.credentials.secret, calendar_id)
            if until is not None:
                raise WritesPaused(until)
        attempt = 0
        while True:
            wait = _budget_wait(self.key, self.app.requests_per_minute)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                return await asyncio.to_thread(self._execute, make, headers)
            except HttpError as exc:
                error = _translate(exc, what)
                if exc.status_code == 403 and _reason(exc) == "quotaExceeded":
                    if calendar_id is None:
                        raise Transient("Google Calendar usage limits exceeded") from None
                    resume = time.time() + self.app.quota_pause_seconds
                    with _STATE_LOCK:
                        _PAUSED[(self.key, calendar_id)] = resume
                    raise WritesPaused(datetime.fromtimestamp(resume, UTC)) from None
                rate_limited = exc.status_code == 429 or _reason(exc) in _RATE_REASONS
                if not rate_limited or attempt >= _INLINE_RETRIES:
                    raise error from None
                # Exponential backoff with full jitter, never shorter than Retry-After.
                delay = random.uniform(0, _BACKOFF_SECONDS * 2**attempt)  # noqa: S311 - jitter, not crypto
                hinted = _retry_after(exc.resp)
                if hinted is not None:
                    delay = max(delay, hinted)
                if delay > _INLINE_MAX_WAIT:
                    raise error from None
                attempt += 1
                await asyncio.sleep(delay)
            except Exception as exc:
                raise _translate(exc, what) from None

    def _execute(self, make: Callable[[Any], Any], headers: Mapping[str, str] | None) -> Any:
        with self._lock:
            try:
                request = make(self._build())
                if headers:
                    request.headers.update(headers)
                self.requests += 1
                return request.execute()
            finally:
                self._remember_token()

    async def _pages(
        self, what: str, make: Callable[[Any, str | None], Any]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Every item of a paged listing, and the nextSyncToken of its last page."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = await self._call(what, lambda s, t=token: make(s, t))  # type: ignore[misc]
            items.extend(page.get("items", []))
            token = page.get("nextPageToken")
            if not token:
                return items, page.get("nextSyncToken")

    # calendars

    async def list_calendars(self) -> list[CalendarInfo]:
        items, _ = await self._pages(
            "listing calendars",
            lambda s, t: s.calendarList().list(pageToken=t, maxResults=250),
        )
        return [
            CalendarInfo(
                str(c["id"]),
                str(c.get("summaryOverride") or c.get("summary") or c["id"]),
                c.get("accessRole") in ("owner", "writer"),
            )
            for c in items
        ]

    # reading

    async def _instances(
        self, calendar_id: str, master: Mapping[str, Any], window: Window
    ) -> RemoteItem:
        instances, _ = await self._pages(
            "expanding a recurring event",
            lambda s, t: s.events().instances(
                calendarId=calendar_id,
                eventId=master["id"],
                timeMin=_rfc3339(window.start),
                timeMax=_rfc3339(window.end),
                showDeleted=False,
                maxResults=_PAGE,
                pageToken=t,
            ),
        )
        occurrences = tuple(from_body(e) for e in instances if e.get("status") != "cancelled")
        return RemoteItem(
            str(master["id"]), str(master.get("etag", "")), _uid(master), occurrences, True
        )

    async def _item(
        self, calendar_id: str, resource: Mapping[str, Any], window: Window
    ) -> RemoteItem:
        if resource.get("recurrence"):
            return await self._instances(calendar_id, resource, window)
        return RemoteItem(
            str(resource["id"]),
            str(resource.get("etag", "")),
            _uid(resource),
            (from_body(resource),),
        )

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        if cursor is None:
            items, sync = await self._pages(
                "listing events",
                lambda s, t: s.events().list(
                    calendarId=calendar_id,
                    timeMin=_rfc3339(window.start),
                    singleEvents=False,
                    showDeleted=False,
                    maxResults=_PAGE,
                    pageToken=t,
                ),
            )
        else:
            items, sync = await self._pages(
                "listing changed events",
                lambda s, t: s.events().list(
                    calendarId=calendar_id, syncToken=cursor, maxResults=_PAGE, pageToken=t
                ),
            )
        if not sync:
            raise ConnectorError("Google's listing ended without a sync token")
        changed: dict[str, RemoteItem] = {}
        deleted: list[str] = []
        series: set[str] = set()  # masters whose occurrences changed
        for resource in items:
            parent = resource.get("recurringEventId")
            if parent:
                series.add(str(parent))
                continue
            href = str(resource["id"])
            if resource.get("status") == "cancelled":
                deleted.append(href)
            else:
                changed[href] = await self._item(calendar_id, resource, window)
        for href in sorted(series - set(changed) - set(deleted)):
            try:
                changed[href] = await self.get(calendar_id, href, window)
            except NotFound:
                if cursor is not None:
                    deleted.append(href)
        return ChangeSet(
            sync,
            tuple(changed.values()),
            () if cursor is None else tuple(deleted),
            full=cursor is None,
        )

    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        resource = await self._call(
            "reading an event", lambda s: s.events().get(calendarId=calendar_id, eventId=href)
        )
        if resource.get("status") == "cancelled":
            raise NotFound("reading an event: deleted at Google")
        return await self._item(calendar_id, resource, window)

    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        # Ours carry the UID in a private extended property (visible to this app only);
        # anything else is found by its iCalUID.
        for query in ({"privateExtendedProperty": f"{UID_PROPERTY}={uid}"}, {"iCalUID": uid}):
            items, _ = await self._pages(
                "finding an event",
                lambda s, t, q=query: s.events().list(  # type: ignore[misc]
                    calendarId=calendar_id, showDeleted=False, maxResults=_PAGE, pageToken=t, **q
                ),
            )
            for resource in items:
                if resource.get("status") != "cancelled" and not resource.get("recurringEventId"):
                    return await self._item(calendar_id, resource, window)
        return None

    # writing

    async def create(self, calendar_id: str, event: Event) -> Written:
        body = {**to_body(event), "id": event_id(event.uid)}
        try:
            created = await self._call(
                "creating an event",
                lambda s: s.events().insert(calendarId=calendar_id, body=body),
                calendar_id=calendar_id,
                write=True,
            )
        except AlreadyExists:
            # Google keeps the ids of deleted events: bring ours back rather than fail forever.
            old = await self._call(
                "reading an event",
                lambda s: s.events().get(calendarId=calendar_id, eventId=body["id"]),
            )
            if old.get("status") != "cancelled":
                raise
            return await self.update(calendar_id, body["id"], event, str(old.get("etag", "")))
        return Written(str(created["id"]), str(created.get("etag", "")))

    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        body = to_body(event)
        updated = await self._call(
            "updating an event",
            lambda s: s.events().update(calendarId=calendar_id, eventId=href, body=body),
            calendar_id=calendar_id,
            write=True,
            headers={"If-Match": etag},
        )
        return Written(str(updated["id"]), str(updated.get("etag", "")))

    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        await self._call(
            "deleting an event",
            lambda s: s.events().delete(calendarId=calendar_id, eventId=href),
            calendar_id=calendar_id,
            write=True,
            headers={"If-Match": etag} if etag else None,
        )

    # push notifications

    async def watch_start(self, calendar_id: str, address: str, token: str) -> WatchChannel:
        body = {
            "id": uuid.uuid4().hex,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(self.app.channel_ttl_seconds)},
        }
        channel = await self._call(
            "starting a push channel",
            lambda s: s.events().watch(calendarId=calendar_id, body=body),
        )
        expires = datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
        return WatchChannel(str(channel["id"]), str(channel["resourceId"]), expires)

    async def watch_stop(self, channel: WatchChannel) -> None:
        body = {"id": channel.id, "resourceId": channel.resource_id}
        await self._call("stopping a push channel", lambda s: s.channels().stop(body=body))

    async def close(self) -> None:
        def shut() -> None:
            with self._lock:
                if self._service is not None:
                    self._service.close()
                    self._service = None

        await asyncio.to_thread(shut)

    # credentials

    async def revoke(self) -> None:
        """Revoke the grant at Google (the refresh token and its access tokens)."""
        try:
            status, data = await asyncio.to_thread(
                _post_form, self.app, self.app.revoke_uri, {"token": self.credentials.secret}
            )
        except (httplib2.HttpLib2Error, OSError) as exc:
            raise Transient(
                f"could not reach Google's revoke endpoint ({type(exc).__name__})"
            ) from None
        with _STATE_LOCK:
            _ACCESS.pop(self.key, None)
        if status == 200:
            return
        if status == 400 and data.get("error") in ("invalid_token", "invalid_grant"):
            raise AuthExpired("the Google grant was already revoked")
        if status >= 500 or status == 429:
            raise Transient(f"Google's revoke endpoint answered {status}")
        raise ConnectorError(f"Google's revoke endpoint answered {status}")


register(GoogleConnector.name, GoogleConnector)
