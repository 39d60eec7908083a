"""Prometheus instruments of what only a process sees, and the one-line calls that feed them.

HTTP latency, feed cache, lease events and the sync runs a process did live here (prometheus-
client; with ``--workers`` they add up across the API processes through
``PROMETHEUS_MULTIPROC_DIR``). Work that every process shares is counted from the database at
scrape time instead (gateway/api/metrics.py). Labels are route templates, channels, providers,
states and reasons: never ids, tokens, addresses or anything else about a person. No imports
from the rest of calgate: the store may call in here.
"""

from __future__ import annotations

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


_FEED_CACHE_RESULTS: dict[bool, Any] = {}


def feed_cache(hit: bool) -> None:
    """Count one feed body lookup. It runs on every fetch, so the labelled child is looked up
    once per process (``labels()`` costs more than the rest of a warm fetch's bookkeeping)."""
    child = _FEED_CACHE_RESULTS.get(hit)
    if child is None:
        child = _FEED_CACHE_RESULTS[hit] = FEED_CACHE.labels("hit" if hit else "miss")
    child.inc()


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
