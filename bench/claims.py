"""Lease-claim throughput on PostgreSQL: 4 concurrent claimers against a single claimer.

Seeds N due jobs in a fresh schema, then claimers (each its own process, engine and connection,
as separate calgate processes would be) call `gateway.store.leases.claim` in batches until no
due row is left. Every row must be claimed exactly once (checked). Each configuration runs
three times, alternating, and the best run counts. The baseline is the single claimer, measured in
the same run.

    .venv/bin/python bench/claims.py        # PostgreSQL at CALGATE_TEST_POSTGRES_URL or local
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store import leases, migrate
from gateway.store.db import Store
from gateway.store.models import Job
from gateway.store.types import new_id, utcnow

URL = os.environ.get(
    "CALGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
N = 5000
BATCH = 50
CLAIMERS = 4
LEASE = timedelta(minutes=10)
ROUNDS = 3  # alternating runs of each configuration; the best of each counts


def _store(schema: str) -> Store:
    args = {"server_settings": {"search_path": schema}}
    return Store(create_async_engine(URL, connect_args=args, pool_size=1))


async def _claim_until_empty(schema: str, owner: str, start: Any) -> tuple[list[str], float, float]:
    store = _store(schema)
    try:
        async with store.transaction() as session:
            await session.execute(text("SELECT 1"))  # connect before the clock starts
        start.wait()
        began = time.time()
        claimed: list[str] = []
        while True:
            async with store.transaction() as session:
                rows = await leases.claim(
                    session, Job, owner=owner, limit=BATCH, lease=LEASE, now=utcnow()
                )
                claimed.extend(r.id for r in rows)
            if not rows:
                return claimed, began, time.time()
    finally:
        await store.close()


def _claimer(schema: str, owner: str, start: Any, results: Any) -> None:
    results.put(asyncio.run(_claim_until_empty(schema, owner, start)))


def run(schema: str, claimers: int) -> float:
    """Rows claimed per second by `claimers` processes over the N seeded rows."""
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(claimers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(schema, f"bench-{i}", start, results))
        for i in range(claimers)
    ]
    for p in procs:
        p.start()
    start.wait()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    ids = [i for claimed, _, _ in outcomes for i in claimed]
    if len(ids) != N or len(set(ids)) != N:
        raise SystemExit(f"claims wrong: {len(ids)} claimed, {len(set(ids))} distinct, {N} due")
    elapsed = max(end for _, _, end in outcomes) - min(began for _, began, _ in outcomes)
    return N / elapsed


async def _seed(schema: str) -> None:
    store = _store(schema)
    try:
        await migrate.upgrade(store)
        due = utcnow() - timedelta(minutes=1)
        ids = [new_id("job") for _ in range(N)]
        rows = [{"id": i, "kind": "bench", "key": i, "payload": {}, "due_at": due} for i in ids]
        async with store.transaction() as session:
            await session.execute(insert(Job), [{**r, "attempts": 0} for r in rows])
    finally:
        await store.close()


async def _reset(schema: str) -> None:
    store = _store(schema)
    try:
        async with store.transaction() as session:
            await session.execute(update(Job).values(lease_owner=None, lease_expires_at=None))
    finally:
        await store.close()


async def _admin(sql: str) -> None:
    engine = create_async_engine(URL)
    try:
        async with asyncio.timeout(5), engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


def main() -> int:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"PostgreSQL not reachable at {URL} ({type(exc).__name__}): benchmark skipped")
        return 0
    try:
        asyncio.run(_seed(schema))
        best: dict[int, float] = {1: 0.0, CLAIMERS: 0.0}
        for claimers in (1, CLAIMERS) * ROUNDS:
            asyncio.run(_reset(schema))
            best[claimers] = max(best[claimers], run(schema, claimers))
    finally:
        asyncio.run(_admin(f'DROP SCHEMA "{schema}" CASCADE'))
    print(f"claim_rows_per_s_1_claimer = {best[1]:.1f} (baseline)")
    print(f"claim_rows_per_s_{CLAIMERS}_claimers = {best[CLAIMERS]:.1f} (target >= 1000)")
    print(f"parallel_speedup_vs_1_claimer = {best[CLAIMERS] / best[1]:.2f} (target >= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
