"""The daemon's periodic ticks: APScheduler in the web server's own event loop.

The scheduler keeps no state of its own: each tick asks the database what is due (see
gateway/worker.py), so restarting, or running several processes, loses and doubles nothing.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from gateway.config import Settings
from gateway.notify import delivery as notify_delivery
from gateway.store.db import Store
from gateway.store.types import utcnow
from gateway.sync import schedule as sync_schedule
from gateway.sync import watch
from gateway.webhooks import dispatcher as webhook_dispatcher
from gateway.worker import RETENTION_SWEEP, JobRunner, schedule

log = logging.getLogger("calgate.scheduler")


class TickScheduler:
    """APScheduler that knows its ticks under way, so that stopping can wait for them.

    APScheduler's shutdown cancels the ticks under way but cannot wait for them (it is not a
    coroutine). Each tick registers its own task here while it runs, and `shutdown` awaits
    those it cancels: their clean-up (handing leases back) then runs while the store is still
    open rather than at the loop's close, where it would wait forever.
    """

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
        )
        self._ticking: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def add_job(self, tick: Callable[[], Awaitable[None]], *args: Any, **kwargs: Any) -> Any:
        """APScheduler's `add_job` for a tick coroutine, tracked while it runs."""
        return self._scheduler.add_job(self._tracked(tick), *args, **kwargs)

    def _tracked(self, tick: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        @functools.wraps(tick)
        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None  # APScheduler runs a coroutine job as a task of its own
            self._ticking.add(task)
            try:
                await tick()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                # Cancelled by `shutdown` on purpose, its clean-up done: end quietly, or
                # APScheduler logs every tick under way at a clean stop as a failed job.
            finally:
                self._ticking.discard(task)

        return run

    def start(self) -> None:
        """Start ticking (inside the running loop)."""
        self._scheduler.start()

    async def shutdown(self) -> None:
        """Stop ticking, cancel the ticks under way and wait until they have wound down."""
        ticking = list(self._ticking)
        self._stopping = True
        self._scheduler.shutdown(wait=False)
        await asyncio.gather(*ticking, return_exceptions=True)


class Ticks:
    """Starts and stops the scheduler and the job runner it ticks."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.settings = settings
        self.store = store
        self.runner = JobRunner(store, settings)
        self.scheduler = TickScheduler()

    async def start(self) -> None:
        """Seed recurring jobs and start ticking (call inside the running loop)."""
        await schedule(self.store, RETENTION_SWEEP, RETENTION_SWEEP, utcnow(), revive_failed=True)
        self.scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.settings.scheduler_tick_seconds,
            id="jobs",
            next_run_time=utcnow(),
        )
        self.notify = notify_delivery.install(self.scheduler, self.store, self.settings)
        self.sync = sync_schedule.install(self.scheduler, self.store, self.settings)
        watch.install(self.scheduler, self.store, self.settings)
        self.webhooks = webhook_dispatcher.install(self.scheduler, self.store, self.settings)
        self.scheduler.start()
        log.info("scheduler started", extra={"owner": self.runner.owner})

    async def _tick(self) -> None:
        try:
            await self.runner.tick()
        except Exception as exc:  # a failed tick (database away) must not stop later ticks
            log.warning("tick failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        """Stop claiming, let in-flight work finish within the grace period, release the rest."""
        await self.scheduler.shutdown()  # the ticks it cancels hand their leases back first
        await self.runner.stop(self.settings.server_shutdown_grace_seconds)
        if (notify := getattr(self, "notify", None)) is not None:
            await notify.stop(self.settings.server_shutdown_grace_seconds)
        if (sync := getattr(self, "sync", None)) is not None:
            await sync.stop(self.settings.server_shutdown_grace_seconds)
        if (webhooks := getattr(self, "webhooks", None)) is not None:
            await webhooks.stop(self.settings.server_shutdown_grace_seconds)
        log.info("scheduler stopped")
