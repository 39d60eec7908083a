"""The feed subscription page, in a real browser at phone and desktop sizes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser

from tests.web.browser import decode_qr, look
from tests.web.conftest import Live


@pytest.fixture(scope="module")
def feed(live: Live) -> dict[str, Any]:
    """A practitioner's feed as the API answered its creation (with its URLs)."""
    user = live.created(
        "/v1/users",
        {"name": "Dr Ada Lovelace", "email": "ada@example.com", "timezone": "Europe/London"},
    )
    return live.created(
        "/v1/feeds", {"scope": "user", "user_id": user["id"], "name": "Dr Lovelace's diary, Zürich"}
    )


def test_api_answer_gives_the_page_url(live: Live, feed: dict[str, Any]) -> None:
    assert feed["page_url"] == feed["url"].removesuffix(".ics")
    page = httpx.get(feed["page_url"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    unknown = httpx.get(live.url + "/feeds/" + "B" * 43)
    ics_miss = httpx.get(live.url + "/feeds/" + "B" * 43 + ".ics")
    assert (unknown.status_code, unknown.content) == (ics_miss.status_code, ics_miss.content)
    assert unknown.status_code == 404


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_button_does_what_it_says(
    browser: Browser, live: Live, feed: dict[str, Any], size: str
) -> None:
    with look(browser, feed["page_url"], size) as seen:
        page = seen.page
        seen.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
        assert page.locator("h1").inner_text() == "Dr Lovelace's diary, Zürich"
        # Apple / Outlook desktop / Thunderbird: the webcal:// form of the feed.
        assert page.get_attribute("#webcal", "href") == feed["webcal_url"]
        google = page.get_attribute("#google", "href")
        assert google == "https://calendar.google.com/calendar/render?cid=" + quote(
            feed["webcal_url"], safe=""
        )
        for button, host in (
            ("#outlook-com", "outlook.live.com"),
            ("#office", "outlook.office.com"),
        ):
            href = urlsplit(page.get_attribute(button, "href") or "")
            assert href.netloc == host and href.path == "/calendar/0/addfromweb"
            assert parse_qs(href.query)["url"] == [feed["url"]]
        # Copy puts the link on the clipboard and says so.
        page.click("#copy")
        page.wait_for_function("document.getElementById('copy-status').textContent !== ''")
        assert page.evaluate("navigator.clipboard.readText()") == feed["url"]
        assert page.locator("#copy-status").inner_text() == "Link copied"
        # The QR code, as a phone camera would see it, is the feed's link.
        png = page.locator("#qr svg").screenshot()
        assert decode_qr(browser, png) == feed["url"]
        assert seen.axe_problems() == []
        assert seen.overflow() == []
        seen.screenshot(f"feed-page-{size}")
        assert seen.foreign_requests(live.url) == []
        assert seen.console_errors == []  # a CSP violation would show here


def test_french_and_dark(browser: Browser, live: Live, feed: dict[str, Any]) -> None:
    with look(browser, feed["page_url"], "phone", color_scheme="dark", locale="fr-FR") as seen:
        assert seen.page.get_attribute("html", "lang") == "fr"
        assert "Choisissez votre application" in seen.page.inner_text("main")
        assert seen.axe_problems() == []
        seen.screenshot("feed-page-phone-fr-dark")
        assert seen.foreign_requests(live.url) == []
