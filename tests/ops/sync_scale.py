"""Many calendar integrations, CalDAV (one Radicale server) and Google (the Calendar API
stand-in, tests/peers/google.py), synced by several `calgate serve` processes on one PostgreSQL
database, with changes on both sides: the scene of tests/ops/test_scaleout_sync.py and
bench/scaleout_sync.py.

Practitioner n is on `providers[n % len(providers)]`. CalDAV: a Radicale user (`p0`, `p1`, …)
with a calendar each. Google: one account holding a calendar per practitioner (as a clinic's
shared account would), each integration connected by consent and pointed at its practitioner's
calendar. Everything calgate is asked goes through the API of the processes in turn; the
calendar changes go to Radicale directly, as a practitioner's phone would, or through the
stand-in's hands for the Google Calendar app (`put_event`, `patch_event`, `delete_event`).
`check` says what is wrong in counts; `overlapping_runs` reads the daemons' "sync run" lines
(gateway/sync/schedule.py, written whatever the log level while sync.log_runs is on).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx
from caldav.davclient import DAVClient

from gateway.domain.uids import appointment_uid
from tests.google import conftest as google_setup
from tests.peers import google as google_peer
from tests.peers import radicale
from tests.peers.radicale import RadicaleServer

CHECKOUT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-Scale-Sync-1"
PROVIDERS = ("caldav", "google")
T = TypeVar("T")


def provider_of(number: int, providers: Sequence[str]) -> str:
    """The provider of practitioner `number` in a population of `providers`, in turn."""
    return providers[number % len(providers)]


def parse_providers(text: str) -> tuple[str, ...]:
    """`caldav,google` → ("caldav", "google"); refuses an unknown or empty list."""
    chosen = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = set(chosen) - set(PROVIDERS)
    if not chosen or unknown:
        raise ValueError(f"providers: one or more of {', '.join(PROVIDERS)}")
    return chosen


@dataclass
class Peers:
    """The calendar servers of the scene: Radicale for CalDAV, the Google stand-in."""

    radicale: RadicaleServer | None
    google: google_peer.GooglePeer | None


@contextmanager
def peers_running(
    folder: Path, count: int, providers: Sequence[str], own_process: bool = False
) -> Iterator[Peers]:
    """Start the servers `count` practitioners on `providers` need: Radicale with a user each
    (in its own process with `own_process`, as the bench wants), the Google stand-in with a
    calendar each and calgate's OAuth client."""
    numbers = range(count)
    with ExitStack() as stack:
        server = None
        if "caldav" in providers:
            users = {f"p{n}": PASSWORD for n in numbers if provider_of(n, providers) == "caldav"}
            start = radicale.running_process if own_process else radicale.running
            server = stack.enter_context(start(folder / "radicale", more_users=users))
        peer = None
        if "google" in providers:
            # Pages of 50 (Google's default is 250): listings of a few events take one call.
            peer = stack.enter_context(google_peer.running(google_peer.GooglePeer(page_size=50)))
            peer.add_client(
                google_setup.CLIENT_ID, google_setup.CLIENT_SECRET, google_setup.REDIRECT
            )
            # The account's own calendar, written by nobody: where a new integration points
            # until its practitioner's calendar is chosen.
            peer.add_calendar("clinic@scale.example", "Clinic")
            for n in numbers:
                if provider_of(n, providers) == "google":
                    peer.add_calendar(_google_calendar(n), f"Dr {n}")
        yield Peers(server, peer)


def _google_calendar(number: int) -> str:
    return f"p{number}@scale.example"


