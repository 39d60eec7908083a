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
   receipt ``done``; with the last purge of a practitioner being deleted, the practitioner too.

The remote phase works on any set of mappings (`MappingScope`), so erasing one person's
appointments from every connected calendar reuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import AuthExpired, Connector, ConnectorError, NotFound, WrongEtag
from gateway import secrets
from gateway.config import Settings
from gateway.domain import people
from gateway.domain.scoping import get_owned
from gateway.errors import NotFound as MissingRow
from gateway.store.db import Store
from gateway.store.models import Account, Job, User
from gateway.store.sync_models import (
    BusyBlock,
    Integration,
    PurgeReceipt,
    SyncCalendar,
    SyncLogEntry,
    SyncMapping,
)
from gateway.store.types import new_id, utcnow
from gateway.sync import integrations as service
from gateway.sync.run import PURGING, connector_for, sync_window

log = logging.getLogger("calgate.privacy")

JOB_KIND = "privacy.purge"
PENDING = "pending"
DONE = "done"
# Receipt steps: remote events (and revoke) first, then the local rows.
_REMOTE = "remote"
_LOCAL = "local"
# Remote deletions per committed page: small enough that a crash redoes little, large enough
# that a 10,000-event calendar costs a hundred short transactions.
PAGE_SIZE = 100
_LEASE_WAIT = timedelta(seconds=1)


@dataclass(frozen=True)
class MappingScope:
    """Which of an integration's events to remove: all of them, or only those of some
    appointments (the erasure of one person)."""

    integration_id: str
    appointment_ids: Sequence[str] | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """The filter on SyncMapping rows."""
        clauses = [SyncMapping.integration_id == self.integration_id]
        if self.appointment_ids is not None:
            clauses.append(SyncMapping.appointment_id.in_(list(self.appointment_ids)))
        return clauses


# --- accepting ------------------------------------------------------------------------------


async def accept_disconnect(
    session: AsyncSession,
    account: Account,
    integration_id: str,
    *,
    remove_events: bool = True,
    then_delete_user: bool = False,
) -> PurgeReceipt:
    """Accept the purge of an integration: mark it purging, write a pending receipt and queue
    the job, in the caller's transaction. Asking again while it runs returns the same receipt."""
    integration = await service.get_integration(session, account, integration_id)
    existing = await session.get(PurgeReceipt, integration.id)
    if existing is not None and integration.status == PURGING:
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
        requested_at=now,
        purged_at=None,
    )
    session.add(receipt)
    session.add(
        Job(
            id=new_id("job"),
            kind=JOB_KIND,
            key=f"{JOB_KIND}:{integration.id}",
            payload={"integration_id": integration.id, "then_delete_user": then_delete_user},
            due_at=now,
            attempts=0,
            created_at=now,
        )
    )
    await session.flush()
    log.info("purge accepted", extra={"integration_id": integration.id})
    return receipt


async def accept_user_deletion(
    session: AsyncSession, account: Account, user_id: str
) -> list[PurgeReceipt]:
    """Delete a practitioner: at once when nothing is connected, else after the purge of each
    of their integrations (the last one deletes the practitioner, in its local transaction).
    Returns the pending receipts (empty when the practitioner is already deleted)."""
    await get_owned(session, User, account, user_id)
    ids = list(
        await session.scalars(
            select(Integration.id)
            .where(Integration.account_id == account.id, Integration.user_id == user_id)
            .order_by(Integration.id)
        )
    )
    if not ids:
        await people.delete_person(session, account, User, user_id)
        return []
    return [await accept_disconnect(session, account, i, then_delete_user=True) for i in ids]


# --- the job ------------------------------------------------------------------------------


async def run(store: Store, settings: Settings, payload: dict[str, Any]) -> datetime | None:
    """One purge job (see the module docstring); None when done, or when to look again."""
    integration_id = str(payload["integration_id"])
    async with store.transaction() as session:
        receipt = await session.get(PurgeReceipt, integration_id)
        integration = await session.get(Integration, integration_id)
        if receipt is None or receipt.state == DONE or integration is None:
            return None
        now = utcnow()
        if integration.lease_expires_at is not None and integration.lease_expires_at > now:
            return now + _LEASE_WAIT  # a sync run in flight: let it commit what it pushed
        step, remove = receipt.step, receipt.remote_removed
    if step == _REMOTE:
        await _remote_phase(store, settings, integration_id, remove)
    await _local_phase(store, integration_id, bool(payload.get("then_delete_user")))
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
            connector: Connector | None = connector_for(settings, integration)
        except (secrets.SecretUnreadable, ConnectorError):
            connector = None
    scope = MappingScope(integration_id)
    credit = _credit_receipt(integration_id)
    if connector is None:
        if remove:
            await give_up_remote(store, scope, credit)
        await credit_step(store, integration_id, {})
        return
    try:
        if remove and write is not None:
            await delete_remote_copies(store, settings, connector, write, scope, credit)
        counts = await _stop_and_revoke(store, integration_id, connector)
    finally:
        await connector.close()
    await credit_step(store, integration_id, counts)


