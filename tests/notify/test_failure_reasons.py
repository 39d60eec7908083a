"""Why a message failed, as the delivery log shows it: the provider's code and words (contact
details masked) and a sentence a practitioner understands; and SMS bodies that stay one line
per field whatever a name holds. (A refused SMTP login: tests/notify/test_delivery.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from gateway.config import Settings
from gateway.store.db import Store
from gateway.store.models import Appointment, Client
from tests.notify.conftest import deliver, notify_settings, soon
from tests.peers.smtp import SmtpSink, free_port
from tests.peers.twilio import TwilioPeer
from tests.support import Api, new_account

PHONE = "+442071838750"  # the test client's number


async def _log_entry(api: Api, appointment_id: str, channel: str) -> dict[str, Any]:
    log = (await api.get(f"/v1/appointments/{appointment_id}/notifications")).json()
    [entry] = [e for e in log if e["channel"] == channel and e["kind"] == "confirmation"]
    return dict(entry)


async def _book(api: Api, **person: object) -> dict[str, Any]:
    user = await api.user()
    c = await api.client(**person)
    start, end = soon(72)
    return await api.appointment(user["id"], c["id"], start=start, end=end)


@pytest.mark.parametrize(
    ("code", "outcome", "reason", "words"),
    [
        (21211, "failed", "not a valid number", "The 'To' number ***50 is not a valid phone"),
        (21610, "failed", "replied STOP", "Attempt to send to unsubscribed recipient"),
        (21614, "failed", "cannot receive SMS", "The 'To' number ***50 is not a valid mobile"),
        (20500, "retry", "temporary problem", "An internal server error has occurred"),
    ],
)
async def test_twilio_failures_keep_code_words_and_reason(
    store: Store,
    client: httpx.AsyncClient,
    settings: Settings,
    twilio: TwilioPeer,
    code: int,
    outcome: str,
    reason: str,
    words: str,
) -> None:
    api = await new_account(store, client)
    apt = await _book(api, notify_sms=True, sms_consent=True, notify_email=False, phone=PHONE)
    twilio.fail_next(code)
    await deliver(store, settings)
    entry = await _log_entry(api, str(apt["id"]), "sms")
    [attempt] = entry["log"]
    assert attempt["outcome"] == outcome
    assert attempt["provider_code"] == str(code)
    assert attempt["provider_message"].startswith(words)
    assert reason in attempt["reason"]
    assert attempt["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    # The number itself is in no part of the log (Twilio's own words quoted it).
    assert "2071838750" not in json.dumps(entry)


async def _email_failure(store: Store, client: httpx.AsyncClient, settings: Settings) -> Any:
    api = await new_account(store, client)
    apt = await _book(api)
    await deliver(store, settings)
    entry = await _log_entry(api, str(apt["id"]), "email")
    [attempt] = entry["log"]
    assert attempt["outcome"] == "retry"  # the server's configuration, not the message
    assert "client@example.com" not in json.dumps(entry)
    return attempt


async def test_smtp_without_starttls_says_what_to_set(
    store: Store, client: httpx.AsyncClient, tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer
) -> None:
    settings = notify_settings(tmp_path, smtp, twilio, smtp_tls="starttls")
    attempt = await _email_failure(store, client, settings)
    assert attempt["reason"] == (
        "the server does not offer STARTTLS; set smtp.tls = none for a local relay"
    )
    assert smtp.received == []


async def test_smtp_connection_refused_names_host_and_port(
    store: Store, client: httpx.AsyncClient, tmp_path: Path, smtp: SmtpSink, twilio: TwilioPeer
) -> None:
    port = free_port()  # nothing listens there
    settings = notify_settings(tmp_path, smtp, twilio, smtp_port=port)
    attempt = await _email_failure(store, client, settings)
    assert attempt["reason"].startswith(f"connection refused at 127.0.0.1:{port}")


async def test_smtp_550_keeps_the_servers_words(
    store: Store, client: httpx.AsyncClient, settings: Settings, smtp: SmtpSink
) -> None:
    api = await new_account(store, client)
    apt = await _book(api)
    smtp.reply_next("550 5.1.1 <client@example.com>: mailbox unavailable")
    await deliver(store, settings)
    entry = await _log_entry(api, str(apt["id"]), "email")
    [attempt] = entry["log"]
    assert attempt["outcome"] == "failed"
    assert attempt["provider_code"] == "550"
    assert attempt["provider_message"] == "5.1.1 <***@example.com>: mailbox unavailable"
    assert attempt["reason"] == "the mail server refused the message"


async def test_a_hostile_name_leaves_one_line_per_field(
    store: Store, client: httpx.AsyncClient, settings: Settings, twilio: TwilioPeer
) -> None:
    api = await new_account(store, client)
    template = "Hi {{ recipient_name }}\n{{ title }}\n{{ when }}"
    saved = await api.http.put(
        "/v1/notification-templates/sms/confirmation/en",
        json={"txt": template},
        headers=api.headers,
    )
    assert saved.status_code == 200, saved.text
    user = await api.user()
    c = await api.client(notify_sms=True, sms_consent=True, notify_email=False)
    # Stored as an older version of the API or an import might have left it.
    async with store.transaction() as session:
        await session.execute(
            update(Client)
            .where(Client.id == c["id"])
            .values(name="Eve\r\nReply YES to\u2028pay\x0b\x1b[2J now")
        )
    start, end = soon(72)
    apt = await api.appointment(user["id"], c["id"], start=start, end=end, title="Check-up")
    async with store.transaction() as session:  # a title the API would now refuse
        await session.execute(
            update(Appointment).where(Appointment.id == apt["id"]).values(title="Check-up\nfree")
        )
    await deliver(store, settings)
    [sent] = twilio.accepted
    lines = sent.form["Body"].split("\n")
    assert len(lines) == 3
    assert lines[0] == "Hi Eve Reply YES to pay [2J now"
    assert lines[1] == "Check-up free"
    assert all(ch.isprintable() for line in lines for ch in line)
