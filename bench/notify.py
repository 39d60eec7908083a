"""Notification delivery: throughput against a plain aiosmtplib loop, and lateness under load.

1. Throughput: 10,000 due email reminders sent by the daemon's delivery loop
   (gateway.notify.delivery.Dispatcher: claim with leases, render in the recipient's zone and
   locale, build the MIME message, send, record each attempt) to an aiosmtpd sink, against the
   ceiling of a plain aiosmtplib loop sending the same 10,000 pre-rendered messages to the same
   sink over the same number of connections (`smtp.connections`). Target ratio >= 0.8.
2. Lateness: with 100,000 future reminders stored, 1,000 fall due within one minute; the
   dispatcher ticks as the daemon does (every `notify_tick_seconds`), and lateness is the
   moment the sink received each message minus its due time. Target p99 < 1 s.

    .venv/bin/python bench/notify.py            # SQLite in a temporary folder
    .venv/bin/python bench/notify.py --quick    # 2,000 / 20,000 / 200 for a smoke run
    .venv/bin/python bench/notify.py --throughput   # part 1 only
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller

from gateway import features, heap
from gateway.config import Settings
from gateway.notify.delivery import Dispatcher
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.notify_models import OutboxMessage

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the shared seeding of tests/
from tests.notify.seed import seed_reminders

QUICK = "--quick" in sys.argv
N_THROUGHPUT = 2_000 if QUICK else 10_000
N_FUTURE = 20_000 if QUICK else 100_000
N_DUE = 200 if QUICK else 1_000
WINDOW = 60.0


class Sink:
    """Records the arrival time of every Message-ID (runs in the sink's own process)."""

    def __init__(self, counter: Any) -> None:
        self.arrivals: dict[str, float] = {}
        self.counter = counter
        self.keep: list[bytes] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.counter.get_lock():
            self.counter.value += 1
        if self.keep is not None:
            self.keep.append(bytes(envelope.content))
        head = bytes(envelope.content).split(b"\r\n\r\n", 1)[0]
        msg = message_from_bytes(head)
        self.arrivals.setdefault(str(msg["Message-ID"]), time.time())
        return "250 OK"


def _sink_process(port: int, counter: Any, conn: Any) -> None:
    """The SMTP server in a process of its own, as a real one would be: it takes no CPU time
    from the daemon or the baseline loop it is measuring. Commands arrive on `conn`."""
    sink = Sink(counter)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    conn.send("ready")
    while True:
        command = conn.recv()
        if command == "keep":
            sink.keep = []
        elif command == "take":
            conn.send(sink.keep or [])
            sink.keep = None
        elif command == "arrivals":
            conn.send(dict(sink.arrivals))
        elif command == "clear":
            sink.arrivals.clear()
        elif command == "stop":
            controller.stop()
            conn.send("stopped")
            return


class SinkHandle:
    """The test's side of the sink process."""

    def __init__(self, port: int) -> None:
        self.counter = mp.Value("i", 0)
        self.conn, child = mp.Pipe()
        self.process = mp.Process(target=_sink_process, args=(port, self.counter, child))
        self.process.start()
        assert self.conn.recv() == "ready"

    @property
    def count(self) -> int:
        return int(self.counter.value)

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv() if command in ("take", "arrivals", "stop") else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def baseline(port: int, messages: list[bytes], connections: int) -> float:
    """A plain aiosmtplib loop: the same messages over the same number of connections."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        while not queue.empty():
            data = queue.get_nowait()
            await client.sendmail("b@bench.example", ["c@bench.example"], data)
        await client.quit()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(messages) / (time.perf_counter() - began)


async def main() -> None:
    port = _free_port()
    sink = SinkHandle(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                data_dir=Path(tmp),
                smtp_host="127.0.0.1",
                smtp_port=port,
                smtp_tls="none",
            )
            store = features.install(Store.from_url(settings.database_url))
            await migrate.upgrade(store)
            await run(store, settings, sink, port)
            await store.close()
    finally:
        sink.ask("stop")
        sink.process.join()


async def run(store: Store, settings: Settings, sink: SinkHandle, port: int) -> None:
    # 1. Throughput.
    past = datetime.now(UTC) - timedelta(minutes=1)
    await seed_reminders(store, [past] * N_THROUGHPUT)
    dispatcher = Dispatcher(store, settings)
    heap.settle_after_startup()  # as `calgate serve` does before serving
    sink.ask("keep")
    began = time.perf_counter()
    while sink.count < N_THROUGHPUT:
        if not await dispatcher.tick():
            break
    daemon_rate = N_THROUGHPUT / (time.perf_counter() - began)
    await dispatcher.close()
    assert sink.count == N_THROUGHPUT, sink.count
    # The ceiling: the very messages the daemon sent, already rendered, sent again.
    messages = sink.ask("take")
    base_rate = await baseline(port, messages, settings.smtp_connections)
    connections = settings.smtp_connections
    print(f"notify_daemon_msgs_per_s = {daemon_rate:.0f} ({N_THROUGHPUT} due email reminders)")
    print(f"notify_plain_aiosmtplib_loop_msgs_per_s = {base_rate:.0f} (baseline)")
    print(f"notify_smtp_connections = {connections} (both)")
    print(f"notify_throughput_ratio = {daemon_rate / base_rate:.2f} (target >= 0.8)")

    if "--throughput" in sys.argv:
        return
    # 2. Lateness: N_FUTURE reminders in the coming weeks, N_DUE of them due within WINDOW s.
    sink.ask("clear")
    now = datetime.now(UTC)
    far = [now + timedelta(days=2, seconds=i * 20) for i in range(N_FUTURE - N_DUE)]
    soon_start = now + timedelta(seconds=15)  # seeding takes a while
    due = [soon_start + timedelta(seconds=WINDOW * i / N_DUE) for i in range(N_DUE)]
    await seed_reminders(store, far + due)
    async with store.transaction() as session:
        from sqlalchemy import select

        wanted = {
            mid: planned
            for mid, planned in (
                await session.execute(
                    select(OutboxMessage.message_id, OutboxMessage.planned_at).where(
                        OutboxMessage.planned_at >= soon_start - timedelta(seconds=1),
                        OutboxMessage.planned_at < now + timedelta(days=1),
                    )
                )
            ).all()
        }
    dispatcher = Dispatcher(store, settings)
    stop_at = time.time() + (soon_start - datetime.now(UTC)).total_seconds() + WINDOW + 5
    while time.time() < stop_at:
        t0 = time.perf_counter()
        await dispatcher.tick()
        await asyncio.sleep(max(0.0, settings.notify_tick_seconds - (time.perf_counter() - t0)))
    await dispatcher.close()
    arrivals = sink.ask("arrivals")
    late = sorted(
        arrivals[mid] - planned.timestamp() for mid, planned in wanted.items() if mid in arrivals
    )
    assert len(late) == N_DUE, (len(late), N_DUE)
    p50 = statistics.median(late)
    p99 = late[int(len(late) * 0.99) - 1]
    print(f"notify_lateness_p50_ms = {p50 * 1000:.0f} ({N_DUE} due within {WINDOW:.0f} s)")
    print(
        f"notify_lateness_p99_ms = {p99 * 1000:.0f} (target <= 1000; {N_FUTURE} stored, "
        f"tick {settings.notify_tick_seconds} s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
