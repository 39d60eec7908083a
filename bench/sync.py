"""Sync cost against Radicale on loopback, with vdirsyncer as the baseline.

Figures, all in one run:
- initial pull of a 2,000-event calendar (busy time from every event);
- incremental sync with one changed event in calendars of 100 and of 10,000 events, and their
  ratio (target <= 2: the cost follows the changes, not the calendar size);
- vdirsyncer syncing the same 2,000-event calendar to a filesystem storage, initial and no-change
  runs, and calgate/vdirsyncer ratios (target <= 1).

    .venv/bin/python bench/sync.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from caldav.davclient import DAVClient
from provider_sync import practitioner  # beside this file: on sys.path when run

from connectors.base import Credentials
from connectors.caldav import CalDAVConnector
from gateway import features
from gateway.config import Settings
from gateway.store import migrate
from gateway.store.db import Store
from gateway.sync import integrations
from gateway.sync.run import sync_integration, sync_window

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the stand-ins of tests/peers
from tests.peers import radicale

ROUNDS = 3


def _vevent(uid: str, start: datetime) -> str:
    fmt = "%Y%m%dT%H%M%SZ"
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n"
        f"DTSTART:{start.strftime(fmt)}\r\n"
        f"DTEND:{(start + timedelta(minutes=45)).strftime(fmt)}\r\n"
        f"SUMMARY:Event {uid}\r\nEND:VEVENT\r\n"
    )


def fill(client: DAVClient, url: str, n: int, first: datetime) -> None:
    """Upload n events in one PUT of the whole collection (Radicale splits it by UID)."""
    body = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
    body += "".join(_vevent(f"ev{i}@bench", first + timedelta(hours=3 * i)) for i in range(n))
    body += "END:VCALENDAR\r\n"
    response = client.put(url, body, {"Content-Type": "text/calendar"})
    assert response.status in (200, 201, 204), response.status


def touch(client: DAVClient, url: str, first: datetime) -> None:
    """Change one event, as a calendar app would."""
    href = str(client.calendar(url=url).get_object_by_uid("ev1@bench").url)
    response = client.put(
        href,
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\n"
        + _vevent("ev1@bench", first + timedelta(minutes=15 + time.time_ns() % 1000))
        + "END:VCALENDAR\r\n",
        {"Content-Type": "text/calendar"},
    )
    assert response.status in (200, 201, 204), response.status


async def connect(
    store: Store, settings: Settings, server: radicale.RadicaleServer, busy: str
) -> str:
    async with store.transaction() as session:
        account, user = await practitioner(session)
        integration = await integrations.create_integration(
            session,
            settings,
            account,
            integrations.NewIntegration(
                user_id=user.id,
                provider="caldav",
                server_url=server.url,
                username=server.username,
                password=server.password,
                write_calendar="calgate",
                busy_calendars=("calgate", busy),
            ),
        )
        return integration.id


CPU: list[float] = []  # calgate's own CPU seconds (the server is another process) per sync


async def timed_sync(store: Store, settings: Settings, integration_id: str) -> float:
    began, cpu = time.perf_counter(), time.process_time()
    outcome = await sync_integration(store, settings, integration_id)
    elapsed = time.perf_counter() - began
    CPU.append(time.process_time() - cpu)
    assert outcome.error is None, outcome.error
    return elapsed


def vdirsyncer(folder: Path, url: str, server: radicale.RadicaleServer) -> tuple[float, float]:
    (folder / "local").mkdir(parents=True)
    config = folder / "config"
    config.write_text(
        f"""[general]
status_path = "{folder / "status"}"

[pair bench]
a = "remote"
b = "local"
collections = null

[storage remote]
type = "caldav"
url = "{url}"
username = "{server.username}"
password = "{server.password}"

