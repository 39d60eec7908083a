"""Purge: disconnecting an integration (and deleting a practitioner) as a durable two-phase job.

Accepting a purge is one short transaction: the integration is marked ``purging`` (no sync
claims it from then on), a receipt in state ``pending`` is written, and a job is queued (both
commit with the request, or neither does). The job (gateway/worker.py, claimed with a lease):

1. waits until no sync holds the integration's lease (a run in flight commits its mappings
   first, so no event it pushed is forgotten);
2. remote phase: deletes our events at the provider page by page. Each page's mapping rows
   are deleted, and its counts added to the receipt, in one transaction after the page's remote
   deletions: a process killed mid-page redoes at most that page, where the provider answers
   "not found" for what is already gone (counted as deleted, never deleted twice);
3. stops push channels and revokes the grant (once: the step is committed right after);
4. local phase: deletes every row of the integration in one transaction and marks the
   receipt ``done``; with the last purge of a practitioner being deleted, the practitioner too
   (the practitioner's one erasure receipt sums them all: gateway/privacy/user_erasure.py).

The remote phase (gateway/privacy/remote.py) works on any set of remote copies (`Copies`); the
erasure of a client (gateway/privacy/erasure.py) reuses it, and a purge first deletes the copies
of erased clients' appointments still waiting in that calendar; what a purge did is
read through gateway/privacy/receipts.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import Connector, ConnectorError
from gateway import secrets
from gateway.config import Settings
from gateway.domain.scoping import get_owned
from gateway.privacy import erasure, remote, user_erasure
from gateway.privacy.receipts import OWNED_ROWS, checkpoint
from gateway.privacy.remote import Credit
from gateway.store.db import Store
from gateway.store.models import Account, Job, User
from gateway.store.privacy_models import Erasure
from gateway.store.sync_models import Integration, PurgeReceipt, SyncCalendar
from gateway.store.types import utcnow
from gateway.sync import integrations as service
from gateway.sync import providers, topics, watch
from gateway.sync.run import PURGING

log = logging.getLogger("calgate.privacy")

JOB_KIND = "privacy.purge"
PENDING = "pending"
DONE = "done"
# Receipt steps: remote events (and revoke) first, then the local rows.
_REMOTE = "remote"
_LOCAL = "local"
_LEASE_WAIT = timedelta(seconds=1)


# --- accepting ------------------------------------------------------------------------------


async def accept_disconnect(
    session: AsyncSession,
    account: Account,
    integration_id: str,
    *,
    remove_events: bool = True,
    then_delete_user: bool = False,
    queue: bool = True,
) -> PurgeReceipt:
    """Accept the purge of an integration: mark it purging, write a pending receipt and queue
    the job, in the caller's transaction. Asking again while it runs returns the same receipt."""
    integration = await service.get_integration(session, account, integration_id)
    existing = await session.get(PurgeReceipt, integration.id)
    if existing is not None:  # accepted before: the job is on it
        existing.delete_user = existing.delete_user or then_delete_user
        return existing
    integration.status = PURGING
    integration.dirty = False
    now = utcnow()
    receipt = PurgeReceipt(
        integration_id=integration.id,
        account_id=account.id,
        user_id=integration.user_id,
        provider=integration.provider,
        counts={},
        remote_removed=remove_events,
        state=PENDING,
        step=_REMOTE,
        delete_user=then_delete_user,
        requested_at=now,
        purged_at=None,
    )
    session.add(receipt)
    if queue:  # else the caller runs it to its end (`run`), as the account deletion does
        key = f"{JOB_KIND}:{integration.id}"
        session.add(Job.due_now(JOB_KIND, key, {"integration_id": integration.id}))
    await session.flush()
    log.info("purge accepted", extra={"integration_id": integration.id})
    return receipt


async def accept_user_deletion(session: AsyncSession, account: Account, user_id: str) -> Erasure:
    """Delete a practitioner: at once when nothing is connected, else after the purge of each
    of their integrations (the last one deletes the practitioner, in its local transaction).
    Returns their one erasure receipt (gateway/privacy/user_erasure.py)."""
    await get_owned(session, User, account, user_id)
    ids = list(
        await session.scalars(
            select(Integration.id)
            .where(Integration.account_id == account.id, Integration.user_id == user_id)
            .order_by(Integration.id)
        )
    )
    receipt = await user_erasure.open_receipt(session, account, user_id, len(ids))
    if not ids:
        await user_erasure.delete_user(session, account, user_id)
        return receipt
    for integration_id in ids:
        await accept_disconnect(session, account, integration_id, then_delete_user=True)
    return receipt


# --- the job ------------------------------------------------------------------------------


