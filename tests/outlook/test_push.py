"""Graph change notifications: subscriptions with the validation handshake, clientState checked,
a pull within seconds, renewal, lifecycle notifications, http public_url, disconnect.

The app is served over https on a real socket (uvicorn in the test's loop, a test CA the Graph
stand-in trusts), because Graph posts its handshake and notifications over https.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import uvicorn
from sqlalchemy import select, update

from connectors import outlook
from connectors.errors import ConnectorError
from connectors.outlook import notify
from gateway.app import create_app
from gateway.config import Settings
from gateway.domain.uids import appointment_uid
from gateway.store.db import Store
from gateway.store.lifecycle_models import WatchChannel
from gateway.store.sync_models import Integration, SyncCalendar
from gateway.sync import providers, watch
from gateway.sync.schedule import SyncTicker
from gateway.worker import JobRunner
from tests.conftest import make_settings
from tests.outlook.conftest import OutlookWorld, microsoft_settings
from tests.outlook.test_sync import END, START, ours, peer_of
from tests.peers.graph import GraphPeer


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    with sock:
        yield sock


@pytest.fixture
def tls(tmp_path: Path, peer: GraphPeer) -> tuple[str, str]:
    """Our webhook's certificate and key, from a CA the stand-in trusts (as Graph trusts ours)."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(tmp_path / "webhook-ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "webhook.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "webhook.key"))
    peer.webhook_ca = str(tmp_path / "webhook-ca.pem")
    return str(tmp_path / "webhook.pem"), str(tmp_path / "webhook.key")


@pytest.fixture
def settings(tmp_path: Path, peer: GraphPeer, listener: socket.socket) -> Settings:
    port = listener.getsockname()[1]
    return make_settings(
        tmp_path, public_url=f"https://127.0.0.1:{port}", **microsoft_settings(peer)
    )


@pytest.fixture
async def served(
    settings: Settings, store: Store, listener: socket.socket, tls: tuple[str, str]
) -> AsyncIterator[None]:
    app = create_app(settings, store, run_ticks=False)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ssl_certfile=tls[0], ssl_keyfile=tls[1]
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(6000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def delivered(peer: GraphPeer, count: int) -> list[dict[str, Any]]:
    """The first `count` notifications the stand-in delivered (waits up to 60 s)."""
    for _ in range(6000):
        if len(peer.notifications) >= count:
            return peer.notifications[:count]
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} notifications did not arrive ({peer.notifications})")


async def integration_row(oworld: OutlookWorld) -> Integration:
    async with oworld.store.transaction() as session:
        row = await session.get(Integration, oworld.integration_id)
        assert row is not None
        return row


async def channel_rows(oworld: OutlookWorld) -> list[WatchChannel]:
    async with oworld.store.transaction() as session:
        return list(await session.scalars(select(WatchChannel)))


async def subscribed(oworld: OutlookWorld) -> tuple[GraphPeer, dict[str, Any]]:
    """Connected, one appointment pushed, then one subscription made by the channel tick."""
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    apt = await oworld.book(START, END)
    assert (await oworld.sync()).pushed == 1
    assert await watch.tick(oworld.store, oworld.settings) == 1
    async with oworld.store.transaction() as session:
        await session.execute(update(Integration).values(dirty=False))
    return peer, apt


def webhook(oworld: OutlookWorld) -> httpx.AsyncClient:
    peer = peer_of(oworld)
    trusted = ssl.create_default_context(cafile=peer.webhook_ca)
    return httpx.AsyncClient(base_url=oworld.settings.public_url, verify=trusted)


async def test_connecting_subscribes_at_the_next_job_tick(
    oworld: OutlookWorld, served: None
) -> None:
    """Push starts seconds after connecting (one job tick), not at the 5-minute channel tick;
    choosing calendars later subscribes to them just as soon."""
    peer = peer_of(oworld)
    work = peer.add_calendar("Work")
    jobs = JobRunner(oworld.store, oworld.settings)
    await oworld.connect_outlook()
    assert peer.subscriptions == {}  # the consent answers at once; the job does the rest
    assert await jobs.tick() == 1
    (sub,) = peer.subscriptions.values()
    assert sub.calendar_id == oworld.calendar
    # A personal account (the stand-in's default): no tenant kept to compare.
    assert [(c.channel_id, c.resource_id) for c in await channel_rows(oworld)] == [(sub.id, "")]
    assert await watch.tick(oworld.store, oworld.settings) == 0  # nothing left to start

    chosen = await oworld.api.patch(
        f"/v1/integrations/{oworld.integration_id}", {"busy_calendars": ["Work"]}
    )
    assert chosen.status_code == 200, chosen.text
    resumed = await oworld.api.patch(f"/v1/integrations/{oworld.integration_id}", {"resume": True})
    assert resumed.status_code == 200, resumed.text
    assert await jobs.tick() == 1  # one job per integration however often it was asked for
    # Only the chosen busy calendar is synced now (with the write calendar): one subscription
    # each, the one that was already there kept.
    assert {s.calendar_id for s in peer.subscriptions.values()} == {oworld.calendar, work}
    assert sub.id in peer.subscriptions
    assert await jobs.tick() == 0


