"""Kills mid-sync (issue 14): SIGKILL a real `calgate serve` between a remote create and the
commit of its mapping, between a remote delete and its commit, and in the middle of a calendar's
full first sync, on Radicale and on the Google stand-in. The fault peer (tests/peers/faults.py)
holds the provider's answer to the write, so the kill lands exactly in the window: the change is
made at the provider, and the daemon never learnt of it. After a restart: no duplicate, nothing
missing, and each appointment and its remote event agree."""

from __future__ import annotations

import signal
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from caldav.davclient import DAVClient

from gateway.domain.uids import appointment_uid
from tests.google.conftest import (
    CALENDAR,
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT,
    consent_through,
    google_env,
)
from tests.ops.daemon import Daemons, clean_env, port
from tests.peers import faults, radicale
from tests.peers import google as google_peer
from tests.peers.faults import FaultPeer

CALGATE = str(Path(sys.executable).parent / "calgate")
WAIT = 90.0  # seconds; a loaded CI machine is slow, a converged daemon is quick
BATCH = 8  # appointments of the full first sync killed midway


@dataclass
class Provider:
    """One provider behind the fault peer: how to connect it, and what its calendar holds."""

    name: str
    proxy: FaultPeer
    env: dict[str, str]
    write_path: bytes  # requests under this path are the writes the peer may hold
    create: bytes  # the method of a create
    connect: Callable[[httpx.Client, str], str]  # (api, user id) → integration id
    starts: Callable[[], dict[str, datetime]]  # our UID → start of its remote event


def _radicale(tmp_path: Path) -> Iterator[Provider]:
    with radicale.running(tmp_path / "radicale") as server:
        dav = DAVClient(server.url, username=server.username, password=server.password)
        work = dav.principal().make_calendar(name="Work", cal_id="work")
        upstream = int(server.url.rstrip("/").rsplit(":", 1)[1])
        with faults.running(upstream) as proxy:

            def connect(api: httpx.Client, user_id: str) -> str:
                answer = api.post(
                    "/v1/integrations",
                    json={
                        "user_id": user_id,
                        "provider": "caldav",
                        "server_url": proxy.url + "/",
                        "username": server.username,
                        "password": server.password,
                        "write_calendar": "Work",
                    },
                )
                assert answer.status_code == 201, answer.text
                return str(answer.json()["id"])

            def starts() -> dict[str, datetime]:
                found: dict[str, datetime] = {}
                for obj in work.events():
                    vevent = obj.icalendar_component
                    uid = str(vevent["UID"])
                    assert uid not in found, f"{uid} twice in the calendar"
                    found[uid] = vevent["DTSTART"].dt.astimezone(UTC)
                return found

            env = {"CALGATE_OUTBOUND_ALLOW": "127.0.0.1"}
            yield Provider("caldav", proxy, env, b"/alice/work/", b"PUT", connect, starts)
        dav.close()


def _google() -> Iterator[Provider]:
    with google_peer.running(google_peer.GooglePeer(page_size=50)) as peer:
        upstream = int(peer.base_url.rsplit(":", 1)[1])
        with faults.running(upstream) as proxy:
            peer.base_url = proxy.url
            peer.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
            peer.add_calendar(CALENDAR, "Dr Kill", tz="Europe/London")
            env = google_env(peer, google_watch=False)

            def connect(api: httpx.Client, user_id: str) -> str:
                answer = api.post(
                    "/v1/integrations", json={"user_id": user_id, "provider": "google"}
                )
                assert answer.status_code == 201, answer.text
                consent_through(api, answer.json())
                return str(answer.json()["id"])

            def starts() -> dict[str, datetime]:
                found: dict[str, datetime] = {}
                for event in peer.live_events(CALENDAR):
                    uid = event.get("iCalUID", "")
                    assert uid not in found, f"{uid} twice in the calendar"
                    found[uid] = datetime.fromisoformat(event["start"]["dateTime"])
                return found

            write = b"/calendar/v3/calendars/"
            yield Provider("google", proxy, env, write, b"POST", connect, starts)


