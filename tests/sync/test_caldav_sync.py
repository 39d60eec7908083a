"""Two-way sync against a real Radicale on 127.0.0.1. The tests act as the other side by editing
the calendar with the caldav library directly, as a calendar app would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from caldav.davclient import DAVClient
from sqlalchemy import select, update

from gateway.domain.uids import appointment_uid
from gateway.privacy.receipts import count_rows
from gateway.store.sync_models import SyncCalendar, SyncMapping
from tests.peers import radicale, xandikos
from tests.sync.conftest import World

START = "2027-01-12T09:00:00Z"
END = "2027-01-12T10:00:00Z"
ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//test//other side//EN\r
{body}END:VCALENDAR\r
"""


@dataclass(frozen=True)
class Dav:
    """A running CalDAV server: where to connect, as whom, and its sync-token dialect."""

    name: str
    url: str
    username: str
    password: str
    dead_token: str  # a token of the server's format naming a state it never had


@pytest.fixture(params=["radicale", "xandikos"])
def dav(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Dav]:
    """Each test runs against both servers (Xandikos: no authentication over http)."""
    if request.param == "radicale":
        with radicale.running(tmp_path / "radicale") as server:
            token = "http://radicale.org/ns/sync/" + "0" * 64
            yield Dav("radicale", server.url, server.username, server.password, token)
    else:
        with xandikos.running(tmp_path / "xandikos") as url:
            yield Dav("xandikos", url + "user/", "any", "pw-Xandikos-1", "0" * 40)


class OtherSide:
    """A calendar app editing the same account."""

    def __init__(self, server: Dav) -> None:
        self.client = DAVClient(server.url, username=server.username, password=server.password)
        principal = self.client.principal()
        self.work = principal.make_calendar(name="Work", cal_id="work")
        self.personal = principal.make_calendar(name="Personal", cal_id="personal")

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def by_uid(self, uid: str) -> Any:
        try:
            return await self.run(self.work.get_object_by_uid, uid)
        except Exception:
            return None

    async def start_of(self, uid: str) -> datetime:
        obj = await self.by_uid(uid)
        assert obj is not None, "event not on the server"
        return obj.icalendar_component["DTSTART"].dt.astimezone(UTC)

    async def add(self, calendar: Any, name: str, vevents: str) -> None:
        await self.run(
            self.client.put,
            f"{calendar.url}{name}.ics",
            ICS.format(body=vevents),
            {"Content-Type": "text/calendar"},
        )

    async def count(self) -> int:
        return len(await self.run(self.work.get_objects_by_sync_token))


@pytest.fixture
async def other(dav: Dav) -> AsyncIterator[OtherSide]:
    side = await asyncio.to_thread(OtherSide, dav)
    yield side
    side.client.close()


async def connect(world: World, server: Dav, password: str | None = None) -> dict[str, Any]:
    return await world.connect(
        provider="caldav",
        server_url=server.url,
        username=server.username,
        password=password or server.password,
        write_calendar="Work",
        busy_calendars=["Work", "Personal"],
    )


async def test_discovery_lists_calendars(world: World, dav, other) -> None:
    body = await connect(world, dav)
    assert body["status"] == "active"
    assert {"Personal", "Work"} <= {c["name"] for c in body["calendars"]}
    assert [c["name"] for c in body["calendars"] if c["write"]] == ["Work"]
    assert "password" not in str(body).lower() or dav.password not in str(body)


async def test_push_then_changes_flow_both_ways(world: World, dav, other) -> None:
    await connect(world, dav)
    apt = await world.book(START, END)
    uid = appointment_uid(apt["id"])
    assert (await world.sync()).error is None
    assert await other.start_of(uid) == datetime(2027, 1, 12, 9, tzinfo=UTC)

    # Reschedule through the API → visible on the server.
    await world.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T11:00:00Z", "end": "2027-01-12T12:00:00Z"},
    )
    await world.sync()
    assert await other.start_of(uid) == datetime(2027, 1, 12, 11, tzinfo=UTC)

    # Echo: nothing to write on the next run.
    assert (await world.sync()).pushed == 0

    # Move in the calendar → the appointment is rescheduled through the domain service.
    obj = await other.by_uid(uid)
    component = obj.icalendar_component
    paris = ZoneInfo("Europe/Paris")
    component["DTSTART"].dt = datetime(2027, 1, 14, 16, tzinfo=paris)
    component["DTEND"].dt = datetime(2027, 1, 14, 17, tzinfo=paris)
    await other.run(obj.save)
    outcome = await world.sync()
    assert outcome.rescheduled == 1
    got = await world.appointment(apt["id"])
    assert got["start"] == "2027-01-14T15:00:00Z" and got["end"] == "2027-01-14T16:00:00Z"

    # Delete in the calendar → cancelled.
    await other.run((await other.by_uid(uid)).delete)
    assert (await world.sync()).cancelled == 1
    assert (await world.appointment(apt["id"]))["status"] == "cancelled"


