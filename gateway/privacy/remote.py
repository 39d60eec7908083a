"""Removing our copies of appointments from a provider's calendar, a committed page at a time.

Used by the purge of an integration (all its events) and by the erasure of a client (the copies
of their appointments, recorded when the erasure was accepted): `Copies` says which. Each page's
remote deletions are followed by one transaction that deletes the page's rows and credits the
counts to the caller's receipt, so a process killed mid-page redoes at most that page, where the
provider answers "not found" for what is already gone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import AuthExpired, Connector, ConnectorError, RemoteChanged, RemoteNotFound
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.privacy_models import ErasureCopy
from gateway.store.sync_models import SyncMapping
from gateway.store.types import utcnow
from gateway.sync.run import sync_window

log = logging.getLogger("calgate.privacy")

# Remote deletions per committed page: small enough that a crash redoes little, large enough
# that a 10,000-event calendar costs a hundred short transactions.
PAGE_SIZE = 100

# Adds a page's counts to the caller's receipt, inside the page's transaction.
Credit = Callable[[AsyncSession, dict[str, int]], Awaitable[None]]


@dataclass(frozen=True)
class Copies:
    """Which of our remote events to delete: the rows of `model` that match `where`. `model` has
    `id`, `href` and `etag` columns: SyncMapping (an integration's events, or some
    appointments' only) or ErasureCopy (those of an erased client's appointments)."""

    model: Any
    where: tuple[ColumnElement[bool], ...]


def mappings_of(integration_id: str, appointment_ids: Sequence[str] | None = None) -> Copies:
    """The integration's events, or only those of `appointment_ids`."""
    where = [SyncMapping.integration_id == integration_id]
    if appointment_ids is not None:
        where.append(SyncMapping.appointment_id.in_(list(appointment_ids)))
    return Copies(SyncMapping, tuple(where))


def erased_in(integration_id: str, erasure_id: str | None = None) -> Copies:
    """The copies of erased appointments still in the integration's calendar (of one erasure,
    or of every erasure)."""
    where = [ErasureCopy.integration_id == integration_id]
    if erasure_id is not None:
        where.append(ErasureCopy.erasure_id == erasure_id)
    return Copies(ErasureCopy, tuple(where))


async def delete_remote_copies(
    store: Store,
    settings: Settings,
    connector: Connector,
    calendar_id: str,
    scope: Copies,
    credit: Credit,
) -> None:
    """Delete the events of `scope` from `calendar_id`, a committed page at a time: each page's
    rows go, and `credit` records its counts, in one transaction after its deletions."""
    while True:
        async with store.transaction() as session:
            page = list(
                (
                    await session.execute(
                        select(scope.model.id, scope.model.href, scope.model.etag)
                        .where(*scope.where)
                        .order_by(scope.model.id)
                        .limit(PAGE_SIZE)
                    )
                ).all()
            )
        if not page:
            return
        counts = {"remote_events_deleted": 0, "remote_events_not_deleted": 0}
        done: list[Any] = []
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
            gone = await session.execute(delete(scope.model).where(scope.model.id.in_(done)))
            if scope.model is SyncMapping:
                counts["mappings"] = int(gone.rowcount)  # type: ignore[attr-defined]
            await credit(session, counts)
        if refused:
            log.warning("remote events not deleted: the provider refused the credentials")
            await give_up_remote(store, scope, credit)
            return


async def give_up_remote(store: Store, scope: Copies, credit: Credit) -> None:
    """No working connector: count the events of `scope` as left at the provider."""
    async with store.transaction() as session:
        left = await session.scalar(
            select(func.count()).select_from(scope.model).where(*scope.where)
        )
        gone = await session.execute(delete(scope.model).where(*scope.where))
        counts = {"remote_events_not_deleted": int(left or 0)}
        if scope.model is SyncMapping:
            counts["mappings"] = int(gone.rowcount)  # type: ignore[attr-defined]
        await credit(session, counts)


async def _delete_one(
    connector: Connector, calendar_id: str, href: str, etag: str, settings: Settings
) -> bool:
    try:
        await connector.delete(calendar_id, href, etag)
        return True
    except RemoteNotFound:
        return True  # already gone (or deleted by us just before a crash)
    except AuthExpired:
        raise
    except RemoteChanged:
        # Edited in the calendar since our last sync: ours all the same, delete what is there.
        try:
            item = await connector.get(calendar_id, href, sync_window(settings, utcnow()))
            await connector.delete(calendar_id, href, item.etag)
            return True
        except RemoteNotFound:
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
