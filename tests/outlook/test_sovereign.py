"""A sovereign cloud: authority and Graph base URL come from the [microsoft] settings, so a
national cloud (or a test) is only settings. Everything goes to the configured stand-in; the
default one (what "the public cloud" is here) is never called."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings
from gateway.domain.uids import appointment_uid
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.outlook.conftest import CLIENT_ID, CLIENT_SECRET, REDIRECT, OutlookWorld
from tests.outlook.test_sync import END, START, ours, peer_of
from tests.peers import graph
from tests.support import new_account

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # sovereign clouds sign in per tenant


@pytest.fixture
def sovereign() -> Iterator[graph.GraphPeer]:
    with graph.running() as running:
        running.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        running.add_calendar("Calendar", default=True)
        yield running


@pytest.fixture
def settings(tmp_path: Path, sovereign: graph.GraphPeer) -> Settings:
    return make_settings(
        tmp_path,
        microsoft_client_id=CLIENT_ID,
        microsoft_client_secret=CLIENT_SECRET,
        microsoft_redirect_url=REDIRECT,
        microsoft_authority=f"{sovereign.base_url}/{TENANT}",
        microsoft_graph_base=f"{sovereign.base_url}/v1.0",
        microsoft_ca_file=sovereign.ca_pem,
    )


@pytest.fixture
async def oworld(
    store: Store, client: httpx.AsyncClient, settings: Settings, sovereign: graph.GraphPeer
) -> OutlookWorld:
    api = await new_account(store, client)
    user = await api.user(timezone="Europe/Paris")
    person = await api.client()
    return OutlookWorld(api, store, settings, user, person, peer=sovereign)


async def test_everything_goes_to_the_configured_cloud(
    oworld: OutlookWorld, peer: graph.GraphPeer
) -> None:
    sovereign = peer_of(oworld)
    url = await oworld.consent_url()
    assert url.startswith(f"{sovereign.base_url}/{TENANT}/oauth2/v2.0/authorize?")
    code, state = await oworld.consent(url)
    assert (await oworld.callback(code, state)).status_code == 200
    apt = await oworld.book(START, END)
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.pushed == 1
    assert appointment_uid(apt["id"]) in ours(oworld)
    response = await oworld.api.delete(f"/v1/integrations/{oworld.integration_id}")
    assert response.status_code == 202, response.text
    await oworld.purge()
    assert ours(oworld) == {}
    # The tenant's identity endpoints and Graph were used; the default cloud never was.
    assert f"/{TENANT}/v2.0/.well-known/openid-configuration" in sovereign.paths
    assert f"/{TENANT}/oauth2/v2.0/token" in sovereign.paths
    assert any(p.startswith("/v1.0/me/calendars") for p in sovereign.paths)
    assert peer.paths == []
