"""A third provider, for the tests only: the memory calendar (connectors/memory.py) connected by
consent (OAuth) and with push channels, loaded through ``sync.connectors`` like any other.

It declares `oauth` and `watch` in its capabilities and supplies what they ask for
(connectors/registry.py): nothing in the engine names it, which is what the lifecycle tests check.

`ConsentPeer` plays the provider: its consent page hands out codes, its token endpoint turns a
code into a grant once, its revoke endpoint refuses the grant from then on, and it remembers the
push channels started and stopped. Notifications are posted by the test with the headers
``X-Memory-Channel``, ``X-Memory-Token`` and ``X-Memory-Changed``.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from connectors.base import (
    CalendarInfo,
    Capabilities,
    Credentials,
    RemoteNotFound,
    SharedState,
    WatchChannel,
)
from connectors.errors import AuthExpired
from connectors.memory import MemoryConnector, MemoryServer, serve
from connectors.registry import Grant, Incoming, Notification, Provider, Watch

if TYPE_CHECKING:
    from gateway.config import Settings

NAME = "memory-oauth"
_numbers = itertools.count(1)
_PEERS: dict[str, ConsentPeer] = {}  # address → peer (the test's "internet")


@dataclass
class ConsentPeer:
    """The provider's side: a memory calendar server, its OAuth endpoints and its channels."""

    server: MemoryServer = field(default_factory=MemoryServer)
    url: str = ""
    own_calendar: str = "me@memory.test"
    codes: dict[str, bool] = field(default_factory=dict)  # code → already exchanged
    revoked: list[str] = field(default_factory=list)
    channels: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id → cal, url, tok
    stopped: list[str] = field(default_factory=list)

    def consent(self, consent_url: str) -> tuple[str, str]:
        """The person consents: (code, state) as the provider's redirect would carry them."""
        state = parse_qs(urlsplit(consent_url).query)["state"][0]
        code = f"{self.url}#{secrets.token_urlsafe(8)}"
        self.codes[code] = False
        return code, state

    def grant(self) -> str:
        return f"{self.url}#{self.server.password}"


def running() -> ConsentPeer:
    """A new peer with a shared team calendar listed before the account's own one."""
    peer = ConsentPeer(url=f"memory://consent-{next(_numbers)}")
    peer.server.password = secrets.token_urlsafe(12)
    peer.server.add_calendar("team@memory.test", "Team rota")
    peer.server.add_calendar(peer.own_calendar, "My calendar")
    serve(peer.url, peer.server)
    _PEERS[peer.url] = peer
    return peer


def _peer(grant: str) -> ConsentPeer:
    peer = _PEERS.get(grant.split("#", 1)[0])
    if peer is None:
        raise AuthExpired("unknown grant")
    return peer


class ConsentConnector(MemoryConnector):
    """The memory connector, signed in with a grant and able to push changes."""

    name = NAME
    capabilities = Capabilities(incremental=True, watch=True, client_ids=True, oauth=True)

    def __init__(self, credentials: Credentials) -> None:
        self.peer = _peer(credentials.secret)
        url, password = credentials.secret.split("#", 1)
        super().__init__(replace(credentials, server_url=url, secret=password))

    async def list_calendars(self) -> list[CalendarInfo]:
        found = await super().list_calendars()
        return [replace(c, primary=c.id == self.peer.own_calendar) for c in found]

    async def watch_start(self, calendar_id: str, address: str, token: str) -> WatchChannel:
        self._enter()
        channel = WatchChannel(
            secrets.token_hex(8), calendar_id, datetime.now(UTC) + timedelta(days=1)
        )
        self.peer.channels[channel.id] = (calendar_id, address, token)
        return channel

    async def watch_stop(self, channel: WatchChannel) -> None:
        self._enter()
        if self.peer.channels.pop(channel.id, None) is None:
            raise RemoteNotFound("no such channel")
        self.peer.stopped.append(channel.id)

    async def revoke(self) -> None:
        await ConsentOAuth().revoke(self.peer.grant())


class ConsentOAuth:
    """The provider's consent flow (connectors.registry.OAuth)."""

    consent_minutes = 5.0

    def consent_url(self, state: str) -> str:
        return f"https://consent.memory.test/authorize?state={state}"

    async def exchange_code(self, code: str, state: str) -> Grant:
        peer = _peer(code)
        if peer.codes.get(code) is not False:
            raise AuthExpired("the code was already used or never issued")
        peer.codes[code] = True
        return Grant(peer.grant())

    async def revoke(self, grant: str) -> None:
        peer = _peer(grant)
        peer.revoked.append(grant)
        peer.server.password = secrets.token_urlsafe(12)  # the grant no longer works


def read_notification(request: Incoming) -> Notification | None:
    """The X-Memory-* headers of a notification."""
    channel = request.headers.get("x-memory-channel")
    if not channel:
        return None
    return Notification(
        channel,
        request.headers.get("x-memory-token"),
        None,
        changed=request.headers.get("x-memory-changed") == "yes",
    )


def provider(settings: Settings) -> Provider:
    """This test provider for `connectors.load`."""

    def build(credentials: Credentials, _shared: SharedState) -> ConsentConnector:
        return ConsentConnector(credentials)

    def oauth(_shared: SharedState) -> ConsentOAuth:
        return ConsentOAuth()

    return Provider(
        NAME,
        build,
        ConsentConnector.capabilities,
        title="Memory calendar",
        oauth=oauth,
        watch=Watch(read_notification, renew_hours=1.0, poll_minutes=30.0),
    )
