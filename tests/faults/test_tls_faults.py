"""The TLS row of the fault matrix for the clients that trust only the system's certificates
(CalDAV, Google, Twilio): a server whose certificate is not trusted is told in words, as a
passing failure, and nothing is lost. (SMTP and Graph, whose CA is configurable, run the TLS
fault through to its recovery in test_notify_faults.py and test_sync_faults.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from connectors.base import Credentials
from connectors.errors import Transient
from connectors.google import GoogleConnector
from gateway.config import Settings
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.faults.conftest import TIMEOUT, Certificates, assert_words
from tests.google.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT, app_for
from tests.notify.conftest import deliver, notify_settings, rows, soon
from tests.peers import faults
from tests.peers import google as google_peer
from tests.peers.faults import FaultPeer
from tests.peers.smtp import SmtpServer
from tests.peers.twilio import TwilioServer
from tests.support import new_account
from tests.sync.conftest import World

UNTRUSTED = "certificate is not trusted"


@pytest.fixture
def untrusted(certificates: Certificates) -> Iterator[FaultPeer]:
    """A TLS server on 127.0.0.1 presenting a certificate of a CA nobody trusts."""
    with faults.running(9, certificates.bad) as proxy:  # never forwards: the handshake fails
        yield proxy


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, outbound_allow="127.0.0.1", caldav_timeout_seconds=TIMEOUT)


async def test_caldav(
    store: Store, client: httpx.AsyncClient, settings: Settings, untrusted: FaultPeer
) -> None:
    api = await new_account(store, client)
    world = World(api, store, settings, await api.user(), await api.client())
    answer = await api.post(
        "/v1/integrations",
        {
            "user_id": world.user["id"],
            "provider": "caldav",
            "server_url": untrusted.url + "/",
            "username": "alice",
            "password": "pw",
        },
    )
    # 503: try again later (gateway/api/errors.py), with the reason in words.
    assert answer.status_code == 503, answer.text
    words = answer.json()["error"]["message"]
    assert_words(words)
    assert UNTRUSTED in words


async def test_google(untrusted: FaultPeer) -> None:
    with google_peer.running() as peer:
        app = app_for(peer, api_base=f"{untrusted.url}/calendar/v3/", timeout_seconds=TIMEOUT)
        peer.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        refresh = peer.grant(CLIENT_ID)
        connector = GoogleConnector(Credentials(None, "dr@example.com", refresh), app)
        try:
            with pytest.raises(Transient) as failed:
                await connector.list_calendars()
        finally:
            await connector.close()
    assert_words(failed.value.message)
    assert UNTRUSTED in failed.value.message


async def test_twilio(
    store: Store, client: httpx.AsyncClient, tmp_path: Path, untrusted: FaultPeer
) -> None:
    with SmtpServer() as sink, TwilioServer() as twilio:
        settings = notify_settings(
            tmp_path, sink, twilio, twilio_api_base=untrusted.url, twilio_timeout_seconds=TIMEOUT
        )
        api = await new_account(store, client)
        user = await api.user()
        person = await api.client(
            notify_email=False, notify_sms=True, sms_consent=True, phone="+442071838750"
        )
        start, end = soon(72)
        apt = await api.appointment(user["id"], person["id"], start=start, end=end)
        await deliver(store, settings)
    log = (await api.get(f"/v1/appointments/{apt['id']}/notifications")).json()
    [entry] = [e for e in log if e["channel"] == "sms" and e["kind"] == "confirmation"]
    [attempt] = entry["log"]
    assert attempt["outcome"] == "retry"
    assert_words(attempt["reason"])
    assert UNTRUSTED in attempt["reason"]
    [row] = [r for r in await rows(store, apt["id"]) if r.kind == "confirmation"]
    assert row.status == "pending"  # kept, and due again later
    assert row.due_at.replace(tzinfo=UTC) > datetime.now(UTC) - timedelta(seconds=1)
