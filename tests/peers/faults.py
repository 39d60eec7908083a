"""A fault-injecting TCP peer: a proxy on 127.0.0.1 in front of a real peer (Radicale, the Google,
Graph and Twilio stand-ins, the SMTP sink), switched per case to misbehave the way networks and
providers do.

`fault` says what the next connections get (the switch applies to connections accepted after
it is set; `None` forwards every byte both ways):

- ``refuse``: nothing listens on the port (connection refused), until the fault is cleared;
- ``reset``: forwarded, but the connection is reset (RST) after half of the first answer;
- ``slow``: the request is read and never answered (past any client timeout);
- ``reply``: `reply` is sent (after the request's head and body, or at once with `greet`, as an
  SMTP banner is) and the connection closed: a 5xx, a 429 with Retry-After, an HTML error page,
  a truncated JSON or XML body, a 10 MB answer; `http_reply` builds them (with `only_path`,
  only requests under that path get it, the others are forwarded);
- ``hold``: one request per connection; a request with method `hold_method` is done at the
  peer but its answer never reaches the client (`held` says when): a process killed then has
  made a remote change it never learnt of;
- ``tls``: the TLS handshake is made with `bad_tls` (a certificate no client trusts); only
  for a proxy speaking TLS (`tls`).

With `tls` given, the proxy speaks TLS to its clients with that context (a certificate the
client trusts), and with `upstream_tls` TLS to the peer: that is how a TLS failure can clear
again, and how a peer that itself speaks TLS (Graph) gets HTTP faults.
`connections` counts the connections accepted (all modes), for "not retried" checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_HOLD_SECONDS = 120.0  # a `slow` answer is held this long at most (the test is over by then)


def http_reply(
    status: int,
    body: bytes = b"",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
    length: int | None = None,
) -> bytes:
    """One HTTP/1.1 answer, closing the connection; `length` overrides Content-Length."""
    reason = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error"}.get(status, "X")
    head = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body) if length is None else length}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed or cut-off peer does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    """Read one HTTP request's head and its body (Content-Length): its bytes."""
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return head + await reader.readexactly(int(value.strip()))
    return head


def _closing(message: bytes) -> bytes:
    """An HTTP message with ``Connection: close``: the other side opens a new connection for
    its next request (and sees each one)."""
    head, _, body = message.partition(b"\r\n\r\n")
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


class FaultPeer:
    """The proxy; use `running(upstream_port)`. Attributes are the switches, set from tests."""

    def __init__(
        self,
        upstream_port: int,
        tls: ssl.SSLContext | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.tls = tls
        self.upstream_tls = upstream_tls
        self.bad_tls: ssl.SSLContext | None = None
        self.fault: str | None = None
        self.reply = b""
        self.greet = False
        self.only_path: bytes | None = None  # `reply` only to requests under this path
        self.hold_method = b"PUT"  # `hold`: the method whose answer is held
        self.held = threading.Event()  # `hold`: a request was done and its answer held
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- switches (called from the test's thread) ----------------------------------------

    def set(self, fault: str | None, reply: bytes = b"", greet: bool = False) -> None:
        """Switch the fault for the connections accepted from now on."""
        self.reply, self.greet = reply, greet
        listening = self.fault != "refuse"
        self.fault = fault
        if fault == "refuse" and listening:
            self._sync(self._stop())
        elif fault != "refuse" and not listening:
            self._sync(self._listen())

    def clear(self) -> None:
        """Forward everything again."""
        self.set(None)

    @property
    def url(self) -> str:
        """``http(s)://127.0.0.1:port`` of the proxy."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # --- the loop --------------------------------------------------------------------------

    def _sync(self, coro: object) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    def _choose_certificate(self, sock: ssl.SSLObject, _name: str | None, _ctx: object) -> None:
        # Called at every ClientHello (with no name: clients send none for an IP address).
        if self.fault == "tls" and self.bad_tls is not None:
            sock.context = self.bad_tls

    async def _listen(self) -> None:
        if self.tls is not None:
            self.tls.sni_callback = self._choose_certificate  # type: ignore[assignment]
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        fault = self.fault
        try:
            if fault == "slow":
                await asyncio.wait_for(reader.read(), _HOLD_SECONDS)
            elif fault == "hold":
                await self._one_request(reader, writer)
            elif fault == "reply":
                request = b"" if self.greet else await _read_request(reader)
                path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
                if self.only_path and not path.startswith(self.only_path):
                    await self._forward(reader, writer, reset=False, sent=request)
                    return
                writer.write(self.reply)
                await writer.drain()
            else:
                await self._forward(reader, writer, reset=fault == "reset")
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except TimeoutError:
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One request per connection (``Connection: close`` both ways, so each is seen): a
        request whose method is `hold_method` reaches the peer, and its answer is kept from the
        client (`held` is set) until the connection is dropped; others go through."""
        request = _closing(await _read_request(reader))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(request)
            await up_writer.drain()
            answer = await asyncio.wait_for(up_reader.read(), _HOLD_SECONDS)
        finally:
            up_writer.close()
        if request.split(b" ", 1)[0] == self.hold_method:
            self.held.set()  # done at the peer, unknown to the client
            await asyncio.sleep(_HOLD_SECONDS)
            return
        writer.write(_closing(answer))
        await writer.drain()

    async def _forward(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        reset: bool,
        sent: bytes = b"",
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(
            "127.0.0.1",
            self.upstream_port,
            ssl=self.upstream_tls,
            server_hostname="127.0.0.1" if self.upstream_tls else None,
        )
        up_writer.write(sent)  # what was read already to choose the fault

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, cut: bool) -> None:
            try:
                while chunk := await src.read(65536):
                    if cut:
                        dst.write(chunk[: max(1, len(chunk) // 2)])
                        await dst.drain()
                        _abort(dst)
                        return
                    dst.write(chunk)
                    await dst.drain()
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        up = asyncio.ensure_future(pump(reader, up_writer, False))
        down = asyncio.ensure_future(pump(up_reader, writer, reset))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if reset:
                up.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
        finally:
            up.cancel()
            down.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            up_writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def close(self) -> None:
        """Stop listening and drop every connection."""

        async def stop() -> None:
            await self._stop()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._sync(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)


@contextmanager
def running(
    upstream_port: int,
    tls: ssl.SSLContext | None = None,
    upstream_tls: ssl.SSLContext | None = None,
) -> Iterator[FaultPeer]:
    """A fault peer in front of 127.0.0.1:`upstream_port` (over TLS with `upstream_tls`),
    forwarding until told otherwise."""
    peer = FaultPeer(upstream_port, tls, upstream_tls)
    thread = threading.Thread(target=peer._run, name="fault-peer", daemon=True)
    thread.start()
    peer._sync(peer._listen())
    try:
        yield peer
    finally:
        peer.close()
        thread.join(10)
        peer._loop.close()
