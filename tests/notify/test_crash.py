"""Crash test: SIGKILL `calgate serve` mid-dispatch of 1,000 due reminders, restart, count.

Every reminder must reach the SMTP sink at least once, and the duplicates may not outnumber
the messages in flight at the kill: attempts started (claimed, rendered, maybe on the wire)
whose outcome was never recorded. The figures are printed (pytest -s) for the issue note.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.notify_models import DeliveryAttempt, OutboxMessage
from tests.notify.conftest import seed_due_reminders
from tests.peers.smtp import free_port

CALGATE = str(Path(sys.executable).parent / "calgate")
N = 1000


class CountingSink:
    """An SMTP handler recording each message's Message-ID, after `delay` seconds per message
    (a real server takes a moment: the kill lands mid-send)."""

    def __init__(self, delay: float = 0.003) -> None:
        self.ids: list[str] = []
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        head = bytes(envelope.content).split(b"\r\n\r\n", 1)[0]
        self.ids.append(str(message_from_bytes(head)["Message-ID"]))
        return "250 OK"


def _serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [CALGATE, "serve"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    base = f"http://127.0.0.1:{env['CALGATE_SERVER_PORT']}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, "calgate serve exited"
        time.sleep(0.05)
    raise AssertionError("calgate serve did not become ready")


async def _wait(predicate: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_sigkill_mid_dispatch_loses_nothing_and_duplicates_at_most_in_flight(
    tmp_path: Path,
) -> None:
    sink = CountingSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    url = f"sqlite+aiosqlite:///{tmp_path}/var/calgate.db"
    store = Store.from_url(url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await migrate.upgrade(store)
        ids = await seed_due_reminders(store, N)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        env = {
            **clean,
            "CALGATE_DATABASE_URL": url,
            "CALGATE_SERVER_PORT": str(free_port()),
            "CALGATE_SMTP_HOST": "127.0.0.1",
            "CALGATE_SMTP_PORT": str(port),
            "CALGATE_SMTP_TLS": "none",
            "CALGATE_NOTIFY_LEASE_SECONDS": "2",
            "CALGATE_NOTIFY_TICK_SECONDS": "0.1",
            "CALGATE_LOG_LEVEL": "WARNING",
        }
        procs.append(_serve(env, tmp_path))
        await _wait(lambda: len(sink.ids) >= N // 4, 60)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        at_kill = len(sink.ids)
        async with store.transaction() as session:
            in_flight = await session.scalar(
                select(func.count())
                .select_from(DeliveryAttempt)
                .where(DeliveryAttempt.outcome.is_(None))
            )
        assert at_kill < N, "the kill came too late to test anything"
        procs.append(_serve(env, tmp_path))
        await _wait(lambda: len(set(sink.ids)) >= N, 90)
        await asyncio.sleep(0.5)  # anything still arriving would be a duplicate too
        counts = Counter(sink.ids)
        duplicates = sum(c - 1 for c in counts.values())
        print(
            f"\ncrash test: {N} reminders, {at_kill} received before SIGKILL, "
            f"{in_flight} in flight at the kill, {duplicates} duplicates after restart"
        )
        assert set(counts) == {f"<{i}@crash.test>" for i in ids}
        assert duplicates <= int(in_flight or 0)
        async with store.transaction() as session:
            statuses = Counter((await session.scalars(select(OutboxMessage.status))).all())
        assert statuses == {"sent": N}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        controller.stop()
        await store.close()
