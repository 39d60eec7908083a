"""Outlook (Microsoft Graph) sync cost through the stand-in (tests/peers/graph.py) on loopback
https, with the same figures as bench/sync_google.py:

- initial pull of a 2,000-event calendar (calendarView/delta, pages of 200);
- incremental sync with one changed event in calendars of 100 and of 10,000 events, and their
  ratio (target <= 2: the cost follows the changes, not the calendar size);
- Graph requests per incremental sync (target <= 2: one delta call per synced calendar).

    .venv/bin/python bench/sync_outlook.py
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from gateway.config import Settings
from gateway.domain import accounts, people
from gateway.store import migrate
from gateway.store.db import Store
from gateway.sync import consent, integrations
from gateway.sync.run import sync_integration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the stand-ins of tests/peers
from tests.peers import graph

ROUNDS = 3
CLIENT_ID, SECRET = "00000000-0000-4000-8000-0000000be7c4", "bench-secret"
REDIRECT = "http://127.0.0.1:8400/oauth/outlook/callback"


def fill(peer: graph.GraphPeer, calendar: str, n: int, first: datetime) -> None:
    for i in range(n):
        start = first + timedelta(hours=3 * i)
        end = start + timedelta(minutes=45)
        peer.put_event(
            calendar,
            {
                "subject": f"Event {i}",
                "start": {"dateTime": start.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": end.replace(tzinfo=None).isoformat(), "timeZone": "UTC"},
            },
        )


async def connect(store: Store, settings: Settings, peer: graph.GraphPeer, busy: str) -> str:
    """The real consent round trip (msal), then the busy calendar chosen."""
    async with store.transaction() as session:
        account, _key = await accounts.create_account(
            session, "Bench", timezone="UTC", country="GB"
        )
        user = await people.create_user(session, account, {"name": "Dr Bench", "timezone": "UTC"})
        integration = await integrations.create_integration(
            session,
            settings,
            account,
            integrations.NewIntegration(user.id, "outlook", None, None, ""),
        )
        url = await integrations.consent_url(session, settings, integration)
        integration_id = integration.id
    assert url is not None
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=peer.ca_pem)) as web:
        answer = await web.get(url)
    query = dict(parse_qsl(urlsplit(answer.headers["location"]).query))
    result = await consent.finish(store, settings, "outlook", query["state"], query["code"], None)
    assert result.ok, result.message
    async with store.transaction() as session:
        row = await integrations.get_integration(session, account, integration_id)
        await integrations.choose_calendars(session, row, peer.own, [peer.own, busy])
    return integration_id


async def timed_sync(store: Store, settings: Settings, integration_id: str) -> float:
    began = time.perf_counter()
    outcome = await sync_integration(store, settings, integration_id)
    assert outcome.error is None, outcome.error
    return time.perf_counter() - began


class BenchPeer(graph.GraphPeer):
    own = ""


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="calgate-bench-outlook-"))
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    peer = BenchPeer(page_size=200)
    try:
        with graph.running(peer):
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{folder}/calgate.db",
                data_dir=folder,
                sync_window_future_days=3650,
                microsoft_client_id=CLIENT_ID,
                microsoft_client_secret=SECRET,
                microsoft_redirect_url=REDIRECT,
                microsoft_authority=f"{peer.base_url}/{graph.TENANT}",
                microsoft_graph_base=f"{peer.base_url}/v1.0",
                microsoft_ca_file=peer.ca_pem,
            )
            store = Store.from_url(settings.database_url)
            await migrate.upgrade(store)
            peer.add_client(CLIENT_ID, SECRET, REDIRECT)
            peer.own = peer.add_calendar("Calendar", default=True)
            sizes = {n: peer.add_calendar(f"c{n}") for n in (100, 2000, 10000)}
            for n, cal in sizes.items():
                fill(peer, cal, n, first)

            initials = []
            for _ in range(ROUNDS):
                pull = await connect(store, settings, peer, sizes[2000])
                calls = peer.graph_calls
                initials.append(await timed_sync(store, settings, pull))
                initial_calls = peer.graph_calls - calls
            initial = min(initials)

            incremental: dict[int, float] = {}
            requests: dict[int, int] = {}
            for n in (100, 10000):
                integration_id = await connect(store, settings, peer, sizes[n])
                await timed_sync(store, settings, integration_id)
                runs, spent = [], []
                for round_ in range(ROUNDS):
                    event_id = next(iter(peer.calendars[sizes[n]].events))
                    moved = first + timedelta(minutes=15 + round_)
                    later = moved + timedelta(minutes=45)
                    peer.patch_event(
                        sizes[n],
                        event_id,
                        {
                            "start": {"dateTime": moved.replace(tzinfo=None).isoformat()},
                            "end": {"dateTime": later.replace(tzinfo=None).isoformat()},
                        },
                    )
                    calls = peer.graph_calls
                    runs.append(await timed_sync(store, settings, integration_id))
                    spent.append(peer.graph_calls - calls)
                incremental[n] = min(runs)
                requests[n] = max(spent)
            await store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"graph_initial_pull_2000_events_s = {initial:.3f}")
    print(f"graph_initial_pull_2000_events_api_requests = {initial_calls}")
    print(f"graph_one_change_in_100_events_s = {incremental[100]:.3f}")
    print(f"graph_one_change_in_10000_events_s = {incremental[10000]:.3f}")
    print(
        "graph_incremental_ratio_10000_over_100 = "
        f"{incremental[10000] / incremental[100]:.2f} (target <= 2)"
    )
    for n in (100, 10000):
        print(f"graph_api_requests_per_incremental_sync_{n}_events = {requests[n]} (target <= 2)")
    # The name: the worst of both sizes (one synced calendar each).
    worst = max(requests.values())
    print(f"graph_api_requests_per_incremental_sync = {worst} (target <= 2 per synced calendar)")


if __name__ == "__main__":
    asyncio.run(main())
