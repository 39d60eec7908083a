"""Connecting Outlook through the neutral consent flow: msal's auth-code flow with PKCE and nonce,
single-use expiring state, declined consent, invalid_grant → reconnect_needed."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select, update

from gateway.store.lifecycle_models import OAuthConsent
from gateway.store.sync_models import Integration
from gateway.store.types import utcnow
from tests.outlook.conftest import CLIENT_ID, REDIRECT, OutlookWorld


async def test_consent_round_trip_connects_and_starts_syncing(oworld: OutlookWorld) -> None:
    url = await oworld.consent_url()
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["nonce"]
    assert {"Calendars.ReadWrite", "offline_access", "User.Read"} <= set(query["scope"][0].split())
    state = query["state"][0]

    code, returned = await oworld.consent(url)
    assert returned == state
    page = await oworld.callback(code, state)
    assert page.status_code == 200, page.text
    assert "Outlook is connected" in page.text

    integration = await oworld.integration()
    assert integration["status"] == "active"
    assert integration["username"] == "dr@contoso.example"
    calendars = {c["remote_id"]: c for c in integration["calendars"]}
    assert calendars[oworld.calendar]["write"] and calendars[oworld.calendar]["busy"]
    assert oworld.peer is not None
    (refresh,) = [t for t, r in oworld.peer.refresh_tokens.items() if not r["revoked"]]
    async with oworld.store.transaction() as session:
        row = await session.get(Integration, oworld.integration_id)
        assert row is not None and refresh not in row.secret  # the token cache is encrypted
    outcome = await oworld.sync()
    assert outcome.error is None, outcome.error


async def test_a_code_is_useless_without_the_flow_of_its_state(oworld: OutlookWorld) -> None:
    # PKCE: the code of one consent, presented with another consent's state, is refused by
    # Microsoft (the code verifier derived from that state does not match the challenge).
    code1, _state1 = await oworld.consent(await oworld.consent_url())
    first = oworld.integration_id
    _code2, state2 = await oworld.consent(await oworld.consent_url())
    page = await oworld.callback(code1, state2)
    assert page.status_code == 400
    assert "not connected" in page.text
    oworld.integration_id = first
    assert (await oworld.integration())["status"] == "pending"


async def test_replayed_forged_and_expired_state_are_refused(oworld: OutlookWorld) -> None:
    code, state = await oworld.consent(await oworld.consent_url())
    forged = await oworld.callback(code, state[:-2] + "xx")
    assert forged.status_code == 400
    assert (await oworld.callback(code, state)).status_code == 200
    replay = await oworld.callback(code, state)
    assert replay.status_code == 200  # a reload: "already connected", nothing done again
    assert "already connected" in replay.text

    code2, state2 = await oworld.consent(await oworld.consent_url())
    async with oworld.store.transaction() as session:
        await session.execute(
            update(OAuthConsent)
            .where(OAuthConsent.used_at.is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert (await oworld.callback(code2, state2)).status_code == 400
    assert (await oworld.integration())["status"] == "pending"
    async with oworld.store.transaction() as session:
        kept = (await session.scalars(select(OAuthConsent.provider))).all()
    assert set(kept) == {"outlook"}


async def test_declined_consent_connects_nothing(oworld: OutlookWorld) -> None:
    assert oworld.peer is not None
    oworld.peer.decline = True
    url = await oworld.consent_url()
    assert oworld.peer is not None
    from tests.outlook.conftest import consent_at

    back = await consent_at(oworld.peer, url)
    assert back["error"] == "access_denied"
    page = await oworld.api.http.get("/oauth/outlook/callback", params=back)
    assert page.status_code == 400
    assert "not connected" in page.text
    assert (await oworld.integration())["status"] == "pending"


async def test_invalid_grant_means_reconnect_needed_and_loses_nothing(
    oworld: OutlookWorld,
) -> None:
    assert oworld.peer is not None
    await oworld.connect_outlook()
    apt = await oworld.book("2026-12-01T09:00:00Z", "2026-12-01T10:00:00Z")
    assert (await oworld.sync()).pushed == 1
    oworld.peer.revoke_all()
    outcome = await oworld.sync()
    assert outcome.status == "reconnect_needed"
    integration = await oworld.integration()
    assert integration["status"] == "reconnect_needed"
    assert integration["counts"]["mappings"] == 1
    assert (await oworld.appointment(apt["id"]))["status"] != "cancelled"
    calls = oworld.peer.graph_calls
    assert (await oworld.sync()).status == "reconnect_needed"  # not retried
    assert oworld.peer.graph_calls == calls

    answer = await oworld.api.patch(
        f"/v1/integrations/{oworld.integration_id}", {"reconnect": True}
    )
    assert answer.status_code == 200, answer.text
    code, state = await oworld.consent(str(answer.json()["consent_url"]))
    assert (await oworld.callback(code, state)).status_code == 200
    outcome = await oworld.sync()
    assert outcome.error is None and outcome.pushed == 0
    assert len(oworld.peer.live_events(oworld.calendar)) == 1
