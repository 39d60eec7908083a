"""Two accounts import .ics files defining a zone of the same non-IANA name with different rules
(an Outlook "Eastern Standard Time", a "Custom/Zone"): each appointment lands at the instant its
own file says, whichever account imported first (icalendar keeps zones by TZID per process)."""

from __future__ import annotations

import httpx
import pytest

from gateway.store.db import Store
from tests.support import Api, new_account


def _ics(tzid: str, offset: str, uid: str) -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Other System//EN\r\n"
        f"BEGIN:VTIMEZONE\r\nTZID:{tzid}\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
        f"TZOFFSETFROM:{offset}\r\nTZOFFSETTO:{offset}\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}@other.example\r\nDTSTAMP:20300101T000000Z\r\n"
        f'DTSTART;TZID="{tzid}":20300412T100000\r\nDTEND;TZID={tzid}:20300412T110000\r\n'
        f"SUMMARY:At ten, {offset}\r\nATTENDEE;CN=Ravi:mailto:ravi@example.in\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


async def _import(api: Api, body: str) -> list[str]:
    user = await api.user(timezone="Europe/London")
    response = await api.http.post(
        f"/v1/imports?kind=appointments&user_id={user['id']}",
        content=body.encode(),
        headers={**api.headers, "content-type": "text/calendar"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["imported"] == 1, response.text
    found = (await api.get(f"/v1/appointments?user_id={user['id']}")).json()["data"]
    return [a["start"] for a in found]


# Each case uses rules no other case uses, so each is the first this process sees of them.
@pytest.mark.parametrize(
    ("tzid", "first", "second", "first_utc", "second_utc"),
    [
        ("Custom/Zone", "+0300", "-0500", "07:00", "15:00"),
        ("Custom/Zone", "-0400", "+0200", "14:00", "08:00"),
        ("Eastern Standard Time", "+0100", "-0700", "09:00", "17:00"),
        ("Eastern Standard Time", "-0600", "+0400", "16:00", "06:00"),
    ],
)
async def test_same_zone_name_with_other_rules_in_another_account(
    store: Store,
    client: httpx.AsyncClient,
    tzid: str,
    first: str,
    second: str,
    first_utc: str,
    second_utc: str,
) -> None:
    one = await new_account(store, client, name="First Clinic")
    two = await new_account(store, client, name="Second Clinic")
    assert await _import(one, _ics(tzid, first, "a")) == [f"2030-04-12T{first_utc}:00Z"]
    assert await _import(two, _ics(tzid, second, "b")) == [f"2030-04-12T{second_utc}:00Z"]
    # The first account's file again, after the second: still its own rules.
    assert await _import(one, _ics(tzid, first, "c")) == [f"2030-04-12T{first_utc}:00Z"]


async def test_a_windows_name_without_its_vtimezone_is_its_iana_zone(
    store: Store, client: httpx.AsyncClient
) -> None:
    """Another account's file defining "W. Europe Standard Time" with its own rules does not
    change what the name means in a file that leaves the definition out (Europe/Berlin)."""
    one = await new_account(store, client, name="First Clinic")
    two = await new_account(store, client, name="Second Clinic")
    tzid = "W. Europe Standard Time"
    assert await _import(one, _ics(tzid, "+0300", "w1")) == ["2030-04-12T07:00:00Z"]
    bare = _ics(tzid, "+0300", "w2")
    bare = bare[: bare.index("BEGIN:VTIMEZONE")] + bare[bare.index("BEGIN:VEVENT") :]
    assert await _import(two, bare) == ["2030-04-12T08:00:00Z"]  # CEST
