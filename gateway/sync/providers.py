"""The providers this daemon offers, per store: the registry built by `connectors.load` from the
settings when the app is built, the state each provider shares between processes, and the one
way to get a connector for an integration.

Nothing here names a provider: what one can do is read from its `Provider` entry (capabilities,
OAuth, push channels).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import connectors
from connectors.base import Connector, Credentials, LocalState, SharedState
from connectors.registry import Provider, Registry
from gateway import secrets
from gateway.config import Settings
from gateway.errors import ValidationFailed
from gateway.store.db import Store
from gateway.store.sync_models import Integration
from gateway.sync import outbound
from gateway.sync.shared import StoreState


@dataclass
class Loaded:
    """What a store keeps of its providers: the registry loaded for each settings object (the
    app's; a test or script may bring others) and the in-process state of each provider (used
    on SQLite only, see `shared_state`)."""

    registries: dict[int, tuple[Settings, Registry]] = field(default_factory=dict)
    local: dict[str, LocalState] = field(default_factory=dict)


def _loaded(store: Store) -> Loaded:
    if store.connectors is None:
        store.connectors = Loaded()
    loaded = store.connectors
    assert isinstance(loaded, Loaded)
    return loaded


def registry(store: Store, settings: Settings) -> Registry:
    """The providers named in `settings`, loaded once per settings object and store."""
    registries = _loaded(store).registries
    known = registries.get(id(settings))
    if known is None or known[0] is not settings:
        known = registries[id(settings)] = (settings, connectors.load(settings))
    return known[1]


def install(store: Store, settings: Settings) -> Registry:
    """Load the providers named in the settings for `store` when the app is built (a module
    that cannot be loaded stops start-up there)."""
    return registry(store, settings)


def usable(store: Store, settings: Settings, name: str, field_name: str = "provider") -> Provider:
    """Provider `name`, when it can be used here; else a 422 naming `field_name`."""
    known = registry(store, settings)
    if name not in known.names():
        raise ValidationFailed.one(field_name, f"must be one of {', '.join(known.names())}")
    provider = known.get(name)
    if provider.unavailable:
        raise ValidationFailed.one(field_name, provider.unavailable)
    return provider


def shared_state(store: Store, settings: Settings, provider: str) -> SharedState:
    """Where provider `provider` keeps what every process must agree on: the database on
    PostgreSQL (several processes); this process on SQLite, which one process uses and whose
    single writer would otherwise wait on the transaction a connector is called from."""
    if store.dialect == "postgresql":
        return StoreState(store, settings, provider)
    return _loaded(store).local.setdefault(provider, LocalState())


def connector_for(store: Store, settings: Settings, integration: Integration) -> Connector:
    """A connector for the integration, its secret decrypted. Raises SecretUnreadable, or
    ConnectorError for a provider this daemon does not offer (any more)."""
    secret = secrets.decrypt(settings, integration.secret)
    credentials = Credentials(
        integration.server_url,
        integration.username,
        secret,
        guard=outbound.connect_guard(settings),
    )
    shared = shared_state(store, settings, integration.provider)
    return registry(store, settings).build(integration.provider, credentials, shared)
