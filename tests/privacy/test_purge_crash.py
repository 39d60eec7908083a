"""Crash test: SIGKILL `calgate serve` mid-purge of 2,000 remote events, restart, check.

On Radicale and on the Google stand-in: every event calgate put there is gone, the others are
kept, the receipt is ``done`` with 2,000 events deleted, and a raw scan of the SQLite database
and its WAL finds none of the integration's strings (stored secret, calendar name, hrefs). The
seeding writes the remote events and our rows directly (a sync of 2,000 events is not what is
tested here); the purge runs in the real daemon against the real peers. Figures are printed
(pytest -s) for the issue note.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import radicale.item
import vobject
from sqlalchemy import insert

from connectors import google
from gateway import secrets
from gateway.config import Settings
from gateway.domain import accounts, people
from gateway.domain.uids import appointment_uid
from gateway.store import migrate
from gateway.store.db import Store
from gateway.store.models import Appointment
from gateway.store.sync_models import Integration, SyncCalendar, SyncMapping
from gateway.store.types import new_id, utcnow
from tests.conftest import make_settings
from tests.google.conftest import CALENDAR, CLIENT_ID, CLIENT_SECRET, REDIRECT, google_settings
from tests.peers import google as google_peer
from tests.peers import radicale as radicale_peer
from tests.peers.smtp import free_port
from tests.support import raw_scan

CALGATE = str(Path(sys.executable).parent / "calgate")
N = 2000
FOREIGN = 5
NAME = "Zyxwv Practice Calendar"
START = datetime(2027, 1, 13, 8, tzinfo=UTC)


@dataclass
class Remote:
    """What the peer holds and how our rows point at it."""

    provider: str
    server_url: str | None
    username: str | None
    secret: str
    calendar_id: str
    ours: dict[str, tuple[str, str]] = field(default_factory=dict)  # apt id → (href, etag)
    left: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (ours, foreign) still there
    env: dict[str, str] = field(default_factory=dict)


def _ics(uid: str, i: int, title: str) -> str:
    start = START + timedelta(minutes=30 * i)
    stamp = "%Y%m%dT%H%M%SZ"
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calgate//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start.strftime(stamp)}\r\n"
        f"DTEND:{(start + timedelta(minutes=30)).strftime(stamp)}\r\nSUMMARY:{title}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture
def on_radicale(tmp_path: Path) -> Iterator[Callable[[list[str]], Remote]]:
    """Radicale with a calendar seeded as files in its storage (PUTting 2,000 events one by one
    would take minutes): each file is what Radicale itself would write, so its etag is known."""
    with radicale_peer.running(tmp_path / "radicale") as server:
        folder = tmp_path / "radicale" / "collections" / "collection-root" / server.username
        calendar = folder / "work"

        def seed(apt_ids: list[str]) -> Remote:
            calendar.mkdir(parents=True)
            props = {"tag": "VCALENDAR", "D:displayname": NAME}
            (calendar / ".Radicale.props").write_text(json.dumps(props))
            url = f"{server.url}{server.username}/work/"
            remote = Remote("caldav", server.url, server.username, server.password, url)
            uids = [(appointment_uid(a), a) for a in apt_ids]
            uids += [(f"foreign-{i}@elsewhere", None) for i in range(FOREIGN)]
            for i, (uid, apt_id) in enumerate(uids):
                text = vobject.readOne(_ics(uid, i, "Zyxwv private title")).serialize()
                name = f"{uid.partition('@')[0]}.ics"
                (calendar / name).write_text(text, newline="")
                if apt_id is not None:
                    remote.ours[apt_id] = (url + name, radicale.item.get_etag(text))

            def left() -> tuple[int, int]:
                names = [p.name for p in calendar.glob("*.ics")]
                return (
                    sum(not n.startswith("foreign") for n in names),
                    sum(n.startswith("foreign") for n in names),
                )

            remote.left = left
            return remote

        yield seed


@pytest.fixture
def on_google() -> Iterator[Callable[[list[str]], Remote]]:
    """The Google stand-in with our events and some of the practitioner's own."""
    with google_peer.running(google_peer.GooglePeer(page_size=250)) as peer:
        peer.add_client(CLIENT_ID, CLIENT_SECRET, REDIRECT)
        peer.add_calendar(CALENDAR, NAME, tz="Europe/London")

        def seed(apt_ids: list[str]) -> Remote:
            refresh = peer.grant(CLIENT_ID, " ".join(google.SCOPES))
            remote = Remote("google", None, None, refresh, CALENDAR)
            for i, apt_id in enumerate([*apt_ids, *[None] * FOREIGN]):
                start = START + timedelta(minutes=30 * i)
                body: dict[str, Any] = {
                    "summary": "Zyxwv private title",
                    "start": {"dateTime": start.isoformat()},
                    "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
                }
                if apt_id is not None:
                    uid = appointment_uid(apt_id)
                    body |= {"id": google.event_id(uid), "iCalUID": uid}
                event_id = peer.put_event(CALENDAR, body)
                if apt_id is not None:
                    etag = peer.calendars[CALENDAR].events[event_id]["etag"]
                    remote.ours[apt_id] = (event_id, etag)
            ours = {href for href, _ in remote.ours.values()}

            def left() -> tuple[int, int]:
                live = {e["id"] for e in peer.live_events(CALENDAR)}
                return len(live & ours), len(live - ours)

            remote.left = left
            # Google allows a grant about 600 requests a minute: 2,000 deletions would take 3.5
            # minutes there. The stand-in has no such limit, so the budget's window is a second
            # (the budget itself is tested in tests/google/test_shared_budget.py).
            env = google_settings(
                peer, google_requests_per_minute=600, google_budget_window_seconds=1
            )
            remote.env = {f"CALGATE_{k.upper()}": str(v) for k, v in env.items()}
            return remote

        yield seed