async def test_cancel_removes_the_event(world: World, dav, other) -> None:
    await connect(world, dav)
    apt = await world.book(START, END)
    await world.sync()
    await world.api.post(f"/v1/appointments/{apt['id']}/cancel")
    await world.sync()
    assert await other.by_uid(appointment_uid(apt["id"])) is None


async def test_busy_time_from_foreign_events(world: World, dav, other) -> None:
    await connect(world, dav)
    # Weekly 10:00 Paris on Mondays from 2027-03-15, across the DST change of 2027-03-28; the
    # 22nd moved to 14:00, the 29th cancelled (EXDATE), TRANSP:TRANSPARENT one ignored.
    await other.add(
        other.personal,
        "weekly",
        "BEGIN:VEVENT\r\nUID:weekly-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART;TZID=Europe/Paris:20270315T100000\r\nDTEND;TZID=Europe/Paris:20270315T110000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Europe/Paris:20270329T100000\r\n"
        "SUMMARY:Private weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:weekly-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Paris:20270322T100000\r\n"
        "DTSTART;TZID=Europe/Paris:20270322T140000\r\nDTEND;TZID=Europe/Paris:20270322T150000\r\n"
        "SUMMARY:Private weekly (moved)\r\nEND:VEVENT\r\n",
    )
    await other.add(
        other.work,
        "allday",
        "BEGIN:VEVENT\r\nUID:allday-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART;VALUE=DATE:20270328\r\nDTEND;VALUE=DATE:20270329\r\nSUMMARY:Holiday\r\n"
        "END:VEVENT\r\n",
    )
    await other.add(
        other.work,
        "free",
        "BEGIN:VEVENT\r\nUID:free-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270316T120000Z\r\nDTEND:20270316T130000Z\r\nTRANSP:TRANSPARENT\r\n"
        "SUMMARY:Maybe\r\nEND:VEVENT\r\n",
    )
    # The same meeting in both calendars counts once.
    for cal in (other.work, other.personal):
        await other.add(
            cal,
            "shared",
            "BEGIN:VEVENT\r\nUID:shared-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
            "DTSTART:20270317T120000Z\r\nDTEND:20270317T130000Z\r\nSUMMARY:Board\r\nEND:VEVENT\r\n",
        )
    assert (await world.sync()).error is None
    response = await world.api.get(
        f"/v1/users/{world.user['id']}/busy",
        params={"from": "2027-03-14T00:00:00Z", "to": "2027-04-10T00:00:00Z"},
    )
    assert response.status_code == 200, response.text
    busy = [(i["start"], i["end"]) for i in response.json()["busy"]]
    assert busy == [
        ("2027-03-15T09:00:00Z", "2027-03-15T10:00:00Z"),  # CET
        ("2027-03-17T12:00:00Z", "2027-03-17T13:00:00Z"),  # shared, once
        ("2027-03-22T13:00:00Z", "2027-03-22T14:00:00Z"),  # the moved instance
        ("2027-03-27T23:00:00Z", "2027-03-28T22:00:00Z"),  # all-day in Paris: 23 hours (DST)
        ("2027-04-05T08:00:00Z", "2027-04-05T09:00:00Z"),  # CEST
    ]


async def test_expired_token_full_resync_without_duplicates(world: World, dav, other) -> None:
    await connect(world, dav)
    apt = await world.book(START, END)
    await world.sync()
    async with world.store.transaction() as session:
        await session.execute(
            update(SyncCalendar)
            .where(SyncCalendar.integration_id == world.integration_id)
            .values(cursor=json.dumps({"t": dav.dead_token}))
        )
    outcome = await world.sync()
    assert outcome.error is None and outcome.full_listings == 2
    assert "cursor_expired" in await world.log_kinds()
    assert await other.count() == 1
    assert (await world.appointment(apt["id"]))["status"] == "confirmed"


