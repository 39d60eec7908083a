"""schedule(): one job per key, whoever asks first; failed jobs revived only when asked."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from gateway.store.models import Job
from gateway.store.types import utcnow
from gateway.worker import schedule


async def _jobs(store):
    async with store.transaction() as session:
        return (await session.scalars(select(Job))).all()


async def test_first_caller_wins(any_store):
    first = utcnow() + timedelta(minutes=5)
    await schedule(any_store, "k", "key-1", first, {"n": 1})
    await schedule(any_store, "k", "key-1", utcnow(), {"n": 2})
    await schedule(any_store, "k", "key-2", first)
    jobs = sorted(await _jobs(any_store), key=lambda j: j.key)
    assert [(j.key, j.due_at, j.payload) for j in jobs] == [
        ("key-1", first, {"n": 1}),
        ("key-2", first, {}),
    ]


async def test_failed_job_is_revived_only_when_asked(any_store):
    await schedule(any_store, "k", "key", utcnow())
    failed_at = utcnow()
    async with any_store.transaction() as session:
        await session.execute(
            update(Job).values(failed_at=failed_at, attempts=8, last_error="RuntimeError")
        )

    await schedule(any_store, "k", "key", utcnow())
    [job] = await _jobs(any_store)
    assert (job.failed_at, job.attempts) == (failed_at, 8)

    due = utcnow() + timedelta(seconds=1)
    await schedule(any_store, "k", "key", due, revive_failed=True)
    [revived] = await _jobs(any_store)
    assert (revived.id, revived.failed_at, revived.attempts, revived.due_at) == (
        job.id,
        None,
        0,
        due,
    )

    later = due + timedelta(hours=1)
    await schedule(any_store, "k", "key", later, revive_failed=True)  # alive: left alone
    [same] = await _jobs(any_store)
    assert same.due_at == due
