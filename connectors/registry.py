"""Which calendar providers this daemon offers, loaded from the settings (like Radicale's plugins).

`load(settings)` imports each module named in ``sync.connectors`` and asks its
``provider(settings)`` for a `Provider`: how to build a connector, what it can do, and, when it
declares them in its capabilities, how it connects by consent (`OAuth`) and how it reads push
notifications (`Watch`). The app builds one `Registry` when it starts; importing a connector
module registers nothing and no module keeps mutable state.

A provider that cannot work here (Google without a client id) is still listed, with the reason in
`unavailable`, so that asking for it gets that reason rather than "unknown provider".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from connectors.base import Capabilities, Connector, Credentials, SharedState
from connectors.errors import ConnectorError
from gateway.errors import ConfigError

if TYPE_CHECKING:
    from gateway.config import Settings


@dataclass(frozen=True)
class Grant:
    """What a consent gave: the secret to store (encrypted) and the account's name, if known."""

    secret: str
    username: str | None = None


class OAuth(Protocol):
    """What a provider whose capabilities say `oauth` supplies for the consent flow."""

    consent_minutes: float  # how long a consent link may be used (once)

    def consent_url(self, state: str) -> str:
        """Where to send the person to consent; the provider sends them back to
        ``/oauth/{name}/callback`` with `state` and a code."""

    async def exchange_code(self, code: str, state: str) -> Grant:
        """Trade the code for a grant. `state` is the one `consent_url` was given (already
        checked by the engine): a flow bound to it (PKCE, nonce) is found again from it.
        Raises AuthExpired for a bad, used or expired code."""

    async def revoke(self, grant: str) -> None:
        """Give the grant up at the provider. Raises AuthExpired when it was already invalid."""


@dataclass(frozen=True)
class Incoming:
    """A webhook request as a provider's `read_notification` sees it (header names lower-case)."""

    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


Lifecycle = Literal["renew", "recreate", "resync"]


@dataclass(frozen=True)
class Notification:
    """One push notification: which channel, its secret, and whether to pull.

    `resource_id`, when the notification names what is watched (Google's resource id, Graph's
    tenant), must equal the channel's (`WatchChannel.resource_id`) where that is not empty.
    `changed` False means acknowledge and do nothing (Google's initial ``sync`` message).
    `lifecycle` is a provider's word about the channel itself rather than the calendar:
    ``renew`` (replace the channel soon), ``recreate`` (the provider dropped it: start a new one,
    pull), ``resync`` (notifications were lost: list the calendar in full).
    """

    channel_id: str
    token: str | None
    resource_id: str | None
    changed: bool
    lifecycle: Lifecycle | None = None


@dataclass(frozen=True)
class Batch:
    """Several notifications in one request, and the status that acknowledges them all."""

    notes: tuple[Notification, ...]
    accepted: int = 200


@dataclass(frozen=True)
class Reply:
    """An answer the provider requires as it is (a subscription handshake echoing a token), and
    the webhook's answer in general."""

    status: int
    body: str = ""
    media_type: str = "text/plain"


@dataclass(frozen=True)
class Watch:
    """What a provider whose capabilities say `watch` supplies for push channels."""

    # None: not a notification (400); a Reply is sent as it is, before any channel is looked up
    read_notification: Callable[[Incoming], Notification | Batch | Reply | None]
    renew_hours: float  # replace a channel when less than this remains
    poll_minutes: float  # backstop poll while every synced calendar has a live channel
    needs_https: bool = False  # the provider only calls https addresses: none are made otherwise


Builder = Callable[[Credentials, SharedState], Connector]


@dataclass(frozen=True)
class Provider:
    """One calendar provider as the engine knows it."""

    name: str
    build: Builder
    capabilities: Capabilities
    title: str = ""  # what people call it ("Google Calendar"); the name when empty
    oauth: Callable[[SharedState], OAuth] | None = None  # the consent flow, given shared state
    watch: Watch | None = None  # None also when push is switched off in the settings
    unavailable: str | None = None  # why it cannot be used on this server, in words
    # Where the person withdraws the app's consent themselves, when the provider offers calgate
    # no revoke (a link): the disconnect receipt tells them.
    consent_help: str | None = None

    @property
    def label(self) -> str:
        """The provider's name as people know it."""
        return self.title or self.name

    def __post_init__(self) -> None:
        if self.capabilities.oauth != (self.oauth is not None) and self.unavailable is None:
            raise ConfigError(f"connector {self.name}: capabilities.oauth needs an OAuth, and only")


def plain(connector: type[Connector], title: str) -> Provider:
    """The `Provider` of a connector class that needs no settings and no shared state."""
    return Provider(
        connector.name,
        lambda credentials, _shared: connector(credentials),
        connector.capabilities,
        title=title,
    )


def by_consent(
    connector: type[Connector],
    title: str,
    build: Builder,
    *,
    client_id: str,
    client_id_setting: str,
    oauth: Callable[[SharedState], OAuth],
    watch: Watch | None = None,
    consent_help: str | None = None,
) -> Provider:
    """The `Provider` of a connector that connects by consent: listed, but unavailable, saying
    which setting is missing, while the server has no client id registered at the provider."""
    if not client_id:
        return Provider(
            connector.name,
            build,
            connector.capabilities,
            title=title,
            unavailable=f"{title} is not configured on this server ({client_id_setting})",
        )
    return Provider(
        connector.name,
        build,
        connector.capabilities,
        title=title,
        oauth=oauth,
        watch=watch,
        consent_help=consent_help,
    )


class Registry:
    """The providers this daemon offers, by name."""

    def __init__(self, providers: list[Provider]) -> None:
        self._providers = {p.name: p for p in providers}

    def get(self, name: str) -> Provider:
        """Provider `name`. Raises ConnectorError for an unknown provider."""
        try:
            return self._providers[name]
        except KeyError:
            raise ConnectorError(f"unknown calendar provider {name!r}") from None

    def names(self) -> list[str]:
        """The provider names, sorted."""
        return sorted(self._providers)

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def build(self, name: str, credentials: Credentials, shared: SharedState) -> Connector:
        """A connector for provider `name`. Raises ConnectorError for an unknown provider."""
        return self.get(name).build(credentials, shared)


def load(settings: Settings) -> Registry:
    """The providers named in ``sync.connectors`` (module paths, comma-separated), each asked for
    its `Provider` through the module's ``provider(settings)``. A module that cannot be loaded
    stops start-up with a line naming it."""
    providers = []
    for module_name in (m.strip() for m in settings.sync_connectors.split(",")):
        if not module_name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ConfigError(f"sync.connectors: cannot load {module_name!r} ({exc})") from None
        factory = getattr(module, "provider", None)
        if not callable(factory):
            raise ConfigError(f"sync.connectors: {module_name!r} has no provider(settings)")
        providers.append(factory(settings))
    return Registry(providers)
