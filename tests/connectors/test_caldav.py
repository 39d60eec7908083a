"""The connector contract against real CalDAV servers on 127.0.0.1 (Radicale; Xandikos)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from caldav.davclient import DAVClient

from connectors import ical
from connectors.base import Credentials, Event
from connectors.caldav import CalDAVConnector
from tests.connectors.contract import ConnectorContract, Side
from tests.peers import radicale


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[radicale.RadicaleServer]:
    with radicale.running(tmp_path / "radicale") as server:
        yield server


def radicale_calendar(server: radicale.RadicaleServer, cal_id: str = "work") -> str:
    """Make a calendar with the caldav library, as a calendar app would; returns its URL."""
    client = DAVClient(server.url, username=server.username, password=server.password)
    cal = client.principal().make_calendar(name="Work", cal_id=cal_id)
    return str(cal.url)


@pytest.fixture
def side(radicale_server: radicale.RadicaleServer) -> Side:
    server = radicale_server
    cal_url = radicale_calendar(server)
    other = DAVClient(server.url, username=server.username, password=server.password)

    async def put_foreign(event: Event) -> str:
        from datetime import UTC, datetime

        href = f"{cal_url}{event.uid.replace('@', '-')}-other.ics"
        body = ical.event_to_ics(event, datetime.now(UTC))
        response = await asyncio.to_thread(
            other.put, href, body, {"Content-Type": "text/calendar"}
        )
        assert response.status in (201, 204)
        return href

    async def remove(href: str) -> None:
        response = await asyncio.to_thread(other.delete, href)
        assert response.status in (200, 204)

    async def expired_cursor() -> str:
        # Radicale's token format, naming a state it never had: RFC 6578 §3.2 403.
        return json.dumps({"t": "http://radicale.org/ns/sync/" + "0" * 64})

    def credentials(password: str) -> Credentials:
        return Credentials(server.url, server.username, password)

    return Side(
        CalDAVConnector(credentials(server.password)),
        cal_url,
        put_foreign,
        remove,
        expired_cursor,
        lambda: CalDAVConnector(credentials("wrong")),
    )


class TestRadicale(ConnectorContract):
    pass