[storage local]
type = "filesystem"
path = "{folder / "local"}"
fileext = ".ics"
""",
        encoding="utf-8",
    )
    exe = shutil.which("vdirsyncer") or str(Path(sys.executable).parent / "vdirsyncer")
    env = {**os.environ, "VDIRSYNCER_CONFIG": str(config)}
    subprocess.run([exe, "discover"], input=b"y\ny\n", env=env, check=True, capture_output=True)
    began = time.perf_counter()
    subprocess.run([exe, "sync"], env=env, check=True, capture_output=True)
    initial = time.perf_counter() - began
    runs = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        subprocess.run([exe, "sync"], env=env, check=True, capture_output=True)
        runs.append(time.perf_counter() - began)
    assert len(list((folder / "local").glob("*.ics"))) == 2000
    return initial, min(runs)


async def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="calgate-bench-"))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder}/calgate.db",
        data_dir=folder,
        outbound_allow="127.0.0.1",
        sync_window_future_days=3650,
    )
    store = features.install(Store.from_url(settings.database_url))
    await migrate.upgrade(store)
    first = datetime.now(UTC) + timedelta(days=1)
    try:
        with radicale.running_process(folder / "radicale") as server:
            client = DAVClient(server.url, username=server.username, password=server.password)
            principal = client.principal()
            principal.make_calendar(name="calgate", cal_id="calgate")
            urls = {}
            for n in (100, 2000, 10000):
                cal = principal.make_calendar(name=f"c{n}", cal_id=f"c{n}")
                urls[n] = str(cal.url)
                fill(client, urls[n], n, first)

            # Radicale reads items lazily after an upload: warm its cache before any timing,
            # so that neither calgate nor vdirsyncer pays for it.
            for url in urls.values():
                client.calendar(url=url).get_objects_by_sync_token(load_objects=False)

            # Initial pull of 2,000 events (a fresh integration each round), and no-change syncs.
            initials = []
            for _ in range(ROUNDS):
                pull = await connect(store, settings, server, urls[2000])
                initials.append(await timed_sync(store, settings, pull))
            initial = min(initials)
            quiet = min([await timed_sync(store, settings, pull) for _ in range(ROUNDS)])

            # One change in calendars of 100 and 10,000 events.
            incremental: dict[int, float] = {}
            report: dict[int, float] = {}
            own_cpu: dict[int, float] = {}
            for n in (100, 10000):
                integration_id = await connect(store, settings, server, urls[n])
                await timed_sync(store, settings, integration_id)
                runs, cpu = [], []
                for _ in range(ROUNDS):
                    touch(client, urls[n], first)
                    runs.append(await timed_sync(store, settings, integration_id))
                    cpu.append(CPU[-1])
                incremental[n] = min(runs)
                own_cpu[n] = min(cpu)
                # The server's own cost of answering a sync-collection REPORT with no change.
                connector = CalDAVConnector(
                    Credentials(server.url, server.username, server.password)
                )
                window = sync_window(settings, datetime.now(UTC))
                changes = await connector.list_changes(urls[n], None, window)
                bare = []
                for _ in range(ROUNDS):
                    began = time.perf_counter()
                    await connector.list_changes(urls[n], changes.cursor, window)
                    bare.append(time.perf_counter() - began)
                report[n] = min(bare)
                await connector.close()

            v_runs = [
                vdirsyncer(folder / f"vdirsyncer{i}", urls[2000], server) for i in range(ROUNDS)
            ]
            v_initial = min(r[0] for r in v_runs)
            v_quiet = min(r[1] for r in v_runs)
    finally:
        await store.close()
        shutil.rmtree(folder, ignore_errors=True)

    print(f"caldav_initial_pull_2000_events_s = {initial:.3f}")
    print(f"caldav_no_change_sync_2000_events_s = {quiet:.3f}")
    print(f"caldav_one_change_in_100_events_s = {incremental[100]:.3f}")
    print(f"caldav_one_change_in_10000_events_s = {incremental[10000]:.3f}")
    # Wall clock includes Radicale's own sync-collection REPORT, which is O(collection size)
    # even with nothing changed (the two radicale_* lines): no client can make this one flat.
    print(
        "caldav_incremental_ratio_10000_over_100_wall = "
        f"{incremental[10000] / incremental[100]:.2f} (target <= 2)"
    )
    print(f"radicale_no_change_report_100_events_s = {report[100]:.3f}")
    print(f"radicale_no_change_report_10000_events_s = {report[10000]:.3f}")
    print(f"caldav_cpu_one_change_in_100_events_s = {own_cpu[100]:.3f}")
    print(f"caldav_cpu_one_change_in_10000_events_s = {own_cpu[10000]:.3f}")
    print(
        "caldav_incremental_ratio_10000_over_100_calgate_cpu = "
        f"{own_cpu[10000] / own_cpu[100]:.2f} (target <= 2)"
    )
    print(f"vdirsyncer_initial_2000_events_s = {v_initial:.3f}")
    print(f"vdirsyncer_no_change_2000_events_s = {v_quiet:.3f}")
    print(f"initial_ratio_calgate_over_vdirsyncer = {initial / v_initial:.2f} (target <= 1)")
    print(f"no_change_ratio_calgate_over_vdirsyncer = {quiet / v_quiet:.2f} (target <= 1)")


async def run_all() -> None:
    """CalDAV against Radicale, then Google and Outlook through their stand-ins
    (bench/sync_google.py, bench/sync_outlook.py)."""
    await main()
    import sync_google  # beside this file: python puts the script's folder on sys.path
    import sync_outlook

    await sync_google.main()
    await sync_outlook.main()


if __name__ == "__main__":
    asyncio.run(run_all())
