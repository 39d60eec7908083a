"""A large, realistic population inserted in bulk, and one idle round of every tick.

Shared by tests/ops/test_idle_cost.py (small sizes) and bench/scale_memory.py (issue 16's
sizes: 100,000 appointments over 1,000 practitioners, 1,000 integrations, 10,000 feeds and
200,000 pending reminders). Rows go in through Core executemany in chunks, never one ORM
object at a time, so building the full population takes seconds, not minutes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, insert

from gateway import secrets
from gateway.config import Settings
from gateway.domain import accounts
from gateway.domain.accounts import hash_secret
from gateway.notify.delivery import Dispatcher as NotifyDispatcher
from gateway.store.db import Store
from gateway.store.feed_models import Feed
from gateway.store.models import Appointment, Client, User
from gateway.store.notify_models import OutboxMessage
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.store.types import new_id
from gateway.sync import watch
from gateway.sync.schedule import SyncTicker
from gateway.webhooks.dispatcher import Dispatcher as WebhookDispatcher
from gateway.worker import JobRunner

CHUNK = 5000


@dataclass
class Population:
    """What was inserted (ids the caller may extend the population with)."""

    account_id: str = ""
    user_ids: list[str] = field(default_factory=list)
    client_ids: list[str] = field(default_factory=list)
    integration_ids: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def memory_url(number: int) -> str:
    """The memory-calendar address of the population's integration `number`."""
    return f"memory://scale-{number}"


def feed_token(number: int) -> str:
    """The URL token of the population's feed `number` (well formed, derived, not random)."""
    digest = hashlib.sha256(f"scale-feed-{number}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def _bulk(store: Store, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), CHUNK):
        async with store.transaction() as session:
            await session.execute(insert(model), rows[start : start + CHUNK])


async def build(
    store: Store,
    settings: Settings,
    *,
    practitioners: int,
    appointments: int,
    integrations: int,
    feeds: int,
    reminders: int,
    clients: int = 2000,
) -> Population:
    """Insert one account with the given numbers of rows; nothing is due for days."""
    now = datetime.now(UTC)
    found = Population()
    async with store.transaction() as session:
        account, _ = await accounts.create_account(
            session, "Scale Clinic", timezone="Europe/London", country="GB"
        )
        found.account_id = account.id
    found.user_ids = [new_id("usr") for _ in range(practitioners)]
    await _bulk(
        store,
        User,
        [
            {
                "id": uid,
                "account_id": found.account_id,
                "name": f"Dr {i}",
                "email": f"dr{i}@scale.example",
                "timezone": "Europe/London",
                "locale": "en-GB",
            }
            for i, uid in enumerate(found.user_ids)
        ],
    )
    found.client_ids = [new_id("cli") for _ in range(clients)]
    await _bulk(
        store,
        Client,
        [
            {
                "id": cid,
                "account_id": found.account_id,
                "name": f"Client {i}",
                "email": f"c{i}@scale.example",
                "locale": "en-GB",
            }
            for i, cid in enumerate(found.client_ids)
        ],
    )
    await add_integrations(store, settings, found, integrations)
    await _bulk(
        store,
        Feed,
        [
            {
                "account_id": found.account_id,
                "scope": "user",
                "user_id": found.user_ids[i % practitioners],
                "name": f"Feed {i}",
                "privacy": "limited",
                "token_hash": hash_secret(feed_token(i)),
                "token_prefix": feed_token(i)[:6],
            }
            for i in range(feeds)
        ],
    )
    # Appointments from the day after tomorrow over 60 days; reminders (a day or 2 hours
    # before) are never due while a test or bench runs.
    apt_ids = [new_id("apt") for _ in range(appointments)]
    starts = [
        now + timedelta(days=2, minutes=(i * 53) % (60 * 24 * 60)) for i in range(len(apt_ids))
    ]
    await _bulk(
        store,
        Appointment,
        [
            {
                "id": aid,
                "account_id": found.account_id,
                "user_id": found.user_ids[i % practitioners],
                "client_id": found.client_ids[i % clients],
                "start_at": starts[i],
                "end_at": starts[i] + timedelta(hours=1),
                "timezone": "Europe/London",
                "title": "Consultation",
                "status": "confirmed",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for i, aid in enumerate(apt_ids)
        ],
    )
    rows = []
    for i in range(reminders):
        apt = i % max(1, len(apt_ids))
        offset = 1440 if i // max(1, len(apt_ids)) % 2 else 120
        due = starts[apt] - timedelta(minutes=offset)
        rows.append(
            {
                "id": new_id("ntf"),
                "account_id": found.account_id,
                "appointment_id": apt_ids[apt],
                "recipient_type": "client",
                "recipient_id": found.client_ids[apt % clients],
                "channel": "email",
                "kind": "reminder",
                "offset_minutes": offset,
                "version": 1,
                "idem_key": f"{apt_ids[apt]}:{i}",
                "status": "pending",
                "planned_at": due,
                "due_at": due,
                "deadline_at": starts[apt],
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    await _bulk(store, OutboxMessage, rows)
    found.counts = {
        "practitioners": practitioners,
        "appointments": appointments,
        "integrations": integrations,
        "feeds": feeds,
        "reminders": reminders,
    }
    return found


async def add_integrations(
    store: Store, settings: Settings, population: Population, count: int
) -> None:
    """Add `count` active memory-calendar integrations, next due in a day (not due now)."""
    secret = secrets.encrypt(settings, "pw")  # one encryption, shared: only read when syncing
    due = datetime.now(UTC) + timedelta(days=1)
    first = len(population.integration_ids)
    ids = [new_id("int") for _ in range(count)]
    await _bulk(
        store,
        Integration,
        [
            {
                "id": iid,
                "account_id": population.account_id,
                "user_id": population.user_ids[(first + i) % len(population.user_ids)],
                "provider": "memory",
                "server_url": memory_url(first + i),
                "username": "scale",
                "secret": secret,
                "status": "active",
                "due_at": due,
            }
            for i, iid in enumerate(ids)
        ],
    )
    # One calendar each, read for busy time (a sync reads it; nothing is written there).
    await _bulk(
        store,
        SyncCalendar,
        [{"integration_id": iid, "remote_id": "work", "busy": True} for iid in ids],
    )
    population.integration_ids += ids
    population.counts["integrations"] = population.counts.get("integrations", 0) + count


class Ticker:
    """Every tick the daemon runs (gateway/scheduler.py), to run one round of each by hand."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.jobs = JobRunner(store, settings)
        self.notify = NotifyDispatcher(store, settings)
        self.sync = SyncTicker(store, settings)
        self.webhooks = WebhookDispatcher(store, settings)

    async def round(self) -> int:
        """One round of every tick; returns how many units of work they started."""
        started = await self.jobs.tick()
        started += await self.notify.tick()
        started += await self.sync.tick()
        started += await self.webhooks.tick()
        started += await watch.tick(self.store, self.settings)
        return started

    async def close(self) -> None:
        """Stop every tick (closes their clients)."""
        for loop in (self.jobs, self.notify, self.sync, self.webhooks):
            await loop.stop(1)


@contextlib.contextmanager
def statements(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Record every SQL statement the store's engine sends (an engine event: observation only)."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
