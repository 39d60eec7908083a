"""A real Radicale CalDAV server in-process on 127.0.0.1 (ephemeral port), htpasswd auth."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@dataclass(frozen=True)
class RadicaleServer:
    """A running server: its base URL and the one user's credentials."""

    url: str
    username: str
    password: str
    folder: Path


@contextmanager
def running(
    folder: Path, username: str = "alice", password: str = "pw-Radicale-1"
) -> Iterator[RadicaleServer]:
    """Start Radicale storing under `folder`; stop it on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    users = folder / "users"
    users.write_text(f"{username}:{password}\n", encoding="utf-8")
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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield RadicaleServer(f"http://127.0.0.1:{server.server_port}/", username, password, folder)
    finally:
        server.shutdown()
        server.server_close()
