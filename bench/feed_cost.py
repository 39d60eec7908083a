"""Feed cost after a change: re-rendering a 5,000-event feed after one appointment changed,
against a full render of the same feed, measured in one run.

    .venv/bin/python bench/feed_cost.py [--events 5000] [--repeats 3]

- full render: what the first fetch of a feed costs (snapshot from the store, every event
  rendered, assembled, gzipped), with the per-event cache empty.
- re-render after one change: one appointment's title changed through the domain (its feed's
  version bumps in the same transaction), then the next fetch's build: the same snapshot query,
  one event rendered, the other 4,999 taken from the per-event cache, assembled, gzipped.

Times are the process's CPU time (every thread: the database driver's and the renderer's), so
that other work on a shared machine does not blur the ratio. Prints ``name = value (target
...)`` lines; exits 0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.feeds import seed  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from gateway.config import Settings
    from gateway.domain import appointments
    from gateway.feeds import render
    from gateway.feeds.cache import FeedBodies
    from gateway.store.db import Store
    from gateway.store.feed_models import Feed
    from gateway.store.models import Account, Appointment

    with tempfile.TemporaryDirectory(prefix="calgate-bench-") as tmp:
        folder = Path(tmp)
        meta = await seed(folder, args.events)
        settings = Settings(database_url=meta["database_url"], data_dir=folder)
        store = Store.from_url(settings.database_url, settings=settings)
        async with store.transaction() as session:
            feed = (await session.scalars(select(Feed))).one()
            feed_id = feed.id
            ids = list(
                await session.scalars(
                    select(Appointment.id)
                    .where(Appointment.status != "cancelled")
                    .order_by(Appointment.id)
                )
            )

        async def build() -> float:
            async with store.transaction() as session:
                version = await session.scalar(select(Feed.version).where(Feed.id == feed_id))
            bodies = FeedBodies(store, settings)
            started = time.process_time()
            body = await bodies.get(feed_id, int(version or 0))
            assert body is not None
            return time.process_time() - started

        full, after = [], []
        for i in range(args.repeats):
            render.event_bytes.cache_clear()
            full.append(await build())
            async with store.transaction() as session:
                account = await session.scalar(select(Account))
                assert account is not None
                await appointments.update_appointment(
                    session, account, ids[i * 7 % len(ids)], {"title": f"Changed {i}"}
                )
            after.append(await build())
        await store.close()
    full_s, after_s = statistics.median(full), statistics.median(after)
    print(f"events = {args.events} (seeded)")
    print(f"feed_full_render_cpu_s = {full_s:.3f} (no target; median of {args.repeats})")
    print(f"feed_rerender_after_one_change_cpu_s = {after_s:.3f} (median of {args.repeats})")
    print(
        f"feed_rerender_after_one_change_over_full_render = {after_s / full_s:.3f} (target <= 0.1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    started = time.perf_counter()
    asyncio.run(main(parser.parse_args()))
    print(f"bench_wall_s = {time.perf_counter() - started:.0f} (target < 600)")
