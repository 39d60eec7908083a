"""Real `calgate` processes for the ops tests: start with arguments and settings, wait until
ready, stop with SIGTERM, and the API calls of a booking."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.peers.smtp import free_port


def clean_env(**settings: str) -> dict[str, str]:
    """The environment without the caller's CALGATE_* settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALGATE_", "PROMETHEUS_"))}
    env.update({"CALGATE_SCHEDULER_TICK_SECONDS": "0.5", "CALGATE_LOG_FORMAT": "json"})
    env.update(settings)
    return env


@dataclass
class Daemons:
    """Every process started by a test, killed at the end whatever happened."""

    calgate: str
    logs: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(
        self, args: list[str], env: dict[str, str], cwd: Path | str = "/"
    ) -> subprocess.CompletedProcess[str]:
        """Run a short calgate command to its end."""
        return subprocess.run(
            [self.calgate, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
        )

    def start(
        self, args: list[str], env: dict[str, str], *, ready: str | None, cwd: Path | str = "/"
    ) -> subprocess.Popen[bytes]:
        """Start `calgate ARGS`; with `ready`, wait until that URL answers 200."""
        # Standard error to a file: a pipe nobody reads would stall a chatty daemon.
        log = self.logs / f"calgate-{len(self.procs)}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [self.calgate, *args], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err
            )
        proc.log = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        if ready is None:
            return proc
        deadline = time.monotonic() + 120  # a loaded CI machine starts slowly
        while time.monotonic() < deadline:
            try:
                if httpx.get(ready, timeout=2, verify=False).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(log.read_text())
            time.sleep(0.1)
        raise AssertionError(f"calgate {args} did not become ready")

    @staticmethod
    def stop(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
        """SIGTERM, then the exit code and standard error."""
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        return proc.returncode, proc.log.read_text()  # type: ignore[attr-defined]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def port() -> int:
    """A free port on 127.0.0.1."""
    return free_port()


def book(base: str, key: str, email: str = "ada@example.com") -> dict[str, str]:
    """A practitioner, a client with `email`, and an appointment three days ahead."""
    auth = {"Authorization": f"Bearer {key}"}
    user = httpx.post(f"{base}/v1/users", json={"name": "Dr P", "timezone": "UTC"}, headers=auth)
    client = httpx.post(f"{base}/v1/clients", json={"name": "Ada", "email": email}, headers=auth)
    assert user.status_code == client.status_code == 201, (user.text, client.text)
    start = time.time() + 3 * 86400
    iso = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(start))
    end = time.strftime("%Y-%m-%dT%H:30:00Z", time.gmtime(start))
    booked = httpx.post(
        f"{base}/v1/appointments",
        json={
            "user_id": user.json()["id"],
            "client_id": client.json()["id"],
            "start": iso,
            "end": end,
            "title": "Check-up",
        },
        headers=auth,
    )
    assert booked.status_code == 201, booked.text
    return {"user_id": user.json()["id"], "appointment_id": booked.json()["id"]}
