"""Browser test fixtures: one chromium per session, one live calgate with its peers.

The daemon runs in a thread (uvicorn, real HTTP on an ephemeral port, its ticks on) with an
SMTP sink and the Twilio stand-in, so a test can book through the API, read the email a client
receives, and follow its link in the browser.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from gateway.app import create_app
from gateway.config import Settings
from gateway.domain import accounts
from gateway.store import migrate
from gateway.store.db import Store
from tests.conftest import make_settings
from tests.node import npm_install
from tests.peers.smtp import SmtpServer, SmtpSink, free_port
from tests.peers.twilio import TwilioPeer, TwilioServer
from tests.web.browser import CHROMIUM


@pytest.fixture(scope="session")
def node_packages(tmp_path_factory: pytest.TempPathFactory) -> None:
    """axe-core and jsQR from npm (skips, saying why, when they cannot be had)."""
    reason = npm_install(tmp_path_factory.mktemp("npm-cache"))
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(node_packages: None) -> Iterator[Browser]:
    """Debian's chromium, shared by a module's tests.

    Per module, not per session: Playwright's sync API keeps an event loop running in the main
    thread while it is open, and the async tests of other folders need that thread's loop free.
    """
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Live:
    """The running daemon, its peers, and an account's API."""

    url: str
    settings: Settings
    smtp: SmtpSink
    twilio: TwilioPeer
    api: httpx.Client
    database_url: str

    def run(self, coroutine_fn: Any, *args: Any) -> Any:
        """Run `coroutine_fn(store, *args)` on a store of our own over the same database.

        In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        """

        async def main() -> Any:
            store = Store.from_url(self.database_url, settings=self.settings)
            try:
                return await coroutine_fn(store, *args)
            finally:
                await store.close()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, main()).result()

    def created(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.api.post(path, json=body)
        assert answer.status_code in (200, 201), answer.text
        result: dict[str, Any] = answer.json()
        return result


async def _prepare(store: Store) -> str:
    await migrate.upgrade(store)
    async with store.transaction() as session:
        _account, issued = await accounts.create_account(
            session, "Maple Street Clinic", timezone="Europe/London", country="GB"
        )
    return issued.secret


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """calgate serving on 127.0.0.1 with ticks, an SMTP sink and the Twilio stand-in."""
    folder = tmp_path_factory.mktemp("live")
    port = free_port()
    with SmtpServer() as smtp, TwilioServer() as twilio:
        settings = make_settings(
            folder,
            public_url=f"http://127.0.0.1:{port}",
            smtp_host="127.0.0.1",
            smtp_port=smtp.port,
            smtp_tls="none",
            smtp_from="bookings@maple.example",
            twilio_account_sid=twilio.account_sid,
            twilio_auth_token=twilio.auth_token,
            twilio_from="+15005550006",
            twilio_api_base=twilio.base,
            notify_tick_seconds=0.25,
            notify_quiet_start="00:00",
            notify_quiet_end="00:00",
        )
        live = Live(
            url=settings.public_url,
            settings=settings,
            smtp=smtp,
            twilio=twilio,
            api=httpx.Client(base_url=settings.public_url, timeout=10),
            database_url=settings.database_url,
        )
        key = live.run(_prepare)
        live.api.headers["Authorization"] = f"Bearer {key}"
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "calgate did not start"
            time.sleep(0.02)
        try:
            yield live
        finally:
            server.should_exit = True
            thread.join(15)
            live.api.close()
