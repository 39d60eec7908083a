"""When syncs run: a dirty mark right after an appointment change, a poll interval, backoff on
errors (honouring Retry-After), and one sync at a time per integration across processes.

The integration row itself is the unit of work (LeaseMixin): `SyncTicker.tick` claims due, active
integrations with gateway/store/leases.py, runs them, and releases each with its next due time.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import metrics
from gateway.config import Settings
from gateway.domain import account_states
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.sync_models import Integration, SyncLogEntry
from gateway.store.types import utcnow
from gateway.sync import watch
from gateway.sync.run import ACTIVE, Outcome, sync_integration

log = logging.getLogger("calgate.sync")
# The "sync run" lines (sync.log_runs): their own logger, so that they are written or not by that
# setting alone, whatever log_level says.
runs_log = logging.getLogger("calgate.sync.runs")
CRASHED = (
    "the sync stopped on an unexpected error and will be retried (details in the daemon's log)"
)


def next_due(settings: Settings, outcome: Outcome, failures: int, now: datetime) -> datetime:
    """When to run again: at the poll interval, or after a backoff that honours Retry-After."""
    if outcome.error is None:
        return now + timedelta(minutes=settings.sync_poll_minutes)
    ceiling = settings.sync_max_backoff_minutes * 60
    wait = min(ceiling, 10 * 2.0 ** max(0, failures - 1))
    wait = random.uniform(wait / 2, wait)  # noqa: S311 - jitter, not crypto
    if outcome.retry_after is not None:
        wait = max(wait, min(outcome.retry_after, ceiling))
    return now + timedelta(seconds=wait)


class SyncTicker(leases.ClaimLoop[str]):
    """Claims due integrations and syncs them; one per process, ticked by the scheduler."""

    model = Integration

    def __init__(self, store: Store, settings: Settings) -> None:
        super().__init__(store, timedelta(seconds=settings.scheduler_lease_seconds), ":sync")
        self.settings = settings
        if settings.sync_log_runs:
            runs_log.setLevel(logging.INFO)  # written even when log_level is WARNING or ERROR

    async def _claim(self, session: AsyncSession) -> list[str]:
        rows = await leases.claim(
            session,
            Integration,
            owner=self.owner,
            limit=self.settings.scheduler_claim_batch,
            lease=self.lease,
            now=utcnow(),
            # Syncs pause while the account is suspended or being deleted.
            where=[
                Integration.status == ACTIVE,
                Integration.account_id.in_(account_states.active_accounts()),
            ],
        )
        return [r.id for r in rows]

    def _item_id(self, item: str) -> str:
        return item

    async def _run(self, integration_id: str) -> None:
        keeper = asyncio.create_task(
            leases.keep_renewed(
                self.store,
                Integration,
                [integration_id],
                owner=self.owner,
                lease=self.lease,
                log=log,
                extra={"integration_id": integration_id},
            )
        )
        started = utcnow()
        try:
            outcome = await sync_integration(self.store, self.settings, integration_id)
        except asyncio.CancelledError:
            # Shutdown ran out of grace: nothing of this run was committed (one transaction at
            # the end); hand the integration back, still due, for the next process.
            async with self.store.transaction() as session:
                await leases.release(session, Integration, [integration_id], owner=self.owner)
            raise
        except Exception:  # a bug must not stop the other integrations' syncs
            log.exception("sync crashed", extra={"integration_id": integration_id})
            outcome = Outcome(error=CRASHED)
        finally:
            keeper.cancel()
        # Stamped before the release commits: a process that claims the integration next starts
        # after it, so two runs of one integration overlapping in these stamps ran at once.
        finished = utcnow()
        async with self.store.transaction() as session:
            row = await session.get(Integration, integration_id)
            if row is None:
                return
            if outcome.error == CRASHED and row.status == ACTIVE:
                # Nothing of the run was committed: say so in words, and back off like any
                # failure (the traceback is in the daemon's log, not shown to the person).
                row.last_error = CRASHED
                row.failures += 1
                session.add(
                    SyncLogEntry(integration_id=integration_id, kind="error", detail=CRASHED)
                )
            metrics.sync_run(row.provider, outcome)
            now = utcnow()
            due = now if row.dirty and outcome.error is None else None
            due = due or next_due(self.settings, outcome, row.failures, now)
            if outcome.error is None and not row.dirty:
                # While push channels work, polling is only a backstop and runs less often.
                longer = await watch.poll_minutes(session, self.store, self.settings, row)
                if longer is not None:
                    due = max(due, now + timedelta(minutes=longer))
            await leases.release(
                session, Integration, [integration_id], owner=self.owner, due_at=due
            )
        if not self.settings.sync_log_runs:
            return
        # One line per run, ids and times only: who ran which integration when (the scale-out
        # test and bench read these to prove no integration is synced by two processes at once).
        runs_log.info(
            "sync run",
            extra={
                "integration_id": integration_id,
                "lease_owner": self.owner,
                "started": started.isoformat(),
                "finished": finished.isoformat(),
                "failed": outcome.error is not None,
            },
        )


def install(scheduler: Any, store: Store, settings: Settings) -> SyncTicker:
    """Add the sync tick to the daemon's scheduler; returns the ticker."""
    ticker = SyncTicker(store, settings)

    async def tick() -> None:
        try:
            await ticker.tick()
        except Exception as exc:  # a failed tick (database away) must not stop later ticks
            log.warning("sync tick failed: %s", type(exc).__name__)

    scheduler.add_job(
        tick, "interval", seconds=settings.sync_tick_seconds, id="sync", next_run_time=utcnow()
    )
    return ticker
