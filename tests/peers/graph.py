"""A stand-in for the Microsoft identity platform and Microsoft Graph's calendar API, over https.

Written from Microsoft's public documentation for what calgate uses, failures included:

- Identity (v2.0 endpoints, what msal's authorization-code flow needs):
  ``GET /{tenant}/v2.0/.well-known/openid-configuration``; ``GET /{tenant}/oauth2/v2.0/authorize``
  consents at once (or declines: ``error=access_denied``) and redirects with ``code`` and
  ``state``; ``POST /{tenant}/oauth2/v2.0/token`` with ``authorization_code`` (PKCE S256 checked,
  the code single use) and ``refresh_token`` (the refresh token rotates) grants; the answer carries
  ``client_info`` and an unsigned ``id_token`` whose ``nonce`` echoes the authorize request's;
  ``400 invalid_grant`` (AADSTS codes) for a bad, used or revoked grant.
- Graph under ``/v1.0``: ``/me``, ``/me/calendars``, events create (``transactionId``: a retried
  POST returns the event already created), get, PATCH and DELETE with ``If-Match`` on the
  ``@odata.etag`` (``W/"changeKey"``; ``412`` when stale), ``404 ErrorItemNotFound``, the
  single-value extended property filter and ``$expand``, and ``calendarView/delta``: the window
  (startDateTime, endDateTime) is fixed in the round's tokens, pages of `page_size` items linked by
  ``@odata.nextLink``, the last one with ``@odata.deltaLink``; later rounds return changed events
  and ``@removed`` entries; ``410 SyncStateNotFound`` for a token after `invalidate_delta`.
- Times come back in UTC (no ``Prefer: outlook.timezone``), the zone written is kept in
  ``originalStartTimeZone`` as a Windows zone name, as Outlook clients do.
- Recurring series: a master with its `recurrence`, occurrences and exceptions (`type`,
  `seriesMasterId`, `originalStart`) in calendarView/delta and `/events/{id}/instances`, never
  the master in a view nor instances in `/events`; deleting the master deletes the series.
- Switchable failures for the next N Graph calls: 429 and 503 with Retry-After.
- Change notifications: ``POST /subscriptions`` (changeType created/updated/deleted, resource
  ``me/calendars/{id}/events``, https notification URLs only, expiration at most 4,230 minutes
  ahead, ``clientState`` up to 128 characters) first POSTs ``?validationToken=...`` to each
  notification URL and refuses the subscription (400 ValidationError) unless the answer is
  ``200 text/plain`` with the token, within 10 s; ``PATCH`` renews, ``DELETE`` removes. Every
  change to an event of a subscribed calendar is posted (in order, from a sender thread) as a
  ``{"value": [...]}`` batch carrying the ``clientState``; `lifecycle` posts a lifecycle
  notification (``reauthorizationRequired``, ``subscriptionRemoved``, which also drops the
  subscription, ``missed``) as Graph does.

Tests act as the person's Outlook through `GraphPeer` methods (`put_event`, `delete_event`, ...).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import queue
import re
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import trustme
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

TENANT = "common"
_OLSON_TO_WINDOWS = {olson: windows for windows, olson in WINDOWS_TO_OLSON.items()}
_FILTER_RE = re.compile(
    r"singleValueExtendedProperties/Any\(ep: ep/id eq '([^']+)' and ep/value eq '((?:[^']|'')*)'\)"
)


class GraphError(Exception):
    """An error answer in Graph's JSON shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "innerError": {}}}


FAILURES: dict[str, GraphError] = {
    "429": GraphError(
        429,
        "TooManyRequests",
        "Application is over its MailboxConcurrency limit.",
        {"Retry-After": "1"},
    ),
    "503": GraphError(503, "ServiceNotAvailable", "Service unavailable", {"Retry-After": "1"}),
}


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _unb64(text: str) -> dict[str, Any]:
    value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return value if isinstance(value, dict) else {}


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(WINDOWS_TO_OLSON.get(name, name))


def _instant(value: dict[str, Any]) -> datetime:
    moment = datetime.fromisoformat(value["dateTime"][:26])
    return moment.replace(tzinfo=_zone(value.get("timeZone") or "UTC")).astimezone(UTC)