async def run(store: Store, settings: Settings, payload: dict[str, Any]) -> datetime | None:
    """One purge job (see the module docstring); None when done, or when to look again."""
    integration_id = str(payload["integration_id"])
    async with store.transaction() as session:
        receipt = await session.get(PurgeReceipt, integration_id)
        integration = await session.get(Integration, integration_id)
        if receipt is None or receipt.state == DONE:
            return None
        if integration is None:
            # Gone with its practitioner or account by another way: nothing left to do here.
            receipt.state = DONE
            receipt.purged_at = utcnow()
            return None
        now = utcnow()
        if integration.lease_expires_at is not None and integration.lease_expires_at > now:
            return now + _LEASE_WAIT  # a sync run in flight: let it commit what it pushed
        step, remove = receipt.step, receipt.remote_removed
    if step == _REMOTE:
        await _remote_phase(store, settings, integration_id, remove)
    await _local_phase(store, integration_id)
    await checkpoint(store)
    return None


async def _remote_phase(
    store: Store, settings: Settings, integration_id: str, remove: bool
) -> None:
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None
        write = await session.scalar(
            select(SyncCalendar.remote_id).where(
                SyncCalendar.integration_id == integration_id, SyncCalendar.write
            )
        )
        try:
            connector: Connector | None = providers.connector_for(store, settings, integration)
        except (secrets.SecretUnreadable, ConnectorError):
            connector = None
    scope = remote.mappings_of(integration_id)
    credit = _credit_receipt(integration_id)
    # Copies of erased clients' appointments go whatever `remove` says (their erasure asked).
    await erasure.delete_erased_copies(store, settings, connector, write, integration_id)
    if connector is None:
        if remove:
            await remote.give_up_remote(store, scope, credit)
        await credit_step(store, integration_id, {})
        return
    try:
        if remove and write is not None:
            await remote.delete_remote_copies(store, settings, connector, write, scope, credit)
        counts = await _stop_and_revoke(store, settings, integration_id, connector)
    finally:
        await connector.close()
    await credit_step(store, integration_id, counts)


async def _stop_and_revoke(
    store: Store, settings: Settings, integration_id: str, connector: Connector
) -> dict[str, int]:
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None
        await _before_purge(store, settings, session, integration, connector)
    try:
        await connector.revoke()
    except ConnectorError:
        return {"revoke_failed": 1}
    return {}


async def _before_purge(
    store: Store,
    settings: Settings,
    session: AsyncSession,
    integration: Integration,
    connector: Connector,
) -> None:
    """Stop the push channels of a provider that declares them; failures handled inside."""
    provider = providers.registry(store, settings).get(integration.provider)
    if provider.capabilities.watch:
        await watch.stop_all(session, integration, connector)


def _credit_receipt(integration_id: str) -> Credit:
    async def credit(session: AsyncSession, counts: dict[str, int]) -> None:
        receipt = await session.get(PurgeReceipt, integration_id)
        if receipt is not None:
            receipt.counts = _add(receipt.counts, counts)

    return credit


async def credit_step(store: Store, integration_id: str, counts: dict[str, int]) -> None:
    """Record the end of the remote phase (and its last counts) on the receipt."""
    async with store.transaction() as session:
        receipt = await session.get(PurgeReceipt, integration_id)
        assert receipt is not None
        receipt.counts = _add(receipt.counts, counts)
        receipt.step = _LOCAL


def _add(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    out = {"remote_events_deleted": 0, "remote_events_not_deleted": 0, **counts}
    for key, n in more.items():
        out[key] = out.get(key, 0) + n
    return out


async def _local_phase(store: Store, integration_id: str) -> None:
    """Every local row of the integration, in one transaction; the receipt marked done."""
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        receipt = await session.get(PurgeReceipt, integration_id)
        assert integration is not None
        assert receipt is not None
        counts: dict[str, int] = {}
        cursors = await session.scalar(
            select(func.count())
            .select_from(SyncCalendar)
            .where(SyncCalendar.integration_id == integration_id, SyncCalendar.cursor.is_not(None))
        )
        for name, model in OWNED_ROWS:
            result = await session.execute(
                delete(model).where(model.integration_id == integration_id)
            )
            counts[name] = int(result.rowcount)  # type: ignore[attr-defined]
        counts["cursors"] = int(cursors or 0)
        counts["credentials"] = 1
        await session.delete(integration)
        receipt.counts = _add(receipt.counts, counts)
        receipt.state = DONE
        receipt.purged_at = utcnow()
        await session.flush()
        await topics.purged(session, receipt)
        if receipt.delete_user:
            await user_erasure.credit_purge(session, receipt)
            await _delete_user_when_last(session, receipt)
    log.info("integration purged", extra={"integration_id": integration_id})


async def _delete_user_when_last(session: AsyncSession, receipt: PurgeReceipt) -> None:
    # The practitioner's row is locked first: two of their purges finishing at once then take
    # turns, and the second sees the first one done (PostgreSQL; SQLite has one writer anyway).
    user = await session.get(User, receipt.user_id, with_for_update=True)
    account = await session.get(Account, receipt.account_id)
    if user is None or account is None:
        return
    waiting = await session.scalar(
        select(func.count())
        .select_from(PurgeReceipt)
        .where(PurgeReceipt.user_id == receipt.user_id, PurgeReceipt.state != DONE)
    )
    if not waiting:
        await user_erasure.delete_user(session, account, receipt.user_id)
