"""The pure sync decisions, table-driven: each row is a situation and the actions it must give."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.base import Event, RemoteItem, Window
from gateway.domain.uids import appointment_uid
from gateway.sync import intervals, plan
from gateway.sync.intervals import Interval
from gateway.sync.plan import (
    Adopt,
    AppointmentSnap,
    Cancel,
    Create,
    DeleteRemote,
    Forget,
    Guard,
    MappingSnap,
    PlanInput,
    Policies,
    RecordConflict,
    Reschedule,
    Seen,
    Update,
)

T = datetime(2027, 1, 12, 9, tzinfo=UTC)
H = timedelta(hours=1)
APT = AppointmentSnap("apt_1", T, T + H, "Europe/Paris", "Consultation", None, False)
EVENT = plan.render(APT)
MAP = MappingSnap("apt_1", "/c/apt_1.ics", '"e1"', plan.content_hash(EVENT), plan.times_hash(EVENT))


def item(event: Event = EVENT, etag: str = '"e1"', href: str = "/c/apt_1.ics") -> RemoteItem:
    return RemoteItem(href, etag, event.uid, (event,))


MOVED = replace(EVENT, start=T + 3 * H, end=T + 4 * H)
LOCAL_MOVE = replace(APT, start=T + 5 * H, end=T + 6 * H)
CANCELLED = replace(APT, cancelled=True)

CASES = [
    # (name, appointments, mappings, changed, deleted, full, policies, expected)
    ("new appointment → create", [APT], [], [], [], False, Policies(), [Create("apt_1", EVENT)]),
    ("cancelled, never pushed → nothing", [CANCELLED], [], [], [], False, Policies(), []),
    ("in sync → nothing", [APT], [MAP], [], [], False, Policies(), []),
    (
        "changed here → update with our etag",
        [LOCAL_MOVE],
        [MAP],
        [],
        [],
        False,
        Policies(),
        [Update("apt_1", MAP.href, MAP.etag, plan.render(LOCAL_MOVE))],
    ),
    (
        "cancelled here → delete there",
        [CANCELLED],
        [MAP],
        [],
        [],
        False,
        Policies(),
        [DeleteRemote("apt_1", MAP.href, MAP.etag)],
    ),
    ("echo of our write → nothing", [APT], [MAP], [item()], [], False, Policies(), []),
    (
        "new etag, same times (text edit) → keep etag only",
        [APT],
        [MAP],
        [item(replace(EVENT, title="x"), '"e2"')],
        [],
        False,
        Policies(),
        [Seen("apt_1", '"e2"', MAP.remote_hash)],
    ),
    (
        "moved there → reschedule",
        [APT],
        [MAP],
        [item(MOVED, '"e2"')],
        [],
        False,
        Policies(),
        [Reschedule("apt_1", T + 3 * H, T + 4 * H, '"e2"', plan.times_hash(MOVED))],
    ),
    (
        "moved on both sides → calgate wins, recorded",
        [LOCAL_MOVE],
        [MAP],
        [item(MOVED, '"e2"')],
        [],
        False,
        Policies(),
        [
            RecordConflict("apt_1", "calgate"),
            Seen("apt_1", '"e2"', plan.times_hash(MOVED)),
            Update("apt_1", MAP.href, '"e2"', plan.render(LOCAL_MOVE)),
        ],
    ),
    (
        "moved on both sides, remote policy → reschedule, recorded",
        [LOCAL_MOVE],
        [MAP],
        [item(MOVED, '"e2"')],
        [],
        False,
        Policies(conflict="remote"),
        [
            RecordConflict("apt_1", "remote"),
            Reschedule("apt_1", T + 3 * H, T + 4 * H, '"e2"', plan.times_hash(MOVED)),
        ],
    ),
    ("deleted there → cancel", [APT], [MAP], [], [MAP.href], False, Policies(), [Cancel("apt_1")]),
    (
        "deleted there, restore policy → create again",
        [APT],
        [MAP],
        [],
        [MAP.href],
        False,
        Policies(deleted="restore"),
        [Forget("apt_1"), Create("apt_1", EVENT)],
    ),
    (
        "deleted there and cancelled here → forget",
        [CANCELLED],
        [MAP],
        [],
        [MAP.href],
        False,
        Policies(),
        [Forget("apt_1")],
    ),
    (
        "STATUS:CANCELLED there → cancel",
        [APT],
        [MAP],
        [item(replace(EVENT, status="cancelled"), '"e2"')],
        [],
        False,
        Policies(),
        [Cancel("apt_1")],
    ),
    (
        "ours found without mapping (reconnect) → adopt",
        [APT],
        [],
        [item()],
        [],
        True,
        Policies(),
        [Adopt("apt_1", "/c/apt_1.ics", '"e1"', MAP.remote_hash, MAP.written_hash)],
    ),
    (
        "full listing without a mapped event → cancel",
        [APT],
        [MAP],
        [],
        [],
        True,
        Policies(),
        [Cancel("apt_1")],
    ),
    (
        "foreign events only → nothing for the write plan",
        [],
        [],
        [item(Event("x@elsewhere", T, T + H), href="/c/x.ics")],
        [],
        False,
        Policies(),
        [],
    ),
]


@pytest.mark.parametrize(
    ("appointments", "mappings", "changed", "deleted", "full", "policies", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_plan(appointments, mappings, changed, deleted, full, policies, expected) -> None:
    data = PlanInput(
        tuple(appointments), tuple(mappings), tuple(changed), tuple(deleted), full, policies
    )
    assert plan.plan_write_calendar(data) == expected


def _many(n: int) -> tuple[list[AppointmentSnap], list[MappingSnap]]:
    apts = [replace(APT, id=f"apt_{i}") for i in range(n)]
    maps = [replace(MAP, appointment_id=f"apt_{i}", href=f"/c/{i}.ics") for i in range(n)]
    return apts, maps


def test_guard_on_a_suddenly_empty_full_listing() -> None:
    apts, maps = _many(3)
    actions = plan.plan_write_calendar(PlanInput(tuple(apts), tuple(maps), (), (), True))
    assert len(actions) == 1 and isinstance(actions[0], Guard)


def test_guard_on_every_event_deleted_at_once() -> None:
    apts, maps = _many(3)
    deleted = tuple(m.href for m in maps)
    actions = plan.plan_write_calendar(PlanInput(tuple(apts), tuple(maps), (), deleted, False))
    assert len(actions) == 1 and isinstance(actions[0], Guard)


def test_no_guard_below_the_threshold() -> None:
    apts, maps = _many(2)
    actions = plan.plan_write_calendar(PlanInput(tuple(apts), tuple(maps), (), (), True))
    assert actions == [Cancel("apt_0"), Cancel("apt_1")]


PARIS = ZoneInfo("Europe/Paris")
WINDOW = Window(datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (Event("a@x", T, T + H), [Interval(T, T + H)]),
        (Event("a@x", T, T + H, transparency="transparent"), []),
        (Event("a@x", T, T + H, status="cancelled"), []),
        (Event(appointment_uid("apt_9"), T, T + H), []),
        (
            Event("a@x", date(2027, 3, 28), date(2027, 3, 29)),  # the day clocks go forward
            [
                Interval(
                    datetime(2027, 3, 27, 23, tzinfo=UTC), datetime(2027, 3, 28, 22, tzinfo=UTC)
                )
            ],
        ),
        (
            Event("a@x", datetime(2026, 12, 31, 23, tzinfo=UTC), T),  # clipped to the window
            [Interval(WINDOW.start, T)],
        ),
    ],
    ids=["timed", "transparent", "cancelled", "ours", "all-day-dst", "clipped"],
)
def test_busy_intervals(event: Event, expected: list[Interval]) -> None:
    got = intervals.busy_intervals(RemoteItem("/h", '"1"', event.uid, (event,)), PARIS, WINDOW)
    assert got == expected


def test_merge_sorts_joins_and_dedupes() -> None:
    a, b, c = Interval(T, T + H), Interval(T + H, T + 2 * H), Interval(T + 5 * H, T + 6 * H)
    assert intervals.merge([c, a, b, a]) == [Interval(T, T + 2 * H), c]
