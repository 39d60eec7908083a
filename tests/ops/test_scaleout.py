"""Three real `calgate serve` processes on one PostgreSQL database share the work.

Every due reminder reaches the SMTP sink exactly once, and a feed changed through one process
is fresh when fetched through the others. A database of its own per test (processes cannot be
handed the per-test schema the in-process tests use).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.notify_models import DeliveryAttempt
from tests.conftest import postgres_database
from tests.notify.seed import seed_reminders
from tests.notify.test_crash import CountingSink
from tests.ops.daemon import Daemons, book, clean_env, port
from tests.peers.smtp import SmtpServer, SmtpSink, free_port

CALGATE = str(Path(sys.executable).parent / "calgate")
REMINDERS = 300
KILLED_REMINDERS = 600

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async for url in postgres_database("t_scale"):
        yield url


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    running = Daemons(CALGATE, tmp_path)
    yield running
    running.kill_all()


async def _seed(database: str, count: int = REMINDERS) -> list[str]:
    store = Store.from_url(database)
    try:
        await migrate.upgrade(store)
        now = datetime.now(UTC)
        return await seed_reminders(
            store, [now - timedelta(seconds=1)] * count, clients=20, message_domain="scale.test"
        )
    finally:
        await store.close()


async def _in_flight(database: str) -> int:
    """Attempts started whose outcome was never recorded (the at-least-once window)."""
    store = Store.from_url(database)
    try:
        async with store.transaction() as session:
            open_attempts = select(func.count()).where(DeliveryAttempt.outcome.is_(None))
            return int(await session.scalar(open_attempts) or 0)
    finally:
        await store.close()


def _until(predicate: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


@pytest.mark.timeout(420)
def test_one_of_three_killed_mid_run_loses_nothing_and_duplicates_at_most_in_flight(
    database: str, daemons: Daemons, tmp_path: Path
):
    ids = asyncio.run(_seed(database, KILLED_REMINDERS))
    expected = {f"<{i}@scale.test>" for i in ids}
    sink = CountingSink(delay=0.2)  # slow enough that the kill lands mid-run
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        env = clean_env(
            CALGATE_DATABASE_URL=database,
            CALGATE_DATA_DIR=str(tmp_path / "data"),
            CALGATE_SMTP_HOST="127.0.0.1",
            CALGATE_SMTP_PORT=str(controller.port),
            CALGATE_SMTP_TLS="none",
            CALGATE_NOTIFY_TICK_SECONDS="0.2",
            CALGATE_NOTIFY_CLAIM_BATCH="25",
            CALGATE_NOTIFY_LEASE_SECONDS="5",  # the killed process's rows come back after this
        )
        workers = [daemons.start(["serve", "--role", "worker"], env, ready=None) for _ in range(3)]
        _until(lambda: len(set(sink.ids)) >= KILLED_REMINDERS // 4, 180)
        workers[0].kill()  # SIGKILL: no shutdown, its leases are left to expire
        workers[0].wait()
        in_flight = asyncio.run(_in_flight(database))
        at_kill = len(set(sink.ids))
        assert KILLED_REMINDERS // 4 <= at_kill < KILLED_REMINDERS, "no kill mid-run"
        daemons.start(["serve", "--role", "worker"], env, ready=None)
        _until(lambda: set(sink.ids) >= expected, 180)
        time.sleep(2)  # time for a duplicate to show up, if there were one
        arrivals = Counter(sink.ids)
        duplicates = sum(n - 1 for n in arrivals.values())
        print(f"\nkilled after {at_kill}: {in_flight} in flight, {duplicates} duplicates")
        assert set(arrivals) == expected
        assert duplicates <= in_flight
    finally:
        controller.stop()


@pytest.mark.timeout(420)  # three daemons starting on a shared 2-core machine
def test_three_processes_deliver_each_reminder_once_and_share_fresh_feeds(
    database: str, smtp: SmtpSink, daemons: Daemons, tmp_path: Path
):
    ids = asyncio.run(_seed(database))

    secrets_key = Fernet.generate_key().decode()  # one key for all three, no key file race
    ports = [port() for _ in range(3)]
    bases = [f"http://127.0.0.1:{p}" for p in ports]
    for the_port in ports:
        env = clean_env(
            CALGATE_DATABASE_URL=database,
            CALGATE_DATA_DIR=str(tmp_path / "data"),
            CALGATE_SECRETS_KEY=secrets_key,
            CALGATE_SERVER_PORT=str(the_port),
            CALGATE_PUBLIC_URL=f"http://127.0.0.1:{the_port}",
            CALGATE_SMTP_HOST="127.0.0.1",
            CALGATE_SMTP_PORT=str(smtp.port),
            CALGATE_SMTP_TLS="none",
            CALGATE_NOTIFY_TICK_SECONDS="0.2",
            CALGATE_NOTIFY_CLAIM_BATCH="25",
        )
        daemons.start(["serve"], env, ready=None)
    for base in bases:
        _wait_ready(base)

    deadline = time.monotonic() + 180
    while len(smtp.received) < REMINDERS and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(2)  # time for a duplicate to show up, if there were one
    message_ids = Counter(r.message["Message-ID"] for r in smtp.received)
    expected = {f"<{i}@scale.test>" for i in ids}
    assert set(message_ids) == expected
    assert [m for m, n in message_ids.items() if n > 1] == []

    created = daemons.run(["account", "create", "Scale Clinic"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}
    booked = book(bases[0], key, email="scale@example.com")
    feed = httpx.post(
        f"{bases[1]}/v1/feeds",
        json={"scope": "user", "user_id": booked["user_id"], "privacy": "limited"},
        headers=auth,
    ).json()
    path = "/feeds/" + feed["url"].rsplit("/feeds/", 1)[1]
    for base in bases:
        assert "SUMMARY:Check-up" in httpx.get(base + path).text
    patched = httpx.patch(
        f"{bases[2]}/v1/appointments/{booked['appointment_id']}",
        json={"title": "Moved"},
        headers=auth,
    )
    assert patched.status_code == 200, patched.text
    for base in bases:
        assert "SUMMARY:Moved" in httpx.get(base + path).text


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base} did not become ready")
