"""Every client SMS ends with a short link that opens the client's own page.

Booked through the API; the SMS is read where Twilio would receive it (the stand-in), its link
followed with httpx and in chromium; the link expires with the page link and goes with the
client on erasure.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser
from sqlalchemy import func, select, update

from gateway.notify.channels.sms import count_segments
from gateway.store.db import Store
from gateway.store.notify_models import OutboxMessage
from gateway.store.web_models import ClientShortLink
from tests.web.browser import look
from tests.web.conftest import Live
from tests.web.test_client_page import _reminders_due

LINK = re.compile(r"(?:Manage:|Gérer :) (http://127\.0\.0\.1:\d+/c/[A-Za-z0-9_-]{11})$")


def _wait_for(predicate: Any, seconds: float = 30, why: Any = None) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, f"timed out: {why() if why else ''}"
        time.sleep(0.05)
    return found


async def _outbox(store: Store, appointment_id: str) -> list[tuple[str, str, str, str | None]]:
    async with store.transaction() as session:
        rows = await session.execute(
            select(
                OutboxMessage.kind,
                OutboxMessage.channel,
                OutboxMessage.status,
                OutboxMessage.last_error,
            ).where(OutboxMessage.appointment_id == appointment_id)
        )
        return [tuple(r) for r in rows]


def _sms_to(live: Live, phone: str) -> list[str]:
    return [r.form["Body"] for r in live.twilio.accepted if r.form.get("To") == phone]


def _book(live: Live, name: str, phone: str, locale: str) -> tuple[str, str]:
    """A client with SMS reminders on, booked in 2 days; (client id, appointment id)."""
    user = live.created(
        "/v1/users",
        {"name": "Dr Mary Seacole", "email": f"mary.{locale}@maple.example"},
    )
    client = live.created(
        "/v1/clients",
        {
            "name": name,
            "phone": phone,
            "locale": locale,
            "timezone": "Europe/Paris",
            "notify_sms": True,
            "sms_consent": True,
        },
    )
    start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    appointment = live.created(
        "/v1/appointments",
        {
            "user_id": user["id"],
            "client_id": client["id"],
            "title": "Check-up",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=30)).isoformat(),
        },
    )
    return client["id"], appointment["id"]


async def _links_of(store: Store, client_id: str) -> int:
    async with store.transaction() as session:
        count = await session.scalar(
            select(func.count()).where(ClientShortLink.client_id == client_id)
        )
        return int(count or 0)


async def _expire_links(store: Store, client_id: str) -> None:
    async with store.transaction() as session:
        await session.execute(
            update(ClientShortLink)
            .where(ClientShortLink.client_id == client_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def _link_of(body: str) -> str:
    found = LINK.search(body)
    assert found, body
    return found.group(1)


def _opens_the_page(link: str, name: str) -> None:
    first = httpx.get(link)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/me/")
    assert first.headers["referrer-policy"] == "no-referrer"
    page = httpx.get(link, follow_redirects=True)
    assert page.status_code == 200 and name in page.text and "<form" in page.text


@pytest.mark.parametrize(
    ("locale", "phone", "booked", "reminded"),
    [
        ("en", "+447400123401", "booked", "reminder"),
        ("fr", "+447400123402", "RDV confirmé", "rappel"),
    ],
)
def test_confirmation_and_reminder_sms_link_to_the_clients_page(
    live: Live, locale: str, phone: str, booked: str, reminded: str
) -> None:
    name = f"Florence Nightingale {locale}"
    client_id, appointment_id = _book(live, name, phone, locale)
    (confirmation,) = _wait_for(
        lambda: _sms_to(live, phone), why=lambda: live.run(_outbox, appointment_id)
    )
    assert booked in confirmation
    live.run(_reminders_due, appointment_id)  # the client's, due now
    planned = len([r for r in live.run(_outbox, appointment_id) if r[1] == "sms"])
    assert planned >= 2  # the confirmation and at least one reminder
    _wait_for(
        lambda: len(_sms_to(live, phone)) == planned, why=lambda: live.run(_outbox, appointment_id)
    )
    reminders = _sms_to(live, phone)[1:]
    assert all(reminded in body for body in reminders)
    for body in (confirmation, *reminders):
        segments = count_segments(body)
        assert (segments.encoding, segments.count) == ("GSM-7", 1), (len(body), body)
        _opens_the_page(_link_of(body), name)
    # One code per message, each stored (hashed) for the client.
    assert len({_link_of(body) for body in (confirmation, *reminders)}) == planned
    assert live.run(_links_of, client_id) == planned


def test_the_short_link_opens_the_page_in_a_browser(browser: Browser, live: Live) -> None:
    phone = "+447400123403"
    _book(live, "Edith Cavell", phone, "en")
    (body,) = _wait_for(lambda: _sms_to(live, phone))
    with look(browser, _link_of(body), "phone") as seen:
        assert seen.page.url.startswith(live.url + "/me/")
        assert seen.page.locator("h1").inner_text() == "Hello Edith Cavell"
        assert seen.page.is_checked("#remind-sms")
        seen.screenshot("client-page-from-sms-phone")
        assert seen.foreign_requests(live.url) == []


def test_an_expired_short_link_says_so_and_erasure_removes_it(live: Live) -> None:
    phone = "+447400123404"
    client_id, _ = _book(live, "Mary Breckinridge", phone, "en")
    (body,) = _wait_for(lambda: _sms_to(live, phone))
    link = _link_of(body)
    live.run(_expire_links, client_id)
    expired = httpx.get(link)
    assert expired.status_code == 410 and 'data-problem="expired"' in expired.text
    assert "<form" not in expired.text and "Breckinridge" not in expired.text
    assert httpx.get(link[:-4] + "zzzz").status_code == 404  # a mistyped code
    assert live.api.delete(f"/v1/clients/{client_id}").status_code == 202
    assert live.run(_links_of, client_id) == 0
    assert httpx.get(link).status_code == 404
