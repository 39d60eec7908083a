"""The wheel: built from the source, installed into a fresh virtualenv, run from `/`.

The fresh environment gets our wheel and nothing else of the checkout; its third-party
dependencies come from the test environment's site-packages through a path file, because
installing them again from the registry takes minutes. What this proves is that calgate itself
runs from its wheel: templates, default config and migrations found as package data, and data
kept outside the source tree when no checkout is there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ops.daemon import Daemons, book, clean_env, port
from tests.peers.smtp import SmtpServer, SmtpSink

REPO = Path(__file__).resolve().parents[2]


def _source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh virtualenv holding the calgate wheel."""
    if shutil.which("git") is None:
        pytest.skip("git is needed to list the source files")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        origin = REPO / name
        if origin.is_symlink():
            target.symlink_to(origin.readlink())
        elif origin.is_file():
            shutil.copy2(origin, target)
    dist = work / "dist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next(dist.glob("calgate-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    fresh_python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", fresh_python, "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh_site = subprocess.run(
        [fresh_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(fresh_site) / "_test_dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return venv / "bin"


@pytest.fixture
def daemons(installed: Path, tmp_path: Path) -> Iterator[Daemons]:
    running = Daemons(str(installed / "calgate"), tmp_path)
    yield running
    running.kill_all()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


def test_the_wheel_ships_our_files_not_the_checkout(installed: Path):
    python = installed / "python"
    where = subprocess.run(
        [python, "-c", "import gateway, sys; print(gateway.__file__)"],
        cwd="/",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert str(REPO) not in where and "site-packages" in where
    shown = subprocess.run(
        [installed / "calgate", "default-config"], cwd="/", capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (REPO / "config" / "calgate.toml").read_text()


def test_installed_daemon_books_and_emails_from_root(
    daemons: Daemons, smtp: SmtpSink, tmp_path: Path
):
    home = tmp_path / "home"
    the_port = port()
    env = clean_env(
        HOME=str(home),
        CALGATE_SERVER_PORT=str(the_port),
        CALGATE_PUBLIC_URL=f"http://127.0.0.1:{the_port}",
        CALGATE_SMTP_HOST="127.0.0.1",
        CALGATE_SMTP_PORT=str(smtp.port),
        CALGATE_SMTP_TLS="none",
    )
    env.pop("XDG_DATA_HOME", None)
    created = daemons.run(["account", "create", "Wheel Clinic"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    # No checkout and no data_dir: the platform's data folder, created on first use.
    data = home / ".local" / "share" / "calgate"
    assert (data / "calgate.db").is_file()

    base = f"http://127.0.0.1:{the_port}"
    proc = daemons.start(["serve"], env, ready=f"{base}/readyz")
    booked = book(base, key, email="ada@example.com")
    deadline = time.monotonic() + 90
    while not smtp.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert smtp.received, "the confirmation was not sent"
    message = smtp.received[0].message
    assert smtp.received[0].recipients == ["ada@example.com"]
    assert "Check-up" in message.get_body(("plain",)).get_content()  # a shipped template
    assert message.get_body(("html",)) is not None
    feed = httpx.post(
        f"{base}/v1/feeds",
        json={"scope": "user", "user_id": booked["user_id"], "privacy": "limited"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert feed.status_code == 201, feed.text
    ics = httpx.get(feed.json()["url"])
    assert ics.status_code == 200 and b"SUMMARY:Check-up" in ics.content
    code, err = daemons.stop(proc)
    assert code == 0, err
    assert "Traceback" not in err
