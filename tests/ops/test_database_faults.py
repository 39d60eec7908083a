"""Database faults (issue 14): a private PostgreSQL (initdb and pg_ctl on a free port in a
temporary folder, never the shared server) is stopped and started again under a real `calgate
serve` that is booking appointments, delivering their confirmations and syncing them to a
Radicale calendar. The daemon keeps running and reconnects; `/readyz` says ``database: down``
while it is down; every booking that was acknowledged (201) is there afterwards, in the
calendar once, and its confirmation arrives (claimed work resumes once its lease expires);
bookings refused meanwhile got a 503 and Retry-After, not half-done."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from caldav.davclient import DAVClient

from gateway.domain.uids import appointment_uid
from tests.ops.daemon import Daemons, clean_env, port
from tests.peers import radicale
from tests.peers.smtp import SmtpServer, SmtpSink

CALGATE = str(Path(sys.executable).parent / "calgate")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOWN_SECONDS = 6.0


class PrivatePostgres:
    """A PostgreSQL of this test only, run as the `postgres` user when we are root."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(folder, "postgres") if _root() else None
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if _root() else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.folder / "pg.log"), "start",
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")


def _received(smtp: SmtpSink) -> set[str]:
    return {to for r in smtp.received for to in r.recipients}


def _root() -> bool:
    import os

    return os.geteuid() == 0


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("no PostgreSQL 15 binaries to run a private server")
    # Not under pytest's folders: the `postgres` user must be able to reach it.
    folder = Path(tempfile.mkdtemp(prefix="calgate-pg-"))
    server = PrivatePostgres(folder)
    server.start()
    try:
        yield server
    finally:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", str(server.data),
             "-m", "immediate", "stop"] if _root() else
            [str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-m", "immediate", "stop"],
            capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


@pytest.fixture
def calendar(tmp_path: Path) -> Iterator[tuple[radicale.RadicaleServer, Any]]:
    with radicale.running(tmp_path / "radicale") as server:
        dav = DAVClient(server.url, username=server.username, password=server.password)
        yield server, dav.principal().make_calendar(name="Work", cal_id="work")
        dav.close()


@pytest.mark.timeout(400)
def test_postgres_restart_under_load(
    postgres: PrivatePostgres,
    smtp: SmtpSink,
    calendar: tuple[radicale.RadicaleServer, Any],
    tmp_path: Path,
) -> None:
    base = f"http://127.0.0.1:{port()}"
    env = clean_env(
        CALGATE_DATABASE_URL=postgres.url,
        CALGATE_SERVER_PORT=base.rsplit(":", 1)[1],
        CALGATE_DATA_DIR=str(tmp_path / "data"),
        CALGATE_SMTP_HOST="127.0.0.1",
        CALGATE_SMTP_PORT=str(smtp.port),
        CALGATE_SMTP_TLS="none",
        CALGATE_NOTIFY_TICK_SECONDS="0.3",
        CALGATE_SCHEDULER_LEASE_SECONDS="5",
        CALGATE_SYNC_TICK_SECONDS="0.5",
        CALGATE_OUTBOUND_ALLOW="127.0.0.1",
    )
    daemons = Daemons(CALGATE, tmp_path)
    api: httpx.Client | None = None
    stop = threading.Event()  # ends the booking thread, also when an assertion failed
    try:
        made = daemons.run(["migrate"], env, tmp_path)
        assert made.returncode == 0, made.stderr
        made = daemons.run(["account", "create", "Db Clinic"], env, tmp_path)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip().splitlines()[-1]
        proc = daemons.start(["serve"], env, ready=f"{base}/readyz", cwd=tmp_path)
        api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=15)
        user = api.post("/v1/users", json={"name": "Dr Db", "timezone": "UTC"}).json()
        server, work = calendar
        connected = api.post(
            "/v1/integrations",
            json={
                "user_id": user["id"],
                "provider": "caldav",
                "server_url": server.url,
                "username": server.username,
                "password": server.password,
                "write_calendar": "Work",
            },
        )
        assert connected.status_code == 201, connected.text

        acknowledged: dict[str, str] = {}  # appointment id → its client's address
        refused: list[int] = []

        def load() -> None:
            """Book without pause, as the booking product would, whatever the answers."""
            first = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=2)
            n = 0
            while not stop.is_set():
                n += 1
                email = f"p{n}@example.com"
                try:
                    person = api.post("/v1/clients", json={"name": f"P {n}", "email": email})
                    if person.status_code != 201:
                        refused.append(person.status_code)
                        time.sleep(0.2)
                        continue
                    start = first + timedelta(minutes=15 * n)
                    booked = api.post(
                        "/v1/appointments",
                        json={
                            "user_id": user["id"],
                            "client_id": person.json()["id"],
                            "start": start.isoformat(),
                            "end": (start + timedelta(minutes=15)).isoformat(),
                            "title": "Load",
                        },
                    )
                except httpx.TransportError:
                    refused.append(0)
                    continue
                if booked.status_code == 201:
                    acknowledged[booked.json()["id"]] = email
                else:
                    refused.append(booked.status_code)
                    time.sleep(0.2)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 3:
            assert loader.is_alive() and time.monotonic() < deadline, (refused, user)
            time.sleep(0.2)
        before = len(acknowledged)

        postgres.stop()
        time.sleep(1)
        down = httpx.get(f"{base}/readyz", timeout=15)
        assert down.status_code == 503
        assert down.json()["database"] == "down"
        assert httpx.get(f"{base}/healthz", timeout=15).status_code == 200
        time.sleep(DOWN_SECONDS)
        assert proc.poll() is None, "the daemon stopped while its database was down"
        postgres.start()

        deadline = time.monotonic() + 90
        while httpx.get(f"{base}/readyz", timeout=15).status_code != 200:
            assert time.monotonic() < deadline, "the daemon did not reconnect"
            time.sleep(0.5)
        time.sleep(3)  # bookings go on after the restart
        stop.set()
        loader.join(30)
        assert len(acknowledged) > before, "no booking succeeded after the restart"
        assert refused, "the database outage went unnoticed by the API"
        # 503 with Retry-After while the database is away (not a 500: nothing broke in here).
        assert set(refused) <= {0, 503}, Counter(refused)
        # ... and the API description says so, in the error shape it answers.
        documented = api.get("/openapi.json").json()["paths"]["/v1/appointments"]["post"]
        assert documented["responses"]["503"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorOut"
        }

        # Nothing acknowledged is lost: every booking is there, and its confirmation arrives.
        for apt_id in acknowledged:
            assert api.get(f"/v1/appointments/{apt_id}").status_code == 200
        wanted = set(acknowledged.values())
        deadline = time.monotonic() + 120
        while not wanted <= _received(smtp):
            assert time.monotonic() < deadline, wanted - _received(smtp)
            time.sleep(0.5)
        # ... and is in the practitioner's calendar, once (the syncs went on too).
        wanted_uids = {appointment_uid(a) for a in acknowledged}

        def uids() -> list[str]:
            return [str(o.icalendar_component["UID"]) for o in work.events()]

        while not wanted_uids <= set(uids()):
            assert time.monotonic() < deadline, len(wanted_uids - set(uids()))
            time.sleep(0.5)
        assert sorted(uids()) == sorted(wanted_uids)
        assert proc.poll() is None
        print(
            f"database faults: {len(acknowledged)} bookings acknowledged, refused while down: "
            f"{dict(Counter(refused))}, {len(smtp.received)} confirmations received"
        )
    finally:
        stop.set()
        if api is not None:  # also when an assertion failed: no socket left for a later test
            api.close()
        daemons.kill_all()
