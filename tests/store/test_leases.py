"""The lease-claim primitive (gateway/store/leases.py) on SQLite and PostgreSQL.

Times are passed explicitly as `now`, so lease expiry is tested without sleeping.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.store import leases
from gateway.store.models import Job
from gateway.store.types import utcnow
from tests.store.support import add_jobs, get_job, twin_factory

LEASE = timedelta(seconds=30)


async def _claim(store, owner, *, now, limit=10, lease=LEASE, where=()):
    async with store.transaction() as session:
        rows = await leases.claim(
            session, Job, owner=owner, limit=limit, lease=lease, now=now, where=where
        )
        return [r.id for r in rows]


async def _claim_all_concurrently(stores, *, claimers_per_store, batch):
    """Claimers (each its own session and connection) claim batches until none are left.

    Each holds its transaction open across an await after claiming, so the transactions of
    different claimers really overlap. Returns {claimer: [ids]} and the most transactions that
    were open at once.
    """
    claimed: dict[str, list[str]] = {}
    open_now = 0
    most_open = 0

    async def claimer(store, name):
        nonlocal open_now, most_open
        mine = claimed.setdefault(name, [])
        while True:
            async with store.transaction() as session:
                open_now += 1
                most_open = max(most_open, open_now)
                try:
                    rows = await leases.claim(
                        session, Job, owner=name, limit=batch, lease=LEASE, now=utcnow()
                    )
                    await asyncio.sleep(0.002)  # hold the claim open while others claim
                finally:
                    open_now -= 1
            if not rows:
                return
            mine.extend(r.id for r in rows)

    await asyncio.gather(
        *(
            claimer(store, f"owner-{s}-{c}")
            for s, store in enumerate(stores)
            for c in range(claimers_per_store)
        )
    )
    return claimed, most_open


async def _assert_each_claimed_once(store, ids, claimed):
    counts = Counter(i for mine in claimed.values() for i in mine)
    assert set(counts) == set(ids)
    assert max(counts.values()) == 1, "a row was claimed by two owners"
    assert len(ids) == sum(counts.values())
    async with store.transaction() as session:
        owners = dict((await session.execute(select(Job.id, Job.lease_owner))).all())
    for owner, mine in claimed.items():
        assert {owners[i] for i in mine} <= {owner}  # the lease stamped is the claimer's own
    return counts


@pytest.mark.postgres
async def test_concurrent_claimers_on_postgres_never_share_a_row(pg_store):
    ids = await add_jobs(pg_store, 1000, utcnow() - timedelta(minutes=1))
    other = (await twin_factory(pg_store))()  # a second process, in effect
    try:
        claimed, most_open = await _claim_all_concurrently(
            [pg_store, other], claimers_per_store=2, batch=25
        )
    finally:
        await other.close()
    await _assert_each_claimed_once(pg_store, ids, claimed)
    assert most_open >= 2, "the claims never overlapped, so the test proved nothing"
    assert sum(1 for mine in claimed.values() if mine) >= 2


async def test_concurrent_claimers_on_sqlite_never_share_a_row(store):
    ids = await add_jobs(store, 1000, utcnow() - timedelta(minutes=1))
    other = (await twin_factory(store))()  # a second engine on the same file
    try:
        # BEGIN IMMEDIATE makes the others wait on the busy timeout, not fail "database is
        # locked": any OperationalError here fails the test.
        claimed, _ = await _claim_all_concurrently([store, other], claimers_per_store=2, batch=50)
    finally:
        await other.close()
    await _assert_each_claimed_once(store, ids, claimed)


async def test_claim_takes_due_rows_earliest_first_up_to_the_limit(any_store):
    now = utcnow()
    later = await add_jobs(any_store, 1, now + timedelta(seconds=1))
    late = await add_jobs(any_store, 3, now - timedelta(minutes=1))
    early = await add_jobs(any_store, 2, now - timedelta(minutes=5))
    first = await _claim(any_store, "a", now=now, limit=4)
    assert set(first[:2]) == set(early)
    assert len(first) == 4
    assert set(first[2:]) < set(late)
    rest = await _claim(any_store, "b", now=now, limit=10)
    assert set(first + rest) == set(early + late)  # the row due in the future is left alone
    assert later[0] not in rest
    assert await _claim(any_store, "c", now=now + timedelta(seconds=2)) == later


async def test_claim_honours_extra_conditions(any_store):
    now = utcnow()
    wanted = await add_jobs(any_store, 2, now, kind="wanted")
    await add_jobs(any_store, 2, now, kind="other")
    got = await _claim(any_store, "a", now=now, where=[Job.kind == "wanted"])
    assert sorted(got) == sorted(wanted)


async def test_unexpired_lease_is_not_claimed_and_expired_one_is(any_store):
    t0 = utcnow()
    [job_id] = await add_jobs(any_store, 1, t0)
    assert await _claim(any_store, "a", now=t0) == [job_id]
    job = await get_job(any_store, job_id)
    assert job.lease_owner == "a"
    assert job.lease_expires_at == t0 + LEASE

    assert await _claim(any_store, "b", now=t0 + LEASE - timedelta(milliseconds=1)) == []
    assert await _claim(any_store, "b", now=t0 + LEASE) == [job_id]  # expiry is inclusive
    job = await get_job(any_store, job_id)
    assert job.lease_owner == "b"
    assert job.lease_expires_at == t0 + 2 * LEASE


async def test_renew_extends_only_the_owners_unexpired_lease(any_store):
    t0 = utcnow()
    [job_id] = await add_jobs(any_store, 1, t0)
    await _claim(any_store, "a", now=t0)

    async with any_store.transaction() as session:
        assert await leases.renew(session, Job, [job_id], owner="b", lease=LEASE, now=t0) == 0
    assert (await get_job(any_store, job_id)).lease_expires_at == t0 + LEASE

    t1 = t0 + LEASE / 2
    async with any_store.transaction() as session:
        assert await leases.renew(session, Job, [job_id], owner="a", lease=LEASE, now=t1) == 1
    job = await get_job(any_store, job_id)
    assert (job.lease_owner, job.lease_expires_at) == ("a", t1 + LEASE)

    expired = t1 + LEASE + timedelta(seconds=1)
    async with any_store.transaction() as session:
        assert await leases.renew(session, Job, [job_id], owner="a", lease=LEASE, now=expired) == 0
    assert (await get_job(any_store, job_id)).lease_expires_at == t1 + LEASE


async def test_release_affects_only_the_owners_rows(any_store):
    t0 = utcnow()
    mine = await add_jobs(any_store, 2, t0)
    theirs = await add_jobs(any_store, 1, t0)
    assert sorted(await _claim(any_store, "a", now=t0, where=[Job.id.in_(mine)])) == sorted(mine)
    assert await _claim(any_store, "b", now=t0) == theirs

    later = t0 + timedelta(hours=1)
    async with any_store.transaction() as session:
        count = await leases.release(session, Job, mine + theirs, owner="a", due_at=later)
    assert count == 2
    for job_id in mine:
        job = await get_job(any_store, job_id)
        assert (job.lease_owner, job.lease_expires_at, job.due_at) == (None, None, later)
    job = await get_job(any_store, theirs[0])
    assert (job.lease_owner, job.lease_expires_at, job.due_at) == ("b", t0 + LEASE, t0)

    # Released without a new due time: due again at once, for anyone.
    async with any_store.transaction() as session:
        assert await leases.release(session, Job, theirs, owner="b") == 1
    assert await _claim(any_store, "c", now=t0) == theirs


async def test_stale_owner_cannot_clobber_a_newer_claim(any_store):
    t0 = utcnow()
    [job_id] = await add_jobs(any_store, 1, t0)
    await _claim(any_store, "stale", now=t0)
    t1 = t0 + LEASE + timedelta(seconds=1)  # the stale owner froze past its lease
    assert await _claim(any_store, "fresh", now=t1) == [job_id]

    async with any_store.transaction() as session:
        assert await leases.renew(session, Job, [job_id], owner="stale", lease=LEASE, now=t1) == 0
        assert await leases.release(session, Job, [job_id], owner="stale", due_at=t0) == 0
    job = await get_job(any_store, job_id)
    assert (job.lease_owner, job.lease_expires_at, job.due_at) == ("fresh", t1 + LEASE, t0)
    assert await _claim(any_store, "stale", now=t1) == []


async def test_claim_with_columns_returns_plain_rows_and_stamps_the_lease(any_store):
    now = utcnow()
    late = await add_jobs(any_store, 2, now - timedelta(minutes=1), kind="late")
    early = await add_jobs(any_store, 2, now - timedelta(minutes=5), kind="early")
    later = await add_jobs(any_store, 1, now + timedelta(seconds=1))
    async with any_store.transaction() as session:
        rows = await leases.claim(
            session, Job, owner="a", limit=3, lease=LEASE, now=now, columns=[Job.id, Job.kind]
        )
    assert [r.kind for r in rows] == ["early", "early", "late"]  # due order, plain rows
    assert {r.id for r in rows[:2]} == set(early)
    for r in rows:
        job = await get_job(any_store, r.id)
        assert (job.lease_owner, job.lease_expires_at) == ("a", now + LEASE)
    # Leased rows are not claimed again until the lease expires; the rest is.
    rest = await _claim(any_store, "b", now=now)
    assert set(rest) == (set(late) - {rows[2].id})
    assert later[0] not in rest
    # At expiry (inclusive) every lease is free again, and the row due since is taken too.
    again = await _claim(any_store, "c", now=now + LEASE)
    assert again[:2] == [r.id for r in rows[:2]]
    assert set(again) == set(early + late + later)
