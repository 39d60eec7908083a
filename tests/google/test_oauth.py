"""Connecting Google: consent link, callback, single-use expiring state, invalid_grant."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select, update

from connectors import google
from gateway.app import create_app
from gateway.store.lifecycle_models import OAuthConsent
from gateway.store.sync_models import Integration
from gateway.store.types import utcnow
from tests.google.conftest import CALENDAR, CLIENT_ID, REDIRECT, GoogleWorld


async def test_consent_round_trip_connects_and_starts_syncing(gworld: GoogleWorld) -> None:
    url = await gworld.consent_url()
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["access_type"] == ["offline"]
    assert query["response_type"] == ["code"]
    assert set(query["scope"][0].split()) == set(google.SCOPES)
    state = query["state"][0]
    assert len(state) >= 40

    code, returned = await gworld.consent(url)
    assert returned == state
    page = await gworld.callback(code, state)
    assert page.status_code == 200
    assert "Google Calendar is connected" in page.text
    assert page.headers["cache-control"] == "no-store"

    integration = await gworld.integration()
    assert integration["status"] == "active"
    assert integration["username"] == CALENDAR
    calendars = {c["remote_id"]: c for c in integration["calendars"]}
    assert calendars[CALENDAR]["write"] and calendars[CALENDAR]["busy"]
    assert not calendars["holidays@group.v.calendar.google.com"]["write"]
    # Only hashes of the state are kept; the refresh token is stored encrypted.
    async with gworld.store.transaction() as session:
        consent = await session.scalar(select(OAuthConsent))
        assert consent is not None and consent.used_at is not None
        assert state not in consent.state_hash
        row = await session.get(Integration, gworld.integration_id)
        assert row is not None and gworld.refresh_token() not in row.secret
    outcome = await gworld.sync()
    assert outcome.error is None, outcome.error


async def test_replayed_forged_and_expired_state_are_refused(gworld: GoogleWorld) -> None:
    code, state = await gworld.consent(await gworld.consent_url())
    forged = await gworld.callback(code, state[:-2] + "xx")
    assert forged.status_code == 400
    assert "cannot be used" in forged.text
    missing = await gworld.api.http.get("/oauth/google/callback", params={"code": code})
    assert missing.status_code == 400
    assert (await gworld.callback(code, state)).status_code == 200
    replay = await gworld.callback(code, state)
    assert replay.status_code == 200  # a reload: "already connected", nothing done again
    assert "already connected" in replay.text

    # A second link for the same practitioner, used too late.
    code2, state2 = await gworld.consent(await gworld.consent_url())
    async with gworld.store.transaction() as session:
        await session.execute(
            update(OAuthConsent)
            .where(OAuthConsent.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    late = await gworld.callback(code2, state2)
    assert late.status_code == 400
    assert (await gworld.integration())["status"] == "pending"


async def test_declined_consent_connects_nothing(gworld: GoogleWorld) -> None:
    url = await gworld.consent_url()
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = await gworld.api.http.get(
        "/oauth/google/callback", params={"error": "access_denied", "state": state}
    )
    assert page.status_code == 400
    assert "not connected" in page.text
    assert (await gworld.integration())["status"] == "pending"


async def test_page_escapes_what_it_shows(gworld: GoogleWorld) -> None:
    assert gworld.peer is not None
    gworld.peer.calendars[CALENDAR].summary = "<script>alert(1)</script>"
    await gworld.connect_google()
    # The landing page named the calendar, escaped.
    code, state = await gworld.consent(await _reconnect_url(gworld))
    page = await gworld.callback(code, state)
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;" in page.text


async def _reconnect_url(gworld: GoogleWorld) -> str:
    answer = await gworld.api.patch(
        f"/v1/integrations/{gworld.integration_id}", {"reconnect": True}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["consent_url"])


async def test_invalid_grant_means_reconnect_needed_and_loses_nothing(
    gworld: GoogleWorld,
) -> None:
    assert gworld.peer is not None
    await gworld.connect_google()
    apt = await gworld.book("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    assert (await gworld.sync()).pushed == 1
    gworld.peer.revoke_grant(gworld.refresh_token())
    outcome = await gworld.sync()
    assert outcome.status == "reconnect_needed"
    integration = await gworld.integration()
    assert integration["status"] == "reconnect_needed"
    assert "reconnect" in integration["last_error"]
    assert integration["counts"]["mappings"] == 1
    assert (await gworld.appointment(apt["id"]))["status"] != "cancelled"
    refreshes = len(gworld.peer.token_requests)
    assert (await gworld.sync()).status == "reconnect_needed"  # not retried
    assert len(gworld.peer.token_requests) == refreshes

    # Reconnecting the same integration resumes it with its mappings.
    code, state = await gworld.consent(await _reconnect_url(gworld))
    assert (await gworld.callback(code, state)).status_code == 200
    integration = await gworld.integration()
    assert integration["status"] == "active" and integration["last_error"] is None
    outcome = await gworld.sync()
    assert outcome.error is None and outcome.pushed == 0
    assert len(gworld.peer.live_events(CALENDAR)) == 1


async def test_without_a_client_id_google_is_refused_clearly(gworld: GoogleWorld) -> None:
    unconfigured = gworld.settings.model_copy(update={"google_client_id": ""})
    app = create_app(unconfigured, gworld.store, run_ticks=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        answer = await http.post(
            "/v1/integrations",
            json={"user_id": gworld.user["id"], "provider": "google"},
            headers=gworld.api.headers,
        )
    assert answer.status_code == 422, answer.text
    assert "not configured" in answer.json()["error"]["message"]
    listed = await gworld.api.get("/v1/integrations")
    assert listed.json()["data"] == []  # nothing half-created
