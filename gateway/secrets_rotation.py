"""`calgate secrets rotate`: every stored secret re-encrypted under the current key.

Rows are taken in id order, `batch` at a time, each batch locked (FOR UPDATE on PostgreSQL, the
write lock on SQLite), re-encrypted and committed on its own: an interrupted run loses nothing
and the next run skips what is already under the current key. A secret no key opens is counted
as unreadable and left as it is (its integration already asks to reconnect).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import inspect, select

from gateway import secrets
from gateway.config import Settings
from gateway.errors import UserError
from gateway.store.db import Store
from gateway.store.privacy_models import StoredKey
from gateway.store.sync_models import Integration
from gateway.store.web_models import ClientShortLink
from gateway.store.webhook_models import WebhookEndpoint

log = logging.getLogger("calgate.secrets")

# Every encrypted column: (model, column). A feature storing a secret adds one line here.
ENCRYPTED: list[tuple[Any, str]] = [
    (Integration, "secret"),
    (WebhookEndpoint, "secret"),
    (WebhookEndpoint, "previous_secret"),
    (StoredKey, "secret"),
    (ClientShortLink, "token"),
]


@dataclass
class RotationReport:
    """What a run did: rows re-encrypted, already current, and unreadable with every key."""

    rotated: int = 0
    current: int = 0
    unreadable: int = 0
    by_table: dict[str, int] = field(default_factory=dict)


async def rotate(
    store: Store,
    settings: Settings,
    *,
    batch: int = 200,
    progress: Callable[[int], None] | None = None,
) -> RotationReport:
    """Re-encrypt every stored secret under the current key; see the module docstring."""
    report = RotationReport()
    for model, column_name in ENCRYPTED:
        column = getattr(model, column_name)
        key = inspect(model).primary_key[0]  # batches in primary-key order, whatever its name
        last: str | None = None
        while True:
            async with store.transaction() as session:
                query = select(model).order_by(key).limit(batch).with_for_update()
                if last is not None:
                    query = query.where(key > last)
                rows = list(await session.scalars(query))
                for row in rows:
                    token = getattr(row, column_name)
                    if not token or secrets.is_current(settings, token):
                        report.current += 1
                        continue
                    try:
                        setattr(row, column_name, secrets.rotate_token(settings, token))
                    except secrets.SecretUnreadable:
                        report.unreadable += 1
                        continue
                    report.rotated += 1
                    table = column.class_.__tablename__
                    report.by_table[table] = report.by_table.get(table, 0) + 1
            if progress is not None:
                progress(len(rows))
            if len(rows) < batch:
                break
            last = getattr(rows[-1], key.key)
    log.info(
        "secrets rotated",
        extra={
            "rotated": report.rotated,
            "current": report.current,
            "unreadable": report.unreadable,
        },
    )
    return report


async def count(store: Store) -> int:
    """How many rows hold an encrypted secret (the progress bar's total)."""
    from sqlalchemy import func

    total = 0
    async with store.transaction() as session:
        for model, _column in ENCRYPTED:
            total += int(await session.scalar(select(func.count()).select_from(model)) or 0)
    return total


def add_new_key(settings: Settings) -> None:
    """Put a new key at the top of the key file (the old ones stay below it, still decrypting).

    Only for the key file: with `secrets_key` set, put the new key there and the old one in
    `secrets_previous_keys` instead."""
    if settings.secrets_key.get_secret_value():
        raise UserError(
            "secrets.key is set: put the new key there and the old one in secrets.previous_keys, "
            "then run `calgate secrets rotate` without --new-key"
        )
    path = secrets.key_file(settings)
    secrets.encrypt(settings, "")  # creates the file when there is none yet
    old = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    secrets.write_key_file(path, [Fernet.generate_key(), *old])


async def drop_old_keys(store: Store, settings: Settings) -> int:
    """Keep only the current key in the key file, once no readable secret needs an old one.
    Returns how many old keys were removed."""
    if settings.secrets_key.get_secret_value():
        raise UserError(
            "secrets.key is set: remove secrets.previous_keys from the settings instead"
        )
    async with store.transaction() as session:
        for model, column_name in ENCRYPTED:
            for token in await session.scalars(select(getattr(model, column_name))):
                if token and not secrets.is_current(settings, token):
                    try:
                        secrets.decrypt(settings, token)
                    except secrets.SecretUnreadable:
                        continue  # no key opens it: dropping keys changes nothing
                    raise UserError("some secrets are still under an old key: run rotate first")
    path = secrets.key_file(settings)
    keys = [line.strip() for line in path.read_bytes().splitlines() if line.strip()]
    secrets.write_key_file(path, keys[:1])
    return len(keys) - 1
