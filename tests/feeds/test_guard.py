"""Repeated misses from one address are slowed down; hits and other addresses are not."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.feeds.guard import MissGuard
from tests.conftest import make_settings
from tests.feeds.conftest import Feeds

UNKNOWN = "/feeds/" + "C" * 43 + ".ics"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, feeds_miss_free=3, feeds_miss_delay_max_seconds=0.4, feeds_miss_window_seconds=60
    )


def test_the_guard_counts_doubles_caps_and_forgets():
    guard = MissGuard(free=2, window=10, max_delay=1.0)
    assert [guard.miss("a", now=0).delay for _ in range(2)] == [0, 0]
    delays = [guard.miss("a", now=0).delay for _ in range(6)]
    assert delays[0] > 0
    assert delays == sorted(delays)  # queued behind each other, growing
    assert max(delays) <= 1.0
    assert guard.miss("b", now=0).delay == 0  # another address is not affected
    assert guard.miss("a", now=100).delay == 0  # the window has passed


def test_too_many_held_misses_are_refused():
    guard = MissGuard(free=0, window=10, max_delay=1.0)
    verdicts = []
    for _ in range(40):
        verdict = guard.miss("a", now=0)
        if not verdict.refuse:
            guard.waiting("a", +1)
        verdicts.append(verdict)
    assert any(v.refuse for v in verdicts)
    assert not verdicts[0].refuse


async def test_misses_slow_down_and_hits_do_not(api, feeds: Feeds):
    feed = await feeds.create(scope="account")
    timings = []
    for _ in range(6):
        started = time.perf_counter()
        response = await feeds.http.get(UNKNOWN)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 404
    # Held 0.05 s, then 0.1 s, then 0.2 s (doubling); the free ones are not held at all.
    assert min(timings[4:]) >= 0.1
    assert max(timings[:3]) < min(timings[4:])
    started = time.perf_counter()
    assert (await feeds.fetch(feed)).status_code == 200
    assert time.perf_counter() - started < 0.5  # a hit is never held (first render included)


async def test_parallel_misses_queue_and_overflow_gets_429(api, feeds: Feeds):
    for _ in range(3):
        await feeds.http.get(UNKNOWN)
    started = time.perf_counter()
    answers = await asyncio.gather(*(feeds.http.get(UNKNOWN) for _ in range(30)))
    statuses = {r.status_code for r in answers}
    assert statuses == {404, 429}
    assert time.perf_counter() - started < 2
