"""What a feed body says: RFC 5545/7986 structure, privacy levels, hostile text."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
from sqlalchemy import update

from gateway.feeds.invalidate import on_person_change
from gateway.store.db import Store
from gateway.store.models import Appointment
from tests.feeds import parsers
from tests.feeds.conftest import Feeds
from tests.support import Api

NOTES_10K = ("Ünïcødé notes ✓ " * 700)[:10_240]
HOSTILE = [
    "Line one\r\nLine two\nLine three\rfour",
    "Commas, semicolons; backslashes \\ and \\n literal",
    "Emoji 😀👩‍👩‍👧‍👦🇬🇧 and CJK 漢字 and RTL עברית",
    "BEGIN:VEVENT\r\nUID:evil@x\r\nEND:VEVENT",
    "Quotes \"double\" 'single' and tabs\tand NUL-free controls \x07",
]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def _setup(api: Api, **apt: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    user = await api.user(name="Dr Secret Practitioner", email="secret-dr@example.com")
    client = await api.client(name="Hidden Client Name", email="hidden@example.com")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    body = {
        "start": _iso(start),
        "end": _iso(start + timedelta(minutes=50)),
        "title": "Therapy session about divorce",
        "location": "Room 7, Harley Street",
        "notes": "Talked about the divorce",
        "timezone": "America/New_York",
        **apt,
    }
    made = await api.appointment(user["id"], client["id"], **body)
    return user, client, made


def _lines(body: bytes) -> list[bytes]:
    assert body.endswith(b"\r\n")
    assert b"\n" not in body.replace(b"\r\n", b""), "bare LF"
    assert b"\r" not in body.replace(b"\r\n", b""), "bare CR"
    return body[:-2].split(b"\r\n")


async def test_calendar_properties(api: Api, feeds: Feeds):
    user, _, _ = await _setup(api)
    feed = await feeds.create(
        scope="user", user_id=user["id"], name="Clinic — Dr S", privacy="full"
    )
    calendar = icalendar.Calendar.from_ical(await feeds.text(feed))
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"].startswith("-//calgate//")
    assert calendar["CALSCALE"] == "GREGORIAN"
    assert calendar["METHOD"] == "PUBLISH"
    assert calendar["X-WR-CALNAME"] == "Clinic — Dr S"
    assert calendar["NAME"] == "Clinic — Dr S"
    assert calendar["X-WR-TIMEZONE"] == "Europe/London"
    assert calendar["REFRESH-INTERVAL"].params["VALUE"] == "DURATION"
    assert calendar.decoded("REFRESH-INTERVAL") == timedelta(hours=1)
    assert str(calendar["X-PUBLISHED-TTL"]) == "PT1H"


async def test_every_tzid_has_its_vtimezone(api: Api, feeds: Feeds):
    user, client, _ = await _setup(api)
    start = datetime.now(UTC) + timedelta(days=9)
    for zone in ("Asia/Kolkata", "Australia/Lord_Howe", "UTC"):
        await api.appointment(
            user["id"],
            client["id"],
            start=_iso(start),
            end=_iso(start + timedelta(hours=1)),
            timezone=zone,
        )
    feed = await feeds.create(scope="account", privacy="full")
    text = await feeds.text(feed)
    used = set(re.findall(r";TZID=([^:;]+)[:;]", text))
    defined = set(re.findall(r"\r\nTZID:([^\r]+)\r\n", text))
    assert used == {"America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"}
    assert defined == used
    # VTIMEZONEs come before the events that use them.
    assert text.rindex("END:VTIMEZONE") < text.index("BEGIN:VEVENT")
    assert "DTSTART:" in text.split("BEGIN:VEVENT", 1)[1]  # the UTC one, with Z


async def test_event_properties(api: Api, feeds: Feeds):
    user, _, made = await _setup(api)
    await api.patch(f"/v1/appointments/{made['id']}", {"title": "Renamed"})
    current = (await api.get(f"/v1/appointments/{made['id']}")).json()
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    (event,) = icalendar.Calendar.from_ical(await feeds.text(feed)).walk("VEVENT")
    assert str(event["UID"]) == f"{made['id']}@calgate"
    assert event["SEQUENCE"] == current["version"] == 2
    assert event["STATUS"] == "CONFIRMED"
    for name in ("DTSTAMP", "CREATED", "LAST-MODIFIED"):
        assert event.decoded(name).tzinfo is not None, name
    assert event.decoded("CREATED") == datetime.fromisoformat(current["created_at"]).replace(
        microsecond=0
    )
    assert event.decoded("LAST-MODIFIED") == datetime.fromisoformat(current["updated_at"]).replace(
        microsecond=0
    )
    assert event.decoded("DTSTART") == datetime.fromisoformat(current["start"])
    assert event["DTSTART"].params["TZID"] == "America/New_York"


async def test_uid_carries_no_personal_data_and_is_stable(api: Api, feeds: Feeds):
    user, _, made = await _setup(api)
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    before = re.findall(r"\r\nUID:([^\r]+)", await feeds.text(feed))
    await api.patch(
        f"/v1/appointments/{made['id']}",
        {"start": _iso(datetime.now(UTC).replace(microsecond=0) + timedelta(days=8))},
    )
    await api.post(f"/v1/appointments/{made['id']}/cancel")
    after = re.findall(r"\r\nUID:([^\r]+)", await feeds.text(feed))
    assert before == after == [f"{made['id']}@calgate"]
    assert re.fullmatch(r"apt_[0-9a-z]{26}@calgate", before[0])


async def test_privacy_full_limited_busy(api: Api, feeds: Feeds):
    _, client, _ = await _setup(api)
    secrets = [
        "Therapy session",
        "divorce",
        "Room 7",
        "Harley",
        "Hidden Client",
        "Secret Practitioner",
        "hidden@example.com",
        "secret-dr@example.com",
        client["phone"],
    ]
    full = await feeds.text(await feeds.create(scope="account", privacy="full"))
    limited = await feeds.text(await feeds.create(scope="account", privacy="limited"))
    busy = await feeds.text(await feeds.create(scope="account", privacy="busy"))
    unfolded = {k: v.replace("\r\n ", "") for k, v in (("f", full), ("l", limited), ("b", busy))}
    assert "SUMMARY:Therapy session about divorce" in unfolded["f"]
    assert "Client: Hidden Client Name" in unfolded["f"]
    assert "With: Dr Secret Practitioner" in unfolded["f"]  # account feeds name both
    assert "Talked about the divorce" in unfolded["f"]
    assert "LOCATION:Room 7\\, Harley Street" in unfolded["f"]
    assert "SUMMARY:Therapy session about divorce" in unfolded["l"]
    assert "LOCATION:Room 7\\, Harley Street" in unfolded["l"]
    assert "Hidden Client" not in unfolded["l"]
    assert "Talked about" not in unfolded["l"]
    assert "DESCRIPTION" not in unfolded["l"]
    for secret in secrets:
        assert secret not in unfolded["b"], secret
    for prop in ("DESCRIPTION", "LOCATION", "ATTENDEE", "ORGANIZER", "CONTACT", "COMMENT:"):
        assert f"\r\n{prop}" not in unfolded["b"].split("END:VTIMEZONE")[-1], prop
    (event,) = icalendar.Calendar.from_ical(busy).walk("VEVENT")
    assert event["SUMMARY"] == "Busy"
    assert event["CLASS"] == "PRIVATE"


async def test_user_feed_names_the_client_and_client_feed_the_practitioner(api: Api, feeds: Feeds):
    user, client, _ = await _setup(api)
    for_user = await feeds.text(
        await feeds.create(scope="user", user_id=user["id"], privacy="full")
    )
    for_client = await feeds.text(
        await feeds.create(scope="client", client_id=client["id"], privacy="full")
    )
    assert "Client: Hidden Client Name" in for_user
    assert "Dr Secret" not in for_user
    assert "With: Dr Secret Practitioner" in for_client


async def test_hostile_text_still_gives_a_valid_feed(api: Api, feeds: Feeds, store: Store):
    """The API refuses control characters in titles (and all but line breaks in notes); text
    stored before that rule, or by another writer, still gives a valid feed."""
    user = await api.user()
    client = await api.client(name="Ñame, with; odd\\chars 😀")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    made = []
    for i, text in enumerate(HOSTILE):
        apt = await api.appointment(
            user["id"],
            client["id"],
            start=_iso(start + timedelta(hours=i)),
            end=_iso(start + timedelta(hours=i, minutes=30)),
            title="placeholder",
        )
        async with store.transaction() as session:
            await session.execute(
                update(Appointment)
                .where(Appointment.id == apt["id"])
                .values(title=text[:500], location=text, notes=text + "\n" + NOTES_10K)
            )
            await on_person_change(session, api.account_id)  # invalidates the feeds
        made.append(
            {**apt, "title": text[:500], "location": text, "notes": text + "\n" + NOTES_10K}
        )
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="full")
    response = await feeds.fetch(feed)
    body = response.content
    for line in _lines(body):
        assert len(line) <= 75, line
        line.decode("utf-8")  # folding never splits a UTF-8 character
    text = body.decode("utf-8")
    calendar = icalendar.Calendar.from_ical(text)
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    assert len(events) == len(HOSTILE)  # no injected event
    for apt in made:
        event = events[f"{apt['id']}@calgate"]
        assert str(event["SUMMARY"]) == _as_ical(apt["title"])
        assert str(event["LOCATION"]) == _as_ical(apt["location"])
        description = str(event["DESCRIPTION"])
        assert description.startswith("Client: Ñame, with; odd\\chars 😀\n\n")
        assert description.endswith(_as_ical(apt["notes"]))
    assert len(parsers.with_ical(text)) == len(HOSTILE)
    assert len(parsers.with_vobject(text)) == len(HOSTILE)


def _as_ical(value: str) -> str:
    """What a TEXT value reads back as: line breaks become LF, control characters other than
    HTAB are dropped (RFC 5545 §3.3.11)."""
    return value.replace("\r\n", "\n").replace("\r", "\n").replace("\x07", "")


async def test_window_and_cancelled_grace(api: Api, feeds: Feeds, store):
    from sqlalchemy import update

    from gateway.store.models import Appointment

    user = await api.user()
    client = await api.client()
    now = datetime.now(UTC).replace(microsecond=0)

    async def book(days: float, title: str) -> str:
        start = now + timedelta(days=days)
        apt = await api.appointment(
            user["id"],
            client["id"],
            start=_iso(start),
            end=_iso(start + timedelta(hours=1)),
            title=title,
        )
        return str(apt["id"])

    await book(-61, "too old")
    await book(-59, "recent past")
    await book(729, "far future")
    await book(731, "beyond the horizon")
    fresh = await book(3, "cancelled lately")
    stale = await book(4, "cancelled long ago")
    for apt_id in (fresh, stale):
        await api.post(f"/v1/appointments/{apt_id}/cancel")
    async with store.transaction() as session:
        await session.execute(
            update(Appointment)
            .where(Appointment.id == stale)
            .values(cancelled_at=now - timedelta(days=8))
        )
    feed = await feeds.create(scope="user", user_id=user["id"], privacy="limited")
    text = await feeds.text(feed)
    titles = re.findall(r"\r\nSUMMARY:([^\r]+)", text)
    assert sorted(titles) == ["cancelled lately", "far future", "recent past"]
    calendar = icalendar.Calendar.from_ical(text)
    (cancelled,) = [e for e in calendar.walk("VEVENT") if e["SUMMARY"] == "cancelled lately"]
    assert cancelled["STATUS"] == "CANCELLED"
    assert cancelled["TRANSP"] == "TRANSPARENT"
