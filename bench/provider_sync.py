"""The harness of bench/sync_google.py and bench/sync_outlook.py: one provider's sync cost
through its stand-in, with the same figures for every provider.

- initial pull of a 2,000-event calendar (busy time from every event), and its API requests;
- incremental sync with one changed event in calendars of 100 and of 10,000 events, and their
  ratio (target <= 2: the cost follows the changes, not the calendar size);
- API requests per incremental sync (target <= 2: one list call per synced calendar, write and
  busy, when the changes fit on one page).

A bench script starts the stand-in, says how to add, move and count (`StandIn`) and calls
`run`; the consent is the real round trip, the sync the engine's own.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from gateway import features
from gateway.config import Settings
from gateway.domain import accounts, people
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.models import Account, User
from gateway.sync import consent, integrations
from gateway.sync.run import sync_integration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the stand-ins of tests/peers

ROUNDS = 3
SIZES = (100, 2000, 10000)


@dataclass
class StandIn:
    """What the harness needs of a provider's stand-in."""

    provider: str  # the integration's provider name
    own: str  # the calendar calgate writes to
    add_calendar: Callable[[str], str]  # name → calendar id
    add_event: Callable[[str, str, datetime, datetime], None]  # calendar, title, start, end
    move_one: Callable[[str, datetime, datetime], None]  # an event of the calendar to start, end
    follow: Callable[[str], Awaitable[str]]  # a consent URL → the Location it redirects to
    calls: Callable[[], int]  # API requests answered so far


async def practitioner(session: AsyncSession) -> tuple[Account, User]:
    """A new account with one practitioner, both in UTC (every sync bench connects one)."""
    account, _key = await accounts.create_account(session, "Bench", timezone="UTC", country="GB")
    user = await people.create_user(session, account, {"name": "Dr Bench", "timezone": "UTC"})
    return account, user


async def _connect(store: Store, settings: Settings, peer: StandIn, busy: str) -> str:
    """The real consent round trip, then the busy calendar chosen."""
    async with store.transaction() as session:
        account, user = await practitioner(session)
        integration = await integrations.create_integration(
            session,
            settings,
            account,
            integrations.NewIntegration(user.id, peer.provider, None, None, ""),
        )
        url = await integrations.consent_url(session, settings, integration)
        integration_id = integration.id
    assert url is not None
    query = dict(parse_qsl(urlsplit(await peer.follow(url)).query))
    result = await consent.finish(
        store, settings, peer.provider, query["state"], query["code"], None
    )
    assert result.ok, result.message
    async with store.transaction() as session:
        row = await integrations.get_integration(session, account, integration_id)
        await integrations.choose_calendars(session, row, peer.own, [peer.own, busy])
    return integration_id


async def _timed_sync(store: Store, settings: Settings, integration_id: str) -> float:
    began = time.perf_counter()
    outcome = await sync_integration(store, settings, integration_id)
    assert outcome.error is None, outcome.error
    return time.perf_counter() - began


async def run(prefix: str, peer: StandIn, configure: Callable[[Path], Settings]) -> None:
    """Measure `peer` with the settings `configure(folder)` gives and print the figures, each
    named `<prefix>_...`."""
    folder = Path(tempfile.mkdtemp(prefix=f"calgate-bench-{prefix}-"))
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    try:
        settings = configure(folder)
        store = features.install(Store.from_url(settings.database_url))
        await migrate.upgrade(store)
        sizes = {n: peer.add_calendar(f"c{n}") for n in SIZES}
        for n, calendar in sizes.items():
            for i in range(n):
                start = first + timedelta(hours=3 * i)
                peer.add_event(calendar, f"Event {i}", start, start + timedelta(minutes=45))

        initials = []
        for _ in range(ROUNDS):
            pull = await _connect(store, settings, peer, sizes[2000])
            calls = peer.calls()
            initials.append(await _timed_sync(store, settings, pull))
            initial_calls = peer.calls() - calls

        incremental: dict[int, float] = {}
        requests: dict[int, int] = {}
        for n in (100, 10000):
            integration_id = await _connect(store, settings, peer, sizes[n])
            await _timed_sync(store, settings, integration_id)
            runs, spent = [], []
            for round_ in range(ROUNDS):
                moved = first + timedelta(minutes=15 + round_)
                peer.move_one(sizes[n], moved, moved + timedelta(minutes=45))
                calls = peer.calls()
                runs.append(await _timed_sync(store, settings, integration_id))
                spent.append(peer.calls() - calls)
            incremental[n] = min(runs)
            requests[n] = max(spent)
        await store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{prefix}_initial_pull_2000_events_s = {min(initials):.3f}")
    print(f"{prefix}_initial_pull_2000_events_api_requests = {initial_calls}")
    print(f"{prefix}_one_change_in_100_events_s = {incremental[100]:.3f}")
    print(f"{prefix}_one_change_in_10000_events_s = {incremental[10000]:.3f}")
    print(
        f"{prefix}_incremental_ratio_10000_over_100 = "
        f"{incremental[10000] / incremental[100]:.2f} (target <= 2)"
    )
    for n in (100, 10000):
        print(
            f"{prefix}_api_requests_per_incremental_sync_{n}_events = {requests[n]} (target <= 2)"
        )
    # The issues' name for it: the worst of both sizes (one synced calendar each).
    print(
        f"{prefix}_api_requests_per_incremental_sync = {max(requests.values())} "
        "(target <= 2 per synced calendar)"
    )
