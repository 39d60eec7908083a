"""Background jobs: claimed from the database with leases, run, then completed or retried.

A job handler is an async function ``(JobContext) -> datetime | None``: the next time the job is
due (a recurring job), or None when it is done (the row is deleted). A handler that raises is
retried with exponential backoff until `scheduler_max_attempts`, then kept as failed. While a
handler runs its lease is renewed, so a long job is not taken over; if the process dies, the
lease expires and another process (or this one, restarted) takes the job again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.config import Settings
from gateway.domain import account_states
from gateway.privacy import erasure, purge, retention
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.models import Job
from gateway.store.types import utcnow
from gateway.sync import watch

log = logging.getLogger("calgate.worker")

RETENTION_SWEEP = "maintenance.retention"
_RETENTION_INTERVAL = timedelta(hours=1)
_MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets: the job's identity and payload, the store and the settings."""

    job_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    store: Store
    settings: Settings


Handler = Callable[[JobContext], Awaitable[datetime | None]]


async def _retention(ctx: JobContext) -> datetime:
    async with ctx.store.transaction() as session:
        await retention.sweep(session, ctx.settings, utcnow())
    return utcnow() + _RETENTION_INTERVAL


async def _purge(ctx: JobContext) -> datetime | None:
    return await purge.run(ctx.store, ctx.settings, ctx.payload)


async def _erase(ctx: JobContext) -> datetime | None:
    return await erasure.run(ctx.store, ctx.settings, ctx.payload)


async def _channels(ctx: JobContext) -> None:
    await watch.run_job(ctx.store, ctx.settings, ctx.payload)


async def _account_delete(ctx: JobContext) -> None:
    # Imported here: the deletion reaches into sync, whose delivery side imports this module.
    from gateway.privacy import account_deletion

    await account_deletion.delete_account(ctx.store, ctx.settings, str(ctx.payload["account_id"]))


DEFAULT_HANDLERS: dict[str, Handler] = {
    RETENTION_SWEEP: _retention,
    purge.JOB_KIND: _purge,
    erasure.JOB_KIND: _erase,
    account_states.DELETE_JOB: _account_delete,
    watch.JOB_KIND: _channels,
}


def backoff(attempts: int) -> timedelta:
    """Exponential backoff with full jitter: 2^n seconds at most, capped at an hour."""
    ceiling = min(2.0**attempts, _MAX_BACKOFF.total_seconds())
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 - jitter, not crypto


async def schedule(
    store: Store,
    kind: str,
    key: str,
    due_at: datetime,
    payload: dict[str, Any] | None = None,
    *,
    revive_failed: bool = False,
) -> None:
    """Make sure a job with `key` exists (first caller wins; an existing job is left alone).

    With `revive_failed`, an existing job that ran out of attempts is made due again at `due_at`
    with fresh attempts: recurring work seeded at start-up (the retention sweep) must not stay
    dead for good after one bad spell.
    """
    statement = Job.insert(store.dialect, kind, key, due_at, payload or {})
    if revive_failed:
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"failed_at": None, "attempts": 0, "due_at": due_at},
            where=Job.failed_at.is_not(None),
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["key"])
    async with store.transaction() as session:
        await session.execute(statement)


class JobRunner(leases.ClaimLoop[JobContext]):
    """Claims and runs due jobs; one per process, ticked by the scheduler."""

    model = Job

    def __init__(
        self, store: Store, settings: Settings, handlers: dict[str, Handler] | None = None
    ) -> None:
        super().__init__(store, timedelta(seconds=settings.scheduler_lease_seconds))
        self.settings = settings
        self.handlers = dict(DEFAULT_HANDLERS if handlers is None else handlers)

    async def _claim(self, session: AsyncSession) -> list[JobContext]:
        jobs = await leases.claim(
            session,
            Job,
            owner=self.owner,
            limit=self.settings.scheduler_claim_batch,
            lease=self.lease,
            now=utcnow(),
            where=[Job.failed_at.is_(None), Job.kind.in_(list(self.handlers))],
        )
        return [
            JobContext(j.id, j.kind, dict(j.payload), j.attempts, self.store, self.settings)
            for j in jobs
        ]

    def _item_id(self, item: JobContext) -> str:
        return item.job_id

    async def _run(self, ctx: JobContext) -> None:
        renewer = asyncio.create_task(self._keep_lease(ctx.job_id))
        try:
            next_due = await self.handlers[ctx.kind](ctx)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: hand the job back at once for the next process.
            async with self.store.transaction() as session:
                await leases.release(session, Job, [ctx.job_id], owner=self.owner)
            raise
        except Exception as exc:
            await self._failed(ctx, exc)
        else:
            await self._done(ctx, next_due)
        finally:
            renewer.cancel()

    async def _keep_lease(self, job_id: str) -> None:
        await leases.keep_renewed(
            self.store,
            Job,
            [job_id],
            owner=self.owner,
            lease=self.lease,
            log=log,
            extra={"job_id": job_id},
        )

    async def _done(self, ctx: JobContext, next_due: datetime | None) -> None:
        async with self.store.transaction() as session:
            job = await session.scalar(
                select(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.owner)
            )
            if job is None:
                return  # our lease expired and another process owns it now
            if next_due is None:
                await session.delete(job)
            else:
                job.attempts = 0
                job.last_error = None
                await leases.release(session, Job, [job.id], owner=self.owner, due_at=next_due)

    async def _failed(self, ctx: JobContext, exc: Exception) -> None:
        attempts = ctx.attempts + 1
        # The exception's type and our own message only: library messages may quote data.
        error = f"{type(exc).__name__} on attempt {attempts}"
        log.warning("job failed", extra={"job_id": ctx.job_id, "kind": ctx.kind, "error": error})
        async with self.store.transaction() as session:
            job = await session.scalar(
                select(Job).where(Job.id == ctx.job_id, Job.lease_owner == self.owner)
            )
            if job is None:
                return
            job.attempts = attempts
            job.last_error = error
            if attempts >= self.settings.scheduler_max_attempts:
                job.failed_at = utcnow()
            await leases.release(
                session, Job, [job.id], owner=self.owner, due_at=utcnow() + backoff(attempts)
            )


async def drain(
    store: Store, settings: Settings, kinds: tuple[str, ...], *, seconds: float = 60
) -> None:
    """Run the jobs of `kinds` until none is left (for tests and scripts; the daemon's ticks do
    this in production). Raises TimeoutError when some are still there after `seconds`."""
    runner = JobRunner(store, settings, {k: DEFAULT_HANDLERS[k] for k in kinds})
    async with asyncio.timeout(seconds):
        while True:
            if await runner.tick():
                continue
            async with store.transaction() as session:
                left = await session.scalar(
                    select(Job.id).where(Job.kind.in_(kinds), Job.failed_at.is_(None)).limit(1)
                )
            if left is None:
                return
            await asyncio.sleep(0.05)  # one waits for its due time (a sync run in flight)