async def _seed(
    store: Store, settings: Settings, seed: Callable[[list[str]], Remote], n: int
) -> Any:
    apt_ids = [new_id("apt") for _ in range(n)]
    remote = seed(apt_ids)
    async with store.transaction() as session:
        account, key = await accounts.create_account(
            session, "Crash Clinic", timezone="Europe/London", country="GB"
        )
        user = await people.create_user(session, account, {"name": "Dr Crash"})
        person = await people.create_client(session, account, {"name": "Client Crash"})
        integration = Integration(
            account_id=account.id,
            user_id=user.id,
            provider=remote.provider,
            server_url=remote.server_url,
            username=remote.username,
            secret=secrets.encrypt(settings, remote.secret),
            status="paused",  # not synced meanwhile: the purge is what this test is about
            due_at=utcnow(),
            counts={},
        )
        session.add(integration)
        await session.flush()
        calendar = SyncCalendar(
            integration_id=integration.id, remote_id=remote.calendar_id, name=NAME, write=True
        )
        session.add(calendar)
        await session.execute(
            insert(Appointment),
            [
                {
                    "id": apt_id,
                    "account_id": account.id,
                    "user_id": user.id,
                    "client_id": person.id,
                    "start_at": START + timedelta(minutes=30 * i),
                    "end_at": START + timedelta(minutes=30 * i + 30),
                    "timezone": "Europe/London",
                    "title": "Consultation",
                }
                for i, apt_id in enumerate(apt_ids)
            ],
        )
        await session.execute(
            insert(SyncMapping),
            [
                {
                    "id": new_id("map"),
                    "integration_id": integration.id,
                    "appointment_id": apt_id,
                    "href": href,
                    "etag": etag,
                    "written_hash": "0" * 64,
                    "remote_hash": "0" * 64,
                }
                for apt_id, (href, etag) in remote.ours.items()
            ],
        )
        return remote, key.secret, integration.id, integration.secret


