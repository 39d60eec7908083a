"""Outlook / Microsoft 365 through Microsoft Graph: one mailbox.

Access tokens come from msal's token cache of the grant (connectors/outlook/oauth.py): msal
refreshes them, and a rotated refresh token makes `credentials_changed` hand the new cache back to
the engine. Graph is plain REST, called with httpx. Bodies and errors: wire.py; limits: limits.py.

- Listing: ``calendarView/delta`` bounded to the sync window, every ``@odata.nextLink`` page up to
  the ``@odata.deltaLink`` (the cursor); later rounds start from that link; ``@removed`` →
  deleted; ``410 SyncStateNotFound`` → CursorExpired (the engine lists in full again).
- Writes: POST with a ``transactionId`` derived from our UID, so a retried POST returns the event
  already created; PATCH and DELETE with ``If-Match`` on the ``@odata.etag``.
- Push: one ``/subscriptions`` per synced calendar (notify.py), deleted with the channel.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import msal
import requests

from connectors import errors
from connectors.base import (
    CalendarInfo,
    Capabilities,
    ChangeSet,
    Connector,
    Credentials,
    Event,
    LocalState,
    RemoteItem,
    SharedState,
    WatchChannel,
    Window,
    Written,
)
from connectors.errors import AuthExpired, ConnectorError, RemoteExists, Transient
from connectors.outlook import limits, notify
from connectors.outlook.limits import GrantLimits
from connectors.outlook.oauth import SCOPES, OutlookApp, client, load_cache, refused
from connectors.outlook.wire import (
    UID_PROPERTY,
    from_body,
    to_body,
    transaction_id,
    translate,
    uid_of,
)
from gateway.errors import network_words

_PAGE = 200  # Prefer: odata.maxpagesize for delta pages (fewer round trips on a first pull)


def _utc(moment: Any) -> str:
    return str(moment.astimezone().isoformat()).replace("+00:00", "Z")


class OutlookConnector(Connector):
    """One Microsoft account. `Credentials.secret` is the grant's serialised msal token cache."""

    name = "outlook"
    capabilities = Capabilities(incremental=True, watch=True, client_ids=True, oauth=True)

    def __init__(
        self, credentials: Credentials, app: OutlookApp, shared: SharedState | None = None
    ) -> None:
        super().__init__(credentials)
        self.app = app
        if not credentials.secret:
            raise AuthExpired("no Microsoft grant stored: reconnect needed")
        self.cache = load_cache(credentials.secret)
        accounts = list(self.cache.search(msal.TokenCache.CredentialType.ACCOUNT))
        if not accounts:
            raise AuthExpired("the stored Microsoft grant holds no account: reconnect needed")
        self.account_id = str(accounts[0]["home_account_id"])
        self.limits = GrantLimits(shared or LocalState(), self.account_id, app)
        self._msal: msal.ConfidentialClientApplication | None = None
        self._msal_lock = threading.Lock()
        self._http = httpx.AsyncClient(verify=app.tls(), timeout=app.timeout_seconds)
        self.requests = 0  # Graph requests made (for benchmarks and tests)

    # plumbing

    def _token_now(self) -> str:
        with self._msal_lock:  # concurrent calls start one msal client, not one each
            if self._msal is None:
                self._msal = client(self.app, self.cache)
        account = next(
            (a for a in self._msal.get_accounts() if a["home_account_id"] == self.account_id),
            None,
        )
        if account is None:
            raise AuthExpired("the Microsoft grant is gone: reconnect needed")
        result = self._msal.acquire_token_silent_with_error(list(SCOPES), account)
        if result is None or refused(result):
            raise AuthExpired("Microsoft refused the grant (revoked or expired): reconnect needed")
        if "access_token" not in result:
            raise Transient(f"Microsoft gave no access token ({result.get('error')})")
        return str(result["access_token"])

    async def _token(self) -> str:
        try:
            return await asyncio.to_thread(self._token_now)
        except requests.RequestException as exc:
            raise Transient(f"could not reach Microsoft: {network_words(exc)}") from None
        except ValueError:  # msal: the sign-in service's configuration answer was unusable
            raise Transient("Microsoft's sign-in service gave an unusable answer") from None

    async def _call(
        self,
        what: str,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One Graph request: budget, at most 4 at once, throttling retried after Retry-After."""
        if not url.startswith("https://") and not url.startswith("http://"):
            url = self.app.graph_base.rstrip("/") + url
        attempt = 0
        while True:
            token = await self._token()
            await self.limits.wait_for_budget()
            async with self.limits.slot():
                try:
                    self.requests += 1
                    answer = await self._http.request(
                        method,
                        url,
                        params=params,
                        json=json,
                        headers={"Authorization": f"Bearer {token}", **(headers or {})},
                    )
                except httpx.HTTPError as exc:
                    raise Transient(f"{what}: {network_words(exc)}") from None
            try:
                body = answer.json() if answer.content else None
            except ValueError:  # a cut-off answer or a proxy's web page
                body = unreadable = True
            else:
                unreadable = not isinstance(body, dict | None)
            if answer.status_code < 400:
                if unreadable:
                    raise Transient(f"{what}: Graph's answer was not the JSON asked for")
                return body
            if unreadable or body is None:
                body = {}
            error = translate(answer.status_code, body, what, dict(answer.headers))
            throttled = answer.status_code in (429, 503)
            if not throttled or attempt >= limits.INLINE_RETRIES:
                raise error
            hinted = errors.retry_after_seconds(answer.headers.get("retry-after"))
            delay = limits.retry_delay(attempt, hinted)
            if delay > limits.INLINE_MAX_WAIT:
                raise error
            attempt += 1
            await asyncio.sleep(delay)

    def _events(self, calendar_id: str) -> str:
        return f"/me/calendars/{calendar_id}/events"

    # calendars

    async def list_calendars(self) -> list[CalendarInfo]:
        found: list[CalendarInfo] = []
        url: str | None = "/me/calendars"
        while url:
            page = await self._call("listing calendars", "GET", url)
            for c in page.get("value", []):
                found.append(
                    CalendarInfo(
                        str(c["id"]),
                        str(c.get("name") or c["id"]),
                        c.get("canEdit") is True,
                        primary=c.get("isDefaultCalendar") is True,
                    )
                )
            url = page.get("@odata.nextLink")
        return found

    # reading

    @staticmethod
    def _item(body: dict[str, Any]) -> RemoteItem:
        return RemoteItem(
            str(body["id"]), str(body.get("@odata.etag", "")), uid_of(body), (from_body(body),)
        )

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        url = cursor or f"/me/calendars/{calendar_id}/calendarView/delta"
        params = (
            None
            if cursor
            else {"startDateTime": _utc(window.start), "endDateTime": _utc(window.end)}
        )
        changed: dict[str, RemoteItem] = {}
        deleted: list[str] = []
        while True:
            page = await self._call(
                "listing changed events",
                "GET",
                url,
                params=params,
                headers={"Prefer": f"odata.maxpagesize={_PAGE}"},
            )
            params = None  # the links carry the window
            for body in page.get("value", []):
                href = str(body["id"])
                if "@removed" in body:
                    changed.pop(href, None)
                    deleted.append(href)
                elif body.get("isCancelled"):
                    deleted.append(href)
                else:
                    changed[href] = self._item(body)
                    if href in deleted:
                        deleted.remove(href)
            if page.get("@odata.deltaLink"):
                return ChangeSet(
                    str(page["@odata.deltaLink"]),
                    tuple(changed.values()),
                    () if cursor is None else tuple(deleted),
                    full=cursor is None,
                )
            url = page.get("@odata.nextLink")
            if not url:
                raise ConnectorError("Graph's delta ended without a delta link")

    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        body = await self._call(
            "reading an event",
            "GET",
            f"{self._events(calendar_id)}/{href}",
            params={"$expand": f"singleValueExtendedProperties($filter=id eq '{UID_PROPERTY}')"},
        )
        return self._item(body)

    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        quoted = uid.replace("'", "''")
        found = await self._call(
            "finding an event",
            "GET",
            self._events(calendar_id),
            params={
                "$filter": "singleValueExtendedProperties/Any(ep: ep/id eq "
                f"'{UID_PROPERTY}' and ep/value eq '{quoted}')",
                "$expand": f"singleValueExtendedProperties($filter=id eq '{UID_PROPERTY}')",
            },
        )
        for body in found.get("value", []):
            if not body.get("isCancelled"):
                return self._item(body)
        return None

    # writing

    async def create(self, calendar_id: str, event: Event) -> Written:
        body = {**to_body(event), "transactionId": transaction_id(event.uid)}
        created = await self._call(
            "creating an event", "POST", self._events(calendar_id), json=body
        )
        made = from_body(created)
        wanted = from_body({**body, "id": "", "originalStartTimeZone": event.timezone})
        if (made.start, made.end, made.title) != (wanted.start, wanted.end, wanted.title):
            # Graph answered a retried transactionId with an event made earlier, not this one
            raise RemoteExists("creating an event: an event with this UID is already there")
        return Written(str(created["id"]), str(created.get("@odata.etag", "")))

    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        updated = await self._call(
            "updating an event",
            "PATCH",
            f"{self._events(calendar_id)}/{href}",
            json=to_body(event),
            headers={"If-Match": etag},
        )
        return Written(str(updated["id"]), str(updated.get("@odata.etag", "")))

    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        await self._call(
            "deleting an event",
            "DELETE",
            f"{self._events(calendar_id)}/{href}",
            headers={"If-Match": etag} if etag else None,
        )

    # change notifications

    async def watch_start(self, calendar_id: str, address: str, token: str) -> WatchChannel:
        """A Graph subscription on the calendar's events; Graph checks `address` answers its
        validation handshake before it answers (ConnectorError when it did not)."""
        body = notify.subscription_body(
            calendar_id, address, token, datetime.now(UTC), self.app.subscription_minutes
        )
        made = await self._call("starting a subscription", "POST", "/subscriptions", json=body)
        expires = datetime.fromisoformat(str(made["expirationDateTime"]).replace("Z", "+00:00"))
        # The resource id checked against each notification's is the grant's tenant.
        return WatchChannel(str(made["id"]), notify.grant_tenant(self.account_id), expires)

    async def watch_stop(self, channel: WatchChannel) -> None:
        await self._call("deleting a subscription", "DELETE", f"/subscriptions/{channel.id}")

    async def watch_renew(self, channel: WatchChannel) -> WatchChannel:
        """PATCH the subscription's expiration (Graph renews in place; no new handshake)."""
        until = notify.expiry(datetime.now(UTC), self.app.subscription_minutes)
        made = await self._call(
            "renewing a subscription",
            "PATCH",
            f"/subscriptions/{channel.id}",
            json={"expirationDateTime": until},
        )
        expires = datetime.fromisoformat(str(made["expirationDateTime"]).replace("Z", "+00:00"))
        return WatchChannel(channel.id, channel.resource_id, expires)

    # credentials

    def credentials_changed(self) -> Credentials | None:
        """The token cache again when msal rotated the refresh token in it."""
        if not self.cache.has_state_changed:
            return None
        self.cache.has_state_changed = False
        c = self.credentials
        return Credentials(c.server_url, c.username, self.cache.serialize(), c.extra, c.guard)

    async def close(self) -> None:
        await self._http.aclose()
        if self._msal is not None:
            self._msal.http_client.close()
            self._msal = None
