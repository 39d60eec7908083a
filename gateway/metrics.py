"""Prometheus instruments of what only a process sees, and the one-line calls that feed them.

HTTP latency, feed cache, lease events and the sync runs a process did live here (prometheus-
client; with ``--workers`` they add up across the API processes through
``PROMETHEUS_MULTIPROC_DIR``). Work that every process shares is counted from the database at
scrape time instead (gateway/api/metrics.py). Labels are route templates, channels, providers,
states and reasons: never ids, tokens, addresses or anything else about a person. No imports
from the rest of calgate: the store may call in here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

HTTP_SECONDS = Histogram(
    "calgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
)
FEED_CACHE = Counter(
    "calgate_feed_cache_total", "Feed body lookups by result (hit or miss).", ["result"]
)
FEED_RENDER_SECONDS = Histogram(
    "calgate_feed_render_seconds", "Time to render and compress one feed body."
)
LEASES = Counter(
    "calgate_leases_total",
    "Lease events by table and event (claimed, renewed, lost).",
    ["table", "event"],
)
SYNC_RUNS = Counter(
    "calgate_sync_runs_total",
    "Sync runs by provider and result (ok or error).",
    ["provider", "result"],
)
SYNC_CHANGES = Counter(
    "calgate_sync_changes_total",
    "Changes applied by sync runs, by provider and kind (pushed, pulled, rescheduled, "
    "cancelled, conflict).",
    ["provider", "kind"],
)


class HotCount:
    """A counter bumped on the hot path: counted in a plain int and added to its Prometheus child
    at most a second later, or at the latest every 1,024 counts (``inc`` on the child takes a
    lock and costs more than the rest of a warm feed fetch's bookkeeping). A scrape of this
    process adds what is pending first (`flush_hot`); one of another process, through
    ``PROMETHEUS_MULTIPROC_DIR``, may miss its last second."""

    def __init__(self, child: Any) -> None:
        self.child = child
        self.pending = 0

    def inc(self) -> None:
        """Count one."""
        self.pending += 1
        if self.pending == 1:
            try:
                asyncio.get_running_loop().call_later(1.0, self.flush)
            except RuntimeError:  # no loop: nothing to wait for
                self.flush()
        elif not self.pending & 1023:  # a loop that closed before its timer ran
            self.flush()

    def flush(self) -> None:
        """Add what is pending to the Prometheus child."""
        count, self.pending = self.pending, 0
        if count:
            self.child.inc(count)


FEED_CACHE_HITS = HotCount(FEED_CACHE.labels("hit"))
FEED_CACHE_MISSES = FEED_CACHE.labels("miss")  # a render follows: no need to spare the lock
_HOT = (FEED_CACHE_HITS,)


def flush_hot() -> None:
    """Add the pending hot-path counts of this process to its metrics (before a scrape)."""
    for count in _HOT:
        count.flush()


def lease_event(model: type, event: str, count: int = 1) -> None:
    """Count `count` lease events (claimed, renewed, lost) on the table of `model`."""
    if count:
        LEASES.labels(getattr(model, "__tablename__", model.__name__), event).inc(count)


def sync_run(provider: str, outcome: Any) -> None:
    """Count one finished sync run of `provider` (an Outcome of gateway/sync/run.py)."""
    SYNC_RUNS.labels(provider, "error" if outcome.error else "ok").inc()
    for kind, count in (
        ("pushed", outcome.pushed),
        ("pulled", outcome.pulled),
        ("rescheduled", outcome.rescheduled),
        ("cancelled", outcome.cancelled),
        ("conflict", outcome.conflicts),
    ):
        if count:
            SYNC_CHANGES.labels(provider, kind).inc(count)


@contextlib.contextmanager
def timed_render() -> Iterator[None]:
    """Measure one feed render."""
    with FEED_RENDER_SECONDS.time():
        yield
