"""The benches' fast SMTP sink records every message once, however the bytes arrive.

Messages are calgate's own (`build_message`) sent with aiosmtplib, as the workers send them, and
raw SMTP written pipelined in one write or a byte at a time, since aiosmtplib waits for each
reply and would never split a terminator across reads by itself.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Iterator

import aiosmtplib
import pytest

from gateway.notify.channels.email import EmailEnvelope, build_message
from gateway.notify.rendering import Rendered
from tests.peers.fast_smtp import FastSmtpServer, LogTail, Record, message_id


@pytest.fixture
def sink() -> Iterator[FastSmtpServer]:
    with FastSmtpServer() as server:
        yield server


def _message(n: int, text: str = "Your appointment is tomorrow.\n") -> bytes:
    envelope = EmailEnvelope(
        message_id=f"<ntf_{n}@bench.test>",
        from_name="Clinic",
        from_address="rdv@clinic.example",
        reply_to=None,
        to_name="Client",
        to_address=f"client{n}@example.com",
    )
    return build_message(envelope, Rendered("Reminder", text, f"<p>{text}</p>"), None, None)


async def _records(tail: LogTail, count: int) -> list[Record]:
    """What the sink logged, once `count` records are there (or after 5 s)."""
    got: list[Record] = []
    for _ in range(500):
        got += tail.read()
        if len(got) >= count:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # a duplicate would show now
    return got + tail.read()


async def test_messages_sent_with_aiosmtplib_are_recorded_once_with_their_size(
    sink: FastSmtpServer,
) -> None:
    tail = sink.tail()
    # Lines starting with a dot: aiosmtplib doubles the dot, the sink must take one off again
    # (the sizes say so) and must not read a lone "." line in the body as the end.
    dotted = ".hidden line\n..two dots\n.\nafter a lone dot\n"
    messages = [_message(1), _message(2, dotted), _message(3)]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=5)
    await client.connect()
    for message in messages:  # one connection, one after another, as calgate's pool does
        await client.sendmail("rdv@clinic.example", ["client@example.com"], message)
    await client.quit()
    got = await _records(tail, 3)
    assert [r.message_id for r in got] == [
        "<ntf_1@bench.test>",
        "<ntf_2@bench.test>",
        "<ntf_3@bench.test>",
    ]
    assert [r.size for r in got] == [len(m) for m in messages]


async def test_many_connections_at_once_lose_and_repeat_nothing(sink: FastSmtpServer) -> None:
    tail = sink.tail()

    async def client(c: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port, timeout=10)
        await smtp.connect()
        for m in range(10):
            await smtp.sendmail("a@clinic.example", ["b@example.com"], _message(c * 100 + m))
        await smtp.quit()

    await asyncio.gather(*(client(c) for c in range(20)))
    got = Counter(r.message_id for r in await _records(tail, 200))
    assert got == Counter(
        {f"<ntf_{c * 100 + m}@bench.test>": 1 for c in range(20) for m in range(10)}
    )


def _conversation(*numbers: int) -> bytes:
    """EHLO, then each message (dot-stuffed) with MAIL/RCPT/DATA, then QUIT: one byte string."""
    out = [b"EHLO client.test\r\n"]
    for n in numbers:
        body = _message(n, ".first dot\n").replace(b"\r\n.", b"\r\n..")
        out += [b"MAIL FROM:<a@clinic.example>\r\n", b"RCPT TO:<b@example.com>\r\n", b"DATA\r\n"]
        out += [body, b".\r\n"]
    out.append(b"QUIT\r\n")
    return b"".join(out)


async def _raw(port: int, payload: bytes, chunk: int) -> list[int]:
    """Write `payload` in writes of `chunk` bytes; the reply codes, until the server hangs up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for start in range(0, len(payload), chunk):
        writer.write(payload[start : start + chunk])
        await writer.drain()
        if chunk < len(payload):
            await asyncio.sleep(0.0005)  # separate reads on the other side
    replies = (await asyncio.wait_for(reader.read(), 10)).decode()
    writer.close()
    return [int(code) for code in re.findall(r"^(\d{3}) ", replies, re.MULTILINE)]


async def test_two_messages_pipelined_in_one_write(sink: FastSmtpServer) -> None:
    tail = sink.tail()
    codes = await _raw(sink.port, _conversation(7, 8), chunk=1 << 20)
    assert codes == [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221]
    got = await _records(tail, 2)
    assert [r.message_id for r in got] == ["<ntf_7@bench.test>", "<ntf_8@bench.test>"]
    assert [r.size for r in got] == [
        len(_message(7, ".first dot\n")),
        len(_message(8, ".first dot\n")),
    ]


async def test_a_conversation_written_a_few_bytes_at_a_time(sink: FastSmtpServer) -> None:
    tail = sink.tail()
    codes = await _raw(sink.port, _conversation(9, 10), chunk=3)
    assert codes == [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221]
    got = await _records(tail, 2)
    assert [r.message_id for r in got] == ["<ntf_9@bench.test>", "<ntf_10@bench.test>"]


async def test_out_of_order_and_unknown_commands_are_refused(sink: FastSmtpServer) -> None:
    tail = sink.tail()
    payload = (
        b"HELO client.test\r\nDATA\r\nRCPT TO:<b@example.com>\r\nVRFY b\r\nNOOP\r\n"
        b"MAIL FROM:<a@clinic.example>\r\nMAIL FROM:<a@clinic.example>\r\nRSET\r\nQUIT\r\n"
    )
    assert await _raw(sink.port, payload, chunk=len(payload)) == [
        220,
        250,
        503,
        503,
        502,
        250,
        250,
        503,
        250,
        221,
    ]
    assert await _records(tail, 0) == []


def test_a_folded_message_id_is_read_whole() -> None:
    message = (
        b"Subject: x\r\nmessage-ID:\r\n <ntf_1@bench.test>\r\nTo: b@example.com\r\n\r\nbody\r\n"
    )
    assert message_id(message) == b"<ntf_1@bench.test>"
    assert message_id(b"Subject: x\r\n\r\nMessage-ID: <in the body>\r\n") == b""
