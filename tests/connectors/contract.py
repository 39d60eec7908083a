"""The contract every connector keeps, run against each one (memory, CalDAV peers, ...).

A test module subclasses `ConnectorContract` and provides the `side` fixture: a `Side` holding a
connector, a calendar id, and ways to act as "the other side" (another calendar app) and to
produce a cursor the provider refuses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import (
    AuthExpired,
    Connector,
    CursorExpired,
    Event,
    RemoteChanged,
    RemoteExists,
    RemoteNotFound,
    Window,
)

WINDOW = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 12, 31, tzinfo=UTC))
START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def event(uid: str = "apt_01contract@calgate", minutes: int = 0, title: str = "Session") -> Event:
    start = START + timedelta(minutes=minutes)
    return Event(
        uid=uid, start=start, end=start + timedelta(hours=1), timezone="Europe/Paris", title=title
    )


@dataclass
class Side:
    """A connector under test and the other side's hands on the same calendar."""

    connector: Connector
    calendar_id: str
    # Another calendar app writes `event` (a new object) and returns its href.
    put_foreign: Callable[[Event], Awaitable[str]]
    # Another calendar app deletes the object at href.
    remove: Callable[[str], Awaitable[None]]
    # A cursor of the right shape that the provider refuses as expired.
    expired_cursor: Callable[[], Awaitable[str]]
    # A connector with a wrong password.
    wrong_password: Callable[[], Connector]


class ConnectorContract:
    """Behaviour every connector must show. Subclasses provide the `side` fixture."""

    async def test_lists_the_calendar(self, side: Side) -> None:
        ids = [c.id for c in await side.connector.list_calendars()]
        assert side.calendar_id in ids

    async def test_create_get_and_find(self, side: Side) -> None:
        written = await side.connector.create(side.calendar_id, event())
        assert written.etag
        item = await side.connector.get(side.calendar_id, written.href, WINDOW)
        assert item.uid == "apt_01contract@calgate"
        assert item.etag == written.etag
        (got,) = item.events
        assert got.start == START and got.end == START + timedelta(hours=1)
        assert got.title == "Session"
        found = await side.connector.find_by_uid(side.calendar_id, item.uid, WINDOW)
        assert found is not None and found.href == written.href
        assert await side.connector.find_by_uid(side.calendar_id, "nope@x", WINDOW) is None

    async def test_retried_create_cannot_duplicate(self, side: Side) -> None:
        await side.connector.create(side.calendar_id, event())
        with pytest.raises(RemoteExists):
            await side.connector.create(side.calendar_id, event(minutes=30))
        listing = await side.connector.list_changes(side.calendar_id, None, WINDOW)
        assert [i.uid for i in listing.changed].count("apt_01contract@calgate") == 1

    async def test_update_needs_the_current_etag(self, side: Side) -> None:
        first = await side.connector.create(side.calendar_id, event())
        second = await side.connector.update(
            side.calendar_id, first.href, event(minutes=60), first.etag
        )
        assert second.etag != first.etag
        with pytest.raises(RemoteChanged):
            await side.connector.update(side.calendar_id, first.href, event(), first.etag)
        item = await side.connector.get(side.calendar_id, first.href, WINDOW)
        assert item.events[0].start == START + timedelta(minutes=60)

    async def test_delete_needs_the_current_etag_and_404s_after(self, side: Side) -> None:
        first = await side.connector.create(side.calendar_id, event())
        second = await side.connector.update(
            side.calendar_id, first.href, event(minutes=5), first.etag
        )
        with pytest.raises(RemoteChanged):
            await side.connector.delete(side.calendar_id, first.href, first.etag)
        await side.connector.delete(side.calendar_id, first.href, second.etag)
        with pytest.raises(RemoteNotFound):
            await side.connector.delete(side.calendar_id, first.href, None)
        with pytest.raises(RemoteNotFound):
            await side.connector.get(side.calendar_id, first.href, WINDOW)

    async def test_changes_since_a_cursor(self, side: Side) -> None:
        mine = await side.connector.create(side.calendar_id, event())
        full = await side.connector.list_changes(side.calendar_id, None, WINDOW)
        assert full.full and {i.href for i in full.changed} == {mine.href}
        quiet = await side.connector.list_changes(side.calendar_id, full.cursor, WINDOW)
        assert quiet.changed == () and quiet.deleted == ()
        foreign = await side.put_foreign(event("foreign-1@elsewhere", title="Dentist"))
        await side.connector.update(side.calendar_id, mine.href, event(minutes=15), mine.etag)
        step = await side.connector.list_changes(side.calendar_id, quiet.cursor, WINDOW)
        assert not step.full
        assert {i.href for i in step.changed} == {mine.href, foreign}
        assert step.deleted == ()
        await side.remove(foreign)
        gone = await side.connector.list_changes(side.calendar_id, step.cursor, WINDOW)
        assert gone.changed == () and gone.deleted == (foreign,)

    async def test_expired_cursor_is_its_own_error(self, side: Side) -> None:
        with pytest.raises(CursorExpired):
            await side.connector.list_changes(side.calendar_id, await side.expired_cursor(), WINDOW)

    async def test_wrong_password_is_auth_expired(self, side: Side) -> None:
        with pytest.raises(AuthExpired):
            await side.wrong_password().list_calendars()
