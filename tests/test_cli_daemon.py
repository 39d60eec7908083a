"""The `calgate` command and a real `calgate serve` process: start, use, SIGTERM, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

CALGATE = str(Path(sys.executable).parent / "calgate")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALGATE_")}
    return {
        **clean,
        "CALGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/var/calgate.db",
        "CALGATE_SERVER_PORT": str(_free_port()),
        "CALGATE_SCHEDULER_TICK_SECONDS": "0.5",
    }


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CALGATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def serve(env: dict[str, str], tmp_path: Path) -> Iterator[callable]:
    procs: list[subprocess.Popen[str]] = []

    def start() -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [CALGATE, "serve"], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        procs.append(proc)
        base = f"http://127.0.0.1:{env['CALGATE_SERVER_PORT']}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    return proc, base
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        raise AssertionError("calgate serve did not become ready")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_help_lists_every_command(env, tmp_path):
    out = _run(["--help"], env, tmp_path).stdout
    for command in ("serve", "migrate", "account", "key", "demo"):
        assert command in out


def test_bad_setting_stops_start_up_with_one_line(env, tmp_path):
    result = _run(["serve"], {**env, "CALGATE_DEFAULT_TIMEZONE": "Mars/Base"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "default_timezone" in lines[0] and "CALGATE_DEFAULT_TIMEZONE" in lines[0]


def test_serve_create_sigterm_restart_keeps_data(env, tmp_path, serve):
    created = _run(["account", "create", "E2E Clinic", "--country", "GB"], env, tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {key}"}

    proc, base = serve()
    user = httpx.post(
        f"{base}/v1/users", json={"name": "Dr E", "timezone": "Asia/Kolkata"}, headers=auth
    )
    person = httpx.post(
        f"{base}/v1/clients", json={"name": "C", "phone": "07911 123456"}, headers=auth
    )
    assert user.status_code == person.status_code == 201, (user.text, person.text)
    assert person.json()["phone"] == "+447911123456"
    booked = httpx.post(
        f"{base}/v1/appointments",
        json={
            "user_id": user.json()["id"],
            "client_id": person.json()["id"],
            "start": "2026-03-03T10:00:00+05:30",
            "end": "2026-03-03T11:00:00+05:30",
            "title": "Consultation",
        },
        headers=auth,
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["start"] == "2026-03-03T04:30:00Z"

    code, err = _stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
    assert "scheduler stopped" in err

    proc, base = serve()
    again = httpx.get(f"{base}/v1/appointments/{booked.json()['id']}", headers=auth)
    assert again.status_code == 200
    assert again.json() == booked.json()
    assert _stop(proc)[0] == 0


def test_demo_prints_a_working_key_last(env, tmp_path, serve):
    demo = _run(["demo"], env, tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "curl" in demo.stdout
    key = demo.stdout.strip().splitlines()[-1]
    proc, base = serve()
    auth = {"Authorization": f"Bearer {key}"}
    users = httpx.get(f"{base}/v1/users", headers=auth).json()["data"]
    assert {u["timezone"] for u in users} == {"Europe/London", "America/New_York", "Asia/Kolkata"}
    appointments = httpx.get(f"{base}/v1/appointments", headers=auth).json()["data"]
    assert len(appointments) == 9
    assert _stop(proc)[0] == 0


def test_key_create_and_migrate(env, tmp_path):
    assert _run(["migrate"], env, tmp_path).returncode == 0
    created = _run(["account", "create", "K"], env, tmp_path)
    account_id = created.stdout.split()[1]
    listed = _run(["account", "list"], env, tmp_path).stdout
    assert account_id in listed
    key = _run(["key", "create", account_id, "--name", "backend"], env, tmp_path)
    assert key.returncode == 0
    assert key.stdout.strip().splitlines()[-1].startswith("cg_")
    missing = _run(["key", "create", "acc_nope"], env, tmp_path)
    assert missing.returncode == 1
    assert "no such account" in missing.stderr
