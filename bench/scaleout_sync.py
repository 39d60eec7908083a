"""Scale-out sync benchmark: three `calgate serve` processes on one PostgreSQL database sync
``--integrations`` calendar integrations, spread in turn over ``--providers`` (CalDAV: one
Radicale process, a user and a calendar each; Google: the Calendar API stand-in, a calendar
each), while both sides change.

    .venv/bin/python bench/scaleout_sync.py [--integrations 300] [--providers caldav,google]
        [--poll-minutes 1]

Every practitioner is connected (Google by consent) and booked three times through the three
APIs in turn; once those are in the calendars, two more bookings each go through the APIs while,
at the same time, each calendar gets a move, a deletion and an event of its own
(tests/ops/sync_scale.py). Then it waits until everything has settled and counts, for each
provider: remote copies beyond one per UID (duplicates), live appointments missing from their
calendar, events that should be gone, moves and deletions not taken over; and sync runs of one
integration that overlapped in time (the daemons' "sync run" lines, on through sync.log_runs
while they log at WARNING). Prints ``name = value (target ...)`` lines and exits 0 whatever the
figures are.

Needs the tests' PostgreSQL server (CALGATE_TEST_POSTGRES_URL); creates and drops a database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the scene, the daemons and Radicale of tests/

from cryptography.fernet import Fernet  # noqa: E402

from bench.scaleout import CALGATE, POSTGRES, database  # noqa: E402
from tests.ops import sync_scale  # noqa: E402
from tests.ops.daemon import Daemons, clean_env, port  # noqa: E402

SETTLE_SECONDS = 360


def _settle(scene: sync_scale.Scene, seconds: float) -> tuple[float, sync_scale.Tally]:
    started = time.perf_counter()
    while not (tally := scene.check()).clean() and time.perf_counter() - started < seconds:
        time.sleep(2)
    return time.perf_counter() - started, tally


def _line(name: str, value: object, target: str) -> None:
    print(f"scaleout_sync_{name} = {value} ({target})", flush=True)


def main(args: argparse.Namespace) -> None:
    name = f"bench_sync_{uuid.uuid4().hex[:8]}"
    url = POSTGRES.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(database(name, create=True))
    count, providers = args.integrations, args.providers
    with tempfile.TemporaryDirectory(prefix="calgate-bench-") as tmp:
        folder = Path(tmp)
        daemons = Daemons(CALGATE, folder)
        try:
            with sync_scale.peers_running(folder, count, providers, own_process=True) as peers:
                key = Fernet.generate_key().decode()
                envs = [
                    clean_env(
                        CALGATE_DATABASE_URL=url,
                        CALGATE_DATA_DIR=str(folder / "data"),
                        CALGATE_SECRETS_KEY=key,
                        CALGATE_SERVER_PORT=str(p),
                        CALGATE_PUBLIC_URL=f"http://127.0.0.1:{p}",
                        **sync_scale.sync_env(args.poll_minutes, peers),
                    )
                    for p in [port() for _ in range(3)]
                ]
                assert daemons.run(["migrate"], envs[0]).returncode == 0
                made = daemons.run(["account", "create", "Bench Sync"], envs[0])
                api_key = made.stdout.strip().splitlines()[-1]
                procs = [
                    daemons.start(["serve"], e, ready=f"{e['CALGATE_PUBLIC_URL']}/readyz")
                    for e in envs
                ]
                bases = [e["CALGATE_PUBLIC_URL"] for e in envs]
                scene = sync_scale.Scene(bases, api_key, peers, count, providers)
                try:
                    started = time.perf_counter()
                    scene.connect()
                    _line("connect_s", f"{time.perf_counter() - started:.0f}", "-")
                    started = time.perf_counter()
                    scene.book(range(3))
                    seconds, _ = _settle(scene, SETTLE_SECONDS)
                    _line("first_push_s", f"{time.perf_counter() - started:.0f}", "-")
                    started = time.perf_counter()
                    booking = scene.in_background(lambda: scene.book(range(3, 5)))
                    scene.change_remote()
                    booking.join(SETTLE_SECONDS)
                    failures = booking.failures  # type: ignore[attr-defined]
                    assert not booking.is_alive(), "the bookings did not finish"
                    assert not failures, failures
                    changed = time.perf_counter() - started
                    seconds, _ = _settle(scene, SETTLE_SECONDS)
                    time.sleep(3)  # a late duplicate would show up now
                    tallies = scene.check_by_provider(everyone=True)
                finally:
                    scene.close()
                alive = sum(p.poll() is None for p in procs)
                logs = [p.log for p in procs]  # type: ignore[attr-defined]
        finally:
            daemons.kill_all()
            asyncio.run(database(name, create=False))
        overlaps, runs, owners = sync_scale.overlapping_runs(logs)
    spread = ", ".join(f"{sum(1 for p in scene.people if p.provider == x)} {x}" for x in tallies)
    _line("integrations", count, f"three processes; {spread}")
    for provider, tally in tallies.items():
        _line(f"duplicate_remote_events_{provider}", tally.duplicates, "target <= 0")
        _line(f"missing_remote_events_{provider}", tally.missing, "target <= 0")
        _line(f"stale_remote_events_{provider}", tally.stale, "target <= 0")
        _line(f"moves_not_taken_{provider}", tally.unmoved, "target <= 0")
        _line(f"deletions_not_taken_{provider}", tally.uncancelled, "target <= 0")
    _line("overlapping_runs", overlaps, "target <= 0")
    _line("runs", runs, f"by {owners} processes")
    _line("processes_alive", alive, "target >= 3")
    _line("changes_s", f"{changed:.0f}", "both sides changing at once")
    _line("converge_s", f"{changed + seconds:.0f}", f"poll every {args.poll_minutes} min")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--integrations", type=int, default=300)
    parser.add_argument(
        "--providers",
        type=sync_scale.parse_providers,
        default=sync_scale.PROVIDERS,
        help="comma-separated, taken in turn: caldav, google or both (default caldav,google)",
    )
    parser.add_argument("--poll-minutes", type=float, default=1.0)
    began = time.perf_counter()
    main(parser.parse_args())
    print(f"bench_wall_s = {time.perf_counter() - began:.0f} (target < 600)")