def sync_env(poll_minutes: float, peers: Peers) -> dict[str, str]:
    """The daemon settings of the scene: quick ticks, a short poll, the peers on 127.0.0.1, and
    the "sync run" lines on while the log level is WARNING (the lines do not need INFO)."""
    env = {
        "CALGATE_SYNC_TICK_SECONDS": "0.5",
        "CALGATE_SYNC_POLL_MINUTES": str(poll_minutes),
        "CALGATE_OUTBOUND_ALLOW": "127.0.0.1",
        "CALGATE_LOG_LEVEL": "WARNING",
        "CALGATE_SYNC_LOG_RUNS": "true",
        # This checkout's code, whichever checkout the venv's `calgate` was installed from.
        "PYTHONPATH": str(CHECKOUT),
    }
    if peers.google is not None:
        # No push channels: Google only calls https addresses, the daemons serve http.
        env |= google_setup.google_env(peers.google, google_watch=False)
    return env


class Remote(Protocol):
    """One practitioner's calendar at the provider, as their own calendar app sees it."""

    def listing(self) -> _CountedListing:
        """Each UID in the calendar, counted, with its start."""

    def move(self, uid: str, hours: int) -> datetime:
        """Move the event of `uid` `hours` on; returns its new start."""

    def delete(self, uid: str) -> None:
        """Delete the event of `uid`."""

    def add_own(self, uid: str, at: datetime) -> None:
        """Add an hour-long event of the practitioner's own."""


class _CaldavRemote:
    """A Radicale calendar, edited as a phone would."""

    def __init__(self, calendar: Any) -> None:
        self.calendar = calendar

    def listing(self) -> _CountedListing:
        listing = _CountedListing()
        for event in self.calendar.events():
            component = event.icalendar_component
            start = component.decoded("DTSTART")
            listing.add(str(component["UID"]), start if isinstance(start, datetime) else None)
        return listing

    def move(self, uid: str, hours: int) -> datetime:
        event = self.calendar.event_by_uid(uid)
        component = event.icalendar_component
        moved: datetime = component.decoded("DTSTART") + timedelta(hours=hours)
        for name, value in (("DTSTART", moved), ("DTEND", moved + timedelta(minutes=30))):
            component.pop(name)
            component.add(name, value)
        event.save()
        return moved

    def delete(self, uid: str) -> None:
        self.calendar.event_by_uid(uid).delete()

    def add_own(self, uid: str, at: datetime) -> None:
        stamp = at.strftime("%Y%m%dT%H%M%SZ")
        self.calendar.save_event(
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//phone//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:{stamp}\r\nDTSTART:{stamp}\r\nDURATION:PT1H\r\n"
            "SUMMARY:Own\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )


class _GoogleRemote:
    """A calendar of the Google stand-in, edited as the Google Calendar app would."""

    def __init__(self, peer: google_peer.GooglePeer, calendar_id: str) -> None:
        self.peer = peer
        self.calendar_id = calendar_id

    def _live(self) -> list[dict[str, Any]]:
        return self.peer.live_events(self.calendar_id)

    def _id_of(self, uid: str) -> str:
        (found,) = [e["id"] for e in self._live() if e.get("iCalUID") == uid]
        return str(found)

    def listing(self) -> _CountedListing:
        listing = _CountedListing()
        for event in self._live():
            moment = event["start"].get("dateTime")
            listing.add(event["iCalUID"], datetime.fromisoformat(moment) if moment else None)
        return listing

    def move(self, uid: str, hours: int) -> datetime:
        event_id = self._id_of(uid)
        start = self.listing().starts[uid]
        assert start is not None
        moved = start + timedelta(hours=hours)
        self.peer.patch_event(
            self.calendar_id,
            event_id,
            {
                "start": {"dateTime": moved.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (moved + timedelta(minutes=30)).isoformat(), "timeZone": "UTC"},
            },
        )
        return moved

    def delete(self, uid: str) -> None:
        self.peer.delete_event(self.calendar_id, self._id_of(uid))

    def add_own(self, uid: str, at: datetime) -> None:
        self.peer.put_event(
            self.calendar_id,
            {
                "iCalUID": uid,
                "summary": "Own",
                "start": {"dateTime": at.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (at + timedelta(hours=1)).isoformat(), "timeZone": "UTC"},
            },
        )


@dataclass
class Practitioner:
    """One practitioner, their calendar and what the scene did to it."""

    number: int
    provider: str
    user_id: str = ""
    client_id: str = ""
    remote: Remote | None = None
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

    def add(self, other: Tally) -> None:
        """Count `other`'s findings in this one too."""
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)


