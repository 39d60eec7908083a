"""Fixtures for the Google connector tests: the stand-in peer and the app configured for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from connectors import google
from gateway.config import Settings
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.peers import google as google_peer
from tests.support import new_account
from tests.sync.conftest import World

CLIENT_ID = "calgate-test.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-test-secret"
REDIRECT = "http://127.0.0.1:8400/oauth/google/callback"
CALENDAR = "dr@example.com"


@pytest.fixture
def peer() -> Iterator[google_peer.GooglePeer]:
    with google_peer.running() as running:
        running.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        running.add_calendar(CALENDAR, "Dr Test", tz="Europe/London")
        running.add_calendar("holidays@group.v.calendar.google.com", "Holidays", "reader")
        yield running


def app_for(peer: google_peer.GooglePeer, **over: object) -> google.GoogleApp:
    values: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_url": REDIRECT,
        "auth_uri": f"{peer.base_url}/o/oauth2/auth",
        "token_uri": f"{peer.base_url}/token",
        "revoke_uri": f"{peer.base_url}/revoke",
        "api_base": f"{peer.base_url}/calendar/v3/",
    }
    values.update(over)
    return google.GoogleApp(**values)  # type: ignore[arg-type]


@pytest.fixture
def google_app(peer: google_peer.GooglePeer) -> google.GoogleApp:
    return app_for(peer)


@pytest.fixture
def settings(tmp_path: Path, peer: google_peer.GooglePeer) -> Settings:
    """Settings pointing the Google connector at the stand-in."""
    return make_settings(tmp_path, **google_settings(peer))


def google_settings(peer: google_peer.GooglePeer, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "google_client_id": CLIENT_ID,
        "google_client_secret": CLIENT_SECRET,
        "google_redirect_url": REDIRECT,
        "google_auth_uri": f"{peer.base_url}/o/oauth2/auth",
        "google_token_uri": f"{peer.base_url}/token",
        "google_revoke_uri": f"{peer.base_url}/revoke",
        "google_api_base": f"{peer.base_url}/calendar/v3/",
    }
    values.update(over)
    return values


def google_env(peer: google_peer.GooglePeer, **over: Any) -> dict[str, str]:
    """`google_settings` as the environment of a real `calgate` process."""
    return {f"CALGATE_{k.upper()}": str(v) for k, v in google_settings(peer, **over).items()}


def consent_through(api: httpx.Client, created: dict[str, Any]) -> None:
    """The person follows the consent link of a just created Google integration (`created`, the
    API's answer) and Google sends them back to calgate at `api` (a real daemon)."""
    consent = httpx.get(created["consent_url"], follow_redirects=False)
    assert consent.status_code == 302, consent.text
    back = dict(parse_qsl(urlsplit(consent.headers["location"]).query))
    page = api.get("/oauth/google/callback", params=back)
    assert page.status_code == 200, page.text


@dataclass
class GoogleWorld(World):
    """A World (tests/sync/conftest.py) whose practitioner connects Google through consent."""

    peer: google_peer.GooglePeer | None = None

    async def consent_url(self) -> str:
        created = await self.connect(provider="google")
        assert created["status"] == "pending" and created["consent_url"]
        return str(created["consent_url"])

    async def consent(self, url: str) -> tuple[str, str]:
        """The person consents at Google: returns (code, state) of the redirect."""
        async with httpx.AsyncClient() as browser:
            answer = await browser.get(url, follow_redirects=False)
        assert answer.status_code == 302, answer.text
        location = urlsplit(answer.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
        query = dict(parse_qsl(location.query))
        return query["code"], query["state"]

    async def callback(self, code: str, state: str) -> httpx.Response:
        return await self.api.http.get(
            "/oauth/google/callback", params={"code": code, "state": state}
        )

    async def connect_google(self) -> dict[str, Any]:
        code, state = await self.consent(await self.consent_url())
        page = await self.callback(code, state)
        assert page.status_code == 200, page.text
        return await self.integration()

    def refresh_token(self) -> str:
        assert self.peer is not None
        (token,) = [t for t, r in self.peer.refresh_tokens.items() if not r["revoked"]]
        return token


@pytest.fixture
async def gworld(
    store: Store, client: httpx.AsyncClient, settings: Settings, peer: google_peer.GooglePeer
) -> GoogleWorld:
    api = await new_account(store, client)
    user = await api.user(timezone="Europe/Paris")
    person = await api.client()
    return GoogleWorld(api, store, settings, user, person, peer=peer)
