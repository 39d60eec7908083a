"""CalDAV (RFC 4791) through the `caldav` library: Nextcloud, Fastmail, iCloud, Radicale, ...

The library is synchronous; every call runs in a worker thread, one at a time per connector.
Changes come from an RFC 6578 ``sync-collection`` REPORT that also asks for calendar-data, built
from the library's elements and parsed by its ``parse_sync_collection`` (the library's own
``get_objects_by_sync_token`` needs one more request per batch of events); a refused token is
``CursorExpired``, never a silent full listing (Radicale 403, Xandikos 412 with
``DAV:valid-sync-token``). A server without RFC 6578 is read by CTag (calendarserver.org) and an
etag comparison. Writes use ``If-None-Match: *`` on create and
``If-Match`` on update and delete (RFC 4791 §5.3.2, RFC 7232). Every library error is turned
into the connector error tree where it is raised (`connectors/caldav_wire.py` says how); ICS
itself is read and written by `connectors/ical.py`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import niquests
from caldav.davclient import DAVClient
from caldav.elements import cdav, dav
from caldav.elements.base import ValuedBaseElement
from caldav.lib import error as dav_error
from lxml import etree  # type: ignore[import-untyped]

from connectors import caldav_wire as wire
from connectors import ical
from connectors.registry import Provider

if TYPE_CHECKING:
    from gateway.config import Settings
from connectors.base import (
    AuthExpired,
    CalendarInfo,
    Capabilities,
    ChangeSet,
    Connector,
    ConnectorError,
    Credentials,
    CursorExpired,
    Event,
    RemoteExists,
    RemoteItem,
    RemoteNotFound,
    Skipped,
    Transient,
    Window,
    Written,
)

T = TypeVar("T")
log = logging.getLogger("calgate.connectors.caldav")
_MULTIGET_CHUNK = 100
_MAX_PAGES = 200  # truncated sync-collection answers followed at most this often
_TIMEOUT_SECONDS = 30


class _CTag(ValuedBaseElement):
    """Apple's calendarserver.org CTag: changes whenever anything in the collection changes."""

    tag: ClassVar[str] = "{http://calendarserver.org/ns/}getctag"


