"""Recurring series as Graph shows them (stand-in), and as busy time after a sync: the master
with its recurrence, occurrences and exceptions in calendarView/delta and /instances, a cancelled
occurrence, a moved one, across a DST change, and a series deleted whole."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from tests.outlook.conftest import OutlookWorld
from tests.outlook.test_sync import peer_of
from tests.peers.graph import GraphPeer

PARIS = "Romance Standard Time"


def weekly(peer: GraphPeer, calendar: str) -> list[str]:
    """Mondays 10:00 Paris from 2027-03-15, four weeks, across the DST change of 2027-03-28."""
    return peer.put_weekly_series(
        calendar,
        {
            "subject": "Private weekly",
            "start": {"dateTime": "2027-03-15T10:00:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-03-15T11:00:00", "timeZone": PARIS},
        },
        count=4,
    )


async def graph_get(peer: GraphPeer, path: str, **params: str) -> dict[str, Any]:
    """Read the stand-in as a Graph client would (a token of its own)."""
    with peer.lock:
        peer.access_tokens["test-reader"] = ""
    verify = ssl.create_default_context(cafile=peer.ca_pem)
    async with httpx.AsyncClient(base_url=peer.base_url, verify=verify) as http:
        answer = await http.get(
            "/v1.0" + path, params=params, headers={"Authorization": "Bearer test-reader"}
        )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def busy(oworld: OutlookWorld) -> list[tuple[str, str]]:
    response = await oworld.api.get(
        f"/v1/users/{oworld.user['id']}/busy",
        params={"from": "2027-03-14T00:00:00Z", "to": "2027-04-10T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    return [(i["start"], i["end"]) for i in response.json()["busy"]]


async def test_series_shapes_as_graph_shows_them(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    cal = oworld.calendar
    ids = weekly(peer, cal)
    peer.patch_event(
        cal,
        ids[1],
        {
            "start": {"dateTime": "2027-03-22T14:00:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-03-22T15:00:00", "timeZone": PARIS},
        },
    )
    peer.delete_event(cal, ids[2])
    window = {"startDateTime": "2027-03-01T00:00:00Z", "endDateTime": "2027-05-01T00:00:00Z"}
    page = await graph_get(peer, f"/me/calendars/{cal}/calendarView/delta", **window)
    assert "@odata.deltaLink" in page  # one page: three instances, no master
    view = sorted(page["value"], key=lambda e: e["originalStart"])
    assert [e["type"] for e in view] == ["occurrence", "exception", "occurrence"]
    master_id = view[0]["seriesMasterId"]
    assert {e["seriesMasterId"] for e in view} == {master_id}
    assert [e["originalStart"] for e in view] == [
        "2027-03-15T09:00:00Z",
        "2027-03-22T09:00:00Z",  # where the moved one was
        "2027-04-05T08:00:00Z",  # 10:00 Paris in summer time
    ]
    master = await graph_get(peer, f"/me/calendars/{cal}/events/{master_id}")
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["daysOfWeek"] == ["monday"]
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 4
    assert master["recurrence"]["range"]["recurrenceTimeZone"] == PARIS
    instances = await graph_get(peer, f"/me/calendars/{cal}/events/{master_id}/instances", **window)
    assert [e["id"] for e in instances["value"]] == [ids[0], ids[1], ids[3]]


async def test_weekly_series_across_dst_moved_and_cancelled_is_busy_time(
    oworld: OutlookWorld,
) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    ids = weekly(peer, oworld.calendar)
    peer.delete_event(oworld.calendar, ids[3])  # cancelled before we ever saw it
    assert (await oworld.sync()).error is None
    assert await busy(oworld) == [
        ("2027-03-15T09:00:00Z", "2027-03-15T10:00:00Z"),  # CET
        ("2027-03-22T09:00:00Z", "2027-03-22T10:00:00Z"),
        ("2027-03-29T08:00:00Z", "2027-03-29T09:00:00Z"),  # CEST: still 10:00 in Paris
    ]
    # Then, through delta: one occurrence moved, another cancelled.
    peer.patch_event(
        oworld.calendar,
        ids[0],
        {
            "start": {"dateTime": "2027-03-16T14:00:00", "timeZone": PARIS},
            "end": {"dateTime": "2027-03-16T15:30:00", "timeZone": PARIS},
        },
    )
    peer.delete_event(oworld.calendar, ids[1])
    assert (await oworld.sync()).error is None
    assert await busy(oworld) == [
        ("2027-03-16T13:00:00Z", "2027-03-16T14:30:00Z"),  # the moved one (an exception)
        ("2027-03-29T08:00:00Z", "2027-03-29T09:00:00Z"),
    ]


async def test_deleting_the_series_removes_all_its_busy_time(oworld: OutlookWorld) -> None:
    peer = peer_of(oworld)
    await oworld.connect_outlook()
    ids = weekly(peer, oworld.calendar)
    assert (await oworld.sync()).error is None
    assert len(await busy(oworld)) == 4
    master_id = next(e for e in peer.live_events(oworld.calendar) if e["id"] == ids[0])[
        "seriesMasterId"
    ]
    peer.delete_event(oworld.calendar, master_id)
    assert (await oworld.sync()).error is None
    assert await busy(oworld) == []