async def test_subscription_handshake_then_a_change_is_pulled(
    oworld: OutlookWorld, served: None
) -> None:
    peer, apt = await subscribed(oworld)
    (sub,) = peer.subscriptions.values()
    # Graph validated our webhook before it answered: the token came back as text/plain.
    (check,) = peer.validations
    assert check["status"] == 200 and check["body"].startswith("Validation: ")
    assert sub.calendar_id == oworld.calendar
    assert sub.body["resource"] == f"me/calendars/{oworld.calendar}/events"
    assert sub.body["changeType"] == "created,updated,deleted"
    assert sub.body["notificationUrl"] == oworld.settings.public_url + "/webhooks/outlook"
    assert sub.body["lifecycleNotificationUrl"] == sub.body["notificationUrl"]
    assert datetime.now(UTC) + timedelta(minutes=4230) >= sub.expires
    assert sub.expires > datetime.now(UTC) + timedelta(minutes=4000)
    # The clientState is random and kept only as its hash.
    state = sub.body["clientState"]
    (row,) = await channel_rows(oworld)
    assert row.channel_id == sub.id and row.calendar_id == oworld.calendar
    assert row.token_hash == hashlib.sha256(state.encode()).hexdigest()
    assert state not in row.token_hash and len(state) >= 32

    # The person moves our event in Outlook: Graph notifies, we answer 202 and mark only.
    event_id = ours(oworld)[appointment_uid(apt["id"])]["id"]
    peer.patch_event(
        oworld.calendar,
        event_id,
        {
            "start": {"dateTime": "2027-01-12T17:00:00", "timeZone": "Romance Standard Time"},
            "end": {"dateTime": "2027-01-12T18:00:00", "timeZone": "Romance Standard Time"},
        },
    )
    (note,) = await delivered(peer, 1)
    assert note["status"] == 202
    assert note["payload"]["value"][0]["clientState"] == state
    assert (await integration_row(oworld)).dirty
    # The sync tick claims it at once and pulls it through delta (a delta link, not a listing).
    before = len(peer.calls)
    assert await SyncTicker(oworld.store, oworld.settings).tick() == 1
    got = await oworld.appointment(apt["id"])
    assert (got["start"], got["end"]) == ("2027-01-12T16:00:00Z", "2027-01-12T17:00:00Z")
    pulls = [p for m, p, _ in peer.calls[before:] if p.endswith("/calendarView/delta")]
    assert pulls == [f"/v1.0/me/calendars/{oworld.calendar}/calendarView/delta"]


async def test_forged_client_state_is_refused_and_changes_nothing(
    oworld: OutlookWorld, served: None
) -> None:
    peer, _ = await subscribed(oworld)
    (sub,) = peer.subscriptions.values()
    item = {
        "subscriptionId": sub.id,
        "changeType": "updated",
        "resource": "Users/x/Events/y",
        "clientState": "forged",
        "tenantId": peer.tenant_id,
    }
    good = {**item, "clientState": sub.body["clientState"]}
    async with webhook(oworld) as http:
        for body in (
            {"value": [item]},
            {"value": [{k: v for k, v in item.items() if k != "clientState"}]},
            {"value": [good, item]},  # one forged item refuses the whole batch
            {"value": [{**item, "lifecycleEvent": "missed"}]},
        ):
            answer = await http.post("/webhooks/outlook", content=json.dumps(body))
            assert answer.status_code == 403, body
        unknown = {"value": [{**good, "subscriptionId": "sub-unknown"}]}
        assert (await http.post("/webhooks/outlook", json=unknown)).status_code == 404
        assert (await http.post("/webhooks/outlook", content=b"{not json")).status_code == 400
        assert (await http.post("/webhooks/outlook", json={"value": []})).status_code == 400
    row = await integration_row(oworld)
    assert not row.dirty
    async with oworld.store.transaction() as session:
        cursors = list(await session.scalars(select(SyncCalendar.cursor)))
    assert all(cursors)  # the forged "missed" dropped no cursor
    # The genuine notification is accepted (202) and marks the integration due.
    async with webhook(oworld) as http:
        answer = await http.post("/webhooks/outlook", json={"value": [good]})
    assert answer.status_code == 202
    assert (await integration_row(oworld)).dirty


ORG_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"  # a work account's tenant, not a personal one


