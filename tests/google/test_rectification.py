"""Rectification flows out to Google: a new appointment title is in the feeds at once and at
the Google stand-in at the next sync; the old one is nowhere there."""

from __future__ import annotations

from gateway.domain.uids import appointment_uid
from tests.google.conftest import GoogleWorld
from tests.google.test_sync import ours, peer_of
from tests.privacy.rectify import (
    END,
    NEW_NAME,
    NEW_TITLE,
    OLD_NAME,
    OLD_TITLE,
    START,
    account_feed,
    rectify,
)


async def test_a_rename_reaches_google_and_leaves_no_old_copy(
    gworld: GoogleWorld,
) -> None:
    google = peer_of(gworld)
    gworld.person = (
        await gworld.api.patch(f"/v1/clients/{gworld.person['id']}", {"name": OLD_NAME})
    ).json()
    await gworld.connect_google()
    feed = await account_feed(gworld)
    apt = await gworld.book(START, END, title=OLD_TITLE)
    assert (await gworld.sync()).pushed == 1
    uid = appointment_uid(apt["id"])
    assert ours(google)[uid]["summary"] == OLD_TITLE

    await rectify(gworld, apt, feed)
    assert (await gworld.sync()).pushed == 1
    assert ours(google)[uid]["summary"] == NEW_TITLE
    everything = repr(google.calendars)
    assert NEW_TITLE in everything
    assert OLD_TITLE not in everything
    assert OLD_NAME not in everything and NEW_NAME not in everything
