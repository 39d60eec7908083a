"""The connector contract against the Google Calendar stand-in (tests/peers/google.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from connectors import google
from connectors.base import Credentials, Event
from tests.connectors.contract import START, WINDOW, ConnectorContract, Side, event
from tests.google.conftest import CALENDAR, CLIENT_ID
from tests.peers.google import GooglePeer


@pytest.fixture
async def side(peer: GooglePeer, google_app: google.GoogleApp) -> AsyncIterator[Side]:
    refresh = peer.grant(CLIENT_ID, " ".join(google.SCOPES))
    connector = google.GoogleConnector(Credentials(None, CALENDAR, refresh), google_app)

    async def put_foreign(event: Event) -> str:
        body = google.to_body(event)
        del body["extendedProperties"]
        return peer.put_event(CALENDAR, body)

    async def remove(href: str) -> None:
        peer.delete_event(CALENDAR, href)

    async def expired_cursor() -> str:
        cursor = (await connector.list_changes(CALENDAR, None, WINDOW)).cursor
        peer.expire_sync_tokens()
        return cursor

    wrong: list[google.GoogleConnector] = []

    def wrong_password() -> google.GoogleConnector:
        wrong.append(
            google.GoogleConnector(Credentials(None, CALENDAR, "1//not-a-grant"), google_app)
        )
        return wrong[-1]

    yield Side(
        connector,
        CALENDAR,
        put_foreign,
        remove,
        expired_cursor,
        wrong_password,
    )
    for each in [connector, *wrong]:
        await each.close()


class TestGoogleConnector(ConnectorContract):
    pass

    async def test_recreate_after_delete_brings_the_event_back(self, side: Side) -> None:
        # Google keeps deleted ids: a second insert with our id answers 409, so the connector
        # revives the cancelled event instead (e.g. deleted_policy = restore).
        first = await side.connector.create(side.calendar_id, event())
        await side.connector.delete(side.calendar_id, first.href, first.etag)
        again = await side.connector.create(side.calendar_id, event(minutes=30))
        assert again.href == first.href
        item = await side.connector.get(side.calendar_id, again.href, WINDOW)
        assert item.events[0].start == START + timedelta(minutes=30)
