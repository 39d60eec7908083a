"""Reading what a purge did: its receipt, what it left at the provider in words, rows left, and
the SQLite checkpoint that makes deleted bytes leave the write-ahead log."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.errors import NotFound as MissingRow
from gateway.store.db import Store
from gateway.store.models import Account
from gateway.store.sync_models import (
    BusyBlock,
    Integration,
    PurgeReceipt,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)

log = logging.getLogger("calgate.privacy")

# The rows an integration owns besides its own, by the name the receipt counts them under,
# in the order a purge deletes them.
OWNED_ROWS: tuple[tuple[str, Any], ...] = (
    ("busy_blocks", BusyBlock),
    ("mappings", SyncMapping),
    ("log_entries", SyncLogEntry),
    ("calendars", SyncCalendar),
)


def remote_left(counts: dict[str, int], consent_help: str | None = None) -> str | None:
    """In words, what a purge could not undo at the provider (None when everything was done).

    `consent_help` is the provider's link for withdrawing the app's consent, when it offers no
    revoke (the provider's `consent_help`): the grant is dropped here, the consent stays there.
    """
    parts = []
    if n := counts.get("remote_events_not_deleted", 0):
        parts.append(
            f"{n} event{'s' if n != 1 else ''} added by calgate could not be removed from the "
            "calendar (the server could not be reached or refused): delete them there by hand"
        )
    if counts.get("revoke_failed"):
        parts.append(
            "the access grant could not be revoked at the provider: "
            "remove calgate's access in the calendar account's security settings"
        )
    elif consent_help:
        parts.append(
            "the provider offers no way for calgate to give up its access (calgate deleted its "
            "copy of the grant): remove calgate's consent in the calendar account at "
            f"{consent_help}"
        )
    return "; ".join(parts) + "." if parts else None


async def purge_receipt(
    session: AsyncSession, account: Account, integration_id: str
) -> PurgeReceipt:
    """The receipt of a disconnect, pending or done (404 while connected, or for others)."""
    receipt = await session.scalar(
        select(PurgeReceipt).where(
            PurgeReceipt.integration_id == integration_id, PurgeReceipt.account_id == account.id
        )
    )
    if receipt is None:
        raise MissingRow("no purge receipt for this integration")
    return receipt


async def count_rows(session: AsyncSession, integration_id: str) -> dict[str, int]:
    """Rows still held for an integration id (the purge tests expect zeros)."""
    counts = {}
    for name, model in (("integrations", Integration), *OWNED_ROWS):
        column = model.id if model is Integration else model.integration_id
        counts[name] = int(
            await session.scalar(
                select(func.count()).select_from(model).where(column == integration_id)
            )
            or 0
        )
    return counts


async def checkpoint(store: Store) -> None:
    """Fold the SQLite write-ahead log into the database file and empty it, so deleted bytes
    (already overwritten there by secure_delete) do not linger in the WAL file."""
    if store.dialect != "sqlite":
        return
    try:
        async with store.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            # On the driver's connection: the pool's "begin" would open a transaction, inside
            # which SQLite refuses to checkpoint.
            driver: Any = raw.driver_connection
            await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception as exc:  # best effort: the next automatic checkpoint folds it anyway
        log.warning("checkpoint failed: %s", type(exc).__name__)