def _serve(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    with (cwd / "serve.log").open("ab") as log:  # why it failed to start, if it does
        proc = subprocess.Popen(
            [CALGATE, "serve"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log
        )
    deadline = time.monotonic() + 60
    base = f"http://127.0.0.1:{env['CALGATE_SERVER_PORT']}"
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        assert proc.poll() is None, (cwd / "serve.log").read_text()[-2000:]
        time.sleep(0.05)
    raise AssertionError("calgate serve did not become ready")


@pytest.mark.timeout(400)
@pytest.mark.parametrize("peer", ["on_radicale", "on_google"])
async def test_sigkill_mid_purge_resumes_and_leaves_nothing(
    tmp_path: Path, peer: str, request: pytest.FixtureRequest
) -> None:
    seed: Callable[[list[str]], Remote] = request.getfixturevalue(peer)
    n = N
    settings = make_settings(tmp_path, outbound_allow="127.0.0.1")
    store = Store.from_url(settings.database_url, settings=settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await migrate.upgrade(store)
        remote, api_key, integration_id, stored_secret = await _seed(store, settings, seed, n)
        hrefs = [h for h, _ in remote.ours.values()]
        needles = [stored_secret, NAME, hrefs[0], hrefs[n // 2], hrefs[-1]]
        assert len(raw_scan(tmp_path, *needles)) >= len(needles), "the scan must find what it seeks"
        assert remote.left() == (n, FOREIGN)
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
        port = free_port()
        env = {
            **clean,
            **remote.env,
            "CALGATE_DATABASE_URL": settings.database_url,
            "CALGATE_DATA_DIR": str(tmp_path),
            "CALGATE_OUTBOUND_ALLOW": "127.0.0.1",
            "CALGATE_SERVER_PORT": str(port),
            "CALGATE_SCHEDULER_TICK_SECONDS": "0.1",
            "CALGATE_SCHEDULER_LEASE_SECONDS": "2",
            "CALGATE_LOG_LEVEL": "WARNING",
        }
        base = f"http://127.0.0.1:{port}/v1/integrations/{integration_id}"
        auth = {"Authorization": f"Bearer {api_key}"}
        procs.append(_serve(env, tmp_path))
        started = time.monotonic()
        async with httpx.AsyncClient(headers=auth, timeout=30) as api:
            accepted = await api.delete(base)
            assert accepted.status_code == 202, accepted.text
            while (at_kill := n - remote.left()[0]) < n // 4:
                if time.monotonic() - started > 300:
                    receipt = (await api.get(f"{base}/purge-receipt")).text
                    log = (tmp_path / "serve.log").read_text()[-3000:]
                    raise AssertionError(f"the purge does not progress: {receipt}\n{log}")
                await asyncio.sleep(0.02)
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert remote.left()[0] > 0, "the kill came too late to test anything"
        procs.append(_serve(env, tmp_path))
        async with httpx.AsyncClient(headers=auth, timeout=30) as api:
            while (receipt := (await api.get(f"{base}/purge-receipt")).json())["state"] != "done":
                assert time.monotonic() - started < 600, receipt
                await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            assert (await api.get(base)).status_code == 404
        print(
            f"\npurge crash test ({remote.provider}): {n} events, {at_kill} deleted before "
            f"SIGKILL, receipt done {elapsed:.1f} s after the request, counts {receipt['counts']}"
        )
        assert remote.left() == (0, FOREIGN)
        counts = receipt["counts"]
        assert counts["remote_events_deleted"] == n and counts["remote_events_not_deleted"] == 0
        assert counts["mappings"] == n and counts["credentials"] == 1
        assert receipt["remote_left"] is None
        assert raw_scan(tmp_path, *needles) == []  # database and WAL, with the daemon running
        procs[-1].send_signal(signal.SIGTERM)
        assert procs[-1].wait(timeout=60) == 0
        assert raw_scan(tmp_path, *needles) == []
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
        await store.close()
