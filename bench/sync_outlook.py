"""Outlook (Microsoft Graph) sync cost through the stand-in (tests/peers/graph.py) on loopback
https, with the figures of bench/provider_sync.py (calendarView/delta in pages of 200).

    .venv/bin/python bench/sync_outlook.py
"""

from __future__ import annotations

import asyncio
import ssl
from datetime import datetime
from pathlib import Path

import httpx
from provider_sync import StandIn, run  # beside this file: python puts its folder on sys.path

from gateway.config import Settings
from tests.peers import graph

CLIENT_ID, SECRET = "00000000-0000-4000-8000-0000000be7c4", "bench-secret"
REDIRECT = "http://127.0.0.1:8400/oauth/outlook/callback"


def _local(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat()


async def main() -> None:
    peer = graph.GraphPeer(page_size=200)

    def add_event(calendar: str, title: str, start: datetime, end: datetime) -> None:
        peer.put_event(
            calendar,
            {
                "subject": title,
                "start": {"dateTime": _local(start), "timeZone": "UTC"},
                "end": {"dateTime": _local(end), "timeZone": "UTC"},
            },
        )

    def move_one(calendar: str, start: datetime, end: datetime) -> None:
        event_id = next(iter(peer.calendars[calendar].events))
        changes = {"start": {"dateTime": _local(start)}, "end": {"dateTime": _local(end)}}
        peer.patch_event(calendar, event_id, changes)

    async def follow(url: str) -> str:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=peer.ca_pem)) as web:
            answer = await web.get(url)
        return answer.headers["location"]

    def configure(folder: Path) -> Settings:
        return Settings(
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

    with graph.running(peer):
        peer.add_client(CLIENT_ID, SECRET, REDIRECT)
        own = peer.add_calendar("Calendar", default=True)
        stand_in = StandIn(
            "outlook", own, peer.add_calendar, add_event, move_one, follow, lambda: peer.graph_calls
        )
        await run("graph", stand_in, configure)


if __name__ == "__main__":
    asyncio.run(main())
