"""Three real `calgate serve` processes on one PostgreSQL database sync a mixed population of
calendar integrations, CalDAV (one Radicale server) and Google (the Calendar API stand-in),
while both sides change: appointments booked through all three APIs at the same time as the
calendars are edited directly (a move, a deletion and an event of the practitioner's own in
each).

Once settled, every live appointment is in its practitioner's calendar exactly once, the remote
move and deletion are taken over by calgate, for both providers, and no integration was ever
synced by two processes at once: the daemons' "sync run" lines (gateway/sync/schedule.py),
written under `sync.log_runs` while the daemons log at WARNING. The bench with 300 is
bench/scaleout_sync.py.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.conftest import postgres_database
from tests.ops import sync_scale
from tests.ops.daemon import Daemons, clean_env, port

CALGATE = str(Path(sys.executable).parent / "calgate")
PRACTITIONERS = 30  # every other one on Google

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async for url in postgres_database("t_scale_sync"):
        yield url


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    running = Daemons(CALGATE, tmp_path)
    yield running
    running.kill_all()


@pytest.mark.timeout(600)  # three daemons and Radicale on a shared 2-core machine
def test_three_processes_sync_each_calendar_once_with_changes_on_both_sides(
    database: str, daemons: Daemons, tmp_path: Path
) -> None:
    providers = sync_scale.PROVIDERS
    with sync_scale.peers_running(tmp_path, PRACTITIONERS, providers) as peers:
        secrets_key = Fernet.generate_key().decode()
        envs = [
            clean_env(
                CALGATE_DATABASE_URL=database,
                CALGATE_DATA_DIR=str(tmp_path / "data"),
                CALGATE_SECRETS_KEY=secrets_key,
                CALGATE_SERVER_PORT=str(the_port),
                CALGATE_PUBLIC_URL=f"http://127.0.0.1:{the_port}",
                **sync_scale.sync_env(poll_minutes=0.1, peers=peers),
            )
            for the_port in [port() for _ in range(3)]
        ]
        assert daemons.run(["migrate"], envs[0]).returncode == 0
        created = daemons.run(["account", "create", "Sync Clinic"], envs[0])
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        procs = [
            daemons.start(["serve"], env, ready=f"{env['CALGATE_PUBLIC_URL']}/readyz")
            for env in envs
        ]
        scene = sync_scale.Scene(
            [e["CALGATE_PUBLIC_URL"] for e in envs], key, peers, PRACTITIONERS, providers
        )
        try:
            scene.connect()
            scene.book(range(3))
            _settle(scene, 240)  # the first bookings are in the calendars
            booking = scene.in_background(lambda: scene.book(range(3, 5)))
            scene.change_remote()
            booking.join(240)
            assert not booking.is_alive(), "the bookings did not finish"
            assert booking.failures == []  # type: ignore[attr-defined]
            _settle(scene, 240)
            time.sleep(3)  # time for a late duplicate to show up, if there were one
            tallies = scene.check_by_provider(everyone=True)
        finally:
            scene.close()
        assert set(tallies) == set(providers)
        assert all(t.clean() for t in tallies.values()), tallies
        for proc in procs:
            assert proc.poll() is None, "a daemon stopped"
        overlaps, runs, owners = sync_scale.overlapping_runs(p.log for p in procs)  # type: ignore[attr-defined]
        print(f"\n{runs} sync runs by {owners} processes, {overlaps} overlapping")
        assert runs >= 2 * PRACTITIONERS  # each integration synced at least before and after
        assert owners == 3, "the syncs were not spread over the three processes"
        assert overlaps == 0


def _settle(scene: sync_scale.Scene, seconds: float) -> sync_scale.Tally:
    deadline = time.monotonic() + seconds
    while not (tally := scene.check()).clean() and time.monotonic() < deadline:
        time.sleep(1)
    return tally


def test_the_overlap_count_sees_two_runs_of_one_integration_at_once(tmp_path: Path) -> None:
    """The check above can fail: runs of one integration that intersect are counted."""

    def line(integration: str, owner: str, started: str, finished: str) -> str:
        run = {"integration_id": integration, "lease_owner": owner}
        run |= {"started": f"2026-01-01T10:00:{started}+00:00"}
        run |= {"finished": f"2026-01-01T10:00:{finished}+00:00"}
        return json.dumps({"msg": "sync run", **run})

    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_text(line("int_1", "a", "01", "05") + "\n" + line("int_2", "a", "01", "02") + "\n")
    second.write_text(
        line("int_1", "b", "05", "06") + "\nnot json\n" + line("int_2", "b", "01", "03")
    )
    assert sync_scale.overlapping_runs([first, second]) == (1, 4, 2)
