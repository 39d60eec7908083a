"""Ticks: the scheduler seeds its recurring jobs once, runs them, and stops promptly."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from sqlalchemy import select, update

from gateway.scheduler import Ticks, TickScheduler
from gateway.store.models import Account, Job, UsageRecord
from gateway.store.types import utcnow
from gateway.worker import RETENTION_SWEEP, JobContext, JobRunner, schedule
from tests.conftest import make_settings
from tests.store.support import twin_factory
from tests.worker.test_retention import usage


async def _jobs(store):
    async with store.transaction() as session:
        return (await session.scalars(select(Job))).all()


async def test_start_seeds_the_retention_job_once_and_runs_it(any_store, tmp_path):
    settings = make_settings(tmp_path, scheduler_tick_seconds=0.1, usage_retention_days=30)
    async with any_store.transaction() as session:
        account = Account(name="Practice", timezone="UTC", country="GB")
        session.add(account)
        await session.flush()
        session.add(usage(account.id, "old", utcnow() - timedelta(days=31)))

    other_store = (await twin_factory(any_store))()  # a second process on the same database
    first, second = Ticks(any_store, settings), Ticks(other_store, settings)
    try:
        await first.start()
        await second.start()
        jobs = await _jobs(any_store)
        assert [(j.kind, j.key) for j in jobs] == [(RETENTION_SWEEP, RETENTION_SWEEP)]

        async with asyncio.timeout(10):  # the first tick runs at once and sweeps
            while True:
                [job] = await _jobs(any_store)
                if job.due_at > utcnow() + timedelta(minutes=30):
                    break
                await asyncio.sleep(0.05)
        assert (job.lease_owner, job.attempts, job.last_error) == (None, 0, None)
        async with any_store.transaction() as session:
            assert await session.scalar(select(UsageRecord.id)) is None
    finally:
        t0 = time.monotonic()
        await first.stop()
        await second.stop()
        stopped_in = time.monotonic() - t0
        await other_store.close()
    assert stopped_in < 1.0

    restarted = Ticks(any_store, settings)  # a restart keeps the existing job, due later
    await restarted.start()
    await restarted.stop()
    assert [j.id for j in await _jobs(any_store)] == [job.id]
    assert (await _jobs(any_store))[0].due_at == job.due_at


async def test_start_revives_a_retention_job_that_had_failed(store, tmp_path):
    settings = make_settings(tmp_path, scheduler_tick_seconds=0.1)
    ticks = Ticks(store, settings)
    await ticks.start()
    await ticks.stop()
    async with store.transaction() as session:  # e.g. the database was unwell for a while
        await session.execute(update(Job).values(failed_at=utcnow(), attempts=8))

    ticks = Ticks(store, settings)
    await ticks.start()
    try:
        async with asyncio.timeout(10):
            while True:
                [job] = await _jobs(store)
                if job.failed_at is None and job.due_at > utcnow() + timedelta(minutes=30):
                    break  # revived and run
                await asyncio.sleep(0.05)
    finally:
        await ticks.stop()


async def test_stop_hands_back_the_lease_of_a_job_under_way(store, tmp_path):
    """Stopping cancels the tick running a job; the job's clean-up hands its lease back before
    stop returns, so another process may take it at once."""
    settings = make_settings(
        tmp_path, scheduler_tick_seconds=0.1, server_shutdown_grace_seconds=0.2
    )
    started = asyncio.Event()

    async def endless(_ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    await schedule(store, "endless", "one", utcnow())
    ticks = Ticks(store, settings)
    ticks.runner = JobRunner(store, settings, {"endless": endless})
    await ticks.start()
    try:
        async with asyncio.timeout(10):
            await started.wait()
        [held] = [j for j in await _jobs(store) if j.kind == "endless"]
        assert held.lease_owner == ticks.runner.owner
    finally:
        async with asyncio.timeout(5):
            await ticks.stop()
    [job] = [j for j in await _jobs(store) if j.kind == "endless"]
    assert (job.lease_owner, job.lease_expires_at) == (None, None)


async def test_a_tick_cancelled_by_a_clean_stop_is_not_logged_as_a_failure(caplog):
    """SIGTERM while a tick is under way: the tick is cancelled, its clean-up runs before
    shutdown returns, and nothing reaches the log at ERROR (APScheduler logs a job that raised,
    CancelledError included, as failed)."""
    running = asyncio.Event()
    cleaned = asyncio.Event()

    async def slow_tick() -> None:
        running.set()
        try:
            await asyncio.Event().wait()
        finally:
            cleaned.set()

    scheduler = TickScheduler()
    scheduler.add_job(slow_tick, "interval", seconds=60, next_run_time=utcnow())
    with caplog.at_level(logging.INFO):
        scheduler.start()
        async with asyncio.timeout(10):
            await running.wait()
        async with asyncio.timeout(5):
            await scheduler.shutdown()
        await asyncio.sleep(0.05)  # APScheduler's done-callback of the tick's task
    assert cleaned.is_set()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
