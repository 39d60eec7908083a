"""Many CalDAV integrations synced by several `calgate serve` processes on one PostgreSQL
database, with changes on both sides: the scene of tests/ops/test_scaleout_sync.py and
bench/scaleout_sync.py.

One Radicale server with a user (`p0`, `p1`, …) and a calendar per practitioner. Everything
calgate is asked goes through the API of the processes in turn; the calendar changes go to
Radicale directly, as a practitioner's phone would. `check` says what is wrong in counts;
`overlapping_runs` reads the daemons' "sync run" log lines (gateway/sync/schedule.py).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from caldav.davclient import DAVClient

from gateway.domain.uids import appointment_uid
from tests.peers.radicale import RadicaleServer

PASSWORD = "pw-Scale-Sync-1"
T = TypeVar("T")


def users(count: int) -> dict[str, str]:
    """The Radicale users of `count` practitioners (for `radicale.running(more_users=)`)."""
    return {f"p{i}": PASSWORD for i in range(count)}


def sync_env(poll_minutes: float) -> dict[str, str]:
    """The daemon settings of the scene: quick ticks, a short poll, Radicale on 127.0.0.1."""
    return {
        "CALGATE_SYNC_TICK_SECONDS": "0.5",
        "CALGATE_SYNC_POLL_MINUTES": str(poll_minutes),
        "CALGATE_OUTBOUND_ALLOW": "127.0.0.1",
        "CALGATE_LOG_LEVEL": "INFO",  # the "sync run" lines
    }


@dataclass
class Practitioner:
    """One practitioner, their calendar and what the scene did to it."""

    number: int
    user_id: str = ""
    client_id: str = ""
    calendar: Any = None
    booked: list[str] = field(default_factory=list)
    moved: str = ""
    moved_to: datetime | None = None
    deleted: str = ""
    foreign_uid: str = ""
    done: bool = False


@dataclass
class Tally:
    """What is wrong, counted over every practitioner (all zero when settled)."""

    duplicates: int = 0  # remote copies beyond the first of one UID
    missing: int = 0  # live appointments (or the foreign event) not in the calendar
    stale: int = 0  # events that should be gone (the deleted one back, unknown UIDs)
    unmoved: int = 0  # a remote move not taken over by calgate (or undone in the calendar)
    uncancelled: int = 0  # a remote deletion not cancelling the appointment

    def clean(self) -> bool:
        return not any(vars(self).values())


class Scene:
    """`count` practitioners on `bases` (the processes' URLs), booked and changed."""

    def __init__(self, bases: list[str], key: str, server: RadicaleServer, count: int) -> None:
        auth = {"Authorization": f"Bearer {key}"}
        self.apis = [httpx.Client(base_url=b, headers=auth, timeout=120) for b in bases]
        self.server = server
        self.people = [Practitioner(i) for i in range(count)]
        self.first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(
            days=3
        )
        self._pool = ThreadPoolExecutor(6)

    def close(self) -> None:
        self._pool.shutdown()
        for api in self.apis:
            api.close()

    def _each(self, work: Callable[[Practitioner], T]) -> list[T]:
        return list(self._pool.map(work, self.people))

    def _api(self, n: int) -> httpx.Client:
        return self.apis[n % len(self.apis)]

    def connect(self) -> None:
        """A practitioner, a client and a CalDAV integration each, spread over the processes."""

        def one(p: Practitioner) -> None:
            user = self._api(p.number).post(
                "/v1/users", json={"name": f"Dr {p.number}", "timezone": "UTC"}
            )
            assert user.status_code == 201, user.text
            p.user_id = user.json()["id"]
            client = self._api(p.number + 1).post(
                "/v1/clients", json={"name": f"C {p.number}", "email": f"c{p.number}@example.com"}
            )
            assert client.status_code == 201, client.text
            p.client_id = client.json()["id"]
            dav = DAVClient(self.server.url, username=f"p{p.number}", password=PASSWORD)
            p.calendar = dav.principal().make_calendar(name="Work", cal_id="work")
            connected = self._api(p.number + 2).post(
                "/v1/integrations",
                json={
                    "user_id": p.user_id,
                    "provider": "caldav",
                    "server_url": self.server.url,
                    "username": f"p{p.number}",
                    "password": PASSWORD,
                    "write_calendar": "Work",
                },
            )
            assert connected.status_code == 201, connected.text

        self._each(one)

    def book(self, slots: Iterable[int]) -> None:
        """One appointment per slot (hours after the first) for everyone, through every process."""
        wanted = list(slots)

        def one(p: Practitioner) -> None:
            p.done = False
            for slot in wanted:
                start = self.first + timedelta(hours=slot)
                booked = self._api(p.number + slot).post(
                    "/v1/appointments",
                    json={
                        "user_id": p.user_id,
                        "client_id": p.client_id,
                        "start": start.isoformat(),
                        "end": (start + timedelta(minutes=30)).isoformat(),
                        "title": "Visit",
                    },
                )
                assert booked.status_code == 201, booked.text
                p.booked.append(booked.json()["id"])

        self._each(one)

    def change_remote(self) -> None:
        """In each calendar: the first appointment moved ten hours on, the second deleted, and
        an event of the practitioner's own added."""

        def one(p: Practitioner) -> None:
            p.done = False
            p.moved, p.deleted = p.booked[0], p.booked[1]
            event = p.calendar.event_by_uid(appointment_uid(p.moved))
            component = event.icalendar_component
            start = component.decoded("DTSTART")
            p.moved_to = start + timedelta(hours=10)
            for name, value in (
                ("DTSTART", p.moved_to),
                ("DTEND", p.moved_to + timedelta(minutes=30)),
            ):
                component.pop(name)
                component.add(name, value)
            event.save()
            p.calendar.event_by_uid(appointment_uid(p.deleted)).delete()
            p.foreign_uid = f"own-{p.number}@phone.example"
            at = (self.first + timedelta(hours=20)).strftime("%Y%m%dT%H%M%SZ")
            p.calendar.save_event(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VEVENT\r\n"
                f"UID:{p.foreign_uid}\r\nDTSTAMP:{at}\r\nDTSTART:{at}\r\nDURATION:PT1H\r\n"
                "SUMMARY:Own\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            )

        self._each(one)

    def in_background(self, work: Callable[[], None]) -> threading.Thread:
        """Run `work` in a thread (the API side changing while the calendars change)."""
        failures: list[BaseException] = []

        def run() -> None:
            try:
                work()
            except BaseException as exc:  # re-raised by the caller through `failures`
                failures.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.failures = failures  # type: ignore[attr-defined]
        thread.start()
        return thread

    def remote_uids(self) -> list[str]:
        """Every UID in every calendar, repeats included."""
        return [u for uids in self._each(_uids) for u in uids]

    def check(self, everyone: bool = False) -> Tally:
        """What is still wrong; practitioners found right once are not read again, unless
        `everyone` (the final pass)."""

        def one(p: Practitioner) -> Tally:
            if p.done and not everyone:
                return Tally()
            tally = Tally()
            events = _events(p)
            seen = Counter(events)
            expected = {appointment_uid(a) for a in p.booked if a != p.deleted}
            expected |= {p.foreign_uid} if p.foreign_uid else set()
            tally.duplicates = sum(n - 1 for n in seen.values())
            tally.missing = len(expected - set(seen))
            tally.stale = len(set(seen) - expected)
            if p.moved_to is not None:
                remote = events.starts.get(appointment_uid(p.moved))
                local = self._api(p.number).get(f"/v1/appointments/{p.moved}").json()
                moved = datetime.fromisoformat(local["start"].replace("Z", "+00:00"))
                tally.unmoved = int(moved != p.moved_to or remote != p.moved_to)
                gone = self._api(p.number + 1).get(f"/v1/appointments/{p.deleted}").json()
                tally.uncancelled = int(gone["status"] != "cancelled")
            p.done = tally.clean()
            return tally

        total = Tally()
        for tally in self._each(one):
            for name, value in vars(tally).items():
                setattr(total, name, getattr(total, name) + value)
        return total


class _CountedListing(Counter[str]):
    """Each UID's count (a Counter) plus its start, for the move check."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: dict[str, datetime | None] = {}

    def add(self, uid: str, start: datetime | None) -> None:
        self[uid] += 1
        self.starts[uid] = start


def _events(p: Practitioner) -> _CountedListing:
    listing = _CountedListing()
    for event in p.calendar.events():
        component = event.icalendar_component
        uid = str(component["UID"])
        start = component.decoded("DTSTART")
        listing.add(uid, start if isinstance(start, datetime) else None)
    return listing


def _uids(p: Practitioner) -> list[str]:
    return list(_events(p).elements())


def overlapping_runs(logs: Iterable[Path]) -> tuple[int, int, int]:
    """(overlapping pairs, runs, distinct lease owners) of the "sync run" lines in `logs`: two
    runs of one integration whose [started, finished] intersect ran at the same time."""
    runs: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    owners: set[str] = set()
    for path in logs:
        for line in path.read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("msg") != "sync run":
                continue
            owners.add(entry["lease_owner"])
            runs[entry["integration_id"]].append(
                (
                    datetime.fromisoformat(entry["started"]),
                    datetime.fromisoformat(entry["finished"]),
                )
            )
    overlaps = 0
    for spans in runs.values():
        spans.sort()
        latest_end = None
        for start, end in spans:
            if latest_end is not None and start < latest_end:
                overlaps += 1
            latest_end = end if latest_end is None else max(latest_end, end)
    return overlaps, sum(len(s) for s in runs.values()), len(owners)
