"""A fast SMTP sink in a process of its own, for benches: it records each message's Message-ID.

The aiosmtpd sink of tests/peers/smtp.py runs in a thread of the caller and parses every
message with the email package; at a few hundred messages a second it, not calgate, was what a
bench measured. This one is a plain asyncio Protocol (on uvloop when importable) in its own
process, speaking the subset of SMTP that aiosmtplib uses without TLS or AUTH: EHLO/HELO, MAIL,
RCPT, DATA, RSET, NOOP, QUIT (anything else: 502). Commands may be pipelined and may arrive
split across reads or several to a read. Per message it finds the Message-ID header with a
bytes search of the header block (no email parsing) and appends ``<id>\\t<size>\\n`` to a log
file (size: the message's octets after dot-unstuffing), flushed before the 250 goes out, so a
message the client saw accepted is in the log. The caller reads the log with `LogTail`.

    python -m tests.peers.fast_smtp LOG_FILE    # prints the port it listens on, then serves

It exits when its stdin closes, so it does not outlive the process that started it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

ROOT = Path(__file__).resolve().parent.parent.parent

_EHLO = b"250-calgate-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
_OK = b"250 2.0.0 OK\r\n"
_MAX_LINE = 64 * 1024  # a command line longer than this is not SMTP: hang up
_END = b"\r\n.\r\n"


def message_id(message: bytes) -> bytes:
    """The Message-ID header's value (unfolded, stripped) from the header block, or b""."""
    head_end = message.find(b"\r\n\r\n")
    head = b"\r\n" + (message if head_end < 0 else message[: head_end + 2])
    start = head.lower().find(b"\r\nmessage-id:")
    if start < 0:
        return b""
    value_start = start + len(b"\r\nmessage-id:")
    end = head.find(b"\r\n", value_start)
    # Folded continuation lines start with a space or a tab (RFC 5322 §2.2.3).
    while end >= 0 and head[end + 2 : end + 3] in (b" ", b"\t"):
        end = head.find(b"\r\n", end + 2)
    value = head[value_start:] if end < 0 else head[value_start:end]
    return b" ".join(value.split())


class SmtpSession(asyncio.Protocol):
    """One client connection: commands line by line, then the DATA body up to CRLF.CRLF."""

    def __init__(self, log: BinaryIO) -> None:
        self.log = log
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0  # in DATA: the buffer before this holds no terminator start
        self.sender = False
        self.recipients = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but they have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(b"220 calgate-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        replies: list[bytes] = []
        recorded = False
        closing = False
        while not closing:
            if self.in_data:
                found = self.buffer.find(_END, self.scanned)
                if found < 0:
                    # The terminator may straddle this read and the next.
                    self.scanned = max(0, len(self.buffer) - len(_END) + 1)
                    break
                # The buffer starts with the CRLF that ended the DATA line, so a dot on the
                # first line is found like any other; RFC 5321 §4.5.2 drops a line's first dot.
                message = bytes(self.buffer[: found + 2]).replace(b"\r\n.", b"\r\n")[2:]
                del self.buffer[: found + len(_END)]
                self.log.write(b"%s\t%d\n" % (message_id(message), len(message)))
                recorded = True
                replies.append(_OK)
                self.in_data = False
                self.sender, self.recipients = False, 0
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_LINE:
                    replies.append(b"500 5.5.2 Line too long\r\n")
                    closing = True
                break
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            reply, closing = self.command(line)
            replies.append(reply)
        if recorded:
            self.log.flush()  # before the 250s: what the client saw accepted is in the log
        assert self.transport is not None
        if replies:
            self.transport.write(b"".join(replies))
        if closing:
            self.transport.close()

    def command(self, line: bytes) -> tuple[bytes, bool]:
        """The reply to one command line, and whether to hang up after it."""
        verb = line.split(b" ", 1)[0].upper()
        if verb == b"EHLO":
            self.sender, self.recipients = False, 0
            return _EHLO, False
        if verb == b"HELO":
            self.sender, self.recipients = False, 0
            return b"250 calgate-sink\r\n", False
        if verb == b"MAIL":
            if self.sender:
                return b"503 5.5.1 Error: nested MAIL command\r\n", False
            if line[5:10].upper() != b"FROM:":
                return b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n", False
            self.sender = True
            return b"250 2.1.0 OK\r\n", False
        if verb == b"RCPT":
            if not self.sender:
                return b"503 5.5.1 Error: need MAIL command\r\n", False
            if line[5:8].upper() != b"TO:":
                return b"501 5.5.4 Syntax: RCPT TO:<address>\r\n", False
            self.recipients += 1
            return b"250 2.1.5 OK\r\n", False
        if verb == b"DATA":
            if not self.recipients:
                return b"503 5.5.1 Error: need RCPT command\r\n", False
            self.in_data = True
            # Keep the CRLF that ended this line in front of the body: see data_received.
            self.buffer[:0] = b"\r\n"
            self.scanned = 0
            return b"354 End data with <CR><LF>.<CR><LF>\r\n", False
        if verb == b"RSET":
            self.sender, self.recipients = False, 0
            return _OK, False
        if verb == b"NOOP":
            return _OK, False
        if verb == b"QUIT":
            return b"221 2.0.0 Bye\r\n", True
        return b"502 5.5.2 Error: command not recognized\r\n", False


async def serve(log_path: Path) -> None:
    """Listen on a free port of 127.0.0.1, print it, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    with log_path.open("ab") as log:
        server = await loop.create_server(lambda: SmtpSession(log), "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()

        def stdin_readable() -> None:
            if not os.read(sys.stdin.fileno(), 4096) and not stop.done():
                stop.set_result(None)

        loop.add_reader(sys.stdin.fileno(), stdin_readable)
        await stop
        server.close()


@dataclass(frozen=True)
class Record:
    """One accepted message: its Message-ID ("" when it had none) and size in octets."""

    message_id: str
    size: int


class LogTail:
    """Reads the records appended to the sink's log since the last read (or since made)."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("rb")
        self.file.seek(0, os.SEEK_END)
        self.partial = b""

    def read(self) -> list[Record]:
        """The records that arrived since the last call, in order."""
        data = self.partial + self.file.read()
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]  # a line still being written: its end comes next time
        records = []
        for line in data[:cut].splitlines():
            mid, size = line.rsplit(b"\t", 1)
            records.append(Record(mid.decode("utf-8", "replace"), int(size)))
        return records

    def close(self) -> None:
        self.file.close()


class FastSmtpServer:
    """Starts the sink in a child process; `port` to send to, `tail()` to read what arrived."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="calgate-fast-smtp-")
        self.log_path = Path(self._dir.name) / "ids.log"
        self.log_path.touch()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tails: list[LogTail] = []

    def __enter__(self) -> FastSmtpServer:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.peers.fast_smtp", str(self.log_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError("the fast SMTP sink did not start")
        self.port = int(line)
        return self

    def tail(self) -> LogTail:
        """A reader of the records that arrive from now on."""
        tail = LogTail(self.log_path)
        self._tails.append(tail)
        return tail

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # the sink's signal to stop
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        for tail in self._tails:
            tail.close()
        self._dir.cleanup()


def main() -> None:
    """Serve, on uvloop when installed (its transports cost less per read and write)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(Path(sys.argv[1])))
    else:
        uvloop.run(serve(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
