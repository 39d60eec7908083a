"""The one mapping of every table to its place in an account's data: how its rows are reached
from an account, whether the export holds them (or why not), and which columns never leave.

Export (gateway/privacy/export.py), account deletion (gateway/domain/account_deletion.py) and
their completeness tests read this mapping; docs/data-map.md describes the same tables for
people. A new table gets one entry here and one section there (the tests fail otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table, select

import gateway.store.all_models  # noqa: F401 - every table on Base.metadata
from gateway.store.models import Base


@dataclass(frozen=True)
class Reach:
    """How the rows of a table are found from an account id: `column` holds the account id, or,
    with `parent`, the id of a row of that table (itself reached from the account)."""

    column: str
    parent: str | None = None


@dataclass(frozen=True)
class Entry:
    """One table. `reach` None: the table holds no row of any one account. `excluded`: why the
    export leaves it out (None = exported). `hidden`: columns never exported, with the reason."""

    reach: Reach | None
    excluded: str | None = None
    hidden: dict[str, str] = field(default_factory=dict)


_ACCOUNT = Reach("account_id")
_HASHED = "a hash of a secret: useless to the owner and a risk if leaked"

TABLES: dict[str, Entry] = {
    "accounts": Entry(Reach("id")),
    "api_keys": Entry(_ACCOUNT, hidden={"secret_hash": _HASHED}),
    "api_key_activity": Entry(_ACCOUNT),
    "users": Entry(_ACCOUNT),
    "clients": Entry(_ACCOUNT),
    "appointments": Entry(_ACCOUNT),
    "imported_events": Entry(_ACCOUNT),
    "idempotency_records": Entry(
        _ACCOUNT,
        excluded="a replay cache of answers whose data is exported from its own tables; "
        "deleted after api.idempotency_hours",
    ),
    "usage_records": Entry(_ACCOUNT),
    "jobs": Entry(None, excluded="the daemon's work queue: ids and no account data"),
    "feeds": Entry(_ACCOUNT, hidden={"token_hash": _HASHED}),
    "feed_access": Entry(Reach("feed_id", "feeds")),
    "oauth_consents": Entry(_ACCOUNT, hidden={"state_hash": _HASHED}),
    "watch_channels": Entry(
        Reach("integration_id", "sync_integrations"), hidden={"token_hash": _HASHED}
    ),
    "contact_changes": Entry(_ACCOUNT),
    "page_settings": Entry(_ACCOUNT),
    "client_short_links": Entry(
        _ACCOUNT,
        hidden={
            "code_hash": _HASHED,
            "token": "the signed link to the client's page, encrypted: a credential, not data",
        },
    ),
    "provider_state": Entry(
        None,
        excluded="a provider's state shared between processes (write pauses, access tokens, "
        "encrypted; places of a concurrency cap), kept per grant, not per account; expires by "
        "itself",
    ),
    "provider_calls": Entry(
        None, excluded="the times of requests booked in a provider's request budget: no data"
    ),
    "notify_account_settings": Entry(_ACCOUNT),
    "notify_client_settings": Entry(_ACCOUNT),
    "notify_templates": Entry(_ACCOUNT),
    "notify_sms_optouts": Entry(
        None,
        excluded="one list of (keyed hashes of) numbers that answered STOP to the daemon's "
        "shared sender, not any one account's (a client's own opt-out, as the time since "
        "when, is in their personal export)",
        hidden={"phone_hash": "a keyed hash of the number: no use to its owner, never exported"},
    ),
    "stored_keys": Entry(
        None, excluded="the daemon's own keys (encrypted under the secrets key): no account data"
    ),
    "notify_outbox": Entry(_ACCOUNT),
    "notify_delivery_log": Entry(Reach("outbox_id", "notify_outbox")),
    "sync_integrations": Entry(
        _ACCOUNT,
        hidden={"secret": "the calendar password or token, encrypted: a credential, not data"},
    ),
    "sync_calendars": Entry(Reach("integration_id", "sync_integrations")),
    "sync_mappings": Entry(Reach("integration_id", "sync_integrations")),
    "sync_busy_blocks": Entry(Reach("integration_id", "sync_integrations")),
    "sync_log": Entry(Reach("integration_id", "sync_integrations")),
    "sync_purge_receipts": Entry(_ACCOUNT),
    "webhook_endpoints": Entry(
        _ACCOUNT,
        hidden={
            "secret": "the signing secret, encrypted: a credential, not data",
            "previous_secret": "the signing secret before a rotation, encrypted: a credential",
        },
    ),
    "webhook_events": Entry(_ACCOUNT),
    "webhook_deliveries": Entry(_ACCOUNT),
    "webhook_attempts": Entry(Reach("delivery_id", "webhook_deliveries")),
    "privacy_erasures": Entry(_ACCOUNT),
    "privacy_erasure_copies": Entry(
        Reach("erasure_id", "privacy_erasures"),
        excluded="work in flight of an erasure (addresses of events at a provider, no personal "
        "data); gone when the erasure is done",
    ),
    "account_deletion_receipts": Entry(
        None, excluded="written only once the account is gone: there is no account to export to"
    ),
}


def model_tables() -> dict[str, list[str]]:
    """Every table of the models with its column names, in dependency order (parents first)."""
    return {t.name: [c.name for c in t.columns] for t in Base.metadata.sorted_tables}


def exported_tables() -> list[str]:
    """Tables the account export holds, parents first."""
    return [name for name in model_tables() if name in TABLES and TABLES[name].excluded is None]


def account_tables() -> list[str]:
    """Tables with rows of one account (reached from its id), parents first."""
    return [name for name in model_tables() if name in TABLES and TABLES[name].reach is not None]


def table(name: str) -> Table:
    """The Core table of that name."""
    return Base.metadata.tables[name]


def belongs_to(name: str, account_id: str) -> ColumnElement[bool]:
    """The condition selecting the rows of table `name` that belong to the account."""
    reach = TABLES[name].reach
    if reach is None:
        raise ValueError(f"table {name} holds no rows of one account")
    column = table(name).c[reach.column]
    if reach.parent is None:
        return column == account_id
    parent = table(reach.parent)
    return column.in_(select(parent.c.id).where(belongs_to(reach.parent, account_id)))
