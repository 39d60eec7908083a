"""Memory and idle cost at scale (issue 16, part 8), measured in one run.

    .venv/bin/python bench/scale_memory.py [--quick] [--database-url URL]

The population: 100,000 appointments over 1,000 practitioners, 1,000 memory-calendar
integrations, 10,000 feeds and 200,000 pending reminders (``--quick``: a tenth of each),
inserted in bulk into a fresh SQLite file (or a fresh PostgreSQL database with
``--database-url postgresql+asyncpg://…/postgres``: one is created and dropped).

Each phase runs in a fresh interpreter of its own, so that one phase's garbage does not count
in the next one's memory:

1. build: the population, with 10 integrations.
2. idle: the time of one round of every tick (nothing due; median of 30) with those 10
   integrations, then with 990 more; the ratio is ``idle_tick_ms_1000_over_10``.
3. cycle: the code of ``calgate serve`` in one process (the app and every tick): every
   integration due and synced once against its memory calendar (busy time, 5 events each),
   1,000 reminders due and sent to an SMTP sink, the retention sweep, and 1,000 feeds fetched
   through the app (one per practitioner, rendered and cached); then the resident memory
   (VmRSS) is ``rss_mb_after_full_cycle``. The memory calendars and the SMTP sink live in that
   process too (their share is printed apart, as an estimate of the stand-ins' cost).

Prints ``name = value (target ...)`` lines and exits 0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the population and the stand-ins of tests/

FULL = {
    "practitioners": 1000,
    "appointments": 100_000,
    "integrations": 1000,
    "feeds": 10_000,
    "reminders": 200_000,
}
FIRST_INTEGRATIONS = 10


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _settings(folder: Path, url: str, key: str, smtp_port: int = 1) -> Any:
    from pydantic import SecretStr

    from gateway.config import Settings

    return Settings(
        database_url=url,
        data_dir=folder,
        public_url="http://127.0.0.1:8400",
        secrets_key=SecretStr(key),
        sync_connectors="connectors.memory",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_tls="none",
        log_level="WARNING",
    )


async def _open(settings: Any) -> Any:
    from gateway import features
    from gateway.store import migrate
    from gateway.store.db import Store

    store = features.install(Store.from_url(settings.database_url, settings=settings))
    await migrate.upgrade(store)
    return store


async def build(settings: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """Phase 1: the population with the first 10 integrations."""
    from tests.ops import population

    store = await _open(settings)
    try:
        started = time.perf_counter()
        made = await population.build(
            store, settings, **{**sizes, "integrations": FIRST_INTEGRATIONS}
        )
        return {"build_s": time.perf_counter() - started, "account_id": made.account_id}
    finally:
        await store.close()


async def _time_rounds(ticker: Any, rounds: int) -> float:
    await ticker.round()  # warm: anything made due by the build, statement caches
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        await ticker.round()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def idle(settings: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """Phase 2: an idle round with 10 integrations, then with 1,000."""
    from sqlalchemy import select

    from gateway.store.models import User
    from tests.ops import population

    store = await _open(settings)
    ticker = population.Ticker(store, settings)
    try:
        with population.statements(store) as seen:
            await ticker.round()
        with population.statements(store) as seen:
            await ticker.round()
        statements_10 = len(seen)
        ms_10 = await _time_rounds(ticker, 30)
        async with store.transaction() as session:
            users = list(await session.scalars(select(User.id)))
            account = str(await session.scalar(select(User.account_id).limit(1)))
        made = population.Population(account_id=account, user_ids=users)
        made.integration_ids = ["x"] * FIRST_INTEGRATIONS  # numbering continues after them
        await population.add_integrations(
            store, settings, made, sizes["integrations"] - FIRST_INTEGRATIONS
        )
        with population.statements(store) as seen:
            await ticker.round()
        ms_1000 = await _time_rounds(ticker, 30)
        return {
            "ms_10": ms_10,
            "ms_1000": ms_1000,
            "statements_10": statements_10,
            "statements_1000": len(seen),
        }
    finally:
        await ticker.close()
        await store.close()


async def cycle(settings_args: tuple[Path, str, str], sizes: dict[str, int]) -> dict[str, Any]:
    """Phase 3: one full cycle of work in one process, then its resident memory."""
    import httpx
    from sqlalchemy import select, update

    from connectors.base import Event
    from connectors.memory import MemoryServer, serve
    from gateway.app import create_app
    from gateway.heap import settle_after_startup
    from gateway.store.notify_models import OutboxMessage
    from gateway.store.sync_models import Integration
    from gateway.worker import RETENTION_SWEEP, schedule
    from tests.ops import population
    from tests.peers.smtp import SmtpServer

    with SmtpServer() as sink:
        settings = _settings(*settings_args, smtp_port=sink.port)
        store = await _open(settings)
        app = create_app(settings, store, run_ticks=False)
        ticker = population.Ticker(store, settings)
        settle_after_startup()  # as `calgate serve` does before serving
        baseline = _rss_mb()
        try:
            # The remote side: one memory calendar per integration with 5 busy events.
            before_peers = _rss_mb()
            start = datetime.now(UTC) + timedelta(days=2)
            for number in range(sizes["integrations"]):
                server = MemoryServer(password="pw")
                server.add_calendar("work")
                for k in range(5):
                    at = start + timedelta(hours=k)
                    event = Event(uid=f"busy-{number}-{k}", start=at, end=at + timedelta(hours=1))
                    server.put("work", f"busy-{k}.ics", event)
                serve(population.memory_url(number), server)
            peers_mb = _rss_mb() - before_peers
            now = datetime.now(UTC)
            async with store.transaction() as session:
                await session.execute(update(Integration).values(due_at=now))
                due = select(OutboxMessage.id).order_by(OutboxMessage.due_at).limit(1000)
                await session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(due.scalar_subquery()))
                    .values(due_at=now - timedelta(seconds=1))
                )
            await schedule(store, RETENTION_SWEEP, RETENTION_SWEEP, now)
            started = time.perf_counter()
            while await ticker.round():
                pass
            while len(sink.received) < 1000 and time.perf_counter() - started < 300:
                await asyncio.sleep(0.2)
                await ticker.round()
            ticks_s = time.perf_counter() - started
            async with store.transaction() as session:
                synced = len(
                    list(
                        await session.scalars(
                            select(Integration.id).where(Integration.last_success_at.is_not(None))
                        )
                    )
                )
            started = time.perf_counter()
            transport = httpx.ASGITransport(app=app)
            statuses: dict[int, int] = {}
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
                practitioners, feeds = sizes["practitioners"], sizes["feeds"]
                for number in range(0, min(feeds, practitioners)):
                    answer = await http.get(
                        f"/feeds/{population.feed_token(number)}.ics",
                        headers={"accept-encoding": "gzip"},
                    )
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            feeds_s = time.perf_counter() - started
            gc.collect()
            return {
                "rss_mb": _rss_mb(),
                "baseline_mb": baseline,
                "peers_mb": peers_mb,
                "sent": len(sink.received),
                "synced": synced,
                "feed_statuses": statuses,
                "ticks_s": ticks_s,
                "feeds_s": feeds_s,
            }
        finally:
            await ticker.close()
            await store.close()


def _phase(args: argparse.Namespace) -> None:
    sizes = _sizes(args.quick)
    folder, url, key = Path(args.folder), args.url, args.key
    settings = _settings(folder, url, key)
    if args.phase == "build":
        result = asyncio.run(build(settings, sizes))
    elif args.phase == "idle":
        result = asyncio.run(idle(settings, sizes))
    else:
        result = asyncio.run(cycle((folder, url, key), sizes))
    print(json.dumps(result))


def _sizes(quick: bool) -> dict[str, int]:
    return {k: v // 10 for k, v in FULL.items()} if quick else dict(FULL)


def _run_phase(phase: str, folder: Path, url: str, key: str, quick: bool) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--folder", str(folder)]
    command += ["--url", url, "--key", key] + (["--quick"] if quick else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{done.stderr[-4000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _database(url: str | None, folder: Path) -> tuple[str, str | None]:
    if url is None:
        return f"sqlite+aiosqlite:///{folder}/calgate.db", None
    name = f"bench_mem_{uuid.uuid4().hex[:8]}"
    _admin(url, f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}", name


def _admin(url: str, sql: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    asyncio.run(run())


def main(args: argparse.Namespace) -> None:
    from cryptography.fernet import Fernet

    sizes = _sizes(args.quick)
    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory(prefix="calgate-bench-") as tmp:
        folder = Path(tmp)
        url, created = _database(args.database_url, folder)
        try:
            built = _run_phase("build", folder, url, key, args.quick)
            print(f"scale_population = {json.dumps(sizes)} (-)", flush=True)
            print(f"scale_build_s = {built['build_s']:.1f} (-)", flush=True)
            idle_ = _run_phase("idle", folder, url, key, args.quick)
            print(f"idle_tick_ms_10 = {idle_['ms_10']:.2f} (-)", flush=True)
            print(f"idle_tick_ms_{sizes['integrations']} = {idle_['ms_1000']:.2f} (-)", flush=True)
            print(
                f"idle_tick_statements_10_vs_{sizes['integrations']} = {idle_['statements_10']} vs "
                f"{idle_['statements_1000']} (target equal)",
                flush=True,
            )
            ratio = idle_["ms_1000"] / idle_["ms_10"]
            print(f"idle_tick_ms_1000_over_10 = {ratio:.2f} (target <= 2)", flush=True)
            done = _run_phase("cycle", folder, url, key, args.quick)
            print(f"cycle_synced_integrations = {done['synced']} (-)", flush=True)
            print(f"cycle_reminders_sent = {done['sent']} (-)", flush=True)
            print(f"cycle_feed_fetches = {json.dumps(done['feed_statuses'])} (-)", flush=True)
            print(f"cycle_ticks_s = {done['ticks_s']:.1f} (-)", flush=True)
            print(f"cycle_feeds_s = {done['feeds_s']:.1f} (-)", flush=True)
            print(f"rss_mb_at_start = {done['baseline_mb']:.0f} (-)", flush=True)
            print(f"rss_mb_memory_calendars = {done['peers_mb']:.0f} (stand-ins)", flush=True)
            print(f"rss_mb_after_full_cycle = {done['rss_mb']:.0f} (target <= 300)", flush=True)
        finally:
            if created is not None and args.database_url is not None:
                _admin(args.database_url, f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the population")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server's admin URL")
    parser.add_argument("--phase", choices=("build", "idle", "cycle"), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.phase:
        _phase(parsed)
    else:
        begun = time.perf_counter()
        main(parsed)
        print(f"bench_wall_s = {time.perf_counter() - begun:.0f} (target < 600)")
