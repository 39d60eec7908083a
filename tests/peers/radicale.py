"""A real Radicale CalDAV server in-process on 127.0.0.1 (ephemeral port), htpasswd auth."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import radicale
import radicale.config


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class RadicaleServer:
    """A running server: its base URL and the one user's credentials."""

    url: str
    username: str
    password: str
    folder: Path


def _users_file(folder: Path, users: Mapping[str, str]) -> Path:
    path = folder / "users"
    path.write_text("".join(f"{u}:{p}\n" for u, p in users.items()), encoding="utf-8")
    return path


@contextmanager
def running(
    folder: Path,
    username: str = "alice",
    password: str = "pw-Radicale-1",
    more_users: Mapping[str, str] | None = None,
) -> Iterator[RadicaleServer]:
    """Start Radicale storing under `folder`; stop it on exit. `more_users` (name → password)
    may sign in too, each owning their own collections."""
    folder.mkdir(parents=True, exist_ok=True)
    users = _users_file(folder, {username: password, **(more_users or {})})
    config = radicale.config.load()
    config.update(
        {
            "auth": {
                "type": "htpasswd",
                "htpasswd_filename": str(users),
                "htpasswd_encryption": "plain",
                "delay": "0",
            },
            "storage": {"filesystem_folder": str(folder / "collections")},
            "rights": {"type": "owner_only"},
            "logging": {"level": "warning", "mask_passwords": "True"},
        },
        "test",
        privileged=True,
    )
    app = radicale.Application(config)
    server = make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    # A short poll interval: shutdown() waits for one, in every test teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield RadicaleServer(f"http://127.0.0.1:{server.server_port}/", username, password, folder)
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def running_process(
    folder: Path,
    username: str = "alice",
    password: str = "pw-Radicale-1",
    more_users: Mapping[str, str] | None = None,
) -> Iterator[RadicaleServer]:
    """The same server as a separate process (`python -m radicale`), so that a benchmark's
    client does not share the interpreter (and its lock) with the server."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    folder.mkdir(parents=True, exist_ok=True)
    users = _users_file(folder, {username: password, **(more_users or {})})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    config = folder / "config"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
        "htpasswd_encryption = plain\ndelay = 0\n"
        f"[storage]\nfilesystem_folder = {folder / 'collections'}\n"
        "[rights]\ntype = owner_only\n[logging]\nlevel = warning\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("radicale did not start") from None
                time.sleep(0.05)
        yield RadicaleServer(url, username, password, folder)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
