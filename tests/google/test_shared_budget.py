"""Two processes on one PostgreSQL share one Google request budget (issue 10, part 3).

Two real OS processes (tests/google/budget_process.py), each with its settings from the
environment and its own store and connectors built the way the engine builds them, send 2 x 400
requests for one grant against a budget of 500 per window; the stand-in, which records when each
request arrived, must never see more than 500 in any window. The window is a setting
(google.budget_window_seconds), ten seconds here instead of a minute. A database of its own per
test (processes cannot be handed the per-test schema the in-process tests use).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from connectors import google
from gateway.store import migrate
from gateway.store.db import Store
from tests.conftest import postgres_database
from tests.google.conftest import CALENDAR, CLIENT_ID, google_settings
from tests.peers.google import GooglePeer

BUDGET = 500
WINDOW = 10.0  # seconds: longer than 500 requests take to send here, so the budget binds
PER_PROCESS = 400
CONNECTORS_PER_PROCESS = 4
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.postgres


@pytest.fixture
async def database() -> AsyncIterator[str]:
    """A migrated PostgreSQL database of its own, dropped afterwards."""
    async for url in postgres_database("t_budget"):
        store = Store.from_url(url)
        try:
            await migrate.upgrade(store)
        finally:
            await store.close()
        yield url


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes a test starts, killed at the end whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _environment(database: str, peer: GooglePeer, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
    settings = google_settings(
        peer, google_requests_per_minute=BUDGET, google_budget_window_seconds=WINDOW
    )
    env.update({f"CALGATE_{k.upper()}": str(v) for k, v in settings.items()})
    env.update(
        {
            "CALGATE_DATABASE_URL": database,
            "CALGATE_DATA_DIR": str(tmp_path),
            # One key for both, as daemons of one deployment share it (cached access tokens).
            "CALGATE_SECRETS_KEY": Fernet.generate_key().decode(),
            "CALGATE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _most_in_any_window(times: list[float]) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= WINDOW:
            first += 1
        most = max(most, last - first + 1)
    return most


@pytest.mark.timeout(300)  # two interpreters starting on a shared 2-core machine
def test_two_processes_respect_one_budget(
    database: str, peer: GooglePeer, processes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    refresh = peer.grant(CLIENT_ID, " ".join(google.SCOPES))
    env = _environment(database, peer, tmp_path)
    args = [refresh, CALENDAR, str(PER_PROCESS), str(CONNECTORS_PER_PROCESS)]
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.google.budget_process", *args],
                env=env,
                cwd=tmp_path,  # no config/calgate.toml there: settings from the environment
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    for proc in processes:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready", proc.wait()
    assert len({proc.pid for proc in processes}) == 2
    calls = peer.api_calls()
    for proc in processes:  # both start sending now
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in processes:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        assert out.strip() == f"sent {PER_PROCESS}"

    times = [c.at for c in peer.calls[calls:]]
    assert len(times) == 2 * PER_PROCESS
    most = _most_in_any_window(times)
    assert most <= BUDGET
    # Both processes sent within one window (more than either could alone), and the budget is
    # what held the rest back: the call after the budget's 500th came a full window later.
    assert most > PER_PROCESS
    ordered = sorted(times)
    assert ordered[BUDGET] - ordered[0] >= WINDOW