class CalDAVConnector(Connector):
    """One CalDAV account. `Credentials.server_url` is any URL discovery can start from."""

    name = "caldav"
    capabilities = Capabilities(incremental=True, watch=False, client_ids=True, user_url=True)

    def __init__(self, credentials: Credentials, timeout: float = _TIMEOUT_SECONDS) -> None:
        if not credentials.server_url:
            raise ConnectorError("a CalDAV server URL is needed")
        super().__init__(credentials)
        self._zones: dict[str, tzinfo] = {}
        self.timeout = timeout
        self.base_url = credentials.server_url
        self.client = DAVClient(
            credentials.server_url,
            username=credentials.username,
            password=credentials.secret,
            timeout=timeout,  # type: ignore[arg-type]  # hinted int; niquests takes floats
            enable_rfc6764=False,
            require_tls=urlsplit(credentials.server_url).scheme == "https",
            rate_limit_handle=False,
        )
        self._lock = threading.Lock()
        self._refusals: list[str] = []
        if credentials.guard is not None:
            # Every connection checked where it is made; no proxies or netrc from the environment.
            resolver = wire.GuardedResolver(credentials.guard, self._refusals)
            session = niquests.Session(resolver=resolver)
            session.trust_env = False
            self.client.session.close()
            self.client.session = session

    async def _call(self, what: str, fn: Callable[[], T]) -> T:
        def run() -> T:
            with self._lock:
                self._refusals.clear()
                try:
                    return fn()
                except Exception as exc:
                    if self._refusals:
                        raise ConnectorError(wire.REFUSED) from None
                    raise wire.translate(exc, what, self.timeout) from None

        return await asyncio.to_thread(run)

    def _calendar(self, calendar_id: str) -> Any:
        return self.client.calendar(url=calendar_id)  # type: ignore[no-untyped-call]

    def _href(self, calendar_id: str, uid: str) -> str:
        # RFC 4791 §5.3.2: the client names the resource; from the UID, so a retry hits it again.
        folder = calendar_id if calendar_id.endswith("/") else calendar_id + "/"
        return wire.canon(urljoin(folder, quote(uid, safe="") + ".ics"))

    # --- discovery ------------------------------------------------------------------------

    async def list_calendars(self) -> list[CalendarInfo]:
        def run() -> list[CalendarInfo]:
            principal = self.client.principal()  # type: ignore[no-untyped-call]
            found = []
            for cal in principal.calendars():
                name = cal.get_display_name() or str(cal.url).rstrip("/").rsplit("/", 1)[-1]
                found.append(CalendarInfo(str(cal.url), str(name)))
            return found

        return await self._call("calendar discovery", run)

    # --- reading --------------------------------------------------------------------------

    async def list_changes(self, calendar_id: str, cursor: str | None, window: Window) -> ChangeSet:
        state: dict[str, Any] = json.loads(cursor) if cursor else {}
        if "c" in state:
            return await self._call("listing", lambda: self._by_ctag(calendar_id, state, window))
        try:
            return await self._call(
                "sync-collection", lambda: self._by_token(calendar_id, state.get("t"), window)
            )
        except CursorExpired:
            raise
        except (AuthExpired, Transient, RemoteNotFound):
            raise
        except ConnectorError:
            if cursor:
                raise
            # No RFC 6578 on this server: CTag and etags instead.
            return await self._call("listing", lambda: self._by_ctag(calendar_id, {}, window))

    def _floating(self, cal: Any) -> tzinfo:
        """The clock of the calendar's floating times: its CALDAV:calendar-timezone (RFC 4791
        §5.2.2) when it names a zone we know, else the connector's `floating_zone`."""
        key = wire.canon(cal.url)
        if key not in self._zones:
            zone: tzinfo = self.floating_zone
            try:
                text = cal.get_property(cdav.CalendarTimeZone())
            except Exception:  # a server without the property answers in many ways
                text = None
            if text:
                found = ical.calendar_zone(str(text))
                if found is not None:
                    zone = found
            self._zones[key] = zone
        return self._zones[key]

    def _by_token(self, calendar_id: str, token: str | None, window: Window) -> ChangeSet:
        """RFC 6578 sync-collection asking for calendar-data too (§3.2 allows any property), so
        one REPORT brings the changed events themselves; a truncated answer (§3.6, 507) is
        followed with the token it returned. Events sent without data are multiget."""
        cal = self._calendar(calendar_id)
        base = wire.canon(cal.url)
        changed: dict[str, tuple[str, str | None]] = {}
        deleted: set[str] = set()
        current = token
        for _page in range(_MAX_PAGES):
            # caldav's elements compose with "+" (not list concatenation).
            props = dav.Prop() + [dav.GetEtag(), cdav.CalendarData()]  # noqa: RUF005
            body = dav.SyncCollection() + [  # noqa: RUF005
                dav.SyncToken(value=current or ""),
                dav.SyncLevel(value="1"),
                props,
            ]
            query = etree.tostring(body.xmlelement(), encoding="utf-8", xml_declaration=True)
            response = self.client.report(str(cal.url), query.decode("utf-8"), depth=1)
            if response.status == 412:
                # Xandikos answers an unknown token with 412 DAV:valid-sync-token.
                raise CursorExpired("the CalDAV server no longer accepts the sync token")
            if response.status not in (200, 207):
                raise wire.status_error(response.status, "sync-collection", response.headers)
            unusable = wire.not_xml(response, "sync-collection")
            if unusable is not None:
                raise unusable
            result = response.parse_sync_collection()
            for answer in result.changed:
                href = wire.canon(cal.url.join(answer.href))
                if href.rstrip("/") == base.rstrip("/"):
                    continue  # some servers list the collection itself among the changes
                changed[href] = (answer.etag or "", answer.calendar_data)
                deleted.discard(href)
            for gone in result.deleted:
                href = wire.canon(cal.url.join(gone))
                deleted.add(href)
                changed.pop(href, None)
            current = result.sync_token or current
            if not result.truncated:
                break
        items: list[RemoteItem] = []
        skipped: list[Skipped] = []
        floating = self._floating(cal)
        missing = []
        for href, (etag, data) in changed.items():
            if data is None:
                missing.append(href)
                continue
            if (item := ical.read_listed(href, etag, data, window, floating, skipped)) is not None:
                items.append(item)
        fetched = self._fetch(cal, [cal.url.join(h) for h in missing], window, skipped)
        items.extend(fetched)
        # Listed as changed but gone by the time we fetched it: a deletion.
        found = {i.href for i in fetched}
        deleted.update(h for h in missing if h not in found)
        new_cursor = json.dumps({"t": str(current)})
        # Skipped items stay out of `deleted` too: unreadable is not gone.
        deleted.difference_update(s.href for s in skipped)
        return ChangeSet(
            new_cursor,
            tuple(items),
            tuple(sorted(deleted)),
            full=token is None,
            skipped=tuple(skipped),
        )

    def _fetch(
        self, cal: Any, urls: list[Any], window: Window, skipped: list[Skipped]
    ) -> list[RemoteItem]:
        """calendar-multiget (RFC 4791 §7.9) in chunks; the next chunk is requested while this
        one is parsed, so the server's time and ours overlap. Unreadable items go to
        `skipped`."""
        floating = self._floating(cal)
        chunks = [urls[i : i + _MULTIGET_CHUNK] for i in range(0, len(urls), _MULTIGET_CHUNK)]
        items: list[RemoteItem] = []
        if not chunks:
            return items
        with ThreadPoolExecutor(max_workers=1) as prefetch:
            pending = prefetch.submit(cal.multiget, chunks[0])
            for index in range(len(chunks)):
                objects = pending.result()
                if index + 1 < len(chunks):
                    pending = prefetch.submit(cal.multiget, chunks[index + 1])
                for obj in objects:
                    etag = wire.etag_of((obj.props or {}).get(dav.GetEtag.tag))
                    href = wire.canon(obj.url)
                    item = ical.read_listed(href, etag, obj.data, window, floating, skipped)
                    if item is not None:
                        items.append(item)
        return items

    def _by_ctag(self, calendar_id: str, state: dict[str, Any], window: Window) -> ChangeSet:
        cal = self._calendar(calendar_id)
        ctag = cal.get_property(_CTag())
        known: dict[str, str] = state.get("e", {})
        if state and ctag is not None and ctag == state.get("c"):
            return ChangeSet(json.dumps(state), (), (), full=False)
        response = cal._query_properties([dav.GetEtag()], depth=1)
        props = response.expand_simple_props([dav.GetEtag()])
        current: dict[str, str] = {}
        for href, values in props.items():
            url = wire.canon(cal.url.join(href))
            if url.rstrip("/") == str(cal.url).rstrip("/"):
                continue
            current[url] = wire.etag_of(values.get(dav.GetEtag.tag))
        changed = [u for u, e in current.items() if known.get(u) != e]
        skipped: list[Skipped] = []
        items = self._fetch(cal, [cal.url.join(u) for u in changed], window, skipped)
        deleted = [u for u in known if u not in current]
        cursor = json.dumps({"c": ctag, "e": current})
        return ChangeSet(
            cursor, tuple(items), tuple(deleted), full=not state, skipped=tuple(skipped)
        )

    async def get(self, calendar_id: str, href: str, window: Window) -> RemoteItem:
        def run() -> RemoteItem:
            cal = self._calendar(calendar_id)
            response = self.client.request(href, "GET")
            if response.status != 200:
                raise wire.status_error(response.status, "reading an event", response.headers)
            etag = wire.etag_of(response.headers.get("ETag"))
            try:
                return ical.parse_item(
                    wire.canon(href), etag, response.raw, window, self._floating(cal)
                )
            except ValueError:
                raise ConnectorError("the CalDAV server returned an unreadable event") from None

        return await self._call("reading an event", run)

    async def find_by_uid(self, calendar_id: str, uid: str, window: Window) -> RemoteItem | None:
        def run() -> RemoteItem | None:
            cal = self._calendar(calendar_id)
            try:
                obj = cal.get_object_by_uid(uid)
            except dav_error.NotFoundError:
                return None
            etag = wire.etag_of((obj.props or {}).get(dav.GetEtag.tag))
            if not etag:
                head = self.client.request(str(obj.url), "GET")
                etag = wire.etag_of(head.headers.get("ETag"))
            try:
                return ical.parse_item(
                    wire.canon(obj.url), etag, obj.data, window, self._floating(cal)
                )
            except ValueError:
                raise ConnectorError("the CalDAV server returned an unreadable event") from None

        return await self._call("finding an event", run)

    # --- writing --------------------------------------------------------------------------

    def _put(self, href: str, event: Event, headers: dict[str, str], what: str) -> Written:
        body = ical.event_to_ics(event, datetime.now(UTC))
        response = self.client.put(
            href, body, {"Content-Type": "text/calendar; charset=utf-8", **headers}
        )
        if response.status == 412 and "If-None-Match" in headers:
            raise RemoteExists("an event with this UID is already in the calendar")
        if response.status not in (200, 201, 204):
            raise wire.status_error(response.status, what, response.headers)
        etag = wire.etag_of(response.headers.get("ETag"))
        if not etag:
            # RFC 4791 §5.3.4: a server that changed what we sent returns no ETag: ask for it.
            head = self.client.request(href, "GET")
            kind = str(head.headers.get("Content-Type") or "").lower()
            if head.status != 200 or "calendar" not in kind:
                # Not the event we wrote (a proxy's page?): unproven, so not recorded as
                # written; the retry's If-None-Match finds it if it did land.
                raise Transient(f"the CalDAV server did not confirm the {what} of the event")
            etag = wire.etag_of(head.headers.get("ETag"))
        return Written(href, etag)

    async def create(self, calendar_id: str, event: Event) -> Written:
        href = self._href(calendar_id, event.uid)
        return await self._call(
            "creating an event", lambda: self._put(href, event, {"If-None-Match": "*"}, "create")
        )

    async def update(self, calendar_id: str, href: str, event: Event, etag: str) -> Written:
        return await self._call(
            "updating an event", lambda: self._put(href, event, {"If-Match": etag}, "update")
        )

    async def delete(self, calendar_id: str, href: str, etag: str | None) -> None:
        def run() -> None:
            response = self.client.delete(href, {"If-Match": etag} if etag else {})
            if response.status not in (200, 204):
                raise wire.status_error(response.status, "deleting an event", response.headers)

        await self._call("deleting an event", run)

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)


def provider(settings: Settings) -> Provider:
    """CalDAV for `connectors.load`: every request bounded by `caldav.timeout_seconds`."""
    timeout = settings.caldav_timeout_seconds
    return Provider(
        CalDAVConnector.name,
        lambda credentials, _shared: CalDAVConnector(credentials, timeout),
        CalDAVConnector.capabilities,
        title="CalDAV",
    )
