"""Fixtures for the Outlook connector tests: the Graph stand-in (https, test CA) and the app."""

from __future__ import annotations

import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from connectors import outlook
from connectors.registry import Grant
from gateway.config import Settings
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.peers import graph
from tests.support import new_account
from tests.sync.conftest import World

CLIENT_ID = "5f1c9a2e-0000-4000-8000-00000000ca17"
CLIENT_SECRET = "test~secret~not-real"
REDIRECT = "http://127.0.0.1:8400/oauth/outlook/callback"


@pytest.fixture
def peer() -> Iterator[graph.GraphPeer]:
    with graph.running() as running:
        running.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        running.add_calendar("Calendar", default=True)
        yield running


def app_for(peer: graph.GraphPeer, **over: Any) -> outlook.OutlookApp:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_url": REDIRECT,
        "authority": f"{peer.base_url}/{graph.TENANT}",
        "graph_base": f"{peer.base_url}/v1.0",
        "ca_file": peer.ca_pem,
    }
    values.update(over)
    return outlook.OutlookApp(**values)


def microsoft_settings(peer: graph.GraphPeer) -> dict[str, Any]:
    """make_settings overrides pointing the Outlook connector at the stand-in."""
    return {
        "microsoft_client_id": CLIENT_ID,
        "microsoft_client_secret": CLIENT_SECRET,
        "microsoft_redirect_url": REDIRECT,
        "microsoft_authority": f"{peer.base_url}/{graph.TENANT}",
        "microsoft_graph_base": f"{peer.base_url}/v1.0",
        "microsoft_ca_file": peer.ca_pem,
    }


@pytest.fixture
def outlook_app(peer: graph.GraphPeer) -> outlook.OutlookApp:
    return app_for(peer)


async def consent_at(peer: graph.GraphPeer, url: str) -> dict[str, str]:
    """The person consents at Microsoft: the query of the redirect back to calgate."""
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=peer.ca_pem)) as browser:
        answer = await browser.get(url, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return dict(parse_qsl(location.query))


async def consented(peer: graph.GraphPeer, app: outlook.OutlookApp) -> Grant:
    """A grant obtained through the real flow (consent link, code, msal exchange)."""
    oauth = outlook.MicrosoftOAuth(app)
    state = secrets.token_urlsafe(24)
    back = await consent_at(peer, oauth.consent_url(state))
    return await oauth.exchange_code(back["code"], back["state"])


@pytest.fixture
async def grant(peer: graph.GraphPeer, outlook_app: outlook.OutlookApp) -> Grant:
    return await consented(peer, outlook_app)


@pytest.fixture
def settings(tmp_path: Path, peer: graph.GraphPeer) -> Settings:
    """Settings pointing the Outlook connector at the stand-in."""
    return make_settings(tmp_path, **microsoft_settings(peer))


@dataclass
class OutlookWorld(World):
    """A World (tests/sync/conftest.py) whose practitioner connects Outlook through consent."""

    peer: graph.GraphPeer | None = None

    async def consent_url(self) -> str:
        created = await self.connect(provider="outlook")
        assert created["status"] == "pending" and created["consent_url"]
        return str(created["consent_url"])

    async def consent(self, url: str) -> tuple[str, str]:
        """The person consents at Microsoft: (code, state) of the redirect."""
        assert self.peer is not None
        back = await consent_at(self.peer, url)
        return back["code"], back["state"]

    async def callback(self, code: str, state: str) -> httpx.Response:
        return await self.api.http.get(
            "/oauth/outlook/callback", params={"code": code, "state": state}
        )

    async def connect_outlook(self) -> dict[str, Any]:
        code, state = await self.consent(await self.consent_url())
        page = await self.callback(code, state)
        assert page.status_code == 200, page.text
        return await self.integration()

    @property
    def calendar(self) -> str:
        assert self.peer is not None
        return next(c.id for c in self.peer.calendars.values() if c.default)


@pytest.fixture
async def oworld(
    store: Store, client: httpx.AsyncClient, settings: Settings, peer: graph.GraphPeer
) -> OutlookWorld:
    api = await new_account(store, client)
    user = await api.user(timezone="Europe/Paris")
    person = await api.client()
    return OutlookWorld(api, store, settings, user, person, peer=peer)
