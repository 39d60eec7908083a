"""Two accounts, each syncing its own Radicale calendar, whose objects define a zone under the
same non-IANA TZID ("Custom/Zone") with other rules: each account's busy time is at the instant
its own calendar says, whichever synced first (icalendar keeps zones by TZID per process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from caldav.davclient import DAVClient

from gateway.config import Settings
from gateway.store.db import Store
from tests.peers import radicale
from tests.support import new_account
from tests.sync.conftest import World


def _object(offset: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other System//EN\r\n"
        "BEGIN:VTIMEZONE\r\nTZID:Custom/Zone\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nTZNAME:CZ\r\nEND:STANDARD\r\n"
        "END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:zone-meeting@elsewhere\r\n"
        "DTSTAMP:20270101T000000Z\r\nDTSTART;TZID=Custom/Zone:20270120T100000\r\n"
        "DTEND;TZID=Custom/Zone:20270120T110000\r\nSUMMARY:Private\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )


async def _world(store: Store, client: httpx.AsyncClient, settings: Settings) -> World:
    api = await new_account(store, client, name="Clinic")
    user = await api.user(timezone="Europe/Paris")
    return World(api, store, settings, user, await api.client())


async def _calendar(server: radicale.RadicaleServer, offset: str) -> None:
    dav = DAVClient(server.url, username=server.username, password=server.password)
    work = await asyncio.to_thread(dav.principal().make_calendar, name="Work", cal_id="work")
    async with httpx.AsyncClient(auth=(server.username, server.password), timeout=120) as http:
        answer = await http.put(
            f"{work.url}zone.ics",
            content=_object(offset),
            headers={"Content-Type": "text/calendar"},
        )
        assert answer.status_code in (201, 204), answer.text
    dav.close()


async def _busy(world: World) -> list[str]:
    response = await world.api.get(
        f"/v1/users/{world.user['id']}/busy",
        params={"from": "2027-01-19T00:00:00Z", "to": "2027-01-22T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    return [i["start"] for i in response.json()["busy"]]


# Each case uses rules no other case uses, so each is the first this process sees of them.
@pytest.mark.parametrize(
    ("first", "second", "first_utc", "second_utc", "order"),
    [("+0300", "-0500", "07:00", "15:00", (0, 1)), ("-0200", "+0600", "12:00", "04:00", (1, 0))],
)
async def test_each_account_reads_its_own_zone(
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    tmp_path: Path,
    first: str,
    second: str,
    first_utc: str,
    second_utc: str,
    order: tuple[int, int],
) -> None:
    with (
        radicale.running(tmp_path / "one") as one_server,
        radicale.running(tmp_path / "two") as two_server,
    ):
        worlds = []
        for server, offset in ((one_server, first), (two_server, second)):
            await _calendar(server, offset)
            world = await _world(store, client, settings)
            await world.connect(
                provider="caldav",
                server_url=server.url,
                username=server.username,
                password=server.password,
                write_calendar="Work",
                busy_calendars=["Work"],
            )
            worlds.append(world)
        for at in order:  # the second account's calendar read first in the second case
            assert (await worlds[at].sync()).error is None
    assert await _busy(worlds[0]) == [f"2027-01-20T{first_utc}:00Z"]
    assert await _busy(worlds[1]) == [f"2027-01-20T{second_utc}:00Z"]
