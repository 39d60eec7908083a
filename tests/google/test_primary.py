"""Google: the calendar written to is the account's primary one, whatever the calendarList order
(issue 14, item 8), and the integration says which one it is."""

from __future__ import annotations

from tests.google.conftest import CALENDAR, GoogleWorld
from tests.peers.google import GooglePeer

TEAM = "team-rota@group.calendar.google.com"


async def test_a_shared_calendar_listed_first_is_not_written_to(
    gworld: GoogleWorld, peer: GooglePeer
) -> None:
    # The account can write to a shared team rota, which Google lists before its own calendar.
    own = peer.calendars.pop(CALENDAR)
    peer.add_calendar(TEAM, "Team rota", "writer")
    peer.calendars[CALENDAR] = own
    peer.primary = CALENDAR

    integration = await gworld.connect_google()
    calendars = {c["remote_id"]: c for c in integration["calendars"]}
    order = list(calendars)
    assert order.index(TEAM) < order.index(CALENDAR)  # listed first, as Google did
    assert calendars[CALENDAR]["write"] and not calendars[TEAM]["write"]
    assert integration["write_calendar"] == "Dr Test"
    assert integration["username"] == CALENDAR

    await gworld.book("2027-01-12T09:00:00Z", "2027-01-12T10:00:00Z")
    assert (await gworld.sync()).pushed == 1
    assert len(peer.live_events(CALENDAR)) == 1
    assert peer.live_events(TEAM) == []