async def test_412_on_update_rereads(world: World, dav, other) -> None:
    await connect(world, dav)
    apt = await world.book(START, END)
    await world.sync()
    async with world.store.transaction() as session:
        await session.execute(
            update(SyncMapping)
            .where(SyncMapping.integration_id == world.integration_id)
            .values(etag='"stale"')
        )
    await world.api.patch(
        f"/v1/appointments/{apt['id']}",
        {"start": "2027-01-12T12:00:00Z", "end": "2027-01-12T13:00:00Z"},
    )
    outcome = await world.sync()
    assert outcome.error is None
    assert await other.start_of(appointment_uid(apt["id"])) == datetime(2027, 1, 12, 12, tzinfo=UTC)


async def test_wrong_password(world: World, dav, other) -> None:
    if dav.name == "xandikos":
        pytest.skip("Xandikos has no authentication over plain http")
    body = await connect(world, dav, password="not-it")
    assert body["status"] == "reconnect_needed"
    assert "refused" in body["last_error"]
    # Nothing else breaks: appointments still work.
    await world.book(START, END)


async def test_ssrf_refusals(world: World) -> None:
    for url in (
        "file:///etc/passwd",
        "http://10.1.2.3/dav/",
        "http://169.254.169.254/latest/meta-data/",
        "http://user:pw@127.0.0.1/",
        "gopher://127.0.0.1/",
    ):
        response = await world.api.post(
            "/v1/integrations",
            {
                "user_id": world.user["id"],
                "provider": "caldav",
                "server_url": url,
                "username": "u",
                "password": "p",
            },
        )
        assert response.status_code == 422, url
        assert response.json()["error"]["fields"][0]["field"] == "server_url"


async def _disconnect(world: World, remove: bool) -> dict[str, Any]:
    response = await world.api.delete(
        f"/v1/integrations/{world.integration_id}", params={"remove_events": str(remove).lower()}
    )
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "pending" and response.json()["purged_at"] is None
    await world.purge()
    done = await world.api.get(f"/v1/integrations/{world.integration_id}/purge-receipt")
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    assert result["state"] == "done", result
    return result


def _scan(world: World, *needles: str) -> list[str]:
    folder = world.settings.data_dir
    found = []
    for path in folder.glob("calgate.db*"):
        data = path.read_bytes()
        found += [f"{n!r} in {path.name}" for n in needles if n.encode() in data]
    return found


@pytest.mark.parametrize("remove", [True, False])
async def test_disconnect_purges_everything(world: World, dav, other, remove: bool) -> None:
    await connect(world, dav)
    apt = await world.book(START, END)
    await other.add(
        other.personal,
        "secret",
        "BEGIN:VEVENT\r\nUID:secret-1@elsewhere\r\nDTSTAMP:20270101T000000Z\r\n"
        "DTSTART:20270113T120000Z\r\nDTEND:20270113T130000Z\r\nSUMMARY:Zyxwv private title\r\n"
        "END:VEVENT\r\n",
    )
    await world.sync()
    async with world.store.transaction() as session:
        href = await session.scalar(select(SyncMapping.href))
    assert href
    assert _scan(world, href), "the scan must be able to find what it looks for"
    receipt = await _disconnect(world, remove)
    assert receipt["counts"]["mappings"] == 1 and receipt["counts"]["busy_blocks"] == 1
    assert receipt["counts"]["credentials"] == 1
    assert receipt["counts"]["remote_events_deleted"] == (1 if remove else 0)
    assert (await world.api.get(f"/v1/integrations/{world.integration_id}")).status_code == 404
    assert receipt["purged_at"] is not None and receipt["remote_left"] is None
    async with world.store.transaction() as session:
        left = await count_rows(session, world.integration_id)
    assert set(left.values()) == {0}, left
    uid = appointment_uid(apt["id"])
    assert (await other.by_uid(uid) is None) == remove
    assert _scan(world, dav.password, "Zyxwv", href, "/work/") == []
    busy = await world.api.get(
        f"/v1/users/{world.user['id']}/busy",
        params={"from": "2027-01-13T00:00:00Z", "to": "2027-01-14T00:00:00Z"},
    )
    assert busy.json()["busy"] == []

    # Reconnect: our events still there are adopted, not duplicated.
    await connect(world, dav)
    assert (await world.sync()).error is None
    assert await other.count() == 1
    assert (await world.integration())["counts"]["mappings"] == 1


async def test_reconnect_adopts_existing_events_without_duplicates(
    world: World, dav, other
) -> None:
    await connect(world, dav)
    await world.book(START, END)
    await world.book("2027-01-13T09:00:00Z", "2027-01-13T10:00:00Z")
    await world.sync()
    await _disconnect(world, remove=False)
    await connect(world, dav)
    outcome = await world.sync()
    assert outcome.error is None and outcome.pushed == 0
    assert await other.count() == 2
