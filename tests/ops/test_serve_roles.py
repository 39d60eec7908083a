"""`calgate serve` roles, --workers, trusted proxies and direct TLS, as real processes."""

from __future__ import annotations

import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme

from tests.ops.daemon import Daemons, book, clean_env, port
from tests.peers.smtp import SmtpServer, SmtpSink

CALGATE = str(Path(sys.executable).parent / "calgate")


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[Daemons]:
    running = Daemons(CALGATE, tmp_path)
    yield running
    running.kill_all()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


def _env(tmp_path: Path, the_port: int, **more: str) -> dict[str, str]:
    return clean_env(
        CALGATE_DATA_DIR=str(tmp_path / "data"),
        CALGATE_SERVER_PORT=str(the_port),
        CALGATE_PUBLIC_URL=f"http://127.0.0.1:{the_port}",
        CALGATE_NOTIFY_TICK_SECONDS="0.2",
        **more,
    )


def _key(daemons: Daemons, env: dict[str, str]) -> str:
    created = daemons.run(["account", "create", "Roles Clinic"], env)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def test_api_plans_and_only_the_worker_delivers(daemons: Daemons, smtp: SmtpSink, tmp_path):
    the_port = port()
    env = _env(
        tmp_path,
        the_port,
        CALGATE_SMTP_HOST="127.0.0.1",
        CALGATE_SMTP_PORT=str(smtp.port),
        CALGATE_SMTP_TLS="none",
    )
    key = _key(daemons, env)
    base = f"http://127.0.0.1:{the_port}"
    api = daemons.start(["serve", "--role", "api", "--workers", "2"], env, ready=f"{base}/readyz")
    book(base, key)
    time.sleep(2)  # several delivery ticks' worth: an API process sends nothing
    assert smtp.received == []

    worker = daemons.start(["serve", "--role", "worker"], env, ready=None)
    deadline = time.monotonic() + 90
    while not smtp.received and time.monotonic() < deadline:
        assert worker.poll() is None, worker.log.read_text()  # type: ignore[attr-defined]
        time.sleep(0.2)
    assert [r.recipients for r in smtp.received] == [["ada@example.com"]]

    # Both API processes answer on the one port (each request may land on either).
    answers = {httpx.get(f"{base}/healthz").status_code for _ in range(20)}
    assert answers == {200}
    code, err = daemons.stop(api)
    assert code == 0 and "Traceback" not in err, err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base}/healthz", timeout=2)
    code, err = daemons.stop(worker)
    assert code == 0 and "scheduler stopped" in err, err


def _addresses_seen(base: str, key: str, env: dict[str, str]) -> int:
    auth = {"Authorization": f"Bearer {key}"}
    user = httpx.post(f"{base}/v1/users", json={"name": "Dr F"}, headers=auth).json()
    feed = httpx.post(
        f"{base}/v1/feeds", json={"scope": "user", "user_id": user["id"]}, headers=auth
    ).json()
    for forwarded in ("203.0.113.7", "203.0.113.8", "203.0.113.9"):
        fetched = httpx.get(feed["url"], headers={"X-Forwarded-For": forwarded})
        assert fetched.status_code == 200
    record = httpx.get(f"{base}/v1/feeds/{feed['id']}", headers=auth).json()
    return int(record["access"]["distinct_addresses_7d"])


@pytest.mark.parametrize(("trusted", "expected"), [("127.0.0.1", 3), ("", 1)])
def test_forwarded_address_only_from_trusted_proxy(
    daemons: Daemons, tmp_path, trusted: str, expected: int
):
    the_port = port()
    env = _env(tmp_path, the_port, CALGATE_SERVER_FORWARDED_ALLOW_IPS=trusted)
    key = _key(daemons, env)
    base = f"http://127.0.0.1:{the_port}"
    daemons.start(["serve"], env, ready=f"{base}/readyz")
    assert _addresses_seen(base, key, env) == expected


def test_serves_tls_directly(daemons: Daemons, tmp_path):
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    the_port = port()
    env = _env(
        tmp_path,
        the_port,
        CALGATE_SERVER_TLS_CERT_FILE=str(cert_file),
        CALGATE_SERVER_TLS_KEY_FILE=str(key_file),
    )
    base = f"https://127.0.0.1:{the_port}"
    daemons.start(["serve"], env, ready=f"{base}/healthz")
    context = ssl.create_default_context()
    authority.configure_trust(context)
    assert httpx.get(f"{base}/readyz", verify=context).json()["status"] == "ok"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"http://127.0.0.1:{the_port}/healthz")