async def _stop_and_revoke(
    store: Store, integration_id: str, connector: Connector
) -> dict[str, int]:
    async with store.transaction() as session:
        integration = await session.get(Integration, integration_id)
        assert integration is not None
        await _before_purge(session, integration, connector)
    try:
        await connector.revoke()
    except ConnectorError:
        return {"revoke_failed": 1}
    return {}


async def _before_purge(
    session: AsyncSession, integration: Integration, connector: Connector
) -> None:
    """The provider's own steps before a purge (stop push channels); failures handled inside."""
    for step in service.BEFORE_PURGE:
        await step(session, integration, connector)


Credit = Any  # async (session, counts) -> None: adds a page's counts to the right receipt


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


async def delete_remote_copies(
    store: Store,
    settings: Settings,
    connector: Connector,
    calendar_id: str,
    scope: MappingScope,
    credit: Credit,
) -> None:
    """Delete the events of `scope` from `calendar_id`, a committed page at a time: each page's
    mapping rows go, and `credit` records its counts, in one transaction after its deletions."""
    while True:
        async with store.transaction() as session:
            page = list(
                (
                    await session.execute(
                        select(SyncMapping.id, SyncMapping.href, SyncMapping.etag)
                        .where(*scope.where())
                        .order_by(SyncMapping.id)
                        .limit(PAGE_SIZE)
                    )
                ).all()
            )
        if not page:
            return
        counts = {"remote_events_deleted": 0, "remote_events_not_deleted": 0}
        done: list[str] = []
        refused = False
        for row_id, href, etag in page:
            try:
                deleted = await _delete_one(connector, calendar_id, href, etag, settings)
            except AuthExpired:
                refused = True  # every other one would be refused too
                break
            counts["remote_events_deleted" if deleted else "remote_events_not_deleted"] += 1
            done.append(row_id)
        async with store.transaction() as session:
            gone = await session.execute(delete(SyncMapping).where(SyncMapping.id.in_(done)))
            counts["mappings"] = int(gone.rowcount)  # type: ignore[attr-defined]
            await credit(session, counts)
        if refused:
            log.warning("remote events not deleted: the provider refused the credentials")
            await give_up_remote(store, scope, credit)
            return


async def give_up_remote(store: Store, scope: MappingScope, credit: Credit) -> None:
    """No working connector: count the events of `scope` as left at the provider."""
    async with store.transaction() as session:
        left = await session.scalar(
            select(func.count()).select_from(SyncMapping).where(*scope.where())
        )
        gone = await session.execute(delete(SyncMapping).where(*scope.where()))
        await credit(
            session,
            {
                "remote_events_not_deleted": int(left or 0),
                "mappings": int(gone.rowcount),  # type: ignore[attr-defined]
            },
        )


async def _delete_one(
    connector: Connector, calendar_id: str, href: str, etag: str, settings: Settings
) -> bool:
    try:
        await connector.delete(calendar_id, href, etag)
        return True
    except NotFound:
        return True  # already gone (or deleted by us just before a crash)
    except AuthExpired:
        raise
    except WrongEtag:
        # Edited in the calendar since our last sync: ours all the same, delete what is there.
        try:
            item = await connector.get(calendar_id, href, sync_window(settings, utcnow()))
            await connector.delete(calendar_id, href, item.etag)
            return True
        except NotFound:
            return True
        except AuthExpired:
            raise
        except ConnectorError as exc:
            return _not_deleted(exc)
    except ConnectorError as exc:
        return _not_deleted(exc)


def _not_deleted(exc: ConnectorError) -> bool:
    # The error's type only: a provider's message may quote the event.
    log.warning("remote event not deleted: %s", type(exc).__name__)
    return False


async def _local_phase(store: Store, integration_id: str, then_delete_user: bool) -> None:
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
        for name, model in (
            ("busy_blocks", BusyBlock),
            ("mappings", SyncMapping),
            ("log_entries", SyncLogEntry),
            ("calendars", SyncCalendar),
        ):
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
        if then_delete_user:
            await _delete_user_when_last(session, receipt)
    log.info("integration purged", extra={"integration_id": integration_id})


async def _delete_user_when_last(session: AsyncSession, receipt: PurgeReceipt) -> None:
    waiting = await session.scalar(
        select(func.count())
        .select_from(PurgeReceipt)
        .where(PurgeReceipt.user_id == receipt.user_id, PurgeReceipt.state != DONE)
    )
    account = await session.get(Account, receipt.account_id)
    if waiting or account is None or await session.get(User, receipt.user_id) is None:
        return
    await people.delete_person(session, account, User, receipt.user_id)


# --- reading ----------------------------------------------------------------------------


def remote_left(counts: dict[str, int]) -> str | None:
    """In words, what a purge could not undo at the provider (None when everything was done)."""
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
    models: tuple[tuple[str, Any], ...] = (
        ("integrations", Integration),
        ("calendars", SyncCalendar),
        ("mappings", SyncMapping),
        ("busy_blocks", BusyBlock),
        ("log_entries", SyncLogEntry),
    )
    counts = {}
    for name, model in models:
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
