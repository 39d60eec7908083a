"""The connection landing pages and the offline API docs, in the browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Route

from gateway.store.db import Store
from gateway.web.connection_pages import OUTCOMES, Landing, landing_page
from tests.web.browser import look
from tests.web.conftest import Live

RETURN_URL = "https://booking.example/settings/calendars"


@pytest.fixture(scope="module")
def account_id(live: Live) -> str:
    answer = live.api.put("/v1/page-settings", json={"return_url": RETURN_URL})
    assert answer.status_code == 200, answer.text
    assert live.api.put("/v1/page-settings", json={"return_url": "ftp://x"}).status_code == 422
    assert live.api.get("/v1/page-settings").json() == {"return_url": RETURN_URL}
    return str(live.api.get("/v1/account").json()["id"])


@pytest.mark.parametrize(("lang", "size"), [("en", "phone"), ("fr", "desktop")])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_connection_landing(
    browser: Browser, live: Live, account_id: str, outcome: str, lang: str, size: str
) -> None:
    landing = Landing(
        outcome=outcome,
        provider="Google Calendar",
        calendar="Surgery diary" if outcome in ("connected", "already_connected") else None,
        detail="Google answered 503: try again later" if outcome == "error" else None,
        account_id=account_id,
    )

    async def make(store: Store) -> tuple[int, dict[str, str], bytes]:
        response = await landing_page(store, live.settings, landing, lang)
        return response.status_code, dict(response.headers), bytes(response.body)

    status, headers, body = live.run(make)
    assert headers["referrer-policy"] == "no-referrer"
    address = f"{live.url}/oauth/landing-under-test"

    def serve(route: Route) -> None:
        route.fulfill(status=status, headers=headers, body=body)

    with look(browser, None, size, html="") as seen:
        seen.page.route(address, serve)
        seen.page.goto(address)
        h1 = seen.page.locator("#outcome")
        assert h1.get_attribute("data-outcome") == outcome
        assert seen.page.get_attribute("html", "lang") == lang
        assert seen.page.get_attribute("#back", "href") == RETURN_URL
        if outcome in ("connected", "already_connected"):
            assert seen.page.inner_text("#write-calendar") == "Surgery diary"
        if outcome == "error":
            assert "503" in seen.page.inner_text("#detail")
        assert seen.axe_problems() == []
        assert seen.overflow() == []
        seen.screenshot(f"connection-{outcome}-{lang}-{size}")
        assert seen.foreign_requests(live.url) == []


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_api_docs_work_offline(browser: Browser, live: Live, path: str) -> None:
    with look(browser, live.url + path, "desktop") as seen:
        if path == "/docs":
            seen.page.wait_for_selector(".opblock-summary", timeout=20000)
            assert seen.page.locator(".opblock-summary").count() > 20
        else:
            seen.page.wait_for_selector("[data-section-id]", timeout=20000)
            assert "calgate" in seen.page.title()
        seen.screenshot(f"docs{path.replace('/', '-')}")
        assert seen.foreign_requests(live.url) == []
        assert [e for e in seen.console_errors if "Content Security Policy" in e] == []