async def test_a_notification_from_another_tenant_is_refused(
    oworld: OutlookWorld, served: None
) -> None:
    peer = peer_of(oworld)
    peer.tenant_id = ORG_TENANT  # the mailbox belongs to an organisation
    peer, apt = await subscribed(oworld)
    (sub,) = peer.subscriptions.values()
    (row,) = await channel_rows(oworld)
    assert row.resource_id == ORG_TENANT  # from the grant (msal's home account id)
    good = {
        "subscriptionId": sub.id,
        "changeType": "updated",
        "resource": "Users/x/Events/y",
        "clientState": sub.body["clientState"],
        "tenantId": ORG_TENANT,
    }
    other = {**good, "tenantId": "0f2d4c1e-5b6a-4e7f-8a9b-0c1d2e3f4a5b"}
    lifecycle = {k: v for k, v in other.items() if k not in ("changeType", "tenantId")}
    async with webhook(oworld) as http:
        for body in (
            {"value": [other]},
            {"value": [good, other]},
            # Some lifecycle notifications name the tenant organizationId.
            {
                "value": [
                    {**lifecycle, "lifecycleEvent": "missed", "organizationId": ORG_TENANT[::-1]}
                ]
            },
        ):
            answer = await http.post("/webhooks/outlook", json=body)
            assert answer.status_code == 403, body
    assert not (await integration_row(oworld)).dirty
    async with oworld.store.transaction() as session:
        assert all(await session.scalars(select(SyncCalendar.cursor)))
    # The mailbox's own tenant, in any letter case, is accepted.
    async with webhook(oworld) as http:
        answer = await http.post(
            "/webhooks/outlook", json={"value": [{**good, "tenantId": ORG_TENANT.upper()}]}
        )
    assert answer.status_code == 202
    assert (await integration_row(oworld)).dirty
    # And so are Graph's own notifications of a change made in Outlook.
    event_id = ours(oworld)[appointment_uid(apt["id"])]["id"]
    peer.patch_event(oworld.calendar, event_id, {"subject": "Moved"})
    (note,) = await delivered(peer, 1)
    assert note["payload"]["value"][0]["tenantId"] == ORG_TENANT
    assert note["status"] == 202


async def test_validation_token_is_echoed_as_plain_text(oworld: OutlookWorld, served: None) -> None:
    token = "Validation: Testing client application reachability Request-Id: 1f2e"
    async with webhook(oworld) as http:
        answer = await http.post("/webhooks/outlook", params={"validationToken": token})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
        assert answer.text == token
        too_long = await http.post("/webhooks/outlook", params={"validationToken": "x" * 5000})
        assert too_long.status_code == 400


async def test_graph_refuses_a_subscription_whose_handshake_fails(
    oworld: OutlookWorld, served: None, outlook_app: outlook.OutlookApp
) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    async with oworld.store.transaction() as session:
        integration = await session.get(Integration, oworld.integration_id)
    assert integration is not None
    connector = providers.connector_for(oworld.store, oworld.settings, integration)
    base = oworld.settings.public_url
    try:
        # A wrong answer (a door that is not ours answers 404, not the token) ...
        with pytest.raises(ConnectorError):
            await connector.watch_start(oworld.calendar, base + "/webhooks/google", "s" * 40)
        # ... or a late one (Graph waits 10 s; here the stand-in waits almost nothing) ...
        peer.validation_seconds = 0.000001
        with pytest.raises(ConnectorError):
            await connector.watch_start(oworld.calendar, base + "/webhooks/outlook", "s" * 40)
        peer.validation_seconds = 10.0
        # ... or an http address: no subscription.
        with pytest.raises(ConnectorError):
            await connector.watch_start(
                oworld.calendar, "http://127.0.0.1:9/webhooks/outlook", "s" * 40
            )
    finally:
        await connector.close()
    assert peer.subscriptions == {}
    assert [v["status"] for v in peer.validations] == [404, 0]  # 0: no answer in time


async def test_subscriptions_are_renewed_before_expiry(oworld: OutlookWorld, served: None) -> None:
    peer, _ = await subscribed(oworld)
    (sub,) = peer.subscriptions.values()
    assert await watch.tick(oworld.store, oworld.settings) == 0  # far from expiry
    # Three days later (as the renewal margin sees it): renewed in place with a PATCH.
    async with oworld.store.transaction() as session:
        await session.execute(
            update(WatchChannel).values(expires_at=datetime.now(UTC) + timedelta(hours=2))
        )
    before = len(peer.calls)
    assert await watch.tick(oworld.store, oworld.settings) == 0  # none started
    assert [(m, p) for m, p, _ in peer.calls[before:]] == [
        ("PATCH", f"/v1.0/subscriptions/{sub.id}")
    ]
    assert list(peer.subscriptions) == [sub.id] and len(peer.validations) == 1
    (row,) = await channel_rows(oworld)
    assert row.channel_id == sub.id and row.expires_at == sub.expires
    assert sub.expires > datetime.now(UTC) + timedelta(minutes=4000)
    # A subscription Graph no longer knows is replaced by a new one (handshake and all).
    with peer.lock:
        peer.subscriptions.clear()
    async with oworld.store.transaction() as session:
        await session.execute(update(WatchChannel).values(expires_at=datetime.now(UTC)))
    assert await watch.tick(oworld.store, oworld.settings) == 1
    (new,) = list(peer.subscriptions)
    assert new != sub.id and len(peer.validations) == 2
    assert [r.channel_id for r in await channel_rows(oworld)] == [new]


