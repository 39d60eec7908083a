"""A client's own page, reached from the email they receive, used in a real browser."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from playwright.sync_api import Browser
from sqlalchemy import select, update

from gateway import secrets
from gateway.store.db import Store
from gateway.store.models import Client
from gateway.store.notify_models import OutboxMessage
from gateway.store.web_models import ContactChange
from tests.peers.smtp import Received
from tests.web.browser import look
from tests.web.conftest import Live

CLIENT_EMAIL = "grace@example.com"
CLIENT_PHONE = "+447911123456"


def _wait_for(predicate: Any, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def _emails_to(live: Live, address: str, kind_word: str) -> list[Received]:
    return [
        r
        for r in live.smtp.received
        if address in r.recipients and kind_word in str(r.message["Subject"])
    ]


@dataclass
class Booking:
    client_id: str
    appointment: dict[str, Any]
    link: str  # the client page link, from the confirmation email
    email: Received


@pytest.fixture(scope="module")
def booking(live: Live) -> Booking:
    """A client (zone New York, SMS on) booked in 3 days; their confirmation email."""
    user = live.created(
        "/v1/users",
        {"name": "Dr Ada Lovelace", "email": "ada@maple.example", "timezone": "Europe/London"},
    )
    client = live.created(
        "/v1/clients",
        {
            "name": "Grace Hopper",
            "email": CLIENT_EMAIL,
            "phone": CLIENT_PHONE,
            "timezone": "America/New_York",
            "notify_sms": True,
            "sms_consent": True,
        },
    )
    start = (datetime.now(UTC) + timedelta(days=3)).replace(
        hour=15, minute=0, second=0, microsecond=0
    )
    appointment = live.created(
        "/v1/appointments",
        {
            "user_id": user["id"],
            "client_id": client["id"],
            "title": "Dental check-up",
            "location": "12 Maple Street, London",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=45)).isoformat(),
        },
    )
    (email,) = _wait_for(lambda: _emails_to(live, CLIENT_EMAIL, "Booked"))
    text = email.message.get_body(("plain",)).get_content()
    link = re.search(r"Manage my reminders: (\S+)", text).group(1)
    return Booking(client["id"], appointment, link, email)


def test_the_email_links_to_the_page_and_unsubscribes_in_one_click(
    live: Live, booking: Booking
) -> None:
    message = booking.email.message
    assert booking.link.startswith(live.url + "/me/")
    assert message["List-Unsubscribe"] == f"<{booking.link}/unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    assert f'href="{booking.link}"' in html
    assert "Eastern" in html  # the zone's name, in words


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_page_shows_the_appointment_in_the_clients_zone(
    browser: Browser, live: Live, booking: Booking, size: str
) -> None:
    with look(browser, booking.link, size) as seen:
        page = seen.page
        assert page.locator("h1").inner_text() == "Hello Grace Hopper"
        start_ny = datetime.fromisoformat(booking.appointment["start"]).astimezone(
            ZoneInfo("America/New_York")
        )
        when = page.locator(".appointment .when").inner_text()
        assert start_ny.strftime("%-I:%M") in when
        assert ("GMT-5" in when) or ("GMT-4" in when)
        assert "America/New_York" in page.inner_text("main")
        # Google and Outlook links carry the appointment's own times.
        google = parse_qs(urlsplit(page.get_attribute(".add-google", "href") or "").query)
        start = datetime.fromisoformat(booking.appointment["start"]).astimezone(UTC)
        assert google["dates"][0].startswith(start.strftime("%Y%m%dT%H%M%SZ"))
        outlook = parse_qs(urlsplit(page.get_attribute(".add-outlook", "href") or "").query)
        assert datetime.fromisoformat(outlook["startdt"][0]) == start
        # "Add to my calendar" downloads the one event, with the UID of the feeds.
        with page.expect_download() as download:
            page.click(".add-ics")
        ics = icalendar.Calendar.from_ical(Path(download.value.path()).read_bytes())
        (event,) = ics.walk("VEVENT")
        assert str(event["UID"]) == f"{booking.appointment['id']}@calgate"
        assert event.decoded("DTSTART") == start
        assert seen.axe_problems() == []
        assert seen.overflow() == []
        seen.screenshot(f"client-page-{size}")
        assert seen.foreign_requests(live.url) == []
        assert seen.console_errors == []


async def _reminders_due(store: Store, appointment_id: str) -> list[tuple[str, str]]:
    async with store.transaction() as session:
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.appointment_id == appointment_id,
                OutboxMessage.kind == "reminder",
                OutboxMessage.recipient_type == "client",
            )
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        rows = await session.execute(
            select(OutboxMessage.channel, OutboxMessage.status).where(
                OutboxMessage.appointment_id == appointment_id,
                OutboxMessage.kind == "reminder",
                OutboxMessage.recipient_type == "client",
            )
        )
        return [(c, s) for c, s in rows]


async def _reminder_statuses(store: Store, appointment_id: str) -> dict[str, set[str]]:
    async with store.transaction() as session:
        rows = await session.execute(
            select(OutboxMessage.channel, OutboxMessage.status).where(
                OutboxMessage.appointment_id == appointment_id,
                OutboxMessage.kind == "reminder",
                OutboxMessage.recipient_type == "client",
            )
        )
        found: dict[str, set[str]] = {}
        for channel, status in rows:
            found.setdefault(channel, set()).add(status)
        return found


def test_sms_off_then_the_next_reminder_goes_by_email_only(
    browser: Browser, live: Live, booking: Booking
) -> None:
    with look(browser, booking.link, "phone") as seen:
        page = seen.page
        assert page.is_checked("#remind-sms") and page.is_checked("#remind-email")
        page.uncheck("#remind-sms")
        page.click("#save-reminders")
        page.wait_for_selector("#notice")
        assert page.locator("#notice").inner_text() == "Saved."
        assert not page.is_checked("#remind-sms")
        seen.screenshot("client-page-saved-phone")
    sms_before = len(live.twilio.requests)
    planned = live.run(_reminders_due, booking.appointment["id"])
    assert {c for c, _ in planned} == {"email", "sms"}  # both were planned at booking
    _wait_for(lambda: _emails_to(live, CLIENT_EMAIL, "Reminder"))
    statuses = _wait_for(
        lambda: (
            (s := live.run(_reminder_statuses, booking.appointment["id"]))
            and "pending" not in set().union(*s.values())
            and s
        )
    )
    assert statuses["email"] == {"sent"}
    assert statuses["sms"] == {"suppressed"}
    assert len(live.twilio.requests) == sms_before


def _forged_old_token(live: Live, client_id: str, fingerprint: str) -> str:
    class LongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 40 * 86400

    serializer = URLSafeTimedSerializer(
        secrets.signing_key(live.settings, "web-links"), salt="client-page", signer=LongAgo
    )
    return str(serializer.dumps([client_id, fingerprint]))


def test_expired_and_broken_links_say_so_and_offer_nothing(
    browser: Browser, live: Live, booking: Booking
) -> None:
    token = booking.link.rsplit("/", 1)[1]
    fingerprint = URLSafeTimedSerializer(
        secrets.signing_key(live.settings, "web-links"), salt="client-page"
    ).loads(token)[1]
    old = f"{live.url}/me/{_forged_old_token(live, booking.client_id, fingerprint)}"
    with look(browser, old, "phone") as seen:
        assert seen.page.get_attribute("#problem", "data-problem") == "expired"
        assert seen.page.locator("form").count() == 0
        assert "Grace" not in seen.page.content()
        assert seen.axe_problems() == []
        seen.screenshot("client-link-expired-phone")
    broken = httpx.get(booking.link[:-3] + "abc")
    assert broken.status_code == 404 and "does not work" in broken.text


def test_forms_refuse_posts_from_elsewhere(live: Live, booking: Booking) -> None:
    no_token = httpx.post(booking.link + "/reminders", data={"email": "on"})
    assert no_token.status_code == 403
    page = httpx.get(booking.link).text
    form_token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)
    other_site = httpx.post(
        booking.link + "/reminders",
        data={"form_token": form_token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert other_site.status_code == 403
    assert live.run(_client_row, booking.client_id).notify_email is True


async def _client_row(store: Store, client_id: str) -> Client:
    async with store.transaction() as session:
        client = await session.get(Client, client_id)
        assert client is not None
        return client


async def _changes(store: Store, client_id: str) -> list[tuple[str, str]]:
    async with store.transaction() as session:
        rows = await session.execute(
            select(ContactChange.field, ContactChange.source).where(
                ContactChange.client_id == client_id
            )
        )
        return sorted((f, s) for f, s in rows)


def test_language_zone_and_contact_corrections(
    browser: Browser, live: Live, booking: Booking
) -> None:
    with look(browser, booking.link, "desktop") as seen:
        page = seen.page
        page.select_option("#locale", "fr")
        page.select_option("#timezone", "Europe/Paris")
        page.click("#save-preferences")
        page.wait_for_selector("#notice")
        assert page.get_attribute("html", "lang") == "fr"
        assert page.locator("#notice").inner_text() == "Enregistré."
        assert "Europe/Paris" in page.inner_text("main")
        start_paris = datetime.fromisoformat(booking.appointment["start"]).astimezone(
            ZoneInfo("Europe/Paris")
        )
        assert f"{start_paris.hour:02d}:00" in page.locator(".appointment .when").inner_text()
        # A mistyped phone number is refused in words, nothing changes.
        page.fill("#phone", "12")
        page.click("#save-contact")
        page.wait_for_selector("#errors")
        # The email address, corrected: the page moves to a fresh link.
        page.fill("#phone", CLIENT_PHONE)
        page.fill("#email", "grace.hopper@example.com")
        page.click("#save-contact")
        page.wait_for_selector("#notice")
        assert page.url != booking.link and page.url.startswith(live.url + "/me/")
        assert page.input_value("#email") == "grace.hopper@example.com"
        assert seen.axe_problems() == []
        seen.screenshot("client-page-fr-desktop")
    old = httpx.get(booking.link, headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert old.status_code == 410 and "remplacé" in old.text
    assert "<form" not in old.text and "Grace" not in old.text
    changes = live.run(_changes, booking.client_id)
    assert ("email", "client_page") in changes
    assert ("locale", "client_page") in changes and ("timezone", "client_page") in changes
    assert ("notify_sms", "client_page") in changes
    row = live.run(_client_row, booking.client_id)
    assert (row.email, row.locale, row.timezone) == (
        "grace.hopper@example.com",
        "fr",
        "Europe/Paris",
    )


def test_one_click_unsubscribe_needs_no_browser(live: Live) -> None:
    client = live.created("/v1/clients", {"name": "Alan Turing", "email": "alan@example.com"})
    from gateway.web.client_links import client_page_url

    link = client_page_url(live.settings, client["id"], "alan@example.com", None)
    refused = httpx.post(link + "/unsubscribe", data={"other": "thing"})
    assert refused.status_code == 400
    done = httpx.post(link + "/unsubscribe", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200
    assert live.run(_client_row, client["id"]).notify_email is False
    assert ("notify_email", "one_click") in live.run(_changes, client["id"])
