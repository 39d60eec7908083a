"""Google sync cost through the stand-in (tests/peers/google.py) on loopback, with the figures
of bench/provider_sync.py (the stand-in serves pages of 250 events, Google's default size).

    .venv/bin/python bench/sync_google.py
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import httplib2
from provider_sync import StandIn, run  # beside this file: python puts its folder on sys.path

from gateway.config import Settings
from tests.peers import google as google_peer

CLIENT_ID, SECRET = "bench.apps.googleusercontent.com", "bench-secret"
REDIRECT = "http://127.0.0.1:8400/oauth/google/callback"


async def main() -> None:
    peer = google_peer.GooglePeer(page_size=250)

    def add_calendar(name: str) -> str:
        peer.add_calendar(name, name)
        return name

    def add_event(calendar: str, title: str, start: datetime, end: datetime) -> None:
        peer.put_event(
            calendar,
            {
                "summary": title,
                "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": end.isoformat()},
            },
        )

    def move_one(calendar: str, start: datetime, end: datetime) -> None:
        event_id = next(iter(peer.calendars[calendar].events))
        peer.patch_event(calendar, event_id, {"start": {"dateTime": start.isoformat()}})

    async def follow(url: str) -> str:
        http = httplib2.Http()
        http.follow_redirects = False
        response, _ = http.request(url, "GET")
        return str(response["location"])

    def configure(folder: Path) -> Settings:
        return Settings(
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

    with google_peer.running(peer):
        peer.add_client(CLIENT_ID, SECRET, REDIRECT)
        own = add_calendar("calgate")
        stand_in = StandIn("google", own, add_calendar, add_event, move_one, follow, peer.api_calls)
        await run("google", stand_in, configure)


if __name__ == "__main__":
    asyncio.run(main())
