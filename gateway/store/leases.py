"""The work-claim primitive every tick uses.

A unit of work is a row with `due_at`, `lease_owner` and `lease_expires_at` (LeaseMixin). A
claimer takes up to N due rows whose lease is free or expired and stamps its own lease on them,
in one short transaction; the work itself runs outside any transaction. Completion, renewal and
release name the owner, so a claimer whose lease expired (and whose row was re-claimed by
another) cannot overwrite the newer claim: its calls simply affect no row.

PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` lets concurrent claimers pass each other.
SQLite: every transaction begins IMMEDIATE (gateway/store/db.py), so claims are serialised by the
single writer lock, which gives the same guarantee.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import ColumnElement, Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from gateway import metrics
from gateway.store.db import Store
from gateway.store.models import LeaseMixin
from gateway.store.types import utcnow

L = TypeVar("L", bound=LeaseMixin)
_Column = ColumnElement[Any] | QueryableAttribute[Any]


def _free_or_expired(model: type[LeaseMixin], now: datetime) -> ColumnElement[bool]:
    return or_(model.lease_expires_at.is_(None), model.lease_expires_at <= now)


@overload
async def claim(
    session: AsyncSession,
    model: type[L],
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
    columns: None = None,
) -> list[L]: ...


@overload
async def claim(
    session: AsyncSession,
    model: type[L],
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
    columns: Sequence[_Column],
) -> list[Row[Any]]: ...


async def claim(
    session: AsyncSession,
    model: type[L],
    *,
    owner: str,
    limit: int,
    lease: timedelta,
    now: datetime,
    where: Sequence[ColumnElement[bool]] = (),
    columns: Sequence[_Column] | None = None,
) -> list[L] | list[Row[Any]]:
    """Claim up to `limit` due rows of `model` for `owner` until `now + lease`.

    By default the rows come back as ORM objects (their lease stamped through the session).
    With `columns`, only those columns are read, as plain rows in due order, and the lease is
    stamped by one Core UPDATE: far cheaper for a caller that claims large batches and does
    not need the objects. The row selection (and SKIP LOCKED) is the same either way.

    The caller's transaction must commit for the claim to take effect; keep it short.
    """
    due = (model.due_at <= now, _free_or_expired(model, now), *where)
    if columns is not None:
        pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
        found = list(
            (
                await session.execute(
                    select(*columns)
                    .add_columns(pk.label("_lease_pk"))
                    .where(*due)
                    .order_by(model.due_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
        )
        if found:
            # The rows are locked by this transaction (FOR UPDATE on PostgreSQL, the write
            # lock on SQLite), so stamping them by id cannot take another claimer's rows.
            await session.execute(
                update(model)
                .where(pk.in_([r._lease_pk for r in found]))
                .values(lease_owner=owner, lease_expires_at=now + lease)
                .execution_options(synchronize_session=False)
            )
        metrics.lease_event(model, "claimed", len(found))
        return found
    query = select(model).where(*due).order_by(model.due_at).limit(limit)
    rows = list((await session.scalars(query.with_for_update(skip_locked=True))).all())
    for row in rows:
        row.lease_owner = owner
        row.lease_expires_at = now + lease
    await session.flush()
    metrics.lease_event(model, "claimed", len(rows))
    return rows


def _owned(model: type[LeaseMixin], ids: Sequence[Any], owner: str) -> list[ColumnElement[bool]]:
    pk = model.__mapper__.primary_key[0]  # type: ignore[attr-defined]
    return [pk.in_(list(ids)), model.lease_owner == owner]


async def renew(
    session: AsyncSession,
    model: type[LeaseMixin],
    ids: Sequence[Any],
    *,
    owner: str,
    lease: timedelta,
    now: datetime,
) -> int:
    """Extend `owner`'s unexpired leases on `ids`; returns how many were still held."""
    result = await session.execute(
        update(model)
        .where(*_owned(model, ids, owner), model.lease_expires_at > now)
        .values(lease_expires_at=now + lease)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def release(
    session: AsyncSession,
    model: type[LeaseMixin],
    ids: Sequence[Any],
    *,
    owner: str,
    due_at: datetime | None = None,
) -> int:
    """Give `owner`'s leases on `ids` back (optionally moving them to `due_at`); returns count."""
    values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
    if due_at is not None:
        values["due_at"] = due_at
    result = await session.execute(
        update(model)
        .where(*_owned(model, ids, owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def keep_renewed(
    store: Store,
    model: type[LeaseMixin],
    ids: Sequence[Any],
    *,
    owner: str,
    lease: timedelta,
    log: logging.Logger,
    extra: dict[str, Any],
) -> None:
    """While work runs: renew `owner`'s leases on `ids` every third of a lease, until cancelled
    or the lease is lost (then return). A renewal that fails (a dropped connection, a failover,
    a busy database) is logged and tried again at the next beat: the lease still runs, and
    giving up would let another process take the work over while it runs."""
    while True:
        await asyncio.sleep(lease.total_seconds() / 3)
        try:
            async with store.transaction() as session:
                held = await renew(session, model, ids, owner=owner, lease=lease, now=utcnow())
        except Exception as exc:
            log.warning("lease renewal failed: %s", type(exc).__name__, extra=extra)
            continue
        metrics.lease_event(model, "renewed" if held else "lost")
        if not held:
            log.warning("lease lost", extra=extra)
            return


_SETTLE_SECONDS = 5.0  # after `abort`, for tasks to hand their leases back themselves


async def wind_down(
    claiming: asyncio.Lock,
    running: set[asyncio.Task[Any]],
    grace: float,
    abort: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A claimer's shutdown (after it set its own "stopping" flag, which its claim checks under
    `claiming`): wait for a claim in progress, let the `running` tasks finish within `grace`
    seconds, then cancel the rest and wait for them (a cancelled task releases its leases, so
    another process takes the work at once). `abort`, when given, runs once the grace is out and
    before any task is cancelled: it stops the work the tasks wait on (posts in flight), so
    that no lease is released while its work may still be going on."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout_at(deadline), claiming:
            pass  # a claim in progress hands its rows back
    tasks = list(running)
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline - loop.time()))
    if pending and abort is not None:
        await abort()
        # The tasks now end on their own, handing their leases back: a cancel would cut that
        # short. Those that do not within a few seconds are cancelled.
        _done, pending = await asyncio.wait(pending, timeout=_SETTLE_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


Item = TypeVar("Item")


class ClaimLoop(abc.ABC, Generic[Item]):
    """The skeleton every ticking claimer shares: claim a batch, run each item concurrently,
    and on stop hand back what was claimed too late and wind the rest down within a grace.

    A subclass names its `model`, claims in `_claim` (returning light items, not ORM objects that
    outlive the transaction), says which row each item is (`_item_id`), and works in `_run`.
    With `claim_batch` set (the most `_claim` takes at once), a tick pipelines: it claims the
    next batch while the previous one still runs, until a batch comes back short.
    """

    model: type[LeaseMixin]
    claim_batch: int | None = None  # None: one batch per tick

    def __init__(self, store: Store, lease: timedelta, owner_suffix: str = "") -> None:
        self.store = store
        self.lease = lease
        host = f"{socket.gethostname()}:{os.getpid()}:{random.getrandbits(32):08x}"
        self.owner = host + owner_suffix
        self._stopping = False
        self._running: set[asyncio.Task[None]] = set()
        self._claiming = asyncio.Lock()  # held while a tick claims; stop() waits for it

    @abc.abstractmethod
    async def _claim(self, session: AsyncSession) -> list[Item]:
        """Claim a batch for `self.owner` (with `claim`) inside the given transaction."""

    @abc.abstractmethod
    def _item_id(self, item: Item) -> Any:
        """The primary key of the row behind `item`."""

    @abc.abstractmethod
    async def _run(self, item: Item) -> None:
        """Do the work of one claimed item, then complete or release its lease."""

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Held around each claim transaction (a subclass writing to SQLite from several tasks
        returns its lock, so they take turns instead of meeting in SQLite's busy handler)."""
        return contextlib.nullcontext()

    def _may_claim(self) -> bool:
        """False when there is nothing this process could do with a claim (no channel, say)."""
        return True

    async def tick(self) -> int:
        """Claim and run until nothing is due; returns how many items were started.

        Without `claim_batch`, one batch, waited for. With it, the next batch is claimed while
        the previous one is still running, with at most one batch waiting behind the running
        ones, until a batch comes back short; then the tick waits for what it started.
        """
        total = 0
        while True:
            tasks = await self.start_batch()
            total += len(tasks)
            batch = self.claim_batch
            if batch is None or len(tasks) < batch:
                break
            while len(self._running) > batch:
                await asyncio.wait(list(self._running), return_when=asyncio.FIRST_COMPLETED)
        if self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)
        return total

    async def start_batch(self) -> list[asyncio.Task[None]]:
        """Claim a batch and start running it, without waiting for it (a claimer whose items
        take unequal times keeps claiming while the slow ones run); returns the tasks."""
        async with self._claiming:
            if self._stopping or not self._may_claim():
                return []
            async with self._turn(), self.store.transaction() as session:
                items = await self._claim(session)
            return await self._start(items)

    async def _start(self, items: list[Item]) -> list[asyncio.Task[None]]:
        """Start running `items`, claimed by a transaction that has committed (the caller
        holds `_claiming`); returns the tasks."""
        if self._stopping and items:
            # stop() came while we were claiming: hand them back instead of starting them.
            async with self._turn(), self.store.transaction() as session:
                ids = [self._item_id(i) for i in items]
                await release(session, self.model, ids, owner=self.owner)
            return []
        tasks = []
        for item in items:
            task = asyncio.create_task(self._run(item))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            tasks.append(task)
            # Let the items already started go on before starting the next one.
            await asyncio.sleep(0)
        return tasks

    async def stop(self, grace: float) -> None:
        """Stop claiming; let running items finish within `grace` seconds, then cancel them
        (each `_run` releases its lease on cancellation, so another process takes it at once)."""
        self._stopping = True
        await wind_down(self._claiming, self._running, grace)