class Scene:
    """`count` practitioners on `bases` (the processes' URLs) and `peers`, on `providers` in
    turn, booked and changed."""

    def __init__(
        self,
        bases: list[str],
        key: str,
        peers: Peers,
        count: int,
        providers: Sequence[str] = ("caldav",),
    ) -> None:
        auth = {"Authorization": f"Bearer {key}"}
        self.apis = [httpx.Client(base_url=b, headers=auth, timeout=120) for b in bases]
        self.peers = peers
        self.people = [Practitioner(i, provider_of(i, providers)) for i in range(count)]
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
        """A practitioner, a client and an integration each, spread over the processes."""

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
            if p.provider == "google":
                self._connect_google(p)
            else:
                self._connect_caldav(p)

        self._each(one)

    def _connect_caldav(self, p: Practitioner) -> None:
        server = self.peers.radicale
        assert server is not None
        dav = DAVClient(server.url, username=f"p{p.number}", password=PASSWORD)
        p.remote = _CaldavRemote(dav.principal().make_calendar(name="Work", cal_id="work"))
        connected = self._api(p.number + 2).post(
            "/v1/integrations",
            json={
                "user_id": p.user_id,
                "provider": "caldav",
                "server_url": server.url,
                "username": f"p{p.number}",
                "password": PASSWORD,
                "write_calendar": "Work",
            },
        )
        assert connected.status_code == 201, connected.text

    def _connect_google(self, p: Practitioner) -> None:
        """Consent through one process, the way back through the next, and the practitioner's
        own calendar chosen (write and busy) through the third."""
        assert self.peers.google is not None
        calendar = _google_calendar(p.number)
        p.remote = _GoogleRemote(self.peers.google, calendar)
        created = self._api(p.number + 2).post(
            "/v1/integrations", json={"user_id": p.user_id, "provider": "google"}
        )
        assert created.status_code == 201, created.text
        google_setup.consent_through(self._api(p.number), created.json())
        chosen = self._api(p.number + 1).patch(
            f"/v1/integrations/{created.json()['id']}",
            json={"write_calendar": calendar, "busy_calendars": [calendar]},
        )
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["status"] == "active", chosen.text

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
            assert p.remote is not None
            p.done = False
            p.moved, p.deleted = p.booked[0], p.booked[1]
            p.moved_to = p.remote.move(appointment_uid(p.moved), 10)
            p.remote.delete(appointment_uid(p.deleted))
            p.foreign_uid = f"own-{p.number}@phone.example"
            p.remote.add_own(p.foreign_uid, self.first + timedelta(hours=20))

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

    def check(self, everyone: bool = False) -> Tally:
        """What is still wrong; practitioners found right once are not read again, unless
        `everyone` (the final pass)."""
        total = Tally()
        for tally in self.check_by_provider(everyone).values():
            total.add(tally)
        return total

    def check_by_provider(self, everyone: bool = False) -> dict[str, Tally]:
        """`check`, counted for each provider's practitioners apart."""

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

        totals = {p.provider: Tally() for p in self.people}
        for p, tally in zip(self.people, self._each(one), strict=True):
            totals[p.provider].add(tally)
        return totals


class _CountedListing(Counter[str]):
    """Each UID's count (a Counter) plus its start, for the move check."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: dict[str, datetime | None] = {}

    def add(self, uid: str, start: datetime | None) -> None:
        self[uid] += 1
        self.starts[uid] = start


def _events(p: Practitioner) -> _CountedListing:
    assert p.remote is not None
    return p.remote.listing()


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
