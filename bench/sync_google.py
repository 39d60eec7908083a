"""Google sync cost through the stand-in (tests/peers/google.py) on loopback.

Figures, in one run (the stand-in serves pages of 250 events, Google's default page size):
- initial pull of a 2,000-event calendar (busy time from every event);
- incremental sync with one changed event in calendars of 100 and of 10,000 events, and their
  ratio (target <= 2: the cost follows the changes, not the calendar size);
- API requests spent per incremental sync (target: one list call per synced calendar plus one
  per extra page of changes).

    .venv/bin/python bench/sync_google.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httplib2

from gateway import features
from gateway.config import Settings
from gateway.domain import accounts, people
from gateway.store import migrate
from gateway.store.db import Store
from gateway.sync import consent, integrations
from gateway.sync.run import sync_integration

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the stand-ins of tests/peers
from tests.peers import google as google_peer

ROUNDS = 3
CLIENT_ID, SECRET = "bench.apps.googleusercontent.com", "bench-secret"
REDIRECT = "http://127.0.0.1:8400/oauth/google/callback"


def fill(peer: google_peer.GooglePeer, calendar: str, n: int, first: datetime) -> None:
    for i in range(n):
        start = first + timedelta(hours=3 * i)
        peer.put_event(
            calendar,
            {
                "summary": f"Event {i}",
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + timedelta(minutes=45)).isoformat()},
            },
        )


async def connect(store: Store, settings: Settings, busy: str) -> str:
    """The real consent round trip, then the busy calendar chosen."""
    async with store.transaction() as session:
        account, _key = await accounts.create_account(
            session, "Bench", timezone="UTC", country="GB"
        )
        user = await people.create_user(session, account, {"name": "Dr Bench", "timezone": "UTC"})
        integration = await integrations.create_integration(
            session,
            settings,
            account,
            integrations.NewIntegration(user.id, "google", None, None, ""),
        )
        url = await integrations.consent_url(session, settings, integration)
        integration_id = integration.id
    assert url is not None
    http = httplib2.Http()
    http.follow_redirects = False
    response, _ = http.request(url, "GET")
    query = dict(parse_qsl(urlsplit(response["location"]).query))
    result = await consent.finish(store, settings, "google", query["state"], query["code"], None)
    assert result.ok, result.message
    async with store.transaction() as session:
        row = await integrations.get_integration(session, account, integration_id)
        await integrations.choose_calendars(session, row, "calgate", ["calgate", busy])
    return integration_id


async def timed_sync(store: Store, settings: Settings, integration_id: str) -> float:
    began = time.perf_counter()
    outcome = await sync_integration(store, settings, integration_id)
    assert outcome.error is None, outcome.error
    return time.perf_counter() - began


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="calgate-bench-google-"))
    first = datetime.now(UTC) + timedelta(days=1)
    peer = google_peer.GooglePeer(page_size=250)
    try:
        with google_peer.running(peer):
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{folder}/calgate.db",
                data_dir=folder,
                sync_window_future_days=3650,
                google_client_id=CLIENT_ID,
                google_client_secret=SECRET,
                google_redirect_url=REDIRECT,
                google_auth_uri=f"{peer.base_url}/o/oauth2/auth",
                google_token_uri=f"{peer.base_url}/token",
                google_revoke_uri=f"{peer.base_url}/revoke",
                google_api_base=f"{peer.base_url}/calendar/v3/",
                google_requests_per_minute=600,
            )
            store = features.install(Store.from_url(settings.database_url))
            await migrate.upgrade(store)
            peer.add_client(CLIENT_ID, SECRET, REDIRECT)
            peer.add_calendar("calgate", "calgate")
            for n in (100, 2000, 10000):
                peer.add_calendar(f"c{n}", f"c{n}")
                fill(peer, f"c{n}", n, first)

            initials = []
            for _ in range(ROUNDS):
                pull = await connect(store, settings, "c2000")
                calls = peer.api_calls()
                initials.append(await timed_sync(store, settings, pull))
                initial_calls = peer.api_calls() - calls
            initial = min(initials)

            incremental: dict[int, float] = {}
            requests: dict[int, int] = {}
            for n in (100, 10000):
                integration_id = await connect(store, settings, f"c{n}")
                await timed_sync(store, settings, integration_id)
                runs, spent = [], []
                for round_ in range(ROUNDS):
                    event_id = next(iter(peer.calendars[f"c{n}"].events))
                    moved = first + timedelta(minutes=15 + round_)
                    peer.patch_event(
                        f"c{n}",
                        event_id,
                        {"start": {"dateTime": moved.isoformat(), "timeZone": "UTC"}},
                    )
                    calls = peer.api_calls()
                    runs.append(await timed_sync(store, settings, integration_id))
                    spent.append(peer.api_calls() - calls)
                incremental[n] = min(runs)
                requests[n] = max(spent)
            await store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(f"google_initial_pull_2000_events_s = {initial:.3f}")
    print(f"google_initial_pull_2000_events_api_requests = {initial_calls}")
    print(f"google_one_change_in_100_events_s = {incremental[100]:.3f}")
    print(f"google_one_change_in_10000_events_s = {incremental[10000]:.3f}")
    print(
        "google_incremental_ratio_10000_over_100 = "
        f"{incremental[10000] / incremental[100]:.2f} (target <= 2)"
    )
    # One list call per synced calendar (write + busy) when the changes fit on one page.
    for n in (100, 10000):
        print(f"google_api_requests_per_incremental_sync_{n}_events = {requests[n]} (target <= 2)")


if __name__ == "__main__":
    asyncio.run(main())
