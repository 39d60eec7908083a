"""A booking product's webhook receiver: a small ASGI app under uvicorn on 127.0.0.1.

It does what the README tells receivers to do: verify each request with the `standardwebhooks`
library's own `Webhook.verify` (401 when it fails), and treat a `webhook-id` it has already
processed as a duplicate. Tests script its answers (`script`: statuses to answer next, e.g.
[500, 200]), slow it down (`delay`), stop it (`down()`) and start it again on the same port.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One request as it arrived, and what the library said about its signature."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what we answered
    payload: Any  # the verified JSON, or None
    error: str | None  # the library's refusal, if any
    arrived: float  # time.time()
    client_port: int  # the sender's port: one per connection

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class ReceiverApp:
    """The ASGI app (state shared with the test thread under a lock)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.script: list[int] = []
        self.delay = 0.0
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            status = self.script.pop(0) if self.script else 200
            delay = self.delay
        try:
            if delay:
                await asyncio.sleep(delay)
            payload, error = None, None
            try:
                assert self.secret is not None, "the test did not give the receiver its secret"
                payload = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError as exc:
                error, status = str(exc), 401
            with self._lock:
                self.received.append(
                    Received(
                        scope["path"],
                        headers,
                        body,
                        status,
                        payload,
                        error,
                        time.time(),
                        int((scope.get("client") or ("", 0))[1]),
                    )
                )
        finally:
            with self._lock:
                self.in_flight -= 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": f"answered {status}".encode()})

    def verified(self) -> list[Received]:
        """The requests whose signature the library accepted and that we answered 2xx."""
        with self._lock:
            return [r for r in self.received if r.error is None and 200 <= r.status < 300]

    def events(self) -> list[dict[str, Any]]:
        """Each distinct event processed (de-duplicated by webhook-id, as a receiver must)."""
        seen: dict[str, dict[str, Any]] = {}
        for r in self.verified():
            seen.setdefault(r.webhook_id, r.payload)
        return list(seen.values())


class Receiver:
    """The app served by uvicorn in a thread; `url` stays the same across down() / up()."""

    def __init__(
        self, app: ReceiverApp | None = None, keep_alive: int = 5, host: str = "127.0.0.1"
    ) -> None:
        self.app = app or ReceiverApp()
        self.keep_alive = keep_alive  # seconds an idle connection stays open (uvicorn's)
        self.host = host  # "::1" for IPv6 loopback
        self._family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(self._family) as probe:
            probe.bind((host, 0))
            self.port = int(probe.getsockname()[1])
        literal = f"[{host}]" if ":" in host else host
        self.url = f"http://{literal}:{self.port}/hooks"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        """Listen (again) on the port."""
        sock = socket.socket(self._family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="on",
            access_log=False,
            timeout_keep_alive=self.keep_alive,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.01)
        self._server, self._thread = server, thread

    def down(self) -> None:
        """Stop listening: connections are refused until up()."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None


@contextmanager
def running() -> Iterator[Receiver]:
    """A receiver listening on 127.0.0.1, stopped on exit."""
    receiver = Receiver()
    receiver.up()
    try:
        yield receiver
    finally:
        receiver.down()
