"""The fault matrix for the notification channels: SMTP (the aiosmtpd sink behind the fault peer,
over implicit TLS with a test CA) and Twilio (the stand-in behind the fault peer), driven by the
dispatcher's own delivery tick.

For each channel x fault: the tick ends within its bound; a passing failure is logged as a retry
with a reason in words and the message is due again after a backoff (at least Retry-After when
the provider gave one); a permanent refusal is logged as failed and never sent again; once the
fault clears, the confirmation booked meanwhile arrives exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.config import Settings
from gateway.store.db import Store
from tests.faults.conftest import (
    CLASS_NAME,
    FAULTS,
    HTML,
    HUGE,
    RETRY_AFTER,
    TIMEOUT,
    Certificates,
    assert_words,
    script,
)
from tests.notify.conftest import deliver, make_due, notify_settings, rows, soon
from tests.peers import faults
from tests.peers.faults import FaultPeer, http_reply
from tests.peers.smtp import SmtpServer, SmtpSink
from tests.peers.twilio import TwilioServer
from tests.support import new_account

TICK_BOUND = 20.0
PHONE = "+442071838750"


@dataclass
class Rig:
    """One channel behind the fault peer and the test's hands on it."""

    channel: str
    proxy: FaultPeer
    settings: Settings
    script: Callable[[str], tuple[str, bytes, bool]]  # fault → (switch, reply, greet)
    received: Callable[[], int]  # messages the real peer accepted
    refuse_next: Callable[[], None]  # the provider's permanent refusal of the next message


def _smtp_script(fault: str) -> tuple[str, bytes, bool]:
    banners = {
        "5xx": b"421 4.3.0 mail.example Temporary server error, try again later\r\n",
        "429": b"421 4.7.0 mail.example Too many connections from your host\r\n",
        "html": http_reply(200, HTML, "text/html"),
        "truncated": b"220-mail.example ESMTP ready\r\n220-and mo",
        "huge": b"220 " + b"x" * HUGE + b"\r\n",
    }
    if fault in banners:
        return "reply", banners[fault], True
    return fault, b"", False


def _twilio_script(fault: str) -> tuple[str, bytes, bool]:
    refused = http_reply(
        400,
        b'{"code": 21211, "message": "The \'To\' number is not a valid phone number.", '
        b'"more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}',
    )
    switch, reply = script(fault, "json", refused)
    if fault == "truncated":  # Twilio's own error answer, cut off
        reply = http_reply(500, b'{"code": 20500, "message": "An internal', "application/json")
    return switch, reply, False


@pytest.fixture
def smtp_rig(tmp_path: Path, certificates: Certificates) -> Iterator[Rig]:
    with (
        SmtpServer() as sink,
        TwilioServer() as twilio,
        faults.running(sink.port, certificates.good) as proxy,
    ):
        proxy.bad_tls = certificates.bad
        settings = notify_settings(
            tmp_path,
            sink,
            twilio,
            smtp_port=proxy.port,
            smtp_tls="tls",
            smtp_ca_file=certificates.ca_pem,
            smtp_timeout_seconds=TIMEOUT,
        )

        def refuse() -> None:
            sink.reply_next("550 5.1.1 <client@example.com>: mailbox unavailable")

        yield Rig("email", proxy, settings, _smtp_script, lambda: len(sink.received), refuse)


@pytest.fixture
def twilio_rig(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Rig]:
    with TwilioServer() as twilio, faults.running(twilio.port) as proxy:
        settings = notify_settings(
            tmp_path,
            smtp_sink,
            twilio,
            twilio_api_base=proxy.url,
            twilio_timeout_seconds=TIMEOUT,
        )
        yield Rig(
            "sms",
            proxy,
            settings,
            _twilio_script,
            lambda: len(twilio.accepted),
            lambda: twilio.fail_next(21211),
        )


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpServer() as sink:
        yield sink


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The store's settings (the rigs make their own, on the same database)."""
    from tests.conftest import make_settings

    return make_settings(tmp_path)


async def _case(rig: Rig, store: Store, client: httpx.AsyncClient, fault: str) -> None:
    api = await new_account(store, client)
    user = await api.user()
    sms = rig.channel == "sms"
    person = await api.client(
        notify_email=not sms, notify_sms=sms, sms_consent=sms, phone=PHONE if sms else None
    )
    start, end = soon(72)
    apt = await api.appointment(user["id"], person["id"], start=start, end=end)
    [row] = [
        r
        for r in await rows(store, apt["id"])
        if r.channel == rig.channel and r.kind == "confirmation"
    ]

    if fault == "permanent" and rig.channel == "email":
        rig.refuse_next()  # the server's own 550 for this message
    else:
        switch, reply, greet = rig.script(fault)
        rig.proxy.set(switch, reply, greet)
    started = time.monotonic()
    await deliver(store, rig.settings)
    elapsed = time.monotonic() - started
    now = datetime.now(UTC)
    assert elapsed < TICK_BOUND, f"the delivery tick took {elapsed:.1f} s"
    log = (await api.get(f"/v1/appointments/{apt['id']}/notifications")).json()
    [entry] = [e for e in log if e["channel"] == rig.channel and e["kind"] == "confirmation"]
    [attempt] = entry["log"]
    assert_words(attempt["reason"])
    assert not CLASS_NAME.search(attempt["error"] or ""), attempt["error"]
    [row] = [r for r in await rows(store, apt["id"]) if r.id == row.id]
    if fault == "permanent":
        assert attempt["outcome"] == "failed", attempt
        assert row.status == "failed"
        rig.proxy.clear()
        seen = rig.proxy.connections
        await make_due(store, row.id)
        await deliver(store, rig.settings)
        assert rig.proxy.connections == seen, "a permanent failure was retried"
        assert rig.received() == 0
        return
    assert attempt["outcome"] == "retry", attempt
    due = row.due_at if row.due_at.tzinfo else row.due_at.replace(tzinfo=UTC)
    assert now < due < row.deadline_at.replace(tzinfo=UTC), "retried after a bounded wait"
    if fault == "429" and rig.channel == "sms":
        assert due >= now + timedelta(seconds=RETRY_AFTER - 2), "Retry-After not honoured"
    # Cut mid-answer, Twilio may have accepted the message already: the retry carries the same
    # I-Twilio-Idempotency-Token, and whether a second copy goes out is Twilio's to decide (the
    # stand-in, like the worst case, sends it). Every other fault leaves nothing sent.
    sent_already = rig.received()
    assert sent_already == (sent_already if fault == "reset" and rig.channel == "sms" else 0)

    rig.proxy.clear()
    await make_due(store, row.id)
    await deliver(store, rig.settings)
    assert rig.received() == sent_already + 1, "the message was not sent once after the fault"
    await make_due(store, row.id)
    await deliver(store, rig.settings)
    assert rig.received() == sent_already + 1


@pytest.mark.parametrize("fault", FAULTS)
async def test_smtp(smtp_rig: Rig, store: Store, client: httpx.AsyncClient, fault: str) -> None:
    await _case(smtp_rig, store, client, fault)


@pytest.mark.parametrize("fault", [f for f in FAULTS if f != "tls"])
async def test_twilio(twilio_rig: Rig, store: Store, client: httpx.AsyncClient, fault: str) -> None:
    await _case(twilio_rig, store, client, fault)