def _graph_time(moment: datetime) -> dict[str, str]:
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return {"dateTime": text + "0", "timeZone": "UTC"}


def _stamp_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Calendar:
    id: str
    name: str
    can_edit: bool
    default: bool
    events: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Subscription:
    id: str
    calendar_id: str
    body: dict[str, Any]
    expires: datetime


class GraphPeer:
    """The identity platform and Graph, for one mailbox. Thread-safe."""

    def __init__(self, page_size: int = 3) -> None:
        self.base_url = ""  # set by running()
        self.ca_pem = ""  # path of the test CA's certificate (what clients verify with)
        self.page_size = page_size
        self.lock = threading.RLock()
        self.clients: dict[str, tuple[str, str]] = {}  # client id -> (secret, redirect uri)
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.access_tokens: dict[str, str] = {}  # access token -> refresh token it came from
        self.calendars: dict[str, Calendar] = {}
        self.decline = False  # the person refuses consent at the authorize page
        self.seq = itertools.count(1)
        self.delta_generation = 0
        self.failures: list[GraphError] = []
        self.graph_calls = 0
        self.paths: list[str] = []  # every request's path, identity endpoints included
        self.calls: list[tuple[str, str, dict[str, str]]] = []  # (method, path, headers)
        self.drop_next_answer = False  # do the next Graph write, then close without answering
        self.delay = 0.0  # seconds each Graph request takes (to see concurrency)
        self.in_flight = 0
        self.most_in_flight = 0
        self.user = {
            "id": "00000000-0000-0000-0000-00000000dr01",
            "displayName": "Dr Test",
            "mail": "dr@contoso.example",
            "userPrincipalName": "dr@contoso.example",
        }
        self.tenant_id = "9188040d-6c67-4c5b-b112-36a304b66dad"
        self.subscriptions: dict[str, Subscription] = {}
        self.webhook_ca = ""  # PEM of the CA our webhook's certificate comes from
        self.validation_seconds = 10.0  # how long Graph waits for the validation answer
        self.validations: list[dict[str, Any]] = []  # {"url", "status", "body"} per handshake
        self.notifications: list[dict[str, Any]] = []  # {"payload", "status"} per delivery
        # (calendar id, event id, changes): the person edits that event right after the next
        # delta round is read, before calgate writes (to see a 412 on our If-Match)
        self.edit_after_read: tuple[str, str, dict[str, Any]] | None = None
        self._outbox: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()

    # --- the person's side --------------------------------------------------------------

    def add_client(self, client_id: str, secret: str, redirect_uri: str) -> None:
        self.clients[client_id] = (secret, redirect_uri)

    def add_calendar(self, name: str, can_edit: bool = True, default: bool = False) -> str:
        with self.lock:
            cal_id = "AAMk" + secrets.token_urlsafe(24)
            self.calendars[cal_id] = Calendar(cal_id, name, can_edit, default)
            return cal_id

    def put_event(self, calendar_id: str, body: dict[str, Any]) -> str:
        """Outlook (not calgate) creates an event: its id."""
        with self.lock:
            return str(self._create(self.calendars[calendar_id], dict(body))["id"])

    def put_weekly_series(self, calendar_id: str, body: dict[str, Any], count: int) -> list[str]:
        """Outlook creates a weekly series of `count` (a numbered range): the ids of its
        occurrences. The series master carries the ``recurrence``; each occurrence is at the same
        local time in the series' zone, whatever the DST offset, with ``type: occurrence``,
        ``seriesMasterId`` and ``originalStart``. A calendar view (and its delta) lists the
        occurrences and exceptions, never the master; ``GET /events`` lists the master, never
        the occurrences; ``/events/{master}/instances`` lists the occurrences in a window."""
        with self.lock:
            calendar = self.calendars[calendar_id]
            zone_name = body["start"].get("timeZone") or "UTC"
            zone = _zone(zone_name)
            first = datetime.fromisoformat(body["start"]["dateTime"][:19])
            length = datetime.fromisoformat(body["end"]["dateTime"][:19]) - first
            recurrence = {
                "pattern": {
                    "type": "weekly",
                    "interval": 1,
                    "month": 0,
                    "dayOfMonth": 0,
                    "daysOfWeek": [first.strftime("%A").lower()],
                    "firstDayOfWeek": "sunday",
                    "index": "first",
                },
                "range": {
                    "type": "numbered",
                    "startDate": first.date().isoformat(),
                    "endDate": "0001-01-01",
                    "recurrenceTimeZone": _OLSON_TO_WINDOWS.get(zone_name, zone_name),
                    "numberOfOccurrences": count,
                },
            }
            master = self._create(calendar, {**body, "recurrence": recurrence}, "seriesMaster")
            ids = []
            for week in range(count):
                local = first + timedelta(weeks=week)
                start = local.replace(tzinfo=zone).astimezone(UTC)
                occurrence = {
                    **{k: v for k, v in body.items() if k not in ("start", "end")},
                    "start": _graph_time(start),
                    "end": _graph_time((local + length).replace(tzinfo=zone).astimezone(UTC)),
                    "seriesMasterId": master["id"],
                    "originalStart": _stamp_text(start),
                    "recurrence": None,
                }
                made = self._create(calendar, occurrence, "occurrence")
                made["originalStartTimeZone"] = master["originalStartTimeZone"]
                made["originalEndTimeZone"] = master["originalEndTimeZone"]
                ids.append(str(made["id"]))
            return ids

    def patch_event(self, calendar_id: str, event_id: str, changes: dict[str, Any]) -> None:
        with self.lock:
            self._patch(self.calendars[calendar_id], event_id, changes, None)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        with self.lock:
            self._delete(self.calendars[calendar_id], event_id, None)

    def live_events(self, calendar_id: str) -> list[dict[str, Any]]:
        with self.lock:
            events = self.calendars[calendar_id].events.values()
            return [self._public(e) for e in events if not e.get("_deleted")]

    def invalidate_delta(self) -> None:
        """Every delta token given so far answers 410 SyncStateNotFound."""
        with self.lock:
            self.delta_generation += 1

    def lifecycle(self, event: str, subscription_id: str | None = None) -> None:
        """Graph sends lifecycle notification `event` for one subscription (else all);
        ``subscriptionRemoved`` also removes them, as Graph does."""
        with self.lock:
            for sub in list(self.subscriptions.values()):
                if subscription_id not in (None, sub.id):
                    continue
                if event == "subscriptionRemoved":
                    del self.subscriptions[sub.id]
                item = {
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": _stamp_text(sub.expires),
                    "tenantId": self.tenant_id,
                    "clientState": sub.body.get("clientState"),
                    "lifecycleEvent": event,
                }
                url = sub.body.get("lifecycleNotificationUrl") or sub.body["notificationUrl"]
                self._outbox.put((url, {"value": [item]}))

    def fail_next(self, kind: str, times: int = 1) -> None:
        self.failures.extend([FAILURES[kind]] * times)

    def grant(self, client_id: str) -> str:
        """A refresh token as if the person had consented (for connector-level tests)."""
        with self.lock:
            token = "M.R3_" + secrets.token_urlsafe(32)
            self.refresh_tokens[token] = {"client_id": client_id, "revoked": False}
            return token

    def revoke_all(self) -> None:
        """The person removes the app's consent: every refresh token answers invalid_grant."""
        with self.lock:
            for record in self.refresh_tokens.values():
                record["revoked"] = True
            self.access_tokens.clear()

    # --- identity -----------------------------------------------------------------------

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        root = f"{self.base_url}/{tenant}"
        return {
            "issuer": f"{self.base_url}/{self.tenant_id}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str]]:
        client = self.clients.get(query.get("client_id", ""))
        if client is None or query.get("redirect_uri") != client[1]:
            return 400, {}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}
        back: dict[str, str] = {"state": query.get("state", "")}
        if self.decline:
            back |= {"error": "access_denied", "error_description": "The user declined."}
        else:
            code = "0.A" + secrets.token_urlsafe(32)
            with self.lock:
                self.codes[code] = {**query, "used": False}
            back["code"] = code
        return 302, {"Location": f"{client[1]}?{urlencode(back)}"}

    def _id_token(self, client_id: str, nonce: str | None) -> str:
        claims = {
            "aud": client_id,
            "iss": f"{self.base_url}/{self.tenant_id}/v2.0",
            "iat": int(datetime.now(UTC).timestamp()),
            "exp": int(datetime.now(UTC).timestamp()) + 3600,
            "oid": self.user["id"],
            "sub": "s-" + self.user["id"],
            "tid": self.tenant_id,
            "preferred_username": self.user["userPrincipalName"],
            "name": self.user["displayName"],
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        def refused(text: str, code: int = 70000) -> tuple[int, dict[str, Any]]:
            return 400, {
                "error": "invalid_grant",
                "error_description": f"AADSTS{code}: {text}",
                "error_codes": [code],
            }

        client = self.clients.get(form.get("client_id", ""))
        if client is None or form.get("client_secret") != client[0]:
            return 401, {"error": "invalid_client", "error_description": "AADSTS7000215"}
        nonce = None
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                code = self.codes.get(form.get("code", ""))
                if code is None or code["used"] or form.get("redirect_uri") != client[1]:
                    return refused("The provided authorization code is invalid or used.")
                code["used"] = True
                verifier = form.get("code_verifier", "")
                digest = hashlib.sha256(verifier.encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
                if challenge != code.get("code_challenge"):
                    return refused("The code_verifier does not match the code_challenge.", 501481)
                nonce = code.get("nonce")
                scope = code.get("scope", "")
            elif form.get("grant_type") == "refresh_token":
                record = self.refresh_tokens.get(form.get("refresh_token", ""))
                if record is None or record["revoked"]:
                    return refused("The refresh token was revoked or is invalid.")
                record["revoked"] = True  # it rotates: the old one is spent
                scope = form.get("scope", "")
            else:
                return 400, {"error": "unsupported_grant_type"}
            refresh = "M.R3_" + secrets.token_urlsafe(32)
            self.refresh_tokens[refresh] = {"client_id": form["client_id"], "revoked": False}
            access = "EwB" + secrets.token_urlsafe(32)
            self.access_tokens[access] = refresh
        info = {"uid": self.user["id"], "utid": self.tenant_id}
        return 200, {
            "token_type": "Bearer",
            "scope": scope,
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": self._id_token(form["client_id"], nonce),
            "client_info": _b64(info),
        }

    # --- Graph --------------------------------------------------------------------------

    def graph(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        auth = headers.get("authorization", "")
        with self.lock:
            self.graph_calls += 1
            self.calls.append((method, path, dict(headers)))
            if not auth.startswith("Bearer ") or auth[7:] not in self.access_tokens:
                raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
            if self.failures:
                raise self.failures.pop(0)
            parts = path.strip("/").split("/")[1:]  # drop "v1.0"
            if parts[:1] != ["subscriptions"]:
                return self._route(method, parts, query, headers, body)
        # The validation handshake calls the subscriber: never while holding the lock.
        return self._subscriptions(method, parts[1:], body)

    def _route(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
    ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            if parts == ["me"]:
                return 200, {}, dict(self.user)
            if parts == ["me", "calendars"]:
                return 200, {}, {"value": [self._calendar(c) for c in self.calendars.values()]}
            if len(parts) < 3 or parts[:2] != ["me", "calendars"]:
                raise GraphError(400, "BadRequest", "Resource not found for the segment.")
            calendar = self.calendars.get(parts[2])
            if calendar is None:
                raise GraphError(404, "ErrorItemNotFound", "The specified object was not found.")
            rest = parts[3:]
            if rest == ["events"] and method == "POST":
                return 201, {}, self._public(self._create(calendar, body))
            if rest == ["events"] and method == "GET":
                return 200, {}, self._filter(calendar, query)
            if rest == ["calendarView", "delta"] and method == "GET":
                return 200, {}, self._delta(calendar, query)
            if len(rest) == 3 and rest[0] == "events" and rest[2] == "instances":
                return 200, {}, self._instances(calendar, rest[1], query)
            if len(rest) == 2 and rest[0] == "events":
                match = headers.get("if-match")
                if method == "GET":
                    return 200, {}, self._public(self._get(calendar, rest[1]), query)
                if method == "PATCH":
                    return 200, {}, self._public(self._patch(calendar, rest[1], body, match))
                if method == "DELETE":
                    self._delete(calendar, rest[1], match)
                    return 204, {}, None
            raise GraphError(405, "MethodNotAllowed", "The method is not allowed.")

    # --- subscriptions and change notifications ------------------------------------------

    def _subscriptions(
        self, method: str, rest: list[str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if not rest and method == "POST":
            return 201, {}, self._subscribe(body if isinstance(body, dict) else {})
        if len(rest) != 1:
            raise GraphError(405, "MethodNotAllowed", "The method is not allowed.")
        with self.lock:
            sub = self.subscriptions.get(rest[0])
            if sub is None:
                raise GraphError(404, "ResourceNotFound", "The object was not found.")
            if method == "DELETE":
                del self.subscriptions[sub.id]
                return 204, {}, None
            if method == "PATCH":
                sub.expires = self._expiry((body or {}).get("expirationDateTime"))
                sub.body["expirationDateTime"] = _stamp_text(sub.expires)
            elif method != "GET":
                raise GraphError(405, "MethodNotAllowed", "The method is not allowed.")
            return 200, {}, self._subscription(sub)

    @staticmethod
    def _expiry(text: Any) -> datetime:
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise GraphError(400, "InvalidRequest", "expirationDateTime is invalid.") from None
        now = datetime.now(UTC)
        if moment.tzinfo is None or not now < moment <= now + timedelta(minutes=4230):
            raise GraphError(
                400,
                "InvalidRequest",
                "Subscription expiration can only be 4230 minutes in the future.",
            )
        return moment

    def _subscribe(self, body: dict[str, Any]) -> dict[str, Any]:
        kinds = str(body.get("changeType", "")).split(",")
        if not kinds or not set(kinds) <= {"created", "updated", "deleted"}:
            raise GraphError(400, "InvalidRequest", "changeType is invalid.")
        found = re.fullmatch(r"/?me/calendars/([^/]+)/events", str(body.get("resource", "")))
        if found is None or found.group(1) not in self.calendars:
            raise GraphError(400, "InvalidRequest", "The resource is not supported.")
        if len(str(body.get("clientState", ""))) > 128:
            raise GraphError(400, "InvalidRequest", "clientState is longer than 128.")
        expires = self._expiry(body.get("expirationDateTime"))
        urls = [str(body.get("notificationUrl", ""))]
        if body.get("lifecycleNotificationUrl") not in (None, urls[0]):
            urls.append(str(body["lifecycleNotificationUrl"]))
        for url in urls:
            if not url.startswith("https://"):
                raise GraphError(400, "ValidationError", "The Notification Url must be HTTPS.")
            self._validate(url)
        sub = Subscription("sub-" + secrets.token_hex(16), found.group(1), dict(body), expires)
        with self.lock:
            self.subscriptions[sub.id] = sub
        return self._subscription(sub)

    def _validate(self, url: str) -> None:
        """Graph's endpoint validation: our token back as 200 text/plain, within 10 s."""
        token = (
            f"Validation: Testing client application reachability for subscription "
            f"Request-Id: {secrets.token_hex(8)}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token)}"
        request = urllib.request.Request(
            target, data=b"", headers={"Content-Type": "text/plain; charset=utf-8"}
        )
        context = ssl.create_default_context(cafile=self.webhook_ca or None)
        status, text, kind = 0, "", ""
        try:
            with urllib.request.urlopen(
                request, timeout=self.validation_seconds, context=context
            ) as answer:
                status, kind = answer.status, answer.headers.get("Content-Type", "")
                text = answer.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = 0  # unreachable, refused or too slow
        with self.lock:
            self.validations.append({"url": url, "status": status, "body": text})
        if status != 200 or text != token or not kind.startswith("text/plain"):
            raise GraphError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
            )

    def _subscription(self, sub: Subscription) -> dict[str, Any]:
        shown = {k: v for k, v in sub.body.items() if k != "clientState"}
        return {
            "@odata.context": f"{self.base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": sub.id,
            **shown,
            "clientState": sub.body.get("clientState"),
            "applicationId": "24d3b144-21ae-4080-943f-7067b395b913",
            "creatorId": self.user["id"],
            "expirationDateTime": _stamp_text(sub.expires),
            "latestSupportedTlsVersion": "v1_2",
        }

    def _changed(self, calendar: Calendar, event: dict[str, Any], kind: str) -> None:
        """Queue a change notification to every live subscription on the calendar."""
        now = datetime.now(UTC)
        for sub in self.subscriptions.values():
            if sub.calendar_id != calendar.id or sub.expires <= now:
                continue
            if kind not in str(sub.body.get("changeType")).split(","):
                continue
            path = f"Users/{self.user['id']}/Events/{event['id']}"
            item = {
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": _stamp_text(sub.expires),
                "changeType": kind,
                "resource": path,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": path,
                    "@odata.etag": event.get("@odata.etag", ""),
                    "id": event["id"],
                },
                "clientState": sub.body.get("clientState"),
                "tenantId": self.tenant_id,
            }
            self._outbox.put((str(sub.body["notificationUrl"]), {"value": [item]}))

    def send_loop(self) -> None:
        """Deliver queued notifications in order (run in a thread; None stops it)."""
        while True:
            item = self._outbox.get()
            if item is None:
                return
            url, payload = item
            request = urllib.request.Request(
                url,
                data=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
            context = ssl.create_default_context(cafile=self.webhook_ca or None)
            try:
                with urllib.request.urlopen(request, timeout=10, context=context) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0
            with self.lock:
                self.notifications.append({"payload": payload, "status": status})

    @staticmethod
    def _calendar(c: Calendar) -> dict[str, Any]:
        return {
            "id": c.id,
            "name": c.name,
            "canEdit": c.can_edit,
            "isDefaultCalendar": c.default,
            "changeKey": hashlib.sha256(c.id.encode()).hexdigest()[:16],
        }

    def _stamp(self, event: dict[str, Any]) -> None:
        event["_seq"] = next(self.seq)
        change_key = base64.b64encode(secrets.token_bytes(12)).decode()
        event["changeKey"] = change_key
        event["@odata.etag"] = f'W/"{change_key}"'
        event["lastModifiedDateTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    @staticmethod
    def _normalise(event: dict[str, Any]) -> None:
        """Store times in UTC and the zone written as a Windows name, as Graph answers them."""
        for which in ("start", "end"):
            if which in event:
                value = event[which]
                zone = value.get("timeZone") or "UTC"
                event[f"original{which.title()}TimeZone"] = _OLSON_TO_WINDOWS.get(zone, zone)
                if event.get("isAllDay"):  # local days: midnights, whatever the zone
                    day = str(value["dateTime"])[:10]
                    event[which] = {"dateTime": f"{day}T00:00:00.0000000", "timeZone": "UTC"}
                else:
                    event[which] = _graph_time(_instant(value))

    def _create(
        self, calendar: Calendar, body: dict[str, Any], kind: str = "singleInstance"
    ) -> dict[str, Any]:
        if not calendar.can_edit:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied.")
        if "start" not in body or "end" not in body:
            raise GraphError(400, "ErrorInvalidRequest", "start and end are required.")
        transaction = body.get("transactionId")
        if transaction:
            for existing in calendar.events.values():
                if existing.get("transactionId") == transaction and not existing.get("_deleted"):
                    return existing  # a retried POST: the event already made
        event = dict(body)
        event["id"] = "AAMkAD" + secrets.token_urlsafe(30)
        event["iCalUId"] = "040000008200E00074C5B7101A82E008" + secrets.token_hex(28).upper()
        event["type"] = kind
        if kind == "seriesMaster":
            event["_master"] = True
        event.setdefault("showAs", "busy")
        event.setdefault("isAllDay", False)
        event.setdefault("isCancelled", False)
        event["createdDateTime"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        self._normalise(event)
        self._stamp(event)
        calendar.events[event["id"]] = event
        self._changed(calendar, event, "created")
        return event

    def _get(self, calendar: Calendar, event_id: str) -> dict[str, Any]:
        event = calendar.events.get(event_id)
        if event is None or event.get("_deleted"):
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found.")
        return event

    def _check(self, event: dict[str, Any], match: str | None) -> None:
        if match is not None and match != "*" and match != event["@odata.etag"]:
            raise GraphError(
                412, "ErrorIrresolvableConflict", "The change key does not match the current one."
            )

    def _patch(
        self, calendar: Calendar, event_id: str, changes: dict[str, Any], match: str | None
    ) -> dict[str, Any]:
        event = self._get(calendar, event_id)
        self._check(event, match)
        changes = dict(changes)
        changes.pop("transactionId", None)  # set at creation only
        event.update(changes)
        if event.get("type") == "occurrence":
            event["type"] = "exception"  # a moved or changed occurrence of a series
        self._normalise(event)
        self._stamp(event)
        self._changed(calendar, event, "updated")
        if event.get("_master"):  # what is not about time reaches the unchanged occurrences
            shared = {k: v for k, v in changes.items() if k not in ("start", "end", "recurrence")}
            for instance in self._series(calendar, event["id"]):
                if instance["type"] == "occurrence" and shared:
                    instance.update(shared)
                    self._stamp(instance)
                    self._changed(calendar, instance, "updated")
        return event

    def _delete(self, calendar: Calendar, event_id: str, match: str | None) -> None:
        event = self._get(calendar, event_id)
        self._check(event, match)
        event["_deleted"] = True
        event["_seq"] = next(self.seq)
        self._changed(calendar, event, "deleted")
        if event.get("_master"):  # the whole series goes with its master
            for instance in self._series(calendar, event["id"]):
                instance["_deleted"] = True
                instance["_seq"] = next(self.seq)
                self._changed(calendar, instance, "deleted")

    @staticmethod
    def _public(event: dict[str, Any], query: dict[str, str] | None = None) -> dict[str, Any]:
        shown = {k: v for k, v in event.items() if not k.startswith("_")}
        properties = shown.pop("singleValueExtendedProperties", None)
        if properties and query and "singleValueExtendedProperties" in query.get("$expand", ""):
            shown["singleValueExtendedProperties"] = properties
        return shown

    def _filter(self, calendar: Calendar, query: dict[str, str]) -> dict[str, Any]:
        found = _FILTER_RE.fullmatch(query.get("$filter", ""))
        if found is None:
            raise GraphError(400, "ErrorInvalidUrlQueryFilter", "Unsupported $filter.")
        prop, value = found.group(1), found.group(2).replace("''", "'")
        matches = [
            self._public(e, query)
            for e in calendar.events.values()
            if not e.get("_deleted")
            and not e.get("seriesMasterId")  # /events lists masters, never their instances
            and {"id": prop, "value": value} in e.get("singleValueExtendedProperties", [])
        ]
        return {"value": matches}

    @staticmethod
    def _series(calendar: Calendar, master_id: str) -> list[dict[str, Any]]:
        return [
            e
            for e in calendar.events.values()
            if e.get("seriesMasterId") == master_id and not e.get("_deleted")
        ]

    def _instances(
        self, calendar: Calendar, master_id: str, query: dict[str, str]
    ) -> dict[str, Any]:
        master = self._get(calendar, master_id)
        try:
            start = datetime.fromisoformat(query["startDateTime"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(query["endDateTime"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise GraphError(
                400, "ErrorInvalidParameter", "startDateTime and endDateTime are required."
            ) from None
        if not master.get("_master"):
            return {"value": []}
        found = [e for e in self._series(calendar, master_id) if self._in_window(e, start, end)]
        found.sort(key=lambda e: _instant(e["start"]))
        return {"value": [self._public(e) for e in found]}

    def _in_window(self, event: dict[str, Any], start: datetime, end: datetime) -> bool:
        return _instant(event["start"]) < end and _instant(event["end"]) > start

    def _delta(self, calendar: Calendar, query: dict[str, str]) -> dict[str, Any]:
        if "$deltatoken" in query or "$skiptoken" in query:
            state = _unb64(query.get("$deltatoken") or query["$skiptoken"])
            if state.get("gen") != self.delta_generation or state.get("cal") != calendar.id:
                raise GraphError(410, "SyncStateNotFound", "The sync state was not found.")
        else:
            try:
                start = datetime.fromisoformat(query["startDateTime"].replace("Z", "+00:00"))
                end = datetime.fromisoformat(query["endDateTime"].replace("Z", "+00:00"))
            except (KeyError, ValueError):
                raise GraphError(
                    400, "ErrorInvalidParameter", "startDateTime and endDateTime are required."
                ) from None
            state = {
                "cal": calendar.id,
                "gen": self.delta_generation,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "since": 0,
                "initial": True,  # a first round lists what is there, never removals
            }
        if "$skiptoken" not in query:  # a new round: everything up to now, from `since`
            state = {**state, "upto": next(self.seq), "offset": 0}
        start = datetime.fromisoformat(state["start"])
        end = datetime.fromisoformat(state["end"])
        rows: list[dict[str, Any]] = []
        for event in sorted(calendar.events.values(), key=lambda e: e["_seq"]):
            if not state["since"] < event["_seq"] < state["upto"] or event.get("_master"):
                continue
            if event.get("_deleted") or not self._in_window(event, start, end):
                if not state["initial"]:
                    rows.append({"id": event["id"], "@removed": {"reason": "deleted"}})
            else:
                rows.append({"@odata.type": "#microsoft.graph.event", **self._public(event)})
        size = self.page_size
        wanted = re.search(r"odata\.maxpagesize=(\d+)", query.get("_prefer", ""))
        if wanted:
            size = min(size, int(wanted.group(1)))
        offset = state["offset"]
        page = rows[offset : offset + size]
        link = f"{self.base_url}/v1.0/me/calendars/{calendar.id}/calendarView/delta?"
        answer: dict[str, Any] = {"value": page}
        if offset + size < len(rows):
            answer["@odata.nextLink"] = link + urlencode(
                {"$skiptoken": _b64({**state, "offset": offset + size})}
            )
        else:
            following = {**state, "since": state["upto"] - 1, "offset": 0, "initial": False}
            answer["@odata.deltaLink"] = link + urlencode({"$deltatoken": _b64(following)})
            if self.edit_after_read is not None:
                cal_id, event_id, changes = self.edit_after_read
                self.edit_after_read = None
                self._patch(self.calendars[cal_id], event_id, changes, None)
        return answer


class _Handler(BaseHTTPRequestHandler):
    peer: GraphPeer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = split.path
        peer = self.peer
        with peer.lock:
            peer.paths.append(path)
        if path.endswith("/v2.0/.well-known/openid-configuration"):
            self._answer(200, {}, peer.openid_configuration(path.split("/")[1]))
            return
        if path.endswith("/oauth2/v2.0/authorize"):
            status, location = peer.authorize(query)
            self._answer(status, location, None)
            return
        if path.endswith("/oauth2/v2.0/token") and self.command == "POST":
            status, body = peer.token(dict(parse_qsl(raw.decode())))
            self._answer(status, {"Cache-Control": "no-store"}, body)
            return
        if not path.startswith("/v1.0/"):
            self._answer(404, {}, None)
            return
        try:
            payload = json.loads(raw) if raw else None
            query["_prefer"] = headers.get("prefer", "")
            with peer.lock:
                peer.in_flight += 1
                peer.most_in_flight = max(peer.most_in_flight, peer.in_flight)
            try:
                time.sleep(peer.delay)
                status, extra, answer = peer.graph(self.command, path, query, headers, payload)
            finally:
                with peer.lock:
                    peer.in_flight -= 1
        except GraphError as exc:
            self._answer(exc.status, exc.headers, exc.body())
            return
        except ValueError:
            self._answer(400, {}, GraphError(400, "BadRequest", "Unreadable body").body())
            return
        if self.command != "GET" and peer.drop_next_answer:
            peer.drop_next_answer = False  # done, but the answer is lost on the way
            self.close_connection = True
            return
        self._answer(status, extra, answer)

    do_GET = do_POST = do_PATCH = do_DELETE = _handle


@contextmanager
def running(peer: GraphPeer | None = None, ca_dir: str | None = None) -> Iterator[GraphPeer]:
    """Serve `peer` over https on 127.0.0.1 with a fresh test CA; `peer.ca_pem` is its file."""
    import tempfile

    peer = peer or GraphPeer()
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    handler = type("Handler", (_Handler,), {"peer": peer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with tempfile.TemporaryDirectory(dir=ca_dir) as folder:
        peer.ca_pem = f"{folder}/ca.pem"
        ca.cert_pem.write_to_path(peer.ca_pem)
        peer.base_url = f"https://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        sender = threading.Thread(target=peer.send_loop, daemon=True)
        sender.start()
        try:
            yield peer
        finally:
            peer._outbox.put(None)
            server.shutdown()
            server.server_close()
            sender.join(timeout=15)


__all__ = ["TENANT", "GraphError", "GraphPeer", "Subscription", "running"]
