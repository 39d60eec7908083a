"""Deleting a practitioner with a Google integration: channel stopped, grant revoked at the
revoke endpoint, our event removed, nothing left here but the receipt."""

from __future__ import annotations

from connectors import google
from gateway.domain.uids import appointment_uid
from gateway.privacy.receipts import count_rows
from tests.google.conftest import CALENDAR, GoogleWorld
from tests.google.test_sync import END, START, peer_of


async def test_deleting_a_user_revokes_and_removes_our_events(gworld: GoogleWorld) -> None:
    from gateway.sync import watch

    peer = peer_of(gworld)
    await gworld.connect_google()
    apt = await gworld.book(START, END)
    await gworld.sync()
    assert await watch.tick(gworld.store, gworld.settings) == 1
    (channel_id,) = list(peer.channels)
    refresh = gworld.refresh_token()
    href = google.event_id(appointment_uid(apt["id"]))
    assert href in {e["id"] for e in peer.live_events(CALENDAR)}

    response = await gworld.api.delete(f"/v1/users/{gworld.user['id']}")
    assert response.status_code == 202, response.text
    await gworld.purge()
    assert (await gworld.api.get(f"/v1/users/{gworld.user['id']}")).status_code == 404
    assert peer.stopped_channels == [channel_id]
    assert peer.revoked == [refresh] and peer.refresh_tokens[refresh]["revoked"]
    assert href not in {e["id"] for e in peer.live_events(CALENDAR)}
    receipt = await gworld.api.get(f"/v1/integrations/{gworld.integration_id}/purge-receipt")
    assert receipt.status_code == 200, receipt.text
    assert receipt.json()["counts"]["remote_events_deleted"] == 1
    assert receipt.json()["remote_left"] is None
    async with gworld.store.transaction() as session:
        left = await count_rows(session, gworld.integration_id)
    assert set(left.values()) == {0}, left
