"""Removing our copies of appointments from a provider's calendar, a committed page at a time.

Used by the purge of an integration (all its events) and meant for the erasure of one person
(the events of their appointments only): `MappingScope` says which. Each page's remote deletions
are followed by one transaction that deletes the page's mapping rows and credits the counts to
the caller's receipt, so a process killed mid-page redoes at most that page, where the provider
answers "not found" for what is already gone.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.base import AuthExpired, Connector, ConnectorError, NotFound, WrongEtag
from gateway.config import Settings
from gateway.store.db import Store
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
