"""When syncs run: the dirty mark, the tick, one sync at a time, backoff with Retry-After."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from connectors.base import AuthExpired, Transient
from connectors.memory import MemoryServer
from gateway.store import leases
from gateway.store.db import Store
from gateway.store.sync_models import Integration
from gateway.store.types import utcnow
from gateway.sync.run import Outcome
from gateway.sync.schedule import SyncTicker, next_due, runs_log
from tests.sync.conftest import World


async def _connect(world: World, memory: tuple[str, MemoryServer]) -> MemoryServer:
    url, server = memory
    await world.connect(
        provider="memory", server_url=url, username="u", password="pw", write_calendar="Work"
    )
    return server


async def _row(world: World) -> Integration:
    async with world.store.transaction() as session:
        row = await session.get(Integration, world.integration_id)
        assert row is not None
        return row


async def test_a_change_is_pushed_by_the_next_tick(world: World, memory) -> None:
    server = await _connect(world, memory)
    ticker = SyncTicker(world.store, world.settings)
    assert await ticker.tick() == 1  # the first sync right after connecting
    assert await ticker.tick() == 0  # nothing due until the poll interval
    await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    row = await _row(world)
    assert row.dirty and row.due_at <= utcnow()
    assert await ticker.tick() == 1
    assert len(server.calendars["work"]) == 1
    row = await _row(world)
    assert not row.dirty and row.lease_owner is None
    poll = timedelta(minutes=world.settings.sync_poll_minutes)
    assert row.due_at > utcnow() + poll - timedelta(seconds=30)


async def test_one_sync_at_a_time_per_integration(world: World, memory) -> None:
    await _connect(world, memory)
    async with world.store.transaction() as session:
        held = await leases.claim(
            session,
            Integration,
            owner="another-process",
            limit=10,
            lease=timedelta(minutes=1),
            now=utcnow(),
        )
    assert [r.id for r in held] == [world.integration_id]
    assert await SyncTicker(world.store, world.settings).tick() == 0


async def test_backoff_honours_retry_after(world: World, memory) -> None:
    server = await _connect(world, memory)
    server.fail_next.append(Transient("slow down", retry_after=600))
    ticker = SyncTicker(world.store, world.settings)
    before = utcnow()
    assert await ticker.tick() == 1
    row = await _row(world)
    assert row.failures == 1 and row.last_error
    assert row.due_at >= before + timedelta(seconds=600)
    assert await ticker.tick() == 0


def test_next_due_grows_and_is_capped(settings) -> None:
    now = utcnow()
    failed = Outcome(error="x")
    waits = [(next_due(settings, failed, n, now) - now).total_seconds() for n in (1, 4, 30)]
    assert 5 <= waits[0] <= 10 and 40 <= waits[1] <= 80
    assert waits[2] <= settings.sync_max_backoff_minutes * 60
    capped = Outcome(error="x", retry_after=10**9)
    assert (next_due(settings, capped, 1, now) - now).total_seconds() == (
        settings.sync_max_backoff_minutes * 60
    )


async def test_refused_credentials_stop_retrying(world: World, memory) -> None:
    server = await _connect(world, memory)
    server.fail_next.append(AuthExpired("the provider refused the credentials"))
    ticker = SyncTicker(world.store, world.settings)
    assert await ticker.tick() == 1
    status = await world.integration()
    assert status["status"] == "reconnect_needed"
    assert "refused" in status["last_error"]
    await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    assert await ticker.tick() == 0  # never retried until the person reconnects


async def test_an_inbound_move_does_not_dirty_the_integration(world: World, memory) -> None:
    from dataclasses import replace

    server = await _connect(world, memory)
    await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    ticker = SyncTicker(world.store, world.settings)
    await ticker.tick()
    ((href, obj),) = server.calendars["work"].items()
    event = obj.events[0]
    server.put(
        "work",
        href,
        replace(event, start=event.start + timedelta(hours=2), end=event.end + timedelta(hours=2)),
    )
    outcome = await world.sync()
    assert outcome.rescheduled == 1
    assert not (await _row(world)).dirty  # its own reschedule needs no push


def _short_busy_timeout(store: Store) -> None:
    @event.listens_for(store.engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=150")  # a busy database fails fast, not in 15 s
        cursor.close()


async def test_a_failed_lease_renewal_is_retried_and_the_lease_holds(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await _connect(world, memory)
    settings = world.settings.model_copy(update={"scheduler_lease_seconds": 0.9})
    # Another engine on the same database (another process, in effect) whose writes give up
    # quickly when the database is busy: its lease renewal will fail while we hold the lock.
    twin = Store.from_url(world.store.engine.url.render_as_string(hide_password=False))
    _short_busy_timeout(twin)
    server.latency = 2.0  # the sync's listing takes a while: several renewals
    try:
        owner = SyncTicker(twin, settings)
        ticking = asyncio.create_task(owner.tick())
        await asyncio.sleep(0.4)
        expiry = (await _row(world)).lease_expires_at
        async with world.store.engine.connect() as blocker:
            await blocker.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: the write lock
            await asyncio.sleep(0.45)  # the renewal at 0.6 s fails on the busy database
            await blocker.rollback()
        rival = SyncTicker(world.store, settings)
        renewed_after_failure = False
        while not ticking.done():
            await asyncio.sleep(0.1)
            assert await rival.tick() == 0, "the sync was taken over while it ran"
            row = await _row(world)
            if row.lease_owner == owner.owner and expiry and row.lease_expires_at:
                renewed_after_failure |= row.lease_expires_at > expiry + timedelta(seconds=0.5)
        assert await ticking == 1
        assert renewed_after_failure
    finally:
        await twin.close()


async def test_stop_lets_a_sync_finish_within_the_grace(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await _connect(world, memory)
    await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    server.latency = 0.3
    ticker = SyncTicker(world.store, world.settings)
    ticking = asyncio.create_task(ticker.tick())
    await asyncio.sleep(0.1)
    await ticker.stop(grace=5)
    assert await ticking == 1
    assert len(server.calendars["work"]) == 1
    row = await _row(world)
    assert row.lease_owner is None and row.failures == 0
    assert await ticker.tick() == 0  # stopped: claims nothing more


async def test_stop_past_the_grace_releases_the_lease_at_once(
    world: World, memory: tuple[str, MemoryServer]
) -> None:
    server = await _connect(world, memory)
    server.latency = 30.0  # would hold the integration for a lease and more
    ticker = SyncTicker(world.store, world.settings)
    ticking = asyncio.create_task(ticker.tick())
    await asyncio.sleep(0.2)
    assert (await _row(world)).lease_owner == ticker.owner
    await asyncio.wait_for(ticker.stop(grace=0.2), 5)
    await asyncio.wait_for(ticking, 5)
    row = await _row(world)
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert row.due_at <= utcnow()  # still due: another process runs it now
    server.latency = 0.0
    assert await SyncTicker(world.store, world.settings).tick() == 1


async def test_a_crashed_sync_says_so_in_words_and_is_retried(world: World, memory) -> None:
    """A bug in a sync run (here: an error no connector should raise) is told in words in the
    status and the log, never as a class name, and the run is retried after a backoff."""
    server = await _connect(world, memory)
    ticker = SyncTicker(world.store, world.settings)
    await ticker.tick()
    await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    server.fail_next.append(KeyError("start"))  # type: ignore[arg-type]
    assert await ticker.tick() == 1
    row = await _row(world)
    assert row.status == "active" and row.failures == 1
    assert row.last_error is not None and "unexpected error" in row.last_error
    assert "KeyError" not in row.last_error
    assert row.due_at > utcnow()  # backed off
    log = (await world.api.get(f"/v1/integrations/{world.integration_id}/log")).json()["data"]
    assert log[0]["kind"] == "error" and log[0]["detail"] == row.last_error
    async with world.store.transaction() as session:
        await session.execute(
            update(Integration)
            .where(Integration.id == world.integration_id)
            .values(due_at=utcnow() - timedelta(seconds=1))
        )
    assert await ticker.tick() == 1
    assert len(server.calendars["work"]) == 1  # nothing lost
    assert (await _row(world)).last_error is None


async def test_each_run_is_logged_when_asked_whatever_the_log_level(
    world: World, memory, caplog: pytest.LogCaptureFixture
) -> None:
    """sync.log_runs: one "sync run" line per run (ids and times, no personal data) while the
    daemon logs at WARNING; none without the setting."""
    await _connect(world, memory)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the daemon's log_level
    caplog.set_level(logging.NOTSET, logger=runs_log.name)
    try:
        assert await SyncTicker(world.store, world.settings).tick() == 1
        assert not [r for r in caplog.records if r.getMessage() == "sync run"]
        await world.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")  # due again
        settings = world.settings.model_copy(update={"sync_log_runs": True})
        ticker = SyncTicker(world.store, settings)
        assert await ticker.tick() == 1
    finally:
        root.setLevel(level)
        runs_log.setLevel(logging.NOTSET)
    (line,) = [r for r in caplog.records if r.getMessage() == "sync run"]
    assert line.integration_id == world.integration_id  # type: ignore[attr-defined]
    assert line.lease_owner == ticker.owner  # type: ignore[attr-defined]
    started = datetime.fromisoformat(line.started)  # type: ignore[attr-defined]
    assert started <= datetime.fromisoformat(line.finished)  # type: ignore[attr-defined]
    assert not line.failed  # type: ignore[attr-defined]
