"""The connector contract against the Microsoft Graph stand-in (tests/peers/graph.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors import outlook
from connectors.base import Credentials, Event
from connectors.registry import Grant
from tests.connectors.contract import WINDOW, ConnectorContract, Side, event
from tests.peers.graph import GraphPeer


@pytest.fixture
async def side(
    peer: GraphPeer, outlook_app: outlook.OutlookApp, grant: Grant
) -> AsyncIterator[Side]:
    (calendar,) = peer.calendars
    connector = outlook.OutlookConnector(Credentials(None, None, grant.secret), outlook_app)

    async def put_foreign(event: Event) -> str:
        body = outlook.to_body(event)
        del body["singleValueExtendedProperties"]
        return peer.put_event(calendar, body)

    async def remove(href: str) -> None:
        peer.delete_event(calendar, href)

    async def expired_cursor() -> str:
        cursor = (await connector.list_changes(calendar, None, WINDOW)).cursor
        peer.invalidate_delta()
        return cursor

    wrong: list[outlook.OutlookConnector] = []

    def wrong_password() -> outlook.OutlookConnector:
        peer.revoke_all()
        wrong.append(outlook.OutlookConnector(Credentials(None, None, grant.secret), outlook_app))
        # the access token cached in the grant is still unexpired: make msal refresh
        for token in list(wrong[-1].cache.search(wrong[-1].cache.CredentialType.ACCESS_TOKEN)):
            wrong[-1].cache.remove_at(token)
        return wrong[-1]

    yield Side(connector, calendar, put_foreign, remove, expired_cursor, wrong_password)
    for each in [connector, *wrong]:
        await each.close()


class TestOutlookConnector(ConnectorContract):
    async def test_retried_identical_post_returns_the_event_made(
        self, side: Side, peer: GraphPeer
    ) -> None:
        # transactionId: the answer of the first POST was lost; the same POST again must not
        # make a second event.
        first = await side.connector.create(side.calendar_id, event())
        again = await side.connector.create(side.calendar_id, event())
        assert again.href == first.href
        assert len(peer.live_events(side.calendar_id)) == 1
