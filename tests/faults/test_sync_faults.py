"""The fault matrix for the calendar providers (CalDAV on Radicale, the Google and Graph
stand-ins), each behind the fault peer, driven by the daemon's own sync tick.

For each provider x fault: the tick ends within its bound (no stall past the timeout); a passing
failure leaves the integration active with a retry after a backoff (at least Retry-After for a
429, at most the ceiling), a refused credential leaves it waiting for the person and is not
retried; the status and the integration's /log say what happened in words; and once the fault
clears, the appointment booked meanwhile is in the calendar exactly once.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from caldav.davclient import DAVClient
from sqlalchemy import update

from gateway.app import create_app
from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.sync_models import Integration
from gateway.sync.schedule import SyncTicker
from tests.conftest import make_settings
from tests.faults.conftest import (
    FAULTS,
    RETRY_AFTER,
    TIMEOUT,
    Certificates,
    assert_words,
    script,
)
from tests.google import conftest as g
from tests.outlook import conftest as o
from tests.peers import faults, graph, radicale
from tests.peers import google as google_peer
from tests.peers.faults import FaultPeer, http_reply
from tests.support import new_account
from tests.sync.conftest import World

# A tick that meets a fault ends within this (a slow answer costs the timeout, a few times at
# most; the rest is the machine's load).
TICK_BOUND = 20.0


@dataclass
class Rig:
    """One provider behind the fault peer, connected, and the test's hands on it."""

    world: World
    proxy: FaultPeer
    body: str  # "json" or "xml"
    refused: bytes  # the provider's answer refusing our credentials
    remote_count: Callable[[], Awaitable[int]]  # events in the write calendar, at the peer
    reconnect: Callable[[], Awaitable[None]]  # the person signs in again


async def _row(world: World) -> Integration:
    async with world.store.transaction() as session:
        row = await session.get(Integration, world.integration_id)
        assert row is not None
        session.expunge(row)
        return row


async def _tick(world: World) -> float:
    """One sync tick of the daemon (claims what is due); its wall time."""
    started = time.monotonic()
    await SyncTicker(world.store, world.settings).tick()
    return time.monotonic() - started


async def _make_due(world: World) -> None:
    """Let the backoff pass."""
    async with world.store.transaction() as session:
        await session.execute(
            update(Integration)
            .where(Integration.id == world.integration_id)
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1), lease_expires_at=None)
        )


async def _case(rig: Rig, fault: str) -> None:
    world = rig.world
    await _tick(world)
    assert (await _row(world)).status == "active"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    await world.book(start.isoformat(), (start + timedelta(hours=1)).isoformat())
    await _make_due(world)

    rig.proxy.set(*script(fault, rig.body, rig.refused))
    elapsed = await _tick(world)
    now = datetime.now(UTC)
    row = await _row(world)
    assert elapsed < TICK_BOUND, f"the tick took {elapsed:.1f} s"
    assert_words(row.last_error)
    log = (await world.api.get(f"/v1/integrations/{world.integration_id}/log")).json()
    assert log["data"][0]["detail"] == row.last_error
    status = (await world.integration())["status"]
    if fault == "permanent":
        assert status == "reconnect_needed", row.last_error
        # Not retried: due or not, the tick leaves it alone until the person reconnects.
        await _make_due(world)
        seen = rig.proxy.connections
        await _tick(world)
        assert rig.proxy.connections == seen
    else:
        assert status == "active", row.last_error
        assert row.due_at is not None
        due = row.due_at.replace(tzinfo=UTC) if row.due_at.tzinfo is None else row.due_at
        ceiling = timedelta(minutes=world.settings.sync_max_backoff_minutes)
        assert now < due <= now + ceiling, "a passing failure is retried after a bounded wait"
        if fault == "429":
            assert due >= now + timedelta(seconds=RETRY_AFTER - 2), "Retry-After not honoured"

    rig.proxy.clear()
    if fault == "permanent":
        await rig.reconnect()
    await _make_due(world)
    await _tick(world)
    after = await world.integration()
    assert after["status"] == "active" and after["last_error"] is None, after
    assert await rig.remote_count() == 1, "the appointment is not in the calendar exactly once"
    await _make_due(world)
    await _tick(world)
    assert await rig.remote_count() == 1


def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


