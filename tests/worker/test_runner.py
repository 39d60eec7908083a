"""JobRunner: real handlers on real stores; leases short enough that expiry happens in-test."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update

from gateway.store.models import Job
from gateway.store.types import utcnow
from gateway.worker import JobRunner
from tests.conftest import make_settings
from tests.store.support import add_jobs, get_job, twin_factory

KIND = "test.job"


@pytest.fixture
def job_settings(tmp_path):
    return make_settings(tmp_path, scheduler_lease_seconds=30, scheduler_max_attempts=3)


def runner(store, settings, handler):
    return JobRunner(store, settings, {KIND: handler})


async def make_due(store, job_id):
    async with store.transaction() as session:
        await session.execute(
            update(Job).where(Job.id == job_id).values(due_at=utcnow() - timedelta(seconds=1))
        )


async def test_recurring_job_is_kept_and_released(any_store, job_settings):
    [job_id] = await add_jobs(any_store, 1, utcnow())
    next_due = utcnow() + timedelta(hours=1)
    seen = []

    async def handler(ctx):
        seen.append((ctx.job_id, ctx.kind))
        return next_due

    work = runner(any_store, job_settings, handler)
    assert await work.tick() == 1
    assert seen == [(job_id, KIND)]
    job = await get_job(any_store, job_id)
    assert (job.due_at, job.lease_owner, job.lease_expires_at) == (next_due, None, None)
    assert await work.tick() == 0  # not due again yet


async def test_finished_job_is_deleted(any_store, job_settings):
    [job_id] = await add_jobs(any_store, 1, utcnow())

    async def handler(ctx):
        return None

    assert await runner(any_store, job_settings, handler).tick() == 1
    assert await get_job(any_store, job_id) is None


async def test_failing_job_backs_off_then_is_recorded_as_failed(any_store, job_settings):
    [job_id] = await add_jobs(any_store, 1, utcnow())
    attempts_seen = []

    async def handler(ctx):
        attempts_seen.append(ctx.attempts)
        raise ValueError("could not reach alice@example.com")  # personal data in the message

    work = runner(any_store, job_settings, handler)
    for attempt in (1, 2):
        before = utcnow()
        assert await work.tick() == 1
        job = await get_job(any_store, job_id)
        assert job.attempts == attempt
        assert job.last_error == f"ValueError on attempt {attempt}"
        assert job.failed_at is None
        assert (job.lease_owner, job.lease_expires_at) == (None, None)
        # Backoff: 2^n seconds with jitter down to half of that.
        assert before + timedelta(seconds=2**attempt / 2) <= job.due_at
        assert job.due_at <= utcnow() + timedelta(seconds=2**attempt)
        assert await work.tick() == 0  # backing off
        await make_due(any_store, job_id)

    assert await work.tick() == 1  # the last attempt (scheduler_max_attempts = 3)
    job = await get_job(any_store, job_id)
    assert job.attempts == 3
    assert job.failed_at is not None
    assert "alice" not in job.last_error

    await make_due(any_store, job_id)
    assert await work.tick() == 0  # failed jobs are kept, never claimed again
    assert attempts_seen == [0, 1, 2]


async def test_success_after_a_failure_resets_the_attempts(store, job_settings):
    [job_id] = await add_jobs(store, 1, utcnow())
    outcomes = [RuntimeError("flaky"), utcnow() + timedelta(hours=1)]

    async def handler(ctx):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    work = runner(store, job_settings, handler)
    await work.tick()
    await make_due(store, job_id)
    await work.tick()
    job = await get_job(store, job_id)
    assert (job.attempts, job.last_error, job.failed_at) == (0, None, None)


async def test_stop_releases_a_long_running_job_at_once(any_store, job_settings):
    [job_id] = await add_jobs(any_store, 1, utcnow() - timedelta(minutes=1))
    started = asyncio.Event()
    cancelled = []

    async def endless(ctx):
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(ctx.job_id)
            raise
        return None

    work = runner(any_store, job_settings, endless)
    ticking = asyncio.create_task(work.tick())
    await asyncio.wait_for(started.wait(), 5)
    t0 = time.monotonic()
    await work.stop(grace=0.2)
    assert time.monotonic() - t0 < 2
    assert await asyncio.wait_for(ticking, 1) == 1
    assert cancelled == [job_id]

    job = await get_job(any_store, job_id)  # not lost, and free for the next process now
    assert (job.lease_owner, job.lease_expires_at, job.attempts) == (None, None, 0)
    assert await work.tick() == 0  # a stopped runner claims nothing more

    done = []

    async def finish(ctx):
        done.append(ctx.job_id)
        return None

    assert await runner(any_store, job_settings, finish).tick() == 1
    assert done == [job_id]
    assert await get_job(any_store, job_id) is None


async def test_stop_lets_a_short_job_finish(store, job_settings):
    [job_id] = await add_jobs(store, 1, utcnow())
    started = asyncio.Event()

    async def short(ctx):
        started.set()
        await asyncio.sleep(0.1)
        return None

    work = runner(store, job_settings, short)
    ticking = asyncio.create_task(work.tick())
    await asyncio.wait_for(started.wait(), 5)
    await work.stop(grace=5)
    assert await ticking == 1
    assert await get_job(store, job_id) is None


async def test_stop_during_a_claim_hands_the_claimed_jobs_back(any_store, job_settings):
    [job_id] = await add_jobs(any_store, 1, utcnow())
    ran = []

    async def handler(ctx):
        ran.append(ctx.job_id)
        return None

    work = runner(any_store, job_settings, handler)
    # Hold the jobs table so that the tick is caught inside its claim when stop() comes.
    async with any_store.engine.connect() as blocker:
        if any_store.dialect == "sqlite":
            await blocker.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock
        else:
            await blocker.execute(text("LOCK TABLE jobs IN EXCLUSIVE MODE"))
        ticking = asyncio.create_task(work.tick())
        await asyncio.sleep(0.3)
        assert not ticking.done()
        stopping = asyncio.create_task(work.stop(grace=5))
        await asyncio.sleep(0.1)
        assert not stopping.done()  # waits for the claim in progress
        await blocker.rollback()
    await asyncio.wait_for(stopping, 5)
    job = await get_job(any_store, job_id)  # handed back by the time stop() returns
    assert (job.lease_owner, job.lease_expires_at) == (None, None)
    assert await asyncio.wait_for(ticking, 5) == 0
    assert ran == []
    job = await get_job(any_store, job_id)
    assert (job.lease_owner, job.lease_expires_at) == (None, None)


async def test_job_whose_lease_expired_mid_run_is_taken_over(any_store, tmp_path):
    """A runner that hangs past its lease loses the job, and cannot clobber the new owner."""
    settings = make_settings(tmp_path, scheduler_lease_seconds=0.3)
    [job_id] = await add_jobs(any_store, 1, utcnow())
    open_twin = await twin_factory(any_store)
    hung = threading.Event()

    def hanging_process():
        async def main():
            store = open_twin()

            async def hang(ctx):
                hung.set()
                time.sleep(1.0)  # noqa: ASYNC251 - the whole process hangs, lease renewal too
                return None  # "done": would delete the job if nothing stopped it

            try:
                return await runner(store, settings, hang).tick()
            finally:
                await store.close()

        return asyncio.run(main())

    stale = asyncio.create_task(asyncio.to_thread(hanging_process))
    assert await asyncio.to_thread(hung.wait, 5)
    await asyncio.sleep(0.45)  # past the hung runner's lease
    next_due = utcnow() + timedelta(hours=1)

    async def take_over(ctx):
        assert await stale == 1  # the stale runner completes while we own the job
        return next_due

    assert await runner(any_store, settings, take_over).tick() == 1
    job = await get_job(any_store, job_id)
    assert job is not None, "the stale runner deleted a job it no longer owned"
    assert (job.due_at, job.lease_owner) == (next_due, None)


async def test_lease_renewal_keeps_a_long_job_owned(store, tmp_path):
    settings = make_settings(tmp_path, scheduler_lease_seconds=0.6)
    [job_id] = await add_jobs(store, 1, utcnow())
    runs = []

    async def long(ctx):
        runs.append(ctx.job_id)
        await asyncio.sleep(1.5)  # well past one lease
        return None

    owner = runner(store, settings, long)
    ticking = asyncio.create_task(owner.tick())
    rival = runner(store, settings, long)
    expiries = set()
    while not ticking.done():
        await asyncio.sleep(0.1)
        assert await rival.tick() == 0
        job = await get_job(store, job_id)
        if job is not None:
            assert job.lease_owner in (owner.owner, None)
            expiries.add(job.lease_expires_at)
    assert await ticking == 1
    assert runs == [job_id]
    assert len(expiries) >= 3  # renewed while it ran
    assert await get_job(store, job_id) is None


@pytest.mark.postgres
async def test_lease_renewal_survives_a_lost_database_connection(pg_store, tmp_path):
    """The server drops the runner's connections mid-job; renewal reconnects, the lease holds."""
    settings = make_settings(tmp_path, scheduler_lease_seconds=0.6)
    [job_id] = await add_jobs(pg_store, 1, utcnow())
    name = f"calgate-test-{uuid.uuid4().hex[:8]}"
    store = (await twin_factory(pg_store, application_name=name))()
    dropped = []

    async def long(ctx):
        await asyncio.sleep(0.3)  # after the first renewal
        async with pg_store.transaction() as session:  # what a failover or a DBA would do
            result = await session.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": name},
            )
            dropped.extend(result.scalars())
        await asyncio.sleep(1.5)  # more than two leases more
        return None

    try:
        ticking = asyncio.create_task(runner(store, settings, long).tick())
        rival = runner(pg_store, settings, long)
        while not ticking.done():
            await asyncio.sleep(0.1)
            assert await rival.tick() == 0, "the job was taken over while it ran"
        assert await ticking == 1
    finally:
        await store.close()
    assert dropped and all(dropped)
    assert await get_job(pg_store, job_id) is None
