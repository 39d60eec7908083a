"""Scale-out benchmark: `calgate serve --role worker` processes on one PostgreSQL database
delivering due email reminders to one SMTP sink, measured in one run.

    .venv/bin/python bench/scaleout.py [--reminders 10000] [--throughput-reminders 3000]

- exactly once: three worker processes deliver ``--reminders`` due reminders; every Message-ID
  must arrive once (duplicates and missing ones are printed).
- SIGKILL: the same with one of the three killed (SIGKILL) once a third has arrived, then
  restarted; every reminder must arrive, duplicates at most the attempts in flight at the kill
  (started, outcome not recorded: the at-least-once window of gateway/notify/delivery.py).
- throughput: ``--throughput-reminders`` due reminders delivered by one worker process, then
  (a fresh database) by two; the ratio of their rates. The baseline is the one-process run.

Needs the PostgreSQL server of the tests (CALGATE_TEST_POSTGRES_URL, default 127.0.0.1:5432,
database `test`, trust auth); creates and drops a database per run. Prints
``name = value (target ...)`` lines and exits 0 whatever the figures are.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the seeding and the SMTP sink of tests/

from cryptography.fernet import Fernet  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from gateway.store import migrate  # noqa: E402
from gateway.store.db import Store  # noqa: E402
from gateway.store.notify_models import DeliveryAttempt  # noqa: E402
from tests.notify.seed import seed_reminders  # noqa: E402
from tests.peers.smtp import SmtpServer, SmtpSink  # noqa: E402

POSTGRES = os.environ.get(
    "CALGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
CALGATE = str(Path(sys.executable).parent / "calgate")


async def database(name: str, create: bool) -> None:
    """Create (or, `create=False`, drop) the database `name` on the tests' PostgreSQL server."""
    admin = create_async_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def _seed(url: str, count: int, domain: str) -> list[str]:
    store = Store.from_url(url)
    try:
        await migrate.upgrade(store)
        due = datetime.now(UTC) - timedelta(seconds=1)
        return await seed_reminders(store, [due] * count, clients=50, message_domain=domain)
    finally:
        await store.close()


async def _in_flight(url: str) -> int:
    store = Store.from_url(url)
    try:
        async with store.transaction() as session:
            open_attempts = select(func.count()).where(DeliveryAttempt.outcome.is_(None))
            return int(await session.scalar(open_attempts) or 0)
    finally:
        await store.close()


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CALGATE, "serve", "--role", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run(
    processes: int, count: int, sink: SmtpSink, folder: Path, *, kill: bool = False
) -> tuple[float, Counter[str], set[str], int]:
    """Deliver `count` reminders with `processes` workers (with `kill`, SIGKILL one once a
    third has arrived and start another); seconds, arrivals, expected ids, in flight at the
    kill."""
    name = f"bench_scale_{uuid.uuid4().hex[:8]}"
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(database(name, create=True))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        domain = f"{name}.bench"
        ids = asyncio.run(_seed(url, count, domain))
        expected = {f"<{i}@{domain}>" for i in ids}
        before = len(sink.received)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        env.update(
            CALGATE_DATABASE_URL=url,
            CALGATE_DATA_DIR=str(folder),
            CALGATE_SECRETS_KEY=Fernet.generate_key().decode(),
            CALGATE_SMTP_HOST="127.0.0.1",
            CALGATE_SMTP_PORT=str(sink.port),
            CALGATE_SMTP_TLS="none",
            CALGATE_NOTIFY_TICK_SECONDS="0.2",
            CALGATE_LOG_LEVEL="WARNING",
            # A killed process's rows come back after this (the default is a minute).
            CALGATE_NOTIFY_LEASE_SECONDS="10",
        )
        started = time.perf_counter()
        for _ in range(processes):
            procs.append(_worker(env))
        # Rate from the first delivery to the last: start-up time is not delivery throughput.
        first: float | None = None
        in_flight = -1
        deadline = time.perf_counter() + 480
        while time.perf_counter() < deadline:
            arrived = len(set(r.message["Message-ID"] for r in sink.received[before:]))
            if arrived and first is None:
                first = time.perf_counter()
            if kill and in_flight < 0 and arrived >= count // 3:
                procs[0].kill()  # SIGKILL: no shutdown, leases left to expire
                procs[0].wait()
                in_flight = asyncio.run(_in_flight(url))
                print(f"scaleout_killed_after = {arrived} (-)", flush=True)
                procs.append(_worker(env))
            if arrived >= count:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - (first or started)
        time.sleep(2)  # a late duplicate would arrive now
        arrivals = Counter(
            r.message["Message-ID"] for r in sink.received[before:] if r.message["Message-ID"]
        )
        return elapsed, arrivals, expected, in_flight
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait(60)
        asyncio.run(database(name, create=False))


def main(args: argparse.Namespace) -> None:
    with SmtpServer() as sink, tempfile.TemporaryDirectory(prefix="calgate-bench-") as tmp:
        folder = Path(tmp)
        _, arrivals, expected, _ = run(3, args.reminders, sink, folder)
        duplicates = sum(n - 1 for n in arrivals.values() if n > 1)
        missing = len(expected - set(arrivals))
        exact = int(duplicates == 0 and missing == 0 and set(arrivals) == expected)
        print(f"scaleout_reminders = {args.reminders} (three worker processes)", flush=True)
        print(f"scaleout_duplicates = {duplicates} (target 0)", flush=True)
        print(f"scaleout_missing = {missing} (target 0)", flush=True)
        print(f"scaleout_reminders_exactly_once = {exact} (target 1)", flush=True)
        _, arrivals, expected, in_flight = run(3, args.reminders, sink, folder, kill=True)
        duplicates = sum(n - 1 for n in arrivals.values() if n > 1)
        missing = len(expected - set(arrivals))
        print(f"scaleout_sigkill_missing = {missing} (target 0)", flush=True)
        print(f"scaleout_sigkill_in_flight = {in_flight} (-)", flush=True)
        print(
            f"scaleout_sigkill_duplicates = {duplicates} (target <= {in_flight}, in flight)",
            flush=True,
        )
        if args.skip_throughput:
            return
        rates = {}
        for processes in (1, 2):
            seconds, arrivals, _, _ = run(processes, args.throughput_reminders, sink, folder)
            rates[processes] = len(arrivals) / seconds
            print(f"scaleout_{processes}proc_per_s = {rates[processes]:.0f} (-)", flush=True)
        print(
            f"scaleout_throughput_2proc_over_1proc = {rates[2] / rates[1]:.2f} (target >= 1.5)",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--throughput-reminders", type=int, default=3_000)
    parser.add_argument("--skip-throughput", action="store_true", help="only the 3-process runs")
    started = time.perf_counter()
    main(parser.parse_args())
    print(f"bench_wall_s = {time.perf_counter() - started:.0f} (target < 600)")
