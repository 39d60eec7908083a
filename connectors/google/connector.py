"""Google Calendar (API v3) through google-api-python-client and google-auth: one account.

The libraries are synchronous (httplib2): every call runs in a worker thread, one at a time per
connector. google-auth refreshes the access token, which is shared through the grant's
`GrantLimits` (connectors/google/limits.py) with every process; ``invalid_grant`` → AuthExpired,
never retried. Bodies, ids and error translation: connectors/google/wire.py; the request
plumbing (threads, budget, inline retries, paging): connectors/google/calls.py.

- Listing: a full listing is bounded with ``timeMin`` and read through every page up to the
  ``nextSyncToken`` (the cursor); later listings pass ``syncToken`` (Google forbids timeMin and
  filters with it); ``410 fullSyncRequired`` → CursorExpired; ``status: cancelled`` → deleted.
  Recurring series are expanded with ``events.instances`` inside the window (moved occurrences at
  their new time, cancelled ones absent); a changed or cancelled occurrence re-reads its series.
- Calendars: the one marked ``primary`` in calendarList is the account's own, whatever the order.
- Push: ``events.watch`` web_hook channels and ``channels.stop``.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import google.oauth2.credentials

from connectors import ical
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
    Skipped,
    WatchChannel,
    Window,
    Written,
)
from connectors.errors import (
    AuthExpired,
    ConnectorError,
    RemoteExists,
    RemoteNotFound,
)
from connectors.google.calls import GoogleCalls
from connectors.google.limits import GrantLimits
from connectors.google.oauth import GoogleApp, GoogleOAuth
from connectors.google.wire import (
    UID_PROPERTY,
    Unreadable,
    event_id,
    from_body,
    rfc3339,
    to_body,
    uid_of,
)

_PAGE = 250  # events.list maxResults (Google's default; the maximum is 2500)


class GoogleConnector(GoogleCalls, Connector):
    """One Google account. `Credentials.secret` is the refresh token; `username` its address."""

    name = "google"
    capabilities = Capabilities(incremental=True, watch=True, client_ids=True, oauth=True)

    def __init__(
        self, credentials: Credentials, app: GoogleApp, shared: SharedState | None = None
    ) -> None:
        super().__init__(credentials)
        self.app = app
        if not credentials.secret:
            raise AuthExpired("no Google refresh token stored: reconnect needed")
        self.limits = GrantLimits(shared or LocalState(), credentials.secret, app)
        self._lock = threading.Lock()
        self._service: Any = None
        self._creds: google.oauth2.credentials.Credentials | None = None
        self._token: tuple[str, datetime] | None = None  # the shared access token, once read
        self.requests = 0  # API requests made (for benchmarks and tests)

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
                primary=c.get("primary") is True,
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
                timeMin=rfc3339(window.start),
                timeMax=rfc3339(window.end),
                showDeleted=False,
                maxResults=_PAGE,
                pageToken=t,
            ),
            # A rule firing every hour to 2200 must not flood the busy time or stall the sync.
            limit=ical.MAX_OCCURRENCES,
        )
        occurrences = tuple(from_body(e) for e in instances if e.get("status") != "cancelled")
        return RemoteItem(
            str(master["id"]), str(master.get("etag", "")), uid_of(master), occurrences, True
        )

    async def _item(
        self, calendar_id: str, resource: Mapping[str, Any], window: Window
    ) -> RemoteItem:
        if resource.get("recurrence"):
            return await self._instances(calendar_id, resource, window)
        return RemoteItem(
            str(resource["id"]),
            str(resource.get("etag", "")),
            uid_of(resource),
            (from_body(resource),),
        )

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        if cursor is None:
            items, sync = await self._pages(
                "listing events",
                lambda s, t: s.events().list(
                    calendarId=calendar_id,
                    timeMin=rfc3339(window.start),
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
        skipped: list[Skipped] = []
        series: set[str] = set()  # masters whose occurrences changed
        for resource in items:
            parent = resource.get("recurringEventId")
            if parent:
                series.add(str(parent))
                continue
            if "id" not in resource:
                continue  # nothing to name it by: not an event we can follow
            href = str(resource["id"])
            if resource.get("status") == "cancelled":
                deleted.append(href)
                continue
            try:
                changed[href] = await self._item(calendar_id, resource, window)
            except Unreadable as exc:  # skipped in words; unreadable is not gone
                skipped.append(Skipped(href, str(exc)))
        for href in sorted(series - set(changed) - set(deleted) - {s.href for s in skipped}):
            try:
                changed[href] = await self._get(calendar_id, href, window)
            except RemoteNotFound:  # an occurrence whose series is gone (or never shared)
                if cursor is not None:
                    deleted.append(href)
            except Unreadable as exc:
                skipped.append(Skipped(href, str(exc)))
        return ChangeSet(
            sync,
            tuple(changed.values()),
            () if cursor is None else tuple(deleted),
            full=cursor is None,
            skipped=tuple(skipped),
        )

    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        try:
            return await self._get(calendar_id, href, window)
        except Unreadable as exc:
            raise ConnectorError(f"an event at Google cannot be read: {exc}") from None

    async def _get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        resource = await self._call(
            "reading an event", lambda s: s.events().get(calendarId=calendar_id, eventId=href)
        )
        if resource.get("status") == "cancelled":
            raise RemoteNotFound("reading an event: deleted at Google")
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
                    try:
                        return await self._item(calendar_id, resource, window)
                    except Unreadable:
                        continue  # not ours to adopt (ours are always readable)
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
        except RemoteExists:
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
        await GoogleOAuth(self.app, self.limits.shared).revoke(self.credentials.secret)
