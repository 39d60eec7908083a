"""SSRF at connection time: the CalDAV connector connects only to addresses that pass the check,
whatever the URL resolves to when the connection is made and wherever a redirect points."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.base import ConnectorError, Credentials
from connectors.caldav import CalDAVConnector
from gateway.config import Settings
from gateway.sync import outbound
from tests.conftest import make_settings
from tests.sync.conftest import World


class _Server(ThreadingHTTPServer):
    hits: list[str]
    redirect_to: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        self.server.hits.append(self.command)
        if self.server.redirect_to:
            self.send_response(307)
            self.send_header("Location", self.server.redirect_to)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_PROPFIND = do_REPORT = do_OPTIONS = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(redirect_to: str | None = None) -> _Server:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.hits, server.redirect_to = [], redirect_to
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def internal() -> Iterator[_Server]:
    """A server at an internal address (loopback): it must never be reached."""
    server = _serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Only the host name `localhost` is allowed, not the address 127.0.0.1 as such."""
    return make_settings(tmp_path, outbound_allow="localhost")


async def test_a_redirect_to_a_forbidden_address_is_not_followed(
    world: World, internal: _Server
) -> None:
    redirector = _serve(f"http://127.0.0.1:{internal.server_port}/dav/")
    try:
        response = await world.api.post(
            "/v1/integrations",
            {
                "user_id": world.user["id"],
                "provider": "caldav",
                "server_url": f"http://localhost:{redirector.server_port}/dav/",
                "username": "u",
                "password": "p",
            },
        )
    finally:
        redirector.shutdown()
        redirector.server_close()
    assert redirector.hits, "the allowed server was asked"
    assert internal.hits == [], "the redirect to an internal address was followed"
    assert response.status_code == 502, response.text
    assert "internal address" in response.json()["error"]["message"]


async def test_a_host_resolving_to_a_forbidden_address_is_not_connected(
    tmp_path: Path, internal: _Server
) -> None:
    # The URL passed the check earlier (or DNS changed since): the check is made again at
    # connection time on the address actually connected to. Loopback is not allowed here.
    guard = outbound.connect_guard(make_settings(tmp_path))
    url = f"http://localhost:{internal.server_port}/dav/"
    connector = CalDAVConnector(Credentials(url, "u", "p", guard=guard))
    try:
        with pytest.raises(ConnectorError, match="internal address"):
            await connector.list_calendars()
    finally:
        await connector.close()
    assert internal.hits == []


async def test_allowed_addresses_still_connect(tmp_path: Path, internal: _Server) -> None:
    guard = outbound.connect_guard(make_settings(tmp_path, outbound_allow="127.0.0.1"))
    url = f"http://127.0.0.1:{internal.server_port}/dav/"
    connector = CalDAVConnector(Credentials(url, "u", "p", guard=guard))
    try:
        with pytest.raises(ConnectorError) as caught:
            await connector.list_calendars()  # the stand-in answers 404 to everything
    finally:
        await connector.close()
    assert "internal address" not in caught.value.message
    assert internal.hits
