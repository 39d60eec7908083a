"""Google's limits: rate-limit answers (backoff honouring Retry-After), the calendar usage
quota (writes paused, said in the status), the per-account request budget, 5xx."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors import google
from connectors.base import Credentials, Event, LocalState, Transient
from gateway.sync.schedule import next_due
from tests.connectors.contract import WINDOW
from tests.google.conftest import CALENDAR, CLIENT_ID, GoogleWorld
from tests.peers.google import GooglePeer

START = datetime(2026, 5, 4, 9, tzinfo=UTC)


def event(uid: str = "apt_limits@calgate") -> Event:
    return Event(uid, START, START + timedelta(hours=1), "Europe/Paris", "Session")


@pytest.fixture
def connector(peer: GooglePeer, google_app: google.GoogleApp) -> google.GoogleConnector:
    refresh = peer.grant(CLIENT_ID, " ".join(google.SCOPES))
    return google.GoogleConnector(Credentials(None, CALENDAR, refresh), google_app)


async def test_429_is_retried_after_retry_after(
    peer: GooglePeer, connector: google.GoogleConnector
) -> None:
    await connector.list_calendars()  # token fetched
    peer.fail_next("429")
    calls = peer.api_calls()
    began = time.monotonic()
    await connector.create(CALENDAR, event())
    assert time.monotonic() - began >= 1.0  # Retry-After: 1
    assert peer.api_calls() - calls == 2
    assert len(peer.live_events(CALENDAR)) == 1
    await connector.close()


@pytest.mark.parametrize("kind", ["rateLimitExceeded", "userRateLimitExceeded"])
async def test_403_rate_limits_back_off_then_give_up_as_transient(
    peer: GooglePeer,
    connector: google.GoogleConnector,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.setattr(google.limits, "BACKOFF_SECONDS", 0.01)
    await connector.list_calendars()
    peer.fail_next(kind, times=2)
    calls = peer.api_calls()
    await connector.list_changes(CALENDAR, None, WINDOW)  # two retries, then through
    assert peer.api_calls() - calls == 3
    peer.fail_next(kind, times=10)
    with pytest.raises(Transient) as caught:
        await connector.list_changes(CALENDAR, None, WINDOW)
    assert type(caught.value) is Transient
    await connector.close()


async def test_long_retry_after_goes_back_to_the_engine(gworld: GoogleWorld) -> None:
    assert gworld.peer is not None
    await gworld.connect_google()
    await gworld.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    gworld.peer.fail_next("429", retry_after=120)
    calls = gworld.peer.api_calls()
    outcome = await gworld.sync()
    assert gworld.peer.api_calls() - calls == 1  # not slept on here
    assert outcome.retry_after == 120 and outcome.status == "active"
    now = datetime.now(UTC)
    assert next_due(gworld.settings, outcome, 1, now) >= now + timedelta(seconds=120)
    status = await gworld.integration()
    assert status["status"] == "active" and "slow down" in status["last_error"]
    assert (await gworld.sync()).pushed == 1  # and later it goes through


async def test_server_errors_are_transient_without_inline_retry(
    peer: GooglePeer, connector: google.GoogleConnector
) -> None:
    await connector.list_calendars()
    peer.fail_next("500")
    calls = peer.api_calls()
    with pytest.raises(Transient):
        await connector.create(CALENDAR, event())
    assert peer.api_calls() - calls == 1
    await connector.close()


async def test_request_budget_per_account() -> None:
    key = "budget-test-key"
    state = LocalState()
    waits = [await state.book(key, 3, 60) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 59 < waits[3] <= 60
    assert await state.book("another-account", 3, 60) == 0.0


async def test_quota_pause_blocks_writes_only(
    peer: GooglePeer, connector: google.GoogleConnector
) -> None:
    await connector.list_calendars()
    peer.fail_next("quotaExceeded", methods={"POST"})
    with pytest.raises(google.WritesPaused) as caught:
        await connector.create(CALENDAR, event())
    assert caught.value.retry_after is not None and caught.value.retry_after > 3000
    assert await connector.limits.paused_until(CALENDAR) is not None
    calls = peer.api_calls()
    with pytest.raises(google.WritesPaused):
        await connector.create(CALENDAR, event("apt_other@calgate"))
    assert peer.api_calls() == calls  # not even sent
    await connector.list_changes(CALENDAR, None, WINDOW)  # reads go on
    assert peer.api_calls() == calls + 1
    # Other calendars of the account are not paused.
    assert await connector.limits.paused_until("other") is None
    await connector.close()
