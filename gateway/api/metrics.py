"""GET /metrics (Prometheus text format) and the separate metrics port.

Gauges of shared work (outbox rows by state and channel, recent delivery attempts by channel,
outcome and reason, reminder lateness, due and failed jobs, integrations by provider and
status) are read from the store at scrape time, so every process answers for all of them; the
process's own instruments (gateway/metrics.py) come first. On the API port /metrics needs
``metrics.token`` as a Bearer token (404 while it is empty); ``metrics.port`` serves it without
one on a port of its own, in any role.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import func, select

from gateway.api.context import get_settings, get_store
from gateway.config import Settings
from gateway.errors import NotFound, Unauthorized
from gateway.metrics import MULTIPROC_ENV, flush_hot
from gateway.store.db import Store
from gateway.store.models import Job
from gateway.store.notify_models import DeliveryAttempt, OutboxMessage
from gateway.store.sync_models import Integration
from gateway.store.types import utcnow

# Delivery attempts and lateness are read over this recent window (the log is kept for days).
RECENT = timedelta(hours=1)
_LATENESS_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

router = APIRouter(include_in_schema=False)


class _Snapshot(Collector):
    """Metric families computed before the scrape (collectors themselves cannot await)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def _lateness(rows: Iterable[tuple[datetime, datetime]]) -> GaugeHistogramMetricFamily:
    counts = [0] * (len(_LATENESS_BUCKETS) + 1)
    total = 0.0
    for planned, sent in rows:
        late = max(0.0, (sent - planned).total_seconds())
        total += late
        index = next((i for i, b in enumerate(_LATENESS_BUCKETS) if late <= b), -1)
        counts[index] += 1
    buckets, running = [], 0
    for bound, count in zip([*map(str, _LATENESS_BUCKETS), "+Inf"], counts, strict=True):
        running += count
        buckets.append((bound, running))
    return GaugeHistogramMetricFamily(
        "calgate_reminder_lateness_seconds",
        f"Reminders sent in the last {int(RECENT.total_seconds() // 60)} minutes, by how long "
        "after their planned time.",
        buckets=buckets,
        gsum_value=total,
    )


async def store_families(store: Store, now: datetime | None = None) -> list[Metric]:
    """The gauges read from the store: the same answer from every process."""
    now = now or utcnow()
    since = now - RECENT
    outbox = GaugeMetricFamily(
        "calgate_outbox_messages", "Outbox rows by state and channel.", labels=["state", "channel"]
    )
    attempts = GaugeMetricFamily(
        "calgate_delivery_attempts_recent",
        "Delivery attempts finished in the last hour, by channel, outcome and reason.",
        labels=["channel", "outcome", "reason"],
    )
    jobs = GaugeMetricFamily(
        "calgate_jobs_due", "Background jobs due now and not failed, by kind.", labels=["kind"]
    )
    failed_jobs = GaugeMetricFamily(
        "calgate_jobs_failed", "Background jobs that ran out of attempts, by kind.", labels=["kind"]
    )
    integrations = GaugeMetricFamily(
        "calgate_integrations",
        "Connected calendars by provider and status (errors: failures > 0).",
        labels=["provider", "status", "failing"],
    )
    async with store.transaction() as session:
        for state, channel, count in await session.execute(
            select(OutboxMessage.status, OutboxMessage.channel, func.count()).group_by(
                OutboxMessage.status, OutboxMessage.channel
            )
        ):
            outbox.add_metric([state, channel], count)
        for channel, outcome, reason, count in await session.execute(
            select(
                OutboxMessage.channel,
                DeliveryAttempt.outcome,
                DeliveryAttempt.error,
                func.count(),
            )
            .join(OutboxMessage, OutboxMessage.id == DeliveryAttempt.outbox_id)
            .where(DeliveryAttempt.finished_at >= since)
            .group_by(OutboxMessage.channel, DeliveryAttempt.outcome, DeliveryAttempt.error)
        ):
            attempts.add_metric([channel, outcome or "", reason or ""], count)
        late = await session.execute(
            select(OutboxMessage.planned_at, OutboxMessage.sent_at).where(
                OutboxMessage.kind == "reminder", OutboxMessage.sent_at >= since
            )
        )
        lateness = _lateness((planned, sent) for planned, sent in late if sent is not None)
        for kind, failed, count in await session.execute(
            select(Job.kind, Job.failed_at.is_not(None), func.count())
            .where((Job.due_at <= now) | Job.failed_at.is_not(None))
            .group_by(Job.kind, Job.failed_at.is_not(None))
        ):
            (failed_jobs if failed else jobs).add_metric([kind], count)
        for provider, status, failing, count in await session.execute(
            select(
                Integration.provider, Integration.status, Integration.failures > 0, func.count()
            ).group_by(Integration.provider, Integration.status, Integration.failures > 0)
        ):
            integrations.add_metric([provider, status, "true" if failing else "false"], count)
    return [outbox, attempts, lateness, jobs, failed_jobs, integrations]


def _process_registry() -> CollectorRegistry:
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


async def exposition(store: Store) -> bytes:
    """The whole text exposition: this process's (or all API processes') metrics and the store's."""
    families = await store_families(store)
    flush_hot()
    registry = CollectorRegistry()
    registry.register(_Snapshot(families))
    return generate_latest(_process_registry()) + generate_latest(registry)


class _MetricsApp:
    """The bare ASGI app of metrics.port: GET /metrics, nothing else."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/metrics" or scope["method"] != "GET":
            status, body, kind = 404, b"Not found\n", b"text/plain"
        else:
            status, body, kind = 200, await exposition(self.store), CONTENT_TYPE_LATEST.encode()
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


_PORT_TASKS: set[asyncio.Task[None]] = set()


def serve_port(settings: Settings, store: Store | None = None) -> None:
    """Serve /metrics on metrics.port (if set) in the running loop, until the process ends."""
    if not settings.metrics_port:
        return
    import uvicorn  # local: only the daemon's serve path needs the server

    class _Quiet(uvicorn.Server):
        def install_signal_handlers(self) -> None:  # the main server or worker owns signals
            return

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    the_store = store or Store.from_url(settings.database_url, settings=settings)
    config = uvicorn.Config(
        _MetricsApp(the_store),
        host=settings.server_host,
        port=settings.metrics_port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    task = asyncio.get_running_loop().create_task(_Quiet(config).serve())
    _PORT_TASKS.add(task)
    task.add_done_callback(_PORT_TASKS.discard)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """The Prometheus exposition, for a scraper holding metrics.token."""
    token = get_settings(request).metrics_token.get_secret_value()
    if not token:
        raise NotFound("no such route: /metrics is served on metrics.port or with metrics.token")
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise Unauthorized("GET /metrics needs the metrics.token as a Bearer token")
    return Response(await exposition(get_store(request)), media_type=CONTENT_TYPE_LATEST)