async def test_lifecycle_notifications_renew_recreate_and_resync(
    oworld: OutlookWorld, served: None
) -> None:
    peer, _ = await subscribed(oworld)
    (first,) = list(peer.subscriptions)

    # reauthorizationRequired: the channel is due for renewal; the next channel tick renews it.
    peer.lifecycle("reauthorizationRequired")
    assert (await delivered(peer, 1))[0]["status"] == 202
    (row,) = await channel_rows(oworld)
    assert row.expires_at <= datetime.now(UTC)
    before = len(peer.calls)
    assert await watch.tick(oworld.store, oworld.settings) == 0
    assert [m for m, _, _ in peer.calls[before:]] == ["PATCH"]
    (row,) = await channel_rows(oworld)
    assert row.channel_id == first and row.expires_at > datetime.now(UTC) + timedelta(hours=60)
    second = first

    # subscriptionRemoved: Graph dropped it; we pull (changes may be missed) and recreate it.
    peer.lifecycle("subscriptionRemoved")
    assert (await delivered(peer, 2))[1]["status"] == 202
    assert await channel_rows(oworld) == []
    assert (await integration_row(oworld)).dirty
    assert await watch.tick(oworld.store, oworld.settings) == 1
    (third,) = list(peer.subscriptions)
    assert third not in (first, second)

    # missed: the calendar is listed in full again (a new delta round, not the delta link).
    async with oworld.store.transaction() as session:
        await session.execute(update(Integration).values(dirty=False))
    async with oworld.store.transaction() as session:
        (listed_at,) = list(await session.scalars(select(SyncCalendar.full_at)))
    peer.lifecycle("missed")
    assert (await delivered(peer, 3))[2]["status"] == 202
    assert (await integration_row(oworld)).dirty
    async with oworld.store.transaction() as session:
        assert list(await session.scalars(select(SyncCalendar.cursor))) == [None]
    assert await SyncTicker(oworld.store, oworld.settings).tick() == 1
    async with oworld.store.transaction() as session:
        (cursor, relisted_at) = (
            await session.execute(select(SyncCalendar.cursor, SyncCalendar.full_at))
        ).one()
    assert cursor and relisted_at is not None and listed_at is not None
    assert relisted_at > listed_at  # listed in full, a new delta link kept
    assert (await oworld.integration())["last_error"] is None
    assert len(ours(oworld)) == 1  # nothing duplicated by the full listing


async def test_disconnect_deletes_the_subscriptions(oworld: OutlookWorld, served: None) -> None:
    peer, _ = await subscribed(oworld)
    assert len(peer.subscriptions) == 1
    response = await oworld.api.delete(f"/v1/integrations/{oworld.integration_id}")
    assert response.status_code == 202, response.text
    await oworld.purge()
    assert peer.subscriptions == {}
    assert ours(oworld) == {}
    assert await channel_rows(oworld) == []


async def test_http_public_url_skips_subscriptions_with_one_warning(
    tmp_path: Path, peer: GraphPeer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, **microsoft_settings(peer))  # http://127.0.0.1:8400

    class Jobs:  # what install() needs of APScheduler
        def __init__(self) -> None:
            self.added: list[str] = []

        def add_job(self, *_: Any, id: str, **__: Any) -> None:
            self.added.append(id)

    jobs = Jobs()  # install() adds the channel tick for providers that can be pushed to
    with caplog.at_level(logging.WARNING, logger="calgate.sync"):
        watch.install(jobs, store, settings)
    warned = [r.getMessage() for r in caplog.records if "https" in r.getMessage()]
    assert len(warned) == 1 and "Outlook" in warned[0]
    assert jobs.added == ["watch-channels"]  # for the test provider, which calls http too
    assert await watch.tick(store, settings) == 0
    assert peer.subscriptions == {} and peer.validations == []


def test_subscription_body_never_asks_past_graphs_maximum() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    body = notify.subscription_body("cal", "https://x/webhooks/outlook", "t", now, 10_000)
    assert body["expirationDateTime"] == "2027-01-03T22:30:00Z"  # 4,230 minutes