@asynccontextmanager
async def _client(settings: Settings, store: Store) -> AsyncIterator[httpx.AsyncClient]:
    """The API in-process, for settings made after the peers started (no ticks)."""
    app = create_app(settings, store, run_ticks=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def _settings(tmp_path: Path, **over: Any) -> Settings:
    return make_settings(
        tmp_path,
        outbound_allow="127.0.0.1",
        caldav_timeout_seconds=TIMEOUT,
        google_timeout_seconds=TIMEOUT,
        microsoft_timeout_seconds=TIMEOUT,
        **over,
    )


# --- CalDAV (Radicale) ----------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path)


@pytest.fixture
async def caldav_rig(
    tmp_path: Path, store: Store, client: httpx.AsyncClient, settings: Settings
) -> AsyncIterator[Rig]:
    with radicale.running(tmp_path / "radicale") as server:
        port = _port(server.url)
        other = DAVClient(server.url, username=server.username, password=server.password)
        work = await asyncio.to_thread(
            lambda: other.principal().make_calendar(name="Work", cal_id="work")
        )
        with faults.running(port) as proxy:
            api = await new_account(store, client)
            world = World(api, store, settings, await api.user(), await api.client())
            body = {
                "provider": "caldav",
                "server_url": proxy.url + "/",
                "username": server.username,
                "password": server.password,
                "write_calendar": "Work",
                "busy_calendars": ["Work"],
            }
            await world.connect(**body)

            async def count() -> int:
                return len(await asyncio.to_thread(work.events))

            async def reconnect() -> None:
                answer = await api.patch(
                    f"/v1/integrations/{world.integration_id}", {"password": server.password}
                )
                assert answer.status_code == 200, answer.text

            refused = http_reply(401, b"", "text/plain", {"WWW-Authenticate": 'Basic realm="x"'})
            yield Rig(world, proxy, "xml", refused, count, reconnect)
        other.close()


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "tls"])
async def test_caldav(caldav_rig: Rig, fault: str) -> None:
    await _case(caldav_rig, fault)


# --- The providers connected by consent: Google and Outlook ---------------------------------


async def _sign_in(world: g.GoogleWorld | o.OutlookWorld, consent_url: str) -> None:
    """The person consents at the provider and comes back to our callback."""
    code, state = await world.consent(consent_url)
    page = await world.callback(code, state)
    assert page.status_code == 200, page.text


@asynccontextmanager
async def _consent_rig(
    tmp_path: Path,
    store: Store,
    proxy: FaultPeer,
    world_class: type[g.GoogleWorld] | type[o.OutlookWorld],
    peer: Any,
    provider_settings: dict[str, Any],
    remote_events: Callable[[Any], list[Any]],
    revoked: bytes,
) -> AsyncIterator[Rig]:
    """A provider that connects by consent, its `peer` reached through `proxy`, connected: the
    rig counts `remote_events(world)`, reconnects by consenting again, and is refused with
    `invalid_grant` saying `revoked` (the provider's own words)."""
    settings = _settings(tmp_path, **provider_settings)
    async with _client(settings, store) as client:
        api = await new_account(store, client)
        world = world_class(api, store, settings, await api.user(), await api.client(), peer=peer)
        await _sign_in(world, await world.consent_url())

        async def count() -> int:
            return len(remote_events(world))

        async def reconnect() -> None:
            answer = await api.patch(
                f"/v1/integrations/{world.integration_id}", {"reconnect": True}
            )
            assert answer.status_code == 200, answer.text
            await _sign_in(world, answer.json()["consent_url"])

        refused = http_reply(
            401, b'{"error": "invalid_grant", "error_description": "' + revoked + b'"}'
        )
        yield Rig(world, proxy, "json", refused, count, reconnect)


@pytest.fixture
async def google_rig(tmp_path: Path, store: Store) -> AsyncIterator[Rig]:
    with google_peer.running() as peer, faults.running(_port(peer.base_url)) as proxy:
        peer.add_client(g.CLIENT_ID, g.CLIENT_SECRET, g.REDIRECT)
        peer.add_calendar(g.CALENDAR, "Dr Test", tz="Europe/London")
        peer.base_url = proxy.url
        async with _consent_rig(
            tmp_path,
            store,
            proxy,
            g.GoogleWorld,
            peer,
            g.google_settings(peer),
            lambda _world: peer.live_events(g.CALENDAR),
            b"Token has been expired or revoked.",
        ) as rig:
            yield rig


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "tls"])
async def test_google(google_rig: Rig, fault: str) -> None:
    await _case(google_rig, fault)


@pytest.fixture
async def graph_rig(tmp_path: Path, store: Store, certificates: Certificates) -> AsyncIterator[Rig]:
    with graph.running() as peer:
        upstream = ssl.create_default_context(cafile=peer.ca_pem)
        with faults.running(_port(peer.base_url), certificates.good, upstream) as proxy:
            proxy.bad_tls = certificates.bad
            proxy.only_path = b"/v1.0/"  # Graph's answers; sign-in faults: test_outlook_sign_in
            peer.add_client(o.CLIENT_ID, o.CLIENT_SECRET, o.REDIRECT)
            peer.add_calendar("Calendar", default=True)
            peer.base_url = proxy.url
            peer.ca_pem = certificates.ca_pem  # what the person's browser trusts: the proxy
            async with _consent_rig(
                tmp_path,
                store,
                proxy,
                o.OutlookWorld,
                peer,
                o.microsoft_settings(peer),
                lambda world: peer.live_events(world.calendar),
                b"AADSTS70000: The provided grant has expired due to it being revoked.",
            ) as rig:
                yield rig


@pytest.mark.parametrize("fault", FAULTS)
async def test_outlook(graph_rig: Rig, fault: str) -> None:
    await _case(graph_rig, fault)


@pytest.mark.parametrize("fault", ["5xx", "html", "truncated", "huge"])
async def test_outlook_sign_in(graph_rig: Rig, fault: str) -> None:
    """The same faults at Microsoft's sign-in service (msal reads its configuration at every
    sync): a passing failure in words, never a crash."""
    graph_rig.proxy.only_path = f"/{graph.TENANT}/".encode()
    await _case(graph_rig, fault)
