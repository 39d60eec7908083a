"""Graph's limits: at most 4 requests at once per mailbox, the per-grant budget, Retry-After."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors import outlook
from connectors.base import Credentials, LocalState, Transient
from connectors.outlook import limits
from connectors.registry import Grant
from tests.connectors.contract import WINDOW
from tests.peers.graph import GraphPeer


async def test_at_most_four_requests_at_once(
    peer: GraphPeer, outlook_app: outlook.OutlookApp, grant: Grant
) -> None:
    (calendar,) = peer.calendars
    connector = outlook.OutlookConnector(Credentials(None, None, grant.secret), outlook_app)
    try:
        await connector.list_calendars()  # token and discovery first
        peer.delay = 0.1
        await asyncio.gather(*[connector.find_by_uid(calendar, f"u{i}", WINDOW) for i in range(12)])
    finally:
        await connector.close()
    assert 2 <= peer.most_in_flight <= limits.CONCURRENT_PER_MAILBOX  # 12 without the cap


async def test_the_grant_budget_makes_requests_wait(peer: GraphPeer, grant: Grant) -> None:
    from tests.outlook.conftest import app_for

    app = app_for(peer, requests_per_window=3, budget_window_seconds=1.0)
    shared = LocalState()  # two connectors of one grant share one budget
    one = outlook.OutlookConnector(Credentials(None, None, grant.secret), app, shared)
    two = outlook.OutlookConnector(Credentials(None, None, grant.secret), app, shared)
    try:
        began = time.monotonic()
        for connector in (one, two, one, two):  # the 4th of 3 per second waits its turn
            await connector.list_calendars()
        assert time.monotonic() - began >= 1.0
    finally:
        await one.close()
        await two.close()


async def test_a_long_retry_after_is_handed_to_the_engine(
    peer: GraphPeer, outlook_app: outlook.OutlookApp, grant: Grant
) -> None:
    from tests.peers.graph import FAILURES, GraphError

    connector = outlook.OutlookConnector(Credentials(None, None, grant.secret), outlook_app)
    FAILURES["429-long"] = GraphError(429, "TooManyRequests", "Slow down", {"Retry-After": "30"})
    peer.fail_next("429-long")
    try:
        with pytest.raises(Transient) as caught:
            await connector.list_calendars()
    finally:
        await connector.close()
        del FAILURES["429-long"]
    assert caught.value.retry_after == 30