@pytest.fixture(params=["radicale", "google"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    yield from (_radicale(tmp_path) if request.param == "radicale" else _google())


class Run:
    """The daemons of one test over one database, and the API of its account."""

    def __init__(self, tmp_path: Path, provider: Provider) -> None:
        self.folder = tmp_path
        self.db = tmp_path / "var" / "calgate.db"
        self.base = f"http://127.0.0.1:{port()}"
        self.env = clean_env(
            CALGATE_DATABASE_URL=f"sqlite+aiosqlite:///{self.db}",
            CALGATE_SERVER_PORT=self.base.rsplit(":", 1)[1],
            CALGATE_SYNC_TICK_SECONDS="0.5",
            # A killed daemon's claims free up after this (the lease), not after the minute.
            CALGATE_SCHEDULER_LEASE_SECONDS="4",
            **provider.env,
        )
        self.daemons = Daemons(CALGATE, tmp_path)
        made = self.daemons.run(
            ["account", "create", "Kill Clinic", "--timezone", "Europe/London"], self.env, tmp_path
        )
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip().splitlines()[-1]
        self.api = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def start(self, **env: str) -> None:
        self.daemons.start(
            ["serve"], {**self.env, **env}, ready=f"{self.base}/readyz", cwd=self.folder
        )

    def kill(self) -> None:
        proc = self.daemons.procs[-1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def mapped(self) -> dict[str, datetime]:
        """Appointment id → its start, for every appointment with a mapping (what was
        committed), read from the daemon's database."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT a.id, a.start_at FROM sync_mappings m "
                "JOIN appointments a ON a.id = m.appointment_id"
            ).fetchall()
        return {i: datetime.fromisoformat(s).replace(tzinfo=UTC) for i, s in rows}

    def book(self, user_id: str, client_id: str, n: int, offset: int = 0) -> dict[str, datetime]:
        booked = {}
        first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
        for i in range(offset, offset + n):
            start = first + timedelta(hours=i)
            answer = self.api.post(
                "/v1/appointments",
                json={
                    "user_id": user_id,
                    "client_id": client_id,
                    "start": start.isoformat(),
                    "end": (start + timedelta(minutes=30)).isoformat(),
                    "title": "Kill test",
                },
            )
            assert answer.status_code == 201, answer.text
            booked[answer.json()["id"]] = start
        return booked


def _until(check: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + WAIT
    last: Any = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (AssertionError, sqlite3.Error) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what} (last: {last})")


def _agree(run: Run, provider: Provider, wanted: dict[str, datetime]) -> bool:
    """Every wanted appointment is mapped and in the calendar exactly once, at its time, and
    nothing else of ours is there."""
    remote = provider.starts()
    ours = {appointment_uid(a): s for a, s in wanted.items()}
    return run.mapped().keys() == wanted.keys() and remote == ours


def _hold(provider: Provider, method: bytes) -> None:
    provider.proxy.held.clear()
    provider.proxy.hold_method = method
    provider.proxy.only_path = provider.write_path
    provider.proxy.set("hold")


def _killed_when_held(run: Run, provider: Provider) -> None:
    assert provider.proxy.held.wait(WAIT), "the write never reached the peer"
    run.kill()
    provider.proxy.clear()


@pytest.mark.timeout(600)
def test_kills_between_remote_changes_and_their_commits(tmp_path: Path, provider: Provider) -> None:
    run = Run(tmp_path, provider)
    try:
        run.start()
        user = run.api.post("/v1/users", json={"name": "Dr Kill", "timezone": "UTC"}).json()
        person = run.api.post("/v1/clients", json={"name": "Client Kill"}).json()
        provider.connect(run.api, user["id"])

        # 1. Killed after the provider created the event, before its mapping was committed.
        _hold(provider, provider.create)
        first = run.book(user["id"], person["id"], 1)
        _killed_when_held(run, provider)
        assert run.mapped() == {}  # the window: remote done, nothing committed
        assert len(provider.starts()) == 1
        run.start()
        _until(lambda: _agree(run, provider, first), "create not converged after the restart")

        # 2. Killed after the provider deleted the event, before the commit.
        [apt_id] = first
        _hold(provider, b"DELETE")
        assert run.api.post(f"/v1/appointments/{apt_id}/cancel").status_code == 200
        _killed_when_held(run, provider)
        assert provider.starts() == {} and apt_id in run.mapped()
        run.start()
        _until(lambda: _agree(run, provider, {}), "delete not converged after the restart")

        # 3. Killed during a full resync (every sync a full listing) pushing a batch, then
        #    restarted: each once, none missing.
        run.kill()
        full = {"CALGATE_SYNC_FULL_RESYNC_HOURS": "0.0001"}
        run.start(**full)
        _hold(provider, provider.create)
        batch = run.book(user["id"], person["id"], BATCH, offset=10)
        _killed_when_held(run, provider)
        run.start(**full)
        _until(lambda: _agree(run, provider, batch), "batch not converged after the restart")
        time.sleep(2)  # a few more ticks change nothing
        assert _agree(run, provider, batch)
    finally:
        run.daemons.kill_all()
        run.api.close()
