"""The end of an account: the durable job that deletes it once its grace period is over.

The job (kind ``account.delete``, one per account) is claimed with a lease like any other
(gateway/worker.py), so a crash hands it to the next process. In order it: disconnects every
integration (our events removed from the calendars, grants revoked: the same purge as
``DELETE /v1/integrations/{id}``), revokes every key and feed, deletes every row of the account
(children first, table by table, from gateway/privacy/datamap.py), and leaves an
`AccountDeletionReceipt`: the id, when, and counts. Each step is its own transaction and can be
run again: a job taken over half-way carries on where the last one stopped.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from gateway.config import Settings
from gateway.domain.account_states import DELETING
from gateway.privacy import datamap
from gateway.store.account_models import AccountDeletionReceipt
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.store.models import Account, ApiKey
from gateway.store.sync_models import Integration
from gateway.store.types import utcnow
from gateway.sync import integrations

log = logging.getLogger("calgate.privacy")


async def _disconnect_all(store: Store, settings: Settings, account_id: str) -> dict[str, int]:
    counts = {"integrations": 0, "remote_events_deleted": 0, "remote_events_not_deleted": 0}
    async with store.transaction() as session:
        ids = list(
            await session.scalars(
                select(Integration.id).where(Integration.account_id == account_id)
            )
        )
    for integration_id in ids:
        async with store.transaction() as session:
            account = await session.get(Account, account_id)
            assert account is not None
            receipt = await integrations.disconnect(session, settings, account, integration_id)
        counts["integrations"] += 1
        for name in ("remote_events_deleted", "remote_events_not_deleted"):
            counts[name] += int(receipt.counts.get(name, 0))
    return counts


async def delete_account(
    store: Store, settings: Settings, account_id: str, now: datetime | None = None
) -> AccountDeletionReceipt | None:
    """Delete the account if it is scheduled and due; None when it is not (resumed, not yet
    due, or already deleted)."""
    now = now or utcnow()
    async with store.transaction() as session:
        account = await session.get(Account, account_id)
        if account is None or account.status != DELETING:
            return None
        if account.deletion_due_at is not None and account.deletion_due_at > now:
            return None
        requested = account.status_changed_at
        # Keys and feeds stop working at once, before anything slow happens.
        await session.execute(
            update(ApiKey)
            .where(ApiKey.account_id == account_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        feeds = await session.execute(delete(Feed).where(Feed.account_id == account_id))
    counts: dict[str, Any] = {"feeds_revoked": int(feeds.rowcount)}  # type: ignore[attr-defined]
    counts.update(await _disconnect_all(store, settings, account_id))
    async with store.transaction() as session:
        rows: dict[str, int] = {}
        # Children first: a parent's rows are still there to reach its children through.
        for name in reversed(datamap.account_tables()):
            result = await session.execute(
                delete(datamap.table(name)).where(datamap.belongs_to(name, account_id))
            )
            if deleted := int(result.rowcount):  # type: ignore[attr-defined]
                rows[name] = deleted
        counts["rows"] = rows
        receipt = AccountDeletionReceipt(
            deleted_account_id=account_id,
            requested_at=requested,
            deleted_at=utcnow(),
            counts=counts,
        )
        session.add(receipt)
    await integrations.checkpoint(store)
    log.info("account deleted", extra={"account_id": account_id, "counts": counts})
    return receipt


async def receipt_of(store: Store, account_id: str) -> AccountDeletionReceipt | None:
    """The receipt of a deleted account, if there is one."""
    async with store.transaction() as session:
        return await session.get(AccountDeletionReceipt, account_id)
